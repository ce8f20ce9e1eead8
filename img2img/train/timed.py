"""Training for a wall-clock budget (`img2img train ... --minutes M`).

Every method's learning-rate schedule is set by the run's total number of steps (constant, then a
linear decay to zero), so a budget of minutes has to become a number of steps before the decay starts.
The run is timed on its first CALIBRATION_STEPS steps and planned from that speed. Those steps are slow
(images are decoded when first used), so the plan is made again at REPLAN_FRACTION of its total, from
the speed of that stretch, before the decay starts (replan_fraction). Each stage resumes the same run
exactly, so the result is the run that was told the final number of steps from the start
(tests/test_timed.py). The last stage also stops at the deadline itself (saved), should
the machine slow down. Measured on a 2-core CPU: a 10-step calibration alone planned 2,777 steps for a
run that then took 6.8 of its 15 minutes (bench/results/2026-11-30-cpu-budget2/README.md).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

from rich.console import Console

from img2img.config import RunConfig
from img2img.errors import UserError
from img2img.train.loop import TrainResult, train

CALIBRATION_STEPS = 10
REPLAN_FRACTION = 0.4
UNPLANNED_STEPS = 10**9  # the total the timing steps run under: far enough that every schedule is still constant


def with_steps(cfg: RunConfig, steps: int) -> RunConfig:
    """cfg with its length given as steps (epochs cleared)."""
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=steps, epochs=0))


def replan_fraction(cfg: RunConfig) -> float:
    """Where to re-plan, as a fraction of the first plan's total: while the learning rate is still constant
    (80% of the way to where the decay starts, REPLAN_FRACTION at most); 0 = not at all (it decays at once)."""
    if cfg.train.lr_policy == "constant":
        return REPLAN_FRACTION
    fraction = min(REPLAN_FRACTION, 0.8 * cfg.train.decay_start)
    return fraction if fraction >= 0.05 else 0.0


def train_for(cfg: RunConfig, out_dir: str | Path, seconds: float, *, resume: bool = False, progress: bool = True,
              console: Console | None = None) -> TrainResult:
    """Train (or continue) the run in out_dir for `seconds` of wall-clock time, its length planned to fit.

    cfg: the run's settings (for resume=True, as resume_config gives them); its steps/epochs are replaced.
    Returns the last stage's result with `seconds` the training time of all stages and `total_steps`
    the final plan. Ctrl-C / SIGTERM in any stage stops there, saved, as in `train`.
    """
    if not (seconds > 0 and math.isfinite(seconds)):
        raise UserError(f"--minutes must be a number more than 0, got {seconds / 60:g}")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # each process would time itself and plan a different length
        raise UserError("--minutes does not work under torchrun (the processes would plan different lengths); use --steps N")
    console = console or Console(stderr=True)
    out = Path(out_dir)
    began = time.monotonic()
    deadline = began + seconds
    spent = 0.0
    resumed = resume

    def stage(total: int, stop_after: int, show: bool) -> tuple[TrainResult, float]:
        nonlocal spent, resumed
        started = time.monotonic()
        result = train(with_steps(cfg, total), out, resume=resumed, stop_after=stop_after, progress=show, console=console,
                       deadline=deadline, announce=False)
        resumed = True
        spent += result.seconds
        return result, time.monotonic() - started - result.seconds  # (result, set-up time of the stage)

    def finished(result: TrainResult) -> TrainResult:
        return dataclasses.replace(result, seconds=spent)

    console.print(f"[dim]timing {CALIBRATION_STEPS} steps to fit the run to {seconds / 60:g} minutes...[/]")
    first, setup = stage(UNPLANNED_STEPS, CALIBRATION_STEPS, show=False)
    if first.interrupted or first.out_of_time:
        return finished(first)
    rate = CALIBRATION_STEPS / max(first.seconds, 1e-9)
    planned = first.step + max(1, int(rate * (deadline - time.monotonic() - 2 * setup)))  # two stages to set up
    replan_at = int(replan_fraction(cfg) * planned)
    if replan_at <= first.step:  # the decay starts at once, or this resumed run is past where it would
        console.print(f"[dim]{rate:.2f} steps/s: planned {planned:,} steps in all[/]")
        last, _ = stage(planned, 0, show=progress)
        return finished(last)
    console.print(f"[dim]{rate:.2f} steps/s: planned {planned:,} steps in all; re-planned at step {replan_at:,}[/]")
    second, setup = stage(planned, replan_at - first.step, show=progress)
    if second.interrupted or second.out_of_time or second.step >= second.total_steps:
        return finished(second)
    rate = (second.step - first.step) / max(second.seconds, 1e-9)
    left = deadline - time.monotonic() - setup  # the last stage sets up again before its first step
    total = second.step + max(1, int(rate * left))
    console.print(f"[dim]{rate:.2f} steps/s: {total:,} steps in all[/]")
    last, _ = stage(total, 0, show=progress)
    return finished(last)
