"""The quality sprint of bench/gpu.sh: train one unpaired method for a fixed wall-clock budget, then
translate the test inputs, to be scored later on a machine that has the Inception network:

    img2img eval --real ../shared/data/horse2zebra/testB --fake sprint/<method>/testA_fake

    python bench/gpu_sprint.py --method cyclegan --a trainA --b trainB --test testA --work DIR --seconds 150

A budget in seconds, not steps, and still a whole learning-rate schedule: a short calibration run
(constant learning rate, as the paper's first half is) measures this machine's steps/s with whatever
else shares the GPU; the run then resumes with its total set to the steps that fit the rest of the
budget, so the linear decay to zero ends when the time does. A SIGTERM at the deadline is the guard:
the loop saves and stops cleanly if the estimate was too high. Writes DIR/sprint.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from speed_common import log_rate  # noqa: E402

from img2img import config as config_mod
from img2img.cli import app
from img2img.methods import get_method
from img2img.train import resume_config, train

CALIBRATION_PLACEHOLDER_STEPS = 10**7  # the calibration's total: its lr stays constant (decay starts half-way)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", required=True)
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--test", required=True, help="folder of domain-A test images to translate")
    p.add_argument("--work", required=True, help="run directory parent; the run goes to WORK/run")
    p.add_argument("--seconds", type=float, required=True, help="wall-clock budget for training and translation")
    p.add_argument("--dry", action="store_true", help="CPU, 32 px, 8-filter nets")
    p.add_argument("--calibration-steps", type=int, default=0, help="default: 60 (dry: 4)")
    args = p.parse_args()
    began = time.monotonic()
    translate_reserve = 15.0 if args.dry else 25.0
    train_deadline = began + args.seconds - translate_reserve
    work = Path(args.work)
    run = work / "run"
    cuda = torch.cuda.is_available() and not args.dry
    calibration = args.calibration_steps or (4 if args.dry else 60)
    overrides = {"data.a": args.a, "data.b": args.b, "train.batch_size": 1, "train.steps": CALIBRATION_PLACEHOLDER_STEPS,
                 "train.log_every": 2 if args.dry else 10, "train.sample_every": 0, "train.save_every": 0,
                 "train.sample_minutes": 0, "train.save_minutes": 0,
                 "train.device": "cuda" if cuda else "cpu"}
    if args.dry:
        overrides.update({"data.image_size": 32, "net.ngf": 8, "net.ndf": 8})
    if cuda:
        overrides["train.channels_last"] = True
    cfg = config_mod.build_config(get_method(args.method), None, overrides)
    record = {"method": args.method, "image_size": cfg.data.image_size, "batch_size": 1, "device": cfg.train.device,
              "train_a": args.a, "train_b": args.b, "test": args.test}

    # One guard for both phases: SIGTERM at the deadline makes the loop save and stop (its own handler);
    # between the phases ours only notes it, so the run goes straight on to translating.
    deadline_passed, trained = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: deadline_passed.set())

    def guard() -> None:  # repeated, in case the first SIGTERM lands before the loop listens for it
        if not trained.wait(max(0.0, train_deadline - time.monotonic())):
            while not trained.is_set():
                os.kill(os.getpid(), signal.SIGTERM)
                trained.wait(5.0)

    threading.Thread(target=guard, daemon=True).start()

    # 1. calibration: steps/s after the first log window (start-up, cudnn autotuning, compilation)
    t0 = time.monotonic()
    result = train(cfg, run, stop_after=calibration, progress=False)
    rate = log_rate(run / "log.jsonl", skip_windows=1) if result.step > 1 else result.step / (time.monotonic() - t0)
    record.update({"calibration_steps": result.step, "calibration_steps_per_s": rate})

    # 2. the run itself, resumed with its total set to the steps that fit the time left
    if not (result.interrupted or deadline_passed.is_set()):
        left = train_deadline - time.monotonic()
        total = result.step + max(1, int(rate * left * 0.9))
        record["planned_steps"] = total
        print(f"{args.method}: {rate:.2f} steps/s in calibration; {left:.0f} s left -> {total} steps in all", flush=True)
        result = train(resume_config(run, {"train.steps": total}), run, resume=True, progress=False)
    trained.set()
    record.update({"steps": result.step, "stopped_at_deadline": result.interrupted or deadline_passed.is_set(),
                   "train_minutes": round((time.monotonic() - began) / 60, 2)})

    # 3. translate the test inputs at their own size, in fp32 like `img2img eval` (comparable scores)
    fake = work / "testA_fake"
    code = app(["translate", str(run / "model.pt"), args.test, "-o", str(fake), "--precision", "fp32",
                "--batch-size", "16", "--device", "cuda" if cuda else "cpu", "-q"], standalone_mode=False)
    record.update({"translate_exit": code or 0, "translated": len(list(fake.glob("*"))) if fake.is_dir() else 0,
                   "seconds": round(time.monotonic() - began, 1)})
    (work / "sprint.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record), flush=True)
    sys.exit(0 if record["translated"] else 1)


if __name__ == "__main__":
    main()
