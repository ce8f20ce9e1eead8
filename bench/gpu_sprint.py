"""The quality sprint of bench/gpu.sh: train one unpaired method for a fixed wall-clock budget, then
translate the test inputs, to be scored later on a machine that has the Inception network:

    img2img eval --real ../shared/data/horse2zebra/testB --fake sprint/<name>/testA_fake

    python bench/gpu_sprint.py --method cyclegan [--recipe quick] --a trainA --b trainB --test testA --work DIR --seconds 150

A budget in seconds, not steps, and still a whole learning-rate schedule: img2img.train.timed (what
`img2img train --minutes` uses) times the first steps with whatever else shares the GPU, plans the run's
length so the linear decay to zero ends when the time does, re-plans it from the recent speed until the
decay starts, and stops at the deadline should the estimate be too high. A fixed reserve is kept for translating. Writes DIR/sprint.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from img2img import config as config_mod
from img2img.cli import app
from img2img.methods import get_method
from img2img.train import train_for
from img2img.train.timed import CALIBRATION_STEPS


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", required=True)
    p.add_argument("--recipe", default=None, help="a named recipe (img2img/recipes.py) over the paper defaults")
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--test", required=True, help="folder of domain-A test images to translate")
    p.add_argument("--work", required=True, help="run directory parent; the run goes to WORK/run")
    p.add_argument("--seconds", type=float, required=True, help="wall-clock budget for training and translation")
    p.add_argument("--dry", action="store_true", help="CPU, 32 px, 8-filter nets")
    args = p.parse_args()
    began = time.monotonic()
    translate_reserve = 15.0 if args.dry else 25.0
    train_deadline = began + args.seconds - translate_reserve
    work = Path(args.work)
    run = work / "run"
    cuda = torch.cuda.is_available() and not args.dry
    overrides = {"data.a": args.a, "data.b": args.b, "train.batch_size": 1,
                 "train.log_every": 2 if args.dry else 10, "train.sample_every": 0, "train.save_every": 0,
                 "train.sample_minutes": 0, "train.save_minutes": 0,
                 "train.device": "cuda" if cuda else "cpu"}
    if args.recipe:
        overrides["train.recipe"] = args.recipe
    if args.dry:
        overrides.update({"data.image_size": 32, "net.ngf": 8, "net.ndf": 8})
    cfg = config_mod.build_config(get_method(args.method), None, overrides)
    record = {"method": args.method, "recipe": args.recipe, "image_size": cfg.data.image_size, "batch_size": 1,
              "device": cfg.train.device, "train_a": args.a, "train_b": args.b, "test": args.test}

    # 1-2. train for the time left before the translation reserve, the length planned to fit it
    result = train_for(cfg, run, train_deadline - time.monotonic(), progress=False)
    record.update({"calibration_steps": CALIBRATION_STEPS, "planned_steps": result.total_steps, "steps": result.step,
                   "stopped_at_deadline": result.out_of_time or result.interrupted,
                   "train_minutes": round((time.monotonic() - began) / 60, 2)})
    print(f"{args.method}: {result.step} of {result.total_steps} planned steps", flush=True)

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
