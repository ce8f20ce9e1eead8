"""Device and precision choices shared by training and translation."""

from __future__ import annotations

import torch

from img2img.errors import UserError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


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


def _cpu_has_fast_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: torch.device, inference: bool = False) -> str:
    """'auto' becomes the fastest precision that is safe on the device.

    GPUs: bf16 where supported (no loss scaling needed), else fp16 (with a GradScaler in training).
    CPUs: for inference, bf16 where the CPU has native bf16 (AVX512-BF16/AMX): 2.2x over fp32 on
    a 2-core AMX Xeon (bench/translate_speed.py). For training fp32 for now: --precision bf16 gave
    2.2x for CycleGAN at 256 px there (bench/train_speed.py) but no gain for pix2pix at 128 px, and
    the CPU default has not yet been re-validated against the whole test suite in bf16.
    """
    if precision != "auto":
        if precision not in PRECISIONS:
            raise UserError(f"unknown precision {precision!r}; choose from auto, {', '.join(PRECISIONS)}")
        if precision == "fp16" and device.type == "cpu":
            raise UserError("--precision fp16 needs a GPU; on a CPU use bf16 or fp32")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if inference and _cpu_has_fast_bf16() else "fp32"
