"""bench/gpu.sh's body: every GPU check of issue 13 in one command, each section time-boxed.

    bench/gpu.sh [--dry] [--out DIR] [--seconds 480] [--data gpu_data/horse2zebra]

Sections (a failure or timeout in one never loses the others; summary.json is rewritten after each):
1. speed (alone on the device, so figures are clean): bench/gpu_speed.py;
2. then side by side, as neither needs the whole GPU:
   - the CUDA tests: pytest -m cuda tests/test_cuda.py (junit XML kept);
   - the quality sprint: bench/gpu_sprint.py for CycleGAN, CUT and CycleGAN with the `quick` recipe,
     concurrently on horse2zebra at 256 px (gpu_data/, made by bench/gpu_data.sh), testA translated for FID.
Outputs under --out (default $OUT, else ./gpu_out), at most 4 files: summary.json, gpu.log, pytest.xml,
sprint.tar. --dry: the same on the CPU at 32-64 px with tiny nets on synthetic data, in a minute or two.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The sprints, trained side by side: (name, method, recipe); those whose method the registry holds run.
SPRINT_CANDIDATES = (("cyclegan", "cyclegan", None), ("cut", "cut", None), ("cyclegan-quick", "cyclegan", "quick"))
MAX_FILE_BYTES = 16 * 2**20


class Run:
    def __init__(self, out: Path, work: Path, dry: bool, seconds: float):
        self.out, self.work, self.dry = out, work, dry
        self.began = time.monotonic()
        self.deadline = self.began + seconds
        self.log = open(out / "gpu.log", "a", encoding="utf-8")
        self.summary = {"mode": "dry (CPU, tiny sizes)" if dry else "gpu", "budget_s": seconds,
                        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "sections": {}}

    def say(self, text: str) -> None:
        line = f"[{time.monotonic() - self.began:6.1f} s] {text}"
        print(line, flush=True)
        self.log.write(line + "\n")
        self.log.flush()

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def start(self, name: str, argv: list[str], env: dict | None = None) -> tuple[subprocess.Popen, Path]:
        log = self.work / f"{name}.log"
        self.say(f"start {name}: {' '.join(argv)}")
        proc = subprocess.Popen(argv, cwd=REPO, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, start_new_session=True)
        return proc, log

    def finish(self, name: str, proc: subprocess.Popen, log: Path, timeout: float) -> dict:
        """Wait up to timeout s; then SIGTERM (the training loop saves on it), 10 s later SIGKILL."""
        began = time.monotonic()
        status = "ok"
        try:
            rc = proc.wait(timeout=max(timeout, 1))
        except subprocess.TimeoutExpired:
            status = "timeout"
            os.killpg(proc.pid, 15)
            try:
                rc = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                rc = proc.wait()
        if status == "ok" and rc != 0:
            status = f"exit {rc}"
        self.log.write(f"\n===== {name} ({status}) =====\n{log.read_text(errors='replace')}\n")
        self.log.flush()
        self.say(f"{name}: {status}")
        return {"status": status, "waited_s": round(time.monotonic() - began, 1)}

    def save(self) -> None:
        self.summary["elapsed_s"] = round(time.monotonic() - self.began, 1)
        (self.out / "summary.json").write_text(json.dumps(self.summary, indent=2) + "\n")


def read_json(path: Path) -> dict:
    """A section's results; {} when it never wrote them or was killed half-way through writing."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def sprint_data(run: Run, data: Path) -> tuple[dict, str]:
    """(folders trainA/trainB/testA, description): the repacked horse2zebra when present, else synthetic."""
    if not run.dry and all((data / d).is_dir() for d in ("trainA", "trainB", "testA")):
        note = (data / "SUBSET.txt").read_text().strip() if (data / "SUBSET.txt").is_file() else str(data)
        return {d: data / d for d in ("trainA", "trainB", "testA")}, note
    from img2img.data.synthetic import make_unpaired

    size = 32 if run.dry else 256
    a, b = make_unpaired(run.work / "data" / "train", count=8 if run.dry else 64, size=size)
    test = make_unpaired(run.work / "data" / "test", count=4 if run.dry else 16, size=size, seed=1)[0]
    why = "--dry" if run.dry else f"{data} not found (make it with bench/gpu_data.sh and carry it)"
    return {"trainA": a, "trainB": b, "testA": test}, f"synthetic disks/stripes at {size} px ({why})"


def junit_counts(path: Path) -> dict:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {}
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    keys = ("tests", "failures", "errors", "skipped")
    counts = {k: int(suite.get(k, 0)) for k in keys}
    counts["failed_tests"] = [f"{c.get('name')}: {(c.find('failure') if c.find('failure') is not None else c.find('error')).get('message', '')[:200]}"
                              for c in suite.iter("testcase") if c.find("failure") is not None or c.find("error") is not None]
    return counts


def pack_sprint(run: Run, methods: list[str]) -> Path | None:
    """One tar of each method's translated test images, sprint.json, log.jsonl and last preview grid."""
    tar_path = run.out / "sprint.tar"
    with tarfile.open(tar_path, "w") as tar:
        for m in methods:
            base = run.work / "sprint" / m
            for rel in ("sprint.json", "run/log.jsonl", "run/config.json", "testA_fake"):
                if (base / rel).exists():
                    tar.add(base / rel, arcname=f"{m}/{rel}")
            grids = sorted((base / "run" / "samples").glob("step_*.*")) if (base / "run" / "samples").is_dir() else []
            if grids:
                tar.add(grids[-1], arcname=f"{m}/samples/{grids[-1].name}")
    if tar_path.stat().st_size > MAX_FILE_BYTES:
        run.say(f"sprint.tar is {tar_path.stat().st_size / 2**20:.1f} MiB, over the 16 MiB a file may have: removed")
        tar_path.unlink()
        return None
    return tar_path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry", action="store_true", help="CPU, tiny sizes, synthetic data")
    p.add_argument("--out", default=os.environ.get("OUT") or "gpu_out", help="output folder (default: $OUT, else ./gpu_out)")
    p.add_argument("--seconds", type=float, default=0, help="whole budget (default 470; --dry 150)")
    p.add_argument("--data", default=str(REPO / "gpu_data" / "horse2zebra"), help="horse2zebra repacked by bench/gpu_data.sh")
    args = p.parse_args()
    seconds = args.seconds or (150.0 if args.dry else 470.0)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    env = {"PYTHONPATH": f"{REPO}{os.pathsep}{os.environ['PYTHONPATH']}" if os.environ.get("PYTHONPATH") else str(REPO),
           "PYTHONUNBUFFERED": "1"}
    if args.dry:
        env["OMP_NUM_THREADS"] = "1"  # tiny tensors: intra-op threads only spin-wait on a shared CPU
        env["CUDA_VISIBLE_DEVICES"] = ""  # the dry run is the CPU path even on a GPU machine
    os.environ.update(env)
    with tempfile.TemporaryDirectory(prefix="gpu_run_") as tmp:
        run = Run(out, Path(tmp), args.dry, seconds)
        run.say(f"img2img GPU checks ({run.summary['mode']}), budget {seconds:.0f} s, outputs in {out}")
        run.save()

        # 1. speed, alone on the device
        speed_s = min(0.65 * seconds, run.left() - 60)
        results = run.work / "speed.json"
        proc, log = run.start("speed", [py, "bench/gpu_speed.py", "--results", str(results), "--seconds", f"{speed_s:.0f}",
                                        *(["--dry"] if args.dry else [])])
        status = run.finish("speed", proc, log, speed_s + 30)
        speed = read_json(results)
        run.summary["machine"] = speed.get("machine")
        run.summary["sections"]["speed"] = {**status, **speed}
        run.save()

        # 2. CUDA tests beside the quality sprint
        from img2img.methods import METHODS

        sprint_plan = [(name, method, recipe) for name, method, recipe in SPRINT_CANDIDATES if method in METHODS]
        methods = [name for name, _, _ in sprint_plan]
        folders, data_note = sprint_data(run, Path(args.data))
        sprint_s = run.left() - 15
        if args.dry:
            sprint_s = min(sprint_s, 25)
        tests = run.start("tests", [py, "-m", "pytest", "-q", "-m", "cuda", "tests/test_cuda.py", "-p", "no:cacheprovider",
                                    "--junitxml", str(out / "pytest.xml")])
        sprints = {name: run.start(f"sprint_{name}", [py, "bench/gpu_sprint.py", "--method", method,
                                                      *(["--recipe", recipe] if recipe else []), "--a", str(folders["trainA"]),
                                                      "--b", str(folders["trainB"]), "--test", str(folders["testA"]),
                                                      "--work", str(run.work / "sprint" / name), "--seconds", f"{sprint_s:.0f}",
                                                      *(["--dry"] if args.dry else [])])
                   for name, method, recipe in sprint_plan}
        sprint = {"data": data_note, "methods": {}, "concurrent": methods + ["tests"],
                  "score_with": "img2img eval --real ../shared/data/horse2zebra/testB --fake <untarred>/<name>/testA_fake"}
        for m, (proc, log) in sprints.items():
            state = run.finish(f"sprint_{m}", proc, log, run.left() + 5)
            rec = run.work / "sprint" / m / "sprint.json"
            sprint["methods"][m] = {**state, **read_json(rec)}
        sprint["archive"] = pack_sprint(run, methods) and "sprint.tar"
        run.summary["sections"]["sprint"] = sprint
        run.save()
        state = run.finish("tests", *tests, max(run.left(), 5))
        run.summary["sections"]["tests"] = {**state, **junit_counts(out / "pytest.xml")}
        run.save()

        sections = run.summary["sections"]
        ok = sections["speed"]["status"] == "ok" and sections["tests"]["status"] == "ok" and \
            all(s["status"] == "ok" for s in sprint["methods"].values()) and bool(sprint["methods"])
        run.summary["all_ok"] = ok
        run.save()
        items = sections["speed"].get("items", {})
        run.say("speed: " + ", ".join(f"{k} {v['status']}" for k, v in items.items()))
        run.say(f"headline: {json.dumps(speed.get('headline', {}))}")
        t = sections["tests"]
        run.say(f"tests: {t.get('tests', '?')} run, {t.get('failures', '?')} failed, {t.get('errors', '?')} errors, "
                f"{t.get('skipped', '?')} skipped")
        for m, s in sprint["methods"].items():
            run.say(f"sprint {m}: {s['status']}, {s.get('steps', '?')} steps in {s.get('train_minutes', '?')} min, "
                    f"{s.get('translated', 0)} test images translated")
        run.say(f"done in {time.monotonic() - run.began:.0f} s: {'all sections ok' if ok else 'SOME SECTIONS FAILED'}")
        run.log.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
