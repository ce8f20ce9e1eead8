"""Paired image metrics on tensors in [-1, 1]; reported on the [0, 1] scale."""

from __future__ import annotations

import math

import torch


def l1_01(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean absolute error with pixels scaled to [0, 1]."""
    return float((x.float() - y.float()).abs().mean() / 2)


def psnr_01(x: torch.Tensor, y: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB with pixels scaled to [0, 1]."""
    mse = float(((x.float() - y.float()) / 2).pow(2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)
