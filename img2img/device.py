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


# CPU training switches to bf16 above this much generator work per step (GFLOP of the generator's
# forward on one batch; bf16 costs casts that only pay off on big convolutions). Measured on a 2-core
# AMX Xeon, fp32 step time / bf16 step time: unet_64 at 64 px 0.74 GFLOP 0.80x, unet_128 3.0 GFLOP
# 0.92x, pix2pix 64 px batch 8 5.9 GFLOP 1.19x, resnet_9 at 64 px 6.2 GFLOP 1.62x, unet_256 12.1 GFLOP
# 1.38x, pix2pix 128 px batch 4 12.0 GFLOP 1.23x, resnet_9 at 128 px 24.8 GFLOP 2.42x, resnet_9 at
# 256 px 99 GFLOP 2.28x (CycleGAN), the tiny nets of the tests 0.03 GFLOP 0.65x.
CPU_BF16_MIN_STEP_GFLOP = 5.0


def resolve_precision(precision: str, device: torch.device, inference: bool = False,
                      step_gflop: float | None = None) -> str:
    """'auto' becomes the fastest precision that is safe on the device.

    GPUs: bf16 where supported (no loss scaling needed), else fp16 (with a GradScaler in training).
    CPUs with native bf16 (AVX512-BF16/AMX): bf16 for inference (bench/translate_speed.py: over 4x
    fp32 on a 2-core AMX Xeon, bf16 weights), and for training when the generator's work per step
    (step_gflop) is at least CPU_BF16_MIN_STEP_GFLOP; fp32 otherwise and on other CPUs.
    """
    if precision != "auto":
        if precision not in PRECISIONS:
            raise UserError(f"unknown precision {precision!r}; choose from auto, {', '.join(PRECISIONS)}")
        if precision == "fp16" and device.type == "cpu":
            raise UserError("--precision fp16 needs a GPU; on a CPU use bf16 or fp32")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if not _cpu_has_fast_bf16():
        return "fp32"
    if inference:
        return "bf16"
    return "bf16" if step_gflop is not None and step_gflop >= CPU_BF16_MIN_STEP_GFLOP else "fp32"


def compile_in_place(nets, mode: str | None = None) -> None:
    """torch.compile each net in place (state_dict keys stay plain); where dynamo cannot compile a
    piece it falls back to eager instead of failing the run. mode: torch.compile's (e.g. "reduce-overhead":
    CUDA graphs, for nets whose many small kernels leave the GPU waiting on launches)."""
    import logging

    import torch._dynamo as dynamo

    dynamo.config.suppress_errors = True
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "no CUDA runtime" on CPU hosts
    for net in nets:
        net.compile(mode=mode)
