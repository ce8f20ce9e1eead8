"""Device and precision choices shared by training and translation."""

from __future__ import annotations

import torch

from img2img.errors import UserError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16}


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:<index>") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {name}: no CUDA GPU is available here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) here")
    elif device.type != "cpu":
        raise UserError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:<index>")
    return device


def amp_dtype(precision: str) -> torch.dtype | None:
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    return PRECISIONS[precision]
