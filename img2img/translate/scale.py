"""--size N: translate at a reduced short side and scale the result back to the input's size.

The generators are fully convolutional, so the native resolution is the default; a smaller
processing size trades detail for speed (the cost grows with the pixel count).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from img2img.errors import UserError


MIN_SIZE, MAX_SIZE = 8, 8192  # below 8 px the generators' padding breaks down; 8192 is far above any training size


def processing_size(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    """(h, w) with the short side equal to short_side and the aspect ratio kept; native when None."""
    if short_side is None:
        return height, width
    if not MIN_SIZE <= short_side <= MAX_SIZE:
        raise UserError(f"--size must be between {MIN_SIZE} and {MAX_SIZE} pixels (the short side to translate at), got {short_side}")
    scale = short_side / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of (N, C, H, W); antialiased when shrinking so fine texture does not alias."""
    if tuple(x.shape[-2:]) == tuple(hw):
        return x
    shrink = hw[0] < x.shape[-2] or hw[1] < x.shape[-1]
    return F.interpolate(x, size=hw, mode="bilinear", align_corners=False, antialias=shrink)


class Rescaled:
    """A translator that works at short side `size` and answers at the input's size.

    Wraps any callable on (N, C, H, W) tensors that has .channels and .device, e.g. a Translator,
    so image folders get the same --size behaviour as videos.
    """

    def __init__(self, translator, size: int | None):
        self.translator = translator
        self.size = size
        self.channels = translator.channels
        self.device = getattr(translator, "device", "cpu")
        self.direction = getattr(translator, "direction", None)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        hw = tuple(x.shape[-2:])
        proc = processing_size(hw[0], hw[1], self.size)
        if proc == hw:
            return self.translator(x)
        x = resize(x.to(self.device), proc)
        return resize(self.translator(x), hw)
