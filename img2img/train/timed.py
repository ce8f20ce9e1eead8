"""Training for a wall-clock budget (`img2img train ... --minutes M`).

Every method's learning-rate schedule is set by the run's total number of steps (constant, then a
linear decay to zero), so a budget of minutes has to become a number of steps before the decay starts.
One training run does it, with a DeadlinePlanner: after the first CALIBRATION_STEPS steps it plans the
total from their speed (the first steps are slow), then plans again every few seconds from the median
speed of the stretches timed since, as long as the learning rate is still constant under both plans. The
median, not the last stretch: a run whose final plan was made from one stretch slowed by another job
(4.8 instead of 7.6 steps/s) finished after 11.5 of its 15 minutes. The last plan is kept once the next one could come
after the decay has started, so the run is the run that was told that total from the start (with
instance noise annealed towards the planned end). The deadline itself still stops and saves the run
should the machine slow down during the decay.
"""

from __future__ import annotations

import dataclasses
import math
import os
import statistics
import time
from pathlib import Path

from rich.console import Console

from img2img.config import RunConfig
from img2img.errors import UserError
from img2img.train.loop import TrainResult, train

CALIBRATION_STEPS = 10
REPLAN_EVERY = (0.02, 0.5, 30.0)  # re-plan every 2% of the budget, but at least 0.5 s and at most 30 s apart
KEEP_BEFORE_DECAY = 0.9  # re-plan only while the next re-plan comes before 90% of the way to the decay's start
UNPLANNED_STEPS = 10**9  # the total before the first plan: far enough that every schedule is still constant


def with_steps(cfg: RunConfig, steps: int) -> RunConfig:
    """cfg with its length given as steps (epochs cleared)."""
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=steps, epochs=0))


def check_budget(seconds: float) -> None:
    """A budget is a finite number of seconds above 0 (the CLI checks --minutes with this before announcing the run)."""
    if not (seconds > 0 and math.isfinite(seconds)):
        raise UserError(f"--minutes must be a number more than 0, got {seconds / 60:g}")


class DeadlinePlanner:
    """The total steps that end a run at `deadline` (time.monotonic()), re-planned from the recent speed."""

    def __init__(self, deadline: float, budget_s: float, lr_policy: str, decay_start: float):
        self.deadline = deadline
        share, shortest, longest = REPLAN_EVERY
        self.every_s = min(max(share * budget_s, shortest), longest)
        self.decay_start = decay_start if lr_policy == "linear" else 1.0
        self.mark: tuple[int, float] | None = None
        self.total: int | None = None
        self.final = False
        self.rate = 0.0  # steps/s the last plan assumed
        self.rates: list[float] = []  # steps/s of each stretch after the timing steps

    def begin(self, step: int, now: float) -> None:
        self.mark = (step, now)

    def update(self, step: int, now: float) -> int | None:
        """A new total at this step, or None (not yet time to plan, or the plan is final)."""
        if self.final or self.mark is None:
            return None
        mark_step, mark_time = self.mark
        if self.total is None and step - mark_step < CALIBRATION_STEPS:
            return None
        if self.total is not None and now - mark_time < self.every_s:
            return None
        rate = (step - mark_step) / max(now - mark_time, 1e-9)
        if self.total is not None:  # the timing steps' speed only stands in until a stretch is timed
            self.rates.append(rate)
            rate = statistics.median(self.rates)
        self.total = step + max(1, int(rate * max(0.0, self.deadline - now)))
        self.rate = rate
        self.mark = (step, now)
        next_plan_at = step + rate * self.every_s
        self.final = next_plan_at >= KEEP_BEFORE_DECAY * self.decay_start * self.total
        return self.total


def train_for(cfg: RunConfig, out_dir: str | Path, seconds: float, *, resume: bool = False, progress: bool = True,
              console: Console | None = None) -> TrainResult:
    """Train (or continue) the run in out_dir for `seconds` of wall-clock time, its length planned to fit.

    cfg: the run's settings (for resume=True, as resume_config gives them); its steps/epochs are replaced
    by the plan. Resuming plans anew from the run's step (a finished run's schedule starts again).
    Returns the result with `total_steps` the final plan. Ctrl-C / SIGTERM stop it, saved, as in `train`.
    """
    check_budget(seconds)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # each process would time itself and plan a different length
        raise UserError("--minutes does not work under torchrun (the processes would plan different lengths); use --steps N")
    deadline = time.monotonic() + seconds
    planner = DeadlinePlanner(deadline, seconds, cfg.train.lr_policy, cfg.train.decay_start)
    return train(with_steps(cfg, UNPLANNED_STEPS), out_dir, resume=resume, progress=progress, console=console,
                 deadline=deadline, announce=False, planner=planner)
