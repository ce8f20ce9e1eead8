"""Learning-rate schedules, per step: the papers' "constant for N epochs, then linear to 0 over N"."""

from __future__ import annotations

from typing import Callable


def lr_factor(policy: str, total_steps: int, decay_start: float) -> Callable[[int], float]:
    """Multiplier of the base lr at a step (0-based); linear reaches 0 after the last step."""
    if policy == "constant":
        return lambda step: 1.0
    start = decay_start * total_steps
    span = max(total_steps - start, 1e-9)

    def linear(step: int) -> float:
        return 1.0 if step < start else max(0.0, 1.0 - (step + 1 - start) / span)

    return linear
