"""Quality at a budget: train a method on a dataset for fixed wall-clock minutes (or steps) on this device,
translate the test split, score it, and compare runs.

    python bench/budget.py run --dataset ../shared/data/horse2zebra --method cut --minutes 15 --seed 0
    python bench/budget.py run --dataset ../shared/data/horse2zebra --method cyclegan --minutes 15 \
        --set train.diffaugment=color,translation,cutout --name cyclegan-diffaug
    python bench/budget.py baseline --dataset ../shared/data/horse2zebra      # the untranslated inputs' scores
    python bench/budget.py table bench/runs/budget                            # one row per run record
    python bench/budget.py grid bench/budget_grid.txt --have bench/results/*cpu-budget[0-9]*  # issue 15's grid:
                                                         # which runs are measured; --run --jobs 2 runs the rest

Profiles: cpu = 64 px (use --size 128 for the larger CPU setting), budgets of minutes; gpu = 256 px, the
published protocols (horse2zebra: testA translated to B, scored against testB; facades: labels -> photo,
i.e. b2a, with L1/PSNR/SSIM against the photos as well). Datasets are recognised by layout: trainA/trainB/
testA/testB (unpaired) or train/ + test/ (A|B side-by-side pairs).

A minutes budget is wall-clock time of training (set-up and data loading included, evaluation not), planned
by img2img.train.timed as `img2img train --minutes` plans it: the total steps are planned from the speed of
the first 10 steps and re-planned every few seconds from the recent speed while the learning rate is still
constant, so the schedule (paper default: linear decay over the second half) ends on time; the deadline
still stops the run if the machine slows down during the decay (recorded as stopped_by_clock). The
record's train_seconds counts the training loop alone.
Running the same command
with a larger --minutes or --steps resumes the run and extends it; the schedule follows the new length.
Each run folder gets record.json (settings, steps, seconds, scores, the command) and grid.png (first test
inputs, their translations, and for paired data the ground truth); `img2img report RUN` shows the rest.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.utils import save_image

from img2img import config as config_mod
from img2img.errors import UserError
from img2img.methods import get_method
from img2img.metrics.evaluate import distribution_scores, plan_eval, reference_features, translate_and_score
from img2img.metrics.features import load_inception
from img2img.train import train, train_for
from img2img.train.checkpoint import load_checkpoint

PROFILES = {"cpu": {"size": 64, "device": "cpu"}, "gpu": {"size": 256, "device": "cuda"}}
RECORD, GRID = "record.json", "grid.png"
GRID_IMAGES = 8


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def layout(dataset: Path, direction: str | None) -> dict:
    """Training and test folders of a dataset, recognised by its layout."""
    if (dataset / "trainA").is_dir() and (dataset / "trainB").is_dir():
        return {"kind": "unpaired", "train": {"data.a": str(dataset / "trainA"), "data.b": str(dataset / "trainB")},
                "test": {"a": str(dataset / "testA"), "b": str(dataset / "testB")}, "direction": direction or "a2b"}
    if (dataset / "train").is_dir():
        test = next((dataset / d for d in ("test", "val") if (dataset / d).is_dir()), None)
        if test is None:
            raise UserError(f"{dataset}: paired layout without a test/ or val/ folder")
        # facades: the classic task is labels (right half, B) -> photo (left half, A)
        default = "b2a" if "facades" in dataset.name.lower() else "a2b"
        return {"kind": "paired", "train": {"data.data": str(dataset / "train")}, "test": {"data": str(test)},
                "direction": direction or default}
    raise UserError(f"{dataset}: expected trainA/ trainB/ testA/ testB/ (unpaired) or train/ test/ (A|B pairs)")


def test_plan(lay: dict, limit: int, channels: int = 3):
    paired = lay["kind"] == "paired"
    return plan_eval(**lay["test"], direction=lay["direction"], channels=channels, limit=limit, paired=paired)


def cached_reference_features(plan, extractor, size: int, cache_dir: Path, key: str) -> np.ndarray:
    """Features of the real test images, computed once per (test folder, size, network)."""
    digest = hashlib.sha1(f"{key}|{size}|{extractor.name}|{len(plan.references)}".encode()).hexdigest()[:16]
    path = cache_dir / f"ref_{digest}.npy"
    if path.is_file():
        return np.load(path)
    feats = reference_features(plan, extractor, size=size)
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.save(path, feats)
    return feats


def resized(x: torch.Tensor, size: int) -> torch.Tensor:
    if tuple(x.shape[-2:]) == (size, size):
        return x
    return F.interpolate(x[None], size=(size, size), mode="bicubic", antialias=True, align_corners=False)[0].clamp(-1, 1)


def score(translate, lay: dict, args, extractor, out_grid: Path | None) -> dict:
    plan = test_plan(lay, args.limit)
    real = cached_reference_features(plan, extractor, args.size, args.root / "cache", json.dumps(lay["test"], sort_keys=True))
    fake, paired = translate_and_score(plan, translate, extractor=extractor, size=args.size)
    scores = {**paired, **distribution_scores(real, fake, kid_subset_size=1000), "images": len(plan.samples),
              "reference_images": len(plan.references), "image_size": args.size, "features": extractor.name}
    if out_grid is not None:
        samples = plan.samples[:GRID_IMAGES]
        x = torch.stack([resized(s.source(), args.size) for s in samples])
        rows = [x, translate(x).cpu().float()]
        if plan.paired:
            rows.append(torch.stack([resized(s.target(), args.size) for s in samples]))
        save_image(torch.cat(rows), out_grid, nrow=len(samples), normalize=True, value_range=(-1, 1), padding=2)
    return scores


def build_cfg(args, lay: dict, steps: int):
    method_cls = get_method(args.method)
    overrides = {**lay["train"], "data.image_size": args.size, "train.device": args.device, "train.seed": args.seed,
                 "train.steps": steps, "train.sample_every": args.sample_every, "train.save_every": args.save_every,
                 "train.log_every": 25, **config_mod.parse_set(args.set)}
    if lay["kind"] == "paired":
        overrides["data.direction"] = lay["direction"]
    if method_cls.dataset_kind != lay["kind"]:
        raise UserError(f"{args.method} trains on {method_cls.dataset_kind} data but {args.dataset} is {lay['kind']}")
    return config_mod.build_config(method_cls, None, overrides)


def run(args) -> dict:
    lay = layout(args.dataset, args.direction)
    name = args.name or f"{args.method}-{args.dataset.name}-{args.size}px-s{args.seed}"
    out = args.root / name
    record_path = out / RECORD
    previous = json.loads(record_path.read_text()) if record_path.is_file() else {}
    resume = (out / "checkpoint.pt").is_file()
    spent = float(previous.get("train_seconds", 0.0)) if resume else 0.0
    steps_done = load_checkpoint(out / "checkpoint.pt")["step"] if resume else 0
    stopped_by_clock = False
    began = time.perf_counter()
    if args.steps:
        if args.steps > steps_done:
            cfg = _resume_cfg(out, args.steps) if resume else build_cfg(args, lay, args.steps)
            result = train(cfg, out, resume=resume, progress=not args.quiet)
            spent, steps_done = spent + result.seconds, result.step
    elif args.minutes * 60 - spent > 0:  # img2img.train.timed times the first steps and fits the run to the clock
        cfg = _resume_cfg(out, None) if resume else build_cfg(args, lay, 1)
        result = train_for(cfg, out, args.minutes * 60 - spent, resume=resume, progress=not args.quiet)
        spent, steps_done, stopped_by_clock = spent + result.seconds, result.step, result.out_of_time
    from img2img.translate import Translator

    extractor = load_inception(args.inception, args.device if args.device != "auto" else "cpu")
    translator = Translator(out / "model.pt", direction=lay["direction"], device=args.device, precision="fp32")
    scores = score(translator, lay, args, extractor, out / GRID)
    ckpt_total = json.loads((out / "config.json").read_text())["train"]["steps"]
    record = {"name": name, "method": args.method, "dataset": str(args.dataset), "direction": lay["direction"], "profile": args.profile,
              "image_size": args.size, "seed": args.seed, "settings": config_mod.parse_set(args.set),
              "budget": {"steps": args.steps} if args.steps else {"minutes": args.minutes},
              "steps": steps_done, "planned_steps": ckpt_total, "train_seconds": round(spent, 1),
              "stopped_by_clock": stopped_by_clock or previous.get("stopped_by_clock", False),
              "wall_seconds_this_call": round(time.perf_counter() - began, 1), "device": args.device, "cpu": cpu_name(),
              "torch": torch.__version__, "scores": scores, "grid": GRID, "command": command_line(args),
              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    record_path.write_text(json.dumps(record, indent=2))
    print(f"{name}: {steps_done} steps in {spent / 60:.1f} min; FID {scores['fid']:.1f}, KID {scores['kid']:.4f}"
          + (f", L1 {scores['l1']:.4f}" if "l1" in scores else "") + f"  -> {record_path}")
    return record


def _resume_cfg(out: Path, steps: int | None):
    from img2img.train.loop import resume_config

    return resume_config(out, {"train.steps": steps} if steps else {})


def baseline(args) -> dict:
    """The untranslated inputs scored as if they were translations: the bar a model must clear."""
    lay = layout(args.dataset, args.direction)
    name = args.name or f"identity-{args.dataset.name}-{args.size}px"
    out = args.root / name
    out.mkdir(parents=True, exist_ok=True)
    extractor = load_inception(args.inception, "cpu" if args.device == "auto" else args.device)
    scores = score(lambda x: x, lay, args, extractor, out / GRID)
    record = {"name": name, "method": "identity", "dataset": str(args.dataset), "direction": lay["direction"], "profile": args.profile,
              "image_size": args.size, "seed": None, "settings": {}, "budget": {}, "steps": 0, "train_seconds": 0.0,
              "cpu": cpu_name(), "scores": scores, "grid": GRID, "command": command_line(args),
              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (out / RECORD).write_text(json.dumps(record, indent=2))
    print(f"{name}: FID {scores['fid']:.1f}, KID {scores['kid']:.4f}" + (f", L1 {scores['l1']:.4f}" if "l1" in scores else ""))
    return record


def command_line(args) -> str:
    return "python bench/budget.py " + " ".join(shlex.quote(a) for a in args.argv)


def find_records(paths: list[Path]) -> list[dict]:
    """Records from record.json files, folders of run folders (bench/runs/budget) and folders of copied
    records (bench/results/*: one <run>.json each); other JSON in a folder is passed over."""
    records = []
    for p in paths:
        files = [p] if p.is_file() else sorted(p.glob(f"*/{RECORD}")) + sorted(p.glob("*.json"))
        for f in files:
            try:
                record = json.loads(f.read_text())
            except (OSError, json.JSONDecodeError):
                print(f"skipping unreadable {f}", file=sys.stderr)
                continue
            if p.is_file() or isinstance(record, dict) and "scores" in record and "method" in record:
                records.append(record)
    return records


def table(records: list[dict]) -> str:
    """A markdown table, sorted by dataset, size, then FID; one row per run with the command that made it."""
    cols = ["run", "method", "settings", "seed", "px", "budget", "steps", "train min", "FID", "KID", "L1", "PSNR", "SSIM", "command"]
    rows = []
    for r in sorted(records, key=lambda r: (r["dataset"], r["image_size"], r["scores"]["fid"])):
        s = r["scores"]
        budget = ", ".join(f"{v} {k}" for k, v in r.get("budget", {}).items()) or "-"
        settings = " ".join(f"{k.split('.')[-1]}={v}" for k, v in r.get("settings", {}).items()) or \
            ("untranslated inputs" if r["method"] == "identity" else "paper defaults")
        rows.append([r["name"], r["method"], settings, str(r.get("seed") if r.get("seed") is not None else "-"), str(r["image_size"]), budget,
                     str(r.get("steps", 0)), f"{r.get('train_seconds', 0) / 60:.1f}", f"{s['fid']:.1f}",
                     f"{s['kid']:.4f}" + (f"±{s.get('kid_std', 0):.4f}" if s.get("kid_std", 0) > 1e-9 else " (every subset is the whole set: no spread)"),
                     *(f"{s[k]:.4f}" if k in s else "-" for k in ("l1", "psnr", "ssim")), f"`{r.get('command', '')}`"])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _plain(value) -> str:
    """A setting's value as one spelling: 0 and 0.0, True and "true" compare equal."""
    text = str(value).lower()
    try:
        return repr(float(text))
    except ValueError:
        return text


def describe_settings(record: dict) -> str:
    """A run's settings with its recipe expanded and named again, so runs that asked for the same thing in
    different words (a recipe's name or its settings one by one) describe alike."""
    from img2img.recipes import RECIPES, recipe_settings

    if record["method"] == "identity":
        return "untranslated inputs"
    given = dict(record.get("settings", {}))
    recipe = given.pop("train.recipe", None)
    effective = {**(recipe_settings(recipe, record["method"]) if recipe else {}), **given}
    shown = lambda items: " ".join(f"{k.split('.')[-1]}={v}" for k, v in sorted(items))  # noqa: E731
    for name, r in RECIPES.items():
        if record["method"] in r.methods and all(_plain(effective.get(k)) == _plain(v) for k, v in r.settings.items()):
            rest = shown((k, v) for k, v in effective.items() if k not in r.settings)
            return f"recipe {name}" + (f" + {rest}" if rest else "")
    return shown(effective.items()) or "paper defaults"


def direction_of(record: dict) -> str:
    """Records before the field existed: from the command, else the layout's default."""
    if record.get("direction"):
        return record["direction"]
    if "--direction b2a" in record.get("command", ""):
        return "b2a"
    return "b2a" if "facades" in Path(record["dataset"]).name else "a2b"


FULL_BUDGET_SHARE = 0.8  # a minutes run that trained for less than this share of its budget is not an equal-budget row


def short_of_budget(record: dict) -> bool:
    minutes = record.get("budget", {}).get("minutes")
    return bool(minutes) and record.get("train_seconds", 0) < FULL_BUDGET_SHARE * minutes * 60


def setting_key(record: dict) -> tuple:
    """What makes two runs the same row of a comparison: data, direction, size, method, settings, seed."""
    return (Path(record["dataset"]).name, direction_of(record), record["image_size"], record["method"],
            describe_settings(record), record.get("seed"))


def read_grid(path: Path, seeds: list[int]) -> list[tuple[str, list[str]]]:
    """The runs a grid file asks for, as (name, `budget.py run` arguments).

    One run per line: a name, then the arguments of `budget.py run` without --root, --name and the budget
    (the grid command gives those). `let VAR ARGS...` defines $VAR for later lines; # starts a comment.
    A line without --seed stands for one run per seed, named NAME-sSEED."""
    defined: dict[str, str] = {}
    rows = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = shlex.split(line)
        if words[0] == "let":
            if len(words) < 2:
                raise UserError(f"{path}:{number}: `let` needs a name")
            defined[words[1]] = " ".join(shlex.quote(w) for w in words[2:])
            continue
        expanded = re.sub(r"\$(\w+)", lambda m: defined.get(m.group(1), m.group(0)), line)
        if "$" in expanded:
            raise UserError(f"{path}:{number}: undefined variable in {line!r}")
        name, *run_args = shlex.split(expanded)
        bad = {"--root", "--name", "--minutes", "--steps"} & set(run_args)
        if bad:
            raise UserError(f"{path}:{number}: {', '.join(sorted(bad))} come from the grid command, not the grid file")
        if "--seed" in run_args:
            rows.append((name, run_args))
        else:
            rows += [(f"{name}-s{seed}", [*run_args, "--seed", str(seed)]) for seed in seeds]
    names = [n for n, _ in rows]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"{path}: run names used twice: {', '.join(twice)}")
    return rows


def row_record(run_args: list[str], parser: argparse.ArgumentParser) -> dict:
    """A grid row as the fields of the record its run would write, so it can be matched to measured runs."""
    a = parser.parse_args(["run", *run_args, "--steps", "1"])
    sets = ([f"train.recipe={a.recipe}"] if a.recipe else []) + a.set
    return {"dataset": str(a.dataset), "direction": a.direction, "command": " ".join(run_args), "method": a.method,
            "image_size": a.size or PROFILES[a.profile]["size"], "settings": config_mod.parse_set(sets), "seed": a.seed}


def grid(args, parser: argparse.ArgumentParser) -> list[tuple[str, list[str]]]:
    """Print which runs of a grid file the records under --have already measure (at full budget); with
    --run, train and score the others, --jobs at a time, each with an equal share of the CPU threads."""
    rows = read_grid(args.spec, args.seeds)
    measured = {}
    for r in find_records(args.have):
        if r.get("method") != "identity" and not short_of_budget(r):
            measured.setdefault(setting_key(r), r)
    missing = []
    for name, run_args in rows:
        found = measured.get(setting_key(row_record(run_args, parser)))
        if found:
            print(f"measured  {name:<34} FID {found['scores']['fid']:6.1f}  ({found['name']})")
        else:
            missing.append((name, run_args))
            print(f"missing   {name}")
    print(f"{len(rows) - len(missing)} of {len(rows)} runs measured, {len(missing)} missing")
    if args.only:
        names = [n for n, _ in rows]
        unknown = [pat for pat in args.only if not fnmatch.filter(names, pat)]
        if unknown:
            raise UserError(f"--only {' '.join(unknown)}: no run of {args.spec} has such a name")
        chosen = {n for pat in args.only for n in fnmatch.filter(names, pat)}
        missing = [r for r in missing if r[0] in chosen]
    if not args.run or not missing:
        return missing
    args.root.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}

    def one(row):
        name, run_args = row
        cmd = [sys.executable, str(Path(__file__).resolve()), "run", *run_args, "--root", str(args.root), "--name", name,
               "--minutes", f"{args.minutes:g}", "--sample-every", "1000", "-q"]
        print(f"{time.strftime('%H:%M:%S')} start {name}", flush=True)
        with open(args.root / f"{name}.log", "w") as log:
            rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        print(f"{time.strftime('%H:%M:%S')} {'done ' if rc == 0 else f'FAILED (exit {rc}, see {args.root / name}.log)'} {name}",
              flush=True)
        return rc

    with ThreadPoolExecutor(args.jobs) as pool:
        failed = sum(rc != 0 for rc in pool.map(one, missing))
    if failed:
        raise UserError(f"{failed} of {len(missing)} runs failed")
    return missing


def summary(records: list[dict]) -> str:
    """One row per (dataset, direction, size, method, settings): each seed's FID, the means, and the gap to the
    untranslated inputs of the same test set (negative = better than doing nothing). Minutes runs that trained
    for less than 80% of their budget (a planner's misjudgement) are named below the table, not averaged in."""
    groups: dict[tuple, list[dict]] = {}
    short = [r for r in records if short_of_budget(r)]
    for r in records:
        if short_of_budget(r):
            continue
        groups.setdefault(setting_key(r)[:-1], []).append(r)  # seeds of one setting together
    untranslated = {k[:3]: rs[0]["scores"]["fid"] for k, rs in groups.items() if k[3] == "identity"}
    cols = ["data", "px", "method", "settings", "seeds", "FID per seed", "mean FID", "vs untranslated", "mean KID", "mean L1",
            "mean steps", "mean train min"]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    rows = []
    for key, rs in sorted(groups.items(), key=lambda kv: (kv[0][:3], mean([r["scores"]["fid"] for r in kv[1]]))):
        data, direction, px, method, settings = key
        rs = sorted(rs, key=lambda r: (r.get("seed") is None, r.get("seed") or 0))
        fids = [r["scores"]["fid"] for r in rs]
        base = untranslated.get(key[:3])
        l1 = [r["scores"]["l1"] for r in rs if "l1" in r["scores"]]
        rows.append([f"{data} {direction}", str(px), method, settings,
                     ", ".join(str(r.get("seed")) for r in rs) if method != "identity" else "-",
                     " / ".join(f"{f:.1f}" for f in fids), f"{mean(fids):.1f}",
                     f"{mean(fids) - base:+.1f}" if base is not None and method != "identity" else "-",
                     f"{mean([r['scores']['kid'] for r in rs]):.4f}", f"{mean(l1):.4f}" if l1 else "-",
                     f"{mean([r.get('steps', 0) for r in rs]):.0f}", f"{mean([r.get('train_seconds', 0) for r in rs]) / 60:.1f}"])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    if short:
        lines += ["", f"Left out, trained for under {FULL_BUDGET_SHARE:.0%} of their budget: " + ", ".join(
            f"{r['name']} ({r['train_seconds'] / 60:.1f} of {r['budget']['minutes']:g} min, FID {r['scores']['fid']:.1f})"
            for r in sorted(short, key=lambda r: r["name"]))]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    for cmd in ("run", "baseline"):
        q = sub.add_parser(cmd)
        q.add_argument("--dataset", type=Path, required=True, help="dataset folder (horse2zebra or facades layout)")
        q.add_argument("--profile", choices=list(PROFILES), default="cpu")
        q.add_argument("--size", type=int, default=None, help="image size (default: the profile's)")
        q.add_argument("--direction", choices=["a2b", "b2a"], default=None, help="default a2b; facades: b2a (labels -> photo)")
        q.add_argument("--root", type=Path, default=Path("bench/runs/budget"), help="where run folders go")
        q.add_argument("--name", default=None, help="run folder name (default: method-dataset-size-seed)")
        q.add_argument("--limit", type=int, default=0, help="score only the first N test images (0 = all)")
        q.add_argument("--inception", default=None, help="feature network file (default: the metrics extra's Inception)")
        q.add_argument("--device", default=None, help="default: the profile's")
        if cmd == "run":
            q.add_argument("--method", required=True)
            budget = q.add_mutually_exclusive_group(required=True)
            budget.add_argument("--minutes", type=float, help="training wall-clock budget")
            budget.add_argument("--steps", type=int, help="training steps budget")
            q.add_argument("--seed", type=int, default=0)
            q.add_argument("--recipe", default=None, help="a named recipe (img2img/recipes.py), as `img2img train --recipe`; "
                           "the same as --set train.recipe=NAME")
            q.add_argument("--set", action="append", default=[], help="any setting, e.g. train.diffaugment=color,translation")
            q.add_argument("--sample-every", type=int, default=200)
            q.add_argument("--save-every", type=int, default=500)
            q.add_argument("--quiet", "-q", action="store_true")
    t = sub.add_parser("table")
    t.add_argument("paths", nargs="+", type=Path, help="record.json files or folders of run folders")
    t.add_argument("--output", "-o", type=Path, default=None, help="also write the table (markdown) here")
    t.add_argument("--by-setting", action="store_true", help="one row per setting with each seed's FID and the means, "
                   "beside the untranslated inputs' (runs of the same settings and data grouped)")
    g = sub.add_parser("grid", help="which runs of a grid file are measured; --run trains and scores the missing ones")
    g.add_argument("spec", type=Path, help="grid file (bench/budget_grid.txt: one run per line)")
    g.add_argument("--have", nargs="*", type=Path, default=[], help="records measured so far (files or folders)")
    g.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="seeds of rows that name none")
    g.add_argument("--run", action="store_true", help="train and score the missing runs")
    g.add_argument("--only", nargs="+", default=None, metavar="PATTERN",
                   help="with --run, only the missing runs whose names match one of these shell patterns, e.g. 'cut-*-sn-*' "
                   "(to spend a session's hours on the rows that matter most)")
    g.add_argument("--jobs", type=int, default=1, help="runs at a time (each gets cpu_count/jobs threads)")
    g.add_argument("--minutes", type=float, default=15.0, help="each run's wall-clock budget")
    g.add_argument("--root", type=Path, default=Path("bench/runs/budget"), help="where run folders and their logs go")
    return p


def main(argv: list[str] | None = None) -> None:
    p = build_parser()
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "table":
            records = find_records(args.paths)
            text = summary(records) if args.by_setting else table(records)
            print(text)
            if args.output:
                args.output.write_text(text + "\n")
            return
        if args.command == "grid":
            if args.jobs < 1 or not args.minutes > 0:
                raise UserError("--jobs and --minutes must be positive")
            if not args.spec.is_file():
                raise UserError(f"grid file not found: {args.spec}")
            grid(args, p)
            return
        if args.command == "run" and args.recipe:
            args.set = [f"train.recipe={args.recipe}", *args.set]
        profile = PROFILES[args.profile]
        args.size = args.size or profile["size"]
        args.device = args.device or profile["device"]
        if args.command == "run" and args.minutes is not None and args.minutes <= 0 or \
                args.command == "run" and args.steps is not None and args.steps <= 0:
            raise UserError("the budget must be positive")
        (run if args.command == "run" else baseline)(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
