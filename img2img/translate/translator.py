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
from img2img.device import amp_dtype, compile_in_place, resolve_device, resolve_precision
from img2img.errors import UserError
from img2img.modelfile import ModelFile, load_model
from img2img.nets import generator_stride
from img2img.nets.layers import for_fast_inference

MIN_INPUT_SIDE = 5  # a ResNet generator's bottleneck reflection padding needs inputs of 5 px or more


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


class InferenceGenerator:
    """A generator in the fastest safe form for a precision: called on fp32 NCHW input, returns fp32.

    bf16 has fp32's range, so the whole net holds bf16 weights and activations: no autocast casts of
    the weights at every call (2.9x faster than autocast on a 2-core AMX CPU, with the same
    differences from fp32 there). fp16 stays under autocast, which keeps overflow-prone ops in fp32.
    Channels-last (channels_last=False: NCHW, for comparing the two) lets oneDNN / cuDNN pick their fast
    convolution kernels. compile=True wraps the net in torch.compile; dynamo falls back to eager where
    it cannot compile.
    """

    def __init__(self, net: torch.nn.Module, precision: str, device: torch.device, compile: bool = False,
                 channels_last: bool = True):
        self.device = device
        self.weight_dtype = torch.bfloat16 if precision == "bf16" else None
        self.autocast_dtype = amp_dtype(precision) if self.weight_dtype is None else None
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net = for_fast_inference(net.to(device), self.weight_dtype, channels_last)
        if compile:
            compile_in_place([self.net])

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        x = x.to(device=self.device, dtype=self.weight_dtype, memory_format=self.memory_format)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            y = self.net(x, cond) if cond is not None else self.net(x)
        return y.float()


class Translator:
    """model(x) for x in [-1, 1], shape (B, C, H, W) with any H, W; the output has the same shape."""

    def __init__(self, model: ModelFile | str | Path, direction: str | None = None, device: str = "auto",
                 precision: str = "auto", compile: bool = False, test_dropout: bool | None = None,
                 tile: int | None = None):
        """test_dropout: None as the model file says (pix2pix: on); False/True override it.
        tile: None tiles only images that would not fit in memory; 0 never; N tiles of N pixels."""
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
        arch = self.model.data["generators"][entry["generator"]]["arch"]
        self.generator = InferenceGenerator(self.model.generator(entry["generator"], self.device, test_dropout), self.precision,
                                            self.device, compile=compile)
        self.stride = generator_stride(arch["name"])
        self.channels = arch["in_channels"]  # inputs are converted to this (L or RGB) ...
        self.out_channels = arch["out_channels"]  # ... and outputs come out with this (1: saved as grayscale 'L')
        self.ngf = arch["ngf"]
        cond = entry.get("cond")
        self.cond = torch.tensor(cond, dtype=torch.float32, device=self.device)[None] if cond is not None else None
        self.tile = tile  # None: tile only images that would not fit in memory; 0: never; N: tiles of N pixels

    def tile_size(self, height: int, width: int) -> int:
        """The tile side for an image of this size (0: whole)."""
        from img2img.translate.tiles import auto_tile, memory_budget

        if self.tile is not None:
            return self.tile if self.tile and max(height, width) > self.tile else 0
        return auto_tile(height, width, self.ngf, self.element_size, memory_budget(self.device), self.stride)

    def images_at_once(self, height: int, width: int) -> int:
        """How many images of this size one generator call may take within the memory budget."""
        from img2img.translate.tiles import memory_budget, peak_bytes

        return max(1, memory_budget(self.device) // max(1, peak_bytes(height, width, self.ngf, self.element_size)))

    @property
    def element_size(self) -> int:
        return 2 if self.precision in ("bf16", "fp16") else 4

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if min(x.shape[-2:]) < MIN_INPUT_SIDE:
            raise UserError(f"a {x.shape[-1]}x{x.shape[-2]} px image is too small to translate "
                            f"(at least {MIN_INPUT_SIDE} px per side)")
        x = x.to(self.device)
        padded, pads = pad_to_multiple(x, self.stride)
        cond = self.condition(x)
        tile = self.tile_size(*padded.shape[-2:])
        if not tile:
            chunk = self.images_at_once(*padded.shape[-2:]) if self.tile is None else padded.shape[0]
            if chunk >= padded.shape[0]:
                return crop_padding(self.generator(padded, cond), pads)
            parts = [self.generator(padded[i:i + chunk], cond[i:i + chunk] if cond is not None else None)
                     for i in range(0, padded.shape[0], chunk)]  # a batch that would not fit, a few at a time
            return crop_padding(torch.cat(parts), pads)
        from img2img.translate.tiles import PEAK_ELEMENTS_PER_PIXEL_AND_FILTER, memory_budget, translate_tiled

        stats_pixels = memory_budget(self.device) // (PEAK_ELEMENTS_PER_PIXEL_AND_FILTER * self.ngf * self.element_size)
        run = lambda part, i: self.generator(part, cond[i:i + 1] if cond is not None else None)  # noqa: E731
        y = translate_tiled(run, self.generator.net, padded, tile=tile, stride=self.stride,
                            stats_budget_pixels=stats_pixels)
        return crop_padding(y, pads)

    def condition(self, x: torch.Tensor) -> torch.Tensor | None:
        """The generator's condition for a batch x (StarGAN's target label), or None; subclasses may read x."""
        return self.cond.expand(x.shape[0], -1) if self.cond is not None else None

    def translate_image(self, img: Image.Image) -> Image.Image:
        return tensor_to_pil(self(pil_to_tensor(to_mode(img, self.channels))[None])[0])
