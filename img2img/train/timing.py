"""Honest time for long runs: step-time measurement, the projected length of a run, ETA in days, and
events (previews, checkpoints) scheduled by elapsed time so that every machine gets them at a human pace."""

from __future__ import annotations

import time

from rich.progress import ProgressColumn
from rich.text import Text

LONG_RUN_S = 24 * 3600  # beyond this the projection line also says how to make the run shorter


def human_duration(seconds: float) -> str:
    """45 s, 12 min, 3 h 20 min, 2.5 days, 74 days."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        h, m = divmod(round(seconds / 60), 60)
        return f"{h} h {m} min" if m else f"{h} h"
    days = seconds / 86400
    return f"{days:.1f} days" if days < 10 else f"{days:,.0f} days"


def clock(seconds: float) -> str:
    """h:mm:ss under a day, then '3d 04h'."""
    seconds = max(0, int(seconds))
    if seconds >= 86400:
        d, rest = divmod(seconds, 86400)
        return f"{d}d {rest // 3600:02d}h"
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


class EtaColumn(ProgressColumn):
    """The trainer's own remaining-time estimate (task field 'eta', seconds), shown at any speed; days when long."""

    def render(self, task) -> Text:
        eta = task.fields.get("eta")
        return Text("eta " + ("-:--:--" if eta is None else clock(eta)), style="progress.remaining")


class StepTimer:
    """Seconds per step, leaving out the first step of the session (warm-up, compilation, cache fills)."""

    def __init__(self, start_step: int):
        self.start_step = start_step
        self.began = time.perf_counter()
        self.first_done: float | None = None
        self.first_step_s = 0.0
        self.recent: float | None = None  # exponential average, for the ETA
        self._last = self.began

    def tick(self, step: int) -> None:
        now = time.perf_counter()
        dt, self._last = now - self._last, now
        if self.first_done is None:
            self.first_done, self.first_step_s = now, dt
            return
        self.recent = dt if self.recent is None else 0.9 * self.recent + 0.1 * dt

    def seconds_per_step(self, step: int) -> float | None:
        """Mean over the steps after the first; the first step alone if it is all there is."""
        done = step - self.start_step
        if self.first_done is None:
            return None
        if done <= 1:
            return self.first_step_s
        return (self._last - self.first_done) / (done - 1)

    def eta(self, step: int, end: int) -> float | None:
        rate = self.recent if self.recent is not None else self.seconds_per_step(step)
        return None if rate is None else rate * (end - step)

    def projection_due(self, step: int) -> bool:
        """After 3 timed steps, or after one step that already took over a minute, or 30 s of timed steps."""
        done = step - self.start_step
        if self.first_done is None:
            return False
        return done >= 4 or self.first_step_s > 60 or (done >= 2 and self._last - self.first_done > 30)


def projection_message(sec_per_step: float, remaining_steps: int, total_steps: int, device: str, precision: str) -> tuple[str, bool]:
    """(the line, whether the run is long)."""
    total_s = sec_per_step * remaining_steps
    what = f"{remaining_steps:,} steps" + (f" (of {total_steps:,})" if remaining_steps != total_steps else "")
    line = f"projected time: {human_duration(total_s)} for {what} at {sec_per_step:.3g} s/step on {device} ({precision})"
    return line, total_s > LONG_RUN_S


WAYS_OUT = ("that is long; ways to shorten it: a GPU (--device cuda), --image-size 128 (about 4x less work per step), "
            "fewer --epochs, or --steps N")


class ElapsedSchedule:
    """Due first after first_s seconds, then every every_s seconds; never when every_s is 0."""

    def __init__(self, every_s: float, first_s: float):
        self.every_s, self.next_at = every_s, time.perf_counter() + min(first_s, every_s)

    def due(self) -> bool:
        return bool(self.every_s) and time.perf_counter() >= self.next_at

    def done(self) -> None:
        self.next_at = time.perf_counter() + self.every_s
