"""Paired image metrics on tensors in [-1, 1]; reported on the [0, 1] scale (L1, PSNR, SSIM)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def l1_01(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean absolute error with pixels scaled to [0, 1]."""
    return float((x.float() - y.float()).abs().mean() / 2)


def psnr_01(x: torch.Tensor, y: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB with pixels scaled to [0, 1]."""
    mse = float(((x.float() - y.float()) / 2).pow(2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


def _gaussian_1d(size: int, sigma: float) -> torch.Tensor:
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_01(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> float:
    """Structural similarity (Wang et al. 2004) with pixels scaled to [0, 1].

    The paper's settings: an 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, data range 1.
    Local statistics use only windows that fit inside the image ("valid", as the authors' code),
    each channel is scored on its own and the SSIM map is averaged over pixels, channels and images.
    Images smaller than the window use the largest odd window that fits.
    x, y: (C, H, W) or (N, C, H, W) in [-1, 1].
    """
    if x.shape != y.shape:
        raise ValueError(f"ssim: shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    x = (x.double() + 1) / 2
    y = (y.double() + 1) / 2
    if x.dim() == 3:
        x, y = x[None], y[None]
    c = x.shape[1]
    size = min(window, x.shape[-2], x.shape[-1])
    size -= 1 - size % 2  # keep it odd so the window has a centre
    g = _gaussian_1d(size, sigma).to(x.device)
    gh, gw = g.view(1, 1, size, 1).repeat(c, 1, 1, 1), g.view(1, 1, 1, size).repeat(c, 1, 1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:  # separable Gaussian, per channel
        return F.conv2d(F.conv2d(t, gh, groups=c), gw, groups=c)

    c1, c2 = 0.01**2, 0.03**2
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())
