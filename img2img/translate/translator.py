"""Translator: a model file turned into one callable on image tensors.

Generators are fully convolutional, so any image size works once its sides are multiples of the
generator's stride: inputs are padded (reflect where possible) up to that multiple and the output
is cropped back, so the output always has the input's exact size and nothing is resized.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

from img2img.data.io import pil_to_tensor, tensor_to_pil, to_mode
from img2img.device import amp_dtype, resolve_device, resolve_precision
from img2img.errors import UserError
from img2img.modelfile import ModelFile, load_model
from img2img.nets import generator_stride


def pad_to_multiple(x: torch.Tensor, stride: int) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Pad H and W up to multiples of stride, split evenly on both sides; returns (padded, (l, r, t, b))."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % stride, (-w) % stride
    pads = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    if not any(pads):
        return x, pads
    mode = "reflect" if max(pads[0], pads[1]) < w and max(pads[2], pads[3]) < h else "replicate"
    return F.pad(x, pads, mode=mode), pads


def crop_padding(y: torch.Tensor, pads: tuple[int, int, int, int]) -> torch.Tensor:
    l, r, t, b = pads
    return y[..., t : y.shape[-2] - b, l : y.shape[-1] - r]


class Translator:
    """model(x) for x in [-1, 1], shape (B, C, H, W) with any H, W; the output has the same shape."""

    def __init__(self, model: ModelFile | str | Path, direction: str | None = None, device: str = "auto",
                 precision: str = "auto"):
        self.model = model if isinstance(model, ModelFile) else load_model(model)
        directions = self.model.directions
        domains = self.model.data.get("domains") or []
        if direction is None:
            if domains:
                raise UserError(f"this {self.model.method} model translates into a domain: give --to DOMAIN "
                                f"(one of {', '.join(domains)}) or --to all")
            direction = "a2b" if "a2b" in directions else next(iter(directions))
        if direction not in directions:
            if domains:
                raise UserError(f"this {self.model.method} model has domains, not directions: use --to DOMAIN "
                                f"(one of {', '.join(domains)}) or --to all instead of --direction {direction}")
            if len(directions) == 1:
                only = next(iter(directions))
                raise UserError(f"this {self.model.method} model was trained one way ({only} only) and cannot translate "
                                f"{direction}; use --direction {only} or leave --direction out")
            raise UserError(f"this {self.model.method} model cannot translate {direction}; it has: {', '.join(directions)}")
        entry = directions[direction]
        self.direction = direction
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device, inference=True)
        self.amp_dtype = amp_dtype(self.precision)
        arch = self.model.data["generators"][entry["generator"]]["arch"]
        # channels-last lets oneDNN / cuDNN pick their fast bf16/fp16 convolution kernels
        self.generator = self.model.generator(entry["generator"], self.device).to(memory_format=torch.channels_last)
        self.stride = generator_stride(arch["name"])
        self.channels = arch["in_channels"]
        cond = entry.get("cond")
        self.cond = torch.tensor(cond, dtype=torch.float32, device=self.device)[None] if cond is not None else None

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device)
        padded, pads = pad_to_multiple(x, self.stride)
        padded = padded.contiguous(memory_format=torch.channels_last)
        cond = self.condition(x)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            y = self.generator(padded, cond) if cond is not None else self.generator(padded)
        return crop_padding(y.float(), pads)

    def condition(self, x: torch.Tensor) -> torch.Tensor | None:
        """The generator's condition for a batch x (StarGAN's target label), or None; subclasses may read x."""
        return self.cond.expand(x.shape[0], -1) if self.cond is not None else None

    def translate_image(self, img: Image.Image) -> Image.Image:
        return tensor_to_pil(self(pil_to_tensor(to_mode(img, self.channels))[None])[0])
