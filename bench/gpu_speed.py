"""The speed section of bench/gpu.sh: every speed figure of issue 13 in one process, each item time-boxed.

    python bench/gpu_speed.py --results speed.json [--dry] [--seconds 210]

Items run in order of importance and the results file is rewritten after each one, so a run cut short
keeps what it measured. Each item is the fp32 eager baseline beside img2img's ways (precision auto with
NCHW and with channels-last apart), with peak memory and (on a GPU in speed_common's table) the fraction
of the dense bf16 compute limit:
- cyclegan_step_bN: bench/train_speed.py (model-only CycleGAN steps on synthetic batches) at 256 px,
  batch 1, 8 and 32; the best batch is the one with the most image pairs/s; compiled at batch 1 last;
- translate_256 / translate_1080p: bench/translate_speed.py (ResNet-9, ngf 64), fp32 and bf16 in both layouts;
- video_1080p: decode, translate, encode of a synthetic 1080p clip (bench/video_speed.py's pipeline);
- <method>_e2e: `img2img.train.train` on synthetic image folders, data loading included (pix2pix 256,
  StarGAN 128 at batch 16, CycleGAN 256), pairs/s from the run's log.jsonl after warm-up windows.
--dry runs the same items on the CPU at 32-64 px with tiny nets, in well under a minute of work.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the bench modules, when run from elsewhere

import train_speed  # noqa: E402
import translate_speed  # noqa: E402
import video_speed  # noqa: E402
from speed_common import device_peak, flops_of, log_rate, machine, peak_memory_gib, reset_peak  # noqa: E402

from img2img import config as config_mod  # noqa: E402
from img2img.data.synthetic import make_paired, make_unpaired  # noqa: E402
from img2img.methods import METHODS, get_method  # noqa: E402
from img2img.train import train  # noqa: E402
from img2img.translate import Translator  # noqa: E402


class ItemTimeout(Exception):
    pass


@contextlib.contextmanager
def time_box(seconds: float):
    """Raise ItemTimeout in the main thread after `seconds` (SIGALRM), so one slow item never costs the rest."""
    def expire(signum, frame):
        raise ItemTimeout(f"over its {seconds:.0f} s box")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1.0))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ----- end-to-end training through the public loop

def _synthetic_data(method: str, root: Path, size: int, count: int) -> dict:
    """Data overrides for `method` on synthetic folders of size x size images written under root."""
    kind = METHODS[method].dataset_kind
    if kind == "paired":
        return {"data.data": str(make_paired(root / "paired", count=count, size=size))}
    a, b = make_unpaired(root / "unpaired", count=count, size=size)
    if kind == "unpaired":
        return {"data.a": str(a), "data.b": str(b)}
    return {"data.data": str(a.parent)}  # domain sub-folders A and B (StarGAN)


def _train_rate(overrides: dict, out: Path, skip_windows: int) -> float:
    cfg = config_mod.build_config(get_method(overrides["method"]), None, {k: v for k, v in overrides.items() if k != "method"})
    train(cfg, out, progress=False)
    return log_rate(out / "log.jsonl", skip_windows)


def _train_flops(overrides: dict, out: Path, steps: int) -> float:
    """FLOPs of one training step in fp32 eager: (a run of 1 + steps) minus (a run of 1), over steps.
    Setup, previews and saving cancel out; `steps` = 5 spans StarGAN's n_critic cycle."""
    counts = []
    for n in (1, 1 + steps):
        o = {**overrides, "train.steps": n, "train.precision": "fp32", "train.compile": False,
             "train.channels_last": False, "train.log_every": 1}
        cfg = config_mod.build_config(get_method(o.pop("method")), None, o)
        counts.append(flops_of(lambda: train(cfg, out / f"flops{n}", progress=False)))
    return (counts[1] - counts[0]) / steps


def train_e2e(method: str, size: int, batch: int, steps: int, log_every: int, skip: int, tiny: dict,
              device: torch.device, work: Path, peak: float) -> dict:
    data = _synthetic_data(method, work / f"data_{method}_{size}", size, count=max(8, 2 * batch))
    common = {"method": method, **data, **tiny, "data.image_size": size, "train.batch_size": batch,
              "train.steps": steps, "train.log_every": log_every, "train.sample_every": 0, "train.save_every": 0,
              "train.sample_minutes": 0, "train.save_minutes": 0,
              "train.device": str(device)}
    ways = [("fp32 eager (baseline)", {"train.precision": "fp32", "train.compile": False, "train.channels_last": False}),
            ("img2img defaults", {"train.precision": "auto"})]
    if device.type == "cuda":
        ways.append(("img2img defaults + channels-last", {"train.precision": "auto", "train.channels_last": True}))
    rows = []
    for label, extra in ways:
        reset_peak(device)
        rate = _train_rate({**common, **extra}, work / f"{method}_{len(rows)}", skip)
        rows.append({"label": label, "steps_per_s": rate, "per_s": rate * batch, "peak_mem_gib": peak_memory_gib(device)})
    flops = _train_flops(common, work / f"{method}_flops", steps=5)
    for r in rows:
        r["tflops"] = flops * r["steps_per_s"] / 1e12
        r["fraction_of_peak"] = r["tflops"] / peak if peak else None
        r["speedup_vs_baseline"] = r["steps_per_s"] / rows[0]["steps_per_s"]
    return {"method": method, "size": size, "batch": batch, "tflop_per_step": flops / 1e12, "unit": "image pairs/s",
            "rows": rows}


# ----- video end to end

def video_e2e(width: int, height: int, frames: int, batch: int, generator: str, ngf: int, device: torch.device,
              work: Path, peak: float) -> dict:
    model = video_speed.random_model(work / "video_model.pt", generator, ngf)
    clip = video_speed.synthetic_clip(work / f"clip{height}.mp4", width, height, frames)
    rows = []
    for precision in ("fp32", "auto"):
        translator = Translator(model, device=str(device), precision=precision)
        reset_peak(device)
        r = video_speed.run(translator, clip, work / f"out_{precision}.mp4", batch, None, False)
        rows.append({"label": f"{translator.precision} translate" + (" (baseline)" if not rows else " (img2img)"),
                     "per_s": r["fps"], "unit": "frames/s", "shares": r["shares"], "peak_mem_gib": peak_memory_gib(device)})
    net = Translator(model, device=str(device), precision="fp32").generator.net
    x = torch.zeros(1, 3, -(-height // 4) * 4, -(-width // 4) * 4, device=device)
    with torch.no_grad():
        flops = flops_of(lambda: net(x))
    for r in rows:
        r["tflops"] = flops * r["per_s"] / 1e12
        r["fraction_of_peak"] = r["tflops"] / peak if peak else None
        r["speedup_vs_baseline"] = r["per_s"] / rows[0]["per_s"]
    return {"width": width, "height": height, "frames": frames, "batch": batch, "generator": f"{generator} ngf {ngf}",
            "tflop_per_frame": flops / 1e12, "rows": rows}


# ----- the plan

def plan(dry: bool, device: torch.device, work: Path, peak: float) -> list[tuple[str, float, object]]:
    """(name, share of the section's seconds it may use at most, callable) in order of importance."""
    dev = ["--device", str(device)]
    if dry:  # tiny sizes and nets: the same code paths in seconds on a CPU
        step = lambda b, *extra: lambda: train_speed.main([*dev, "--size", "32", "--batch", str(b), "--ngf", "8", "--ndf", "8", "--iters", "2", *extra])
        tiny = {"net.ngf": 8, "net.ndf": 8}
        return [
            ("cyclegan_step_b1", 0.15, step(1, "--variants", "auto,fp32-cl")),
            ("cyclegan_step_b4", 0.15, step(4)),
            ("translate_256", 0.1, lambda: translate_speed.main([*dev, "--size", "32", "--batch", "2", "--ngf", "8", "--iters", "2",
                                                                 "--variants", "fp32-cl,auto-cl"])),
            ("translate_1080p", 0.1, lambda: translate_speed.main([*dev, "--size", "64", "--batch", "1", "--ngf", "8", "--iters", "1"])),
            ("video_1080p", 0.15, lambda: video_e2e(64, 36, 6, 2, "resnet_6", 8, device, work, peak)),
            ("pix2pix_256_e2e", 0.15, lambda: train_e2e("pix2pix", 32, 1, 4, 2, 1, tiny, device, work, peak)),
            ("stargan_128_b16_e2e", 0.15, lambda: train_e2e("stargan", 32, 2, 4, 2, 1, tiny, device, work, peak)),
            ("cyclegan_256_e2e", 0.15, lambda: train_e2e("cyclegan", 32, 1, 4, 2, 1, tiny, device, work, peak)),
            # the compiled items only pass --compile to the same benches; compiling on a busy 2-core CPU takes minutes
        ]
    # The 2026-11-30 H200 run showed img2img's bf16 channels-last path at or below plain fp32 (launch-bound
    # small kernels, layout copies around instance norm): each item now times the layouts and precisions
    # apart, so the next GPU run says which one the defaults should be.
    step = lambda b, iters, variants: lambda: train_speed.main([*dev, "--size", "256", "--batch", str(b), "--iters", str(iters),
                                                                "--variants", variants])
    trans = lambda *size: lambda: translate_speed.main([*dev, *size, "--variants", "fp32-cl,auto,auto-cl"])
    return [
        ("cyclegan_step_b1", 0.12, step(1, 20, "auto,auto-cl")),
        ("cyclegan_step_b8", 0.12, step(8, 8, "auto,auto-cl,fp32-cl")),
        ("cyclegan_step_b32", 0.15, step(32, 5, "auto,auto-cl")),
        ("translate_256", 0.1, trans("--size", "256", "--batch", "64", "--iters", "10")),
        ("translate_1080p", 0.1, trans("--hd", "--batch", "4", "--iters", "5")),
        ("video_1080p", 0.2, lambda: video_e2e(1920, 1080, 96, 8, "resnet_9", 64, device, work, peak)),
        ("pix2pix_256_e2e", 0.15, lambda: train_e2e("pix2pix", 256, 1, 180, 20, 2, {}, device, work, peak)),
        ("stargan_128_b16_e2e", 0.15, lambda: train_e2e("stargan", 128, 16, 80, 10, 2, {}, device, work, peak)),
        ("cyclegan_256_e2e", 0.15, lambda: train_e2e("cyclegan", 256, 1, 120, 15, 2, {}, device, work, peak)),
        # compiled last, as each compile takes tens of seconds; graphs = mode reduce-overhead (CUDA graphs), aimed
        # at the launch-bound small kernels the profile showed
        ("cyclegan_step_b1_compiled", 0.4, step(1, 20, "auto-graphs,auto-compile")),
        ("translate_256_compiled", 0.3, lambda: translate_speed.main([*dev, "--size", "256", "--batch", "64", "--iters", "10",
                                                                      "--variants", "auto-cl-compile,auto-graphs"])),
    ]


def best_rate(record: dict) -> float:
    return max((r["per_s"] for r in record.get("rows", [])[1:]), default=0.0)


# Issue 13's targets on an H100/H200 (meaningless for --dry, which runs tiny nets on a CPU).
TARGETS = {"cyclegan_256_pairs_per_s_best": 150.0, "translate_256_images_per_s": 3500.0, "video_1080p_frames_per_s": 60.0}


def headline(items: dict) -> dict:
    """The figures issue 13 sets targets for, from the optimised rows (0 where not measured)."""
    steps = {k: v for k, v in items.items() if k.startswith("cyclegan_step_b") and v.get("status") == "ok"}
    best = max(steps, key=lambda k: best_rate(steps[k]), default=None)
    get = lambda k: best_rate(items[k]) if items.get(k, {}).get("status") == "ok" else 0.0
    figures = {"cyclegan_256_pairs_per_s_best": best_rate(steps[best]) if best else 0.0,
               "translate_256_images_per_s": max(get("translate_256"), get("translate_256_compiled")),
               "video_1080p_frames_per_s": get("video_1080p")}
    return {**figures, "cyclegan_best_item": best, "cyclegan_256_e2e_pairs_per_s": get("cyclegan_256_e2e"),
            "targets": TARGETS, "meets_target": {k: figures[k] >= t for k, t in TARGETS.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", required=True, help="JSON file, rewritten after every item")
    p.add_argument("--dry", action="store_true", help="CPU, tiny sizes")
    p.add_argument("--seconds", type=float, default=210.0, help="the whole section's budget")
    p.add_argument("--only", default="", help="comma-separated item names to run (default: all)")
    args = p.parse_args()
    device = torch.device("cpu" if args.dry or not torch.cuda.is_available() else "cuda")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    peak, peak_source = device_peak(device)
    deadline = time.monotonic() + args.seconds
    record = {"device": str(device), "peak_tflops": peak, "peak_source": peak_source, "machine": machine(), "items": {}}
    results = Path(args.results)
    with tempfile.TemporaryDirectory(prefix="gpu_speed_") as tmp:
        for name, share, fn in plan(args.dry, device, Path(tmp), peak):
            if args.only and name not in args.only.split(","):
                continue
            left = deadline - time.monotonic()
            if left < 3:
                record["items"][name] = {"status": "skipped", "why": "section budget spent"}
                continue
            box = min(left, share * args.seconds)
            print(f"\n== {name} (box {box:.0f} s)", flush=True)
            began = time.monotonic()
            try:
                with time_box(box):
                    out = fn()
                record["items"][name] = {"status": "ok", **out}
            except ItemTimeout as exc:
                record["items"][name] = {"status": "timeout", "why": str(exc)}
            except Exception as exc:  # one broken item must not lose the others; the log keeps the traceback
                timed_out = "ItemTimeout" in str(exc)  # torch.compile re-raises it wrapped
                if not timed_out:
                    traceback.print_exc()
                record["items"][name] = {"status": "timeout" if timed_out else "error", "why": f"{type(exc).__name__}: {exc}"[:300]}
            record["items"][name]["seconds"] = round(time.monotonic() - began, 1)
            if device.type == "cuda":
                torch.cuda.empty_cache()
            print(f"-- {name}: {record['items'][name]['status']} in {record['items'][name]['seconds']} s", flush=True)
            record["headline"] = headline(record["items"])
            write_atomically(results, record)
        write_atomically(results, record)  # with the items the budget left out


def write_atomically(path: Path, record: dict) -> None:
    """A kill mid-write (the section's hard timeout) must leave the previous complete file."""
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(path)


if __name__ == "__main__":
    main()
