"""The shared backbone: generators and discriminators built from plain, serialisable arch dicts.

An arch dict (``{"name": "resnet_9", "in_channels": 3, ...}``) is what the model file stores, so
the same function rebuilds the network at translate time with no extra flags.
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from img2img.errors import UserError
from img2img.nets.layers import NORMS, init_weights
from img2img.nets.patchgan import PatchDiscriminator
from img2img.nets.resnet import ResnetGenerator
from img2img.nets.unet import UnetGenerator

MAX_RESNET_BLOCKS, MAX_UNET_SIZE = 64, 4096  # sane depths: far beyond the papers' resnet_9 and unet_256
GENERATOR_FORMS = "resnet_<blocks> (e.g. resnet_6, resnet_9) or unet_<size> (e.g. unet_128, unet_256; size a power of 2)"


def resolve_generator_name(name: str, image_size: int) -> str:
    """'unet' means the U-Net whose bottleneck is 1x1 at this image size (unet_256 at 256 px)."""
    if name == "unet":
        n_down = min(8, int(math.log2(image_size & -image_size)))  # the largest power of 2 dividing the size
        return f"unet_{2 ** n_down}"
    return name


def parse_generator_name(name: str) -> tuple[str, int]:
    """('resnet', n_blocks) or ('unet', n_down); a UserError for anything else."""
    m = re.fullmatch(r"(resnet|unet)_(\d{1,6})", name) if isinstance(name, str) else None
    if m:
        family, n = m.group(1), int(m.group(2))
        if family == "resnet" and 1 <= n <= MAX_RESNET_BLOCKS:
            return family, n
        if family == "unet" and 4 <= n <= MAX_UNET_SIZE and n & (n - 1) == 0:
            return family, int(math.log2(n))
        if family == "resnet" and n > MAX_RESNET_BLOCKS or family == "unet" and n > MAX_UNET_SIZE:
            raise UserError(f"generator {name!r} is deeper than img2img builds (at most resnet_{MAX_RESNET_BLOCKS}, "
                            f"unet_{MAX_UNET_SIZE})")
    raise UserError(f"unknown generator {name!r}; use {GENERATOR_FORMS}")


def generator_stride(name: str) -> int:
    family, n = parse_generator_name(name)
    return 4 if family == "resnet" else 2**n


def build_generator(arch: dict) -> nn.Module:
    """Build (uninitialised) from an arch dict: name, in/out/cond channels, ngf, norm, dropout."""
    family, n = parse_generator_name(arch["name"])
    common = dict(in_channels=arch["in_channels"], out_channels=arch["out_channels"], ngf=arch["ngf"],
                  norm=arch["norm"], dropout=arch["dropout"], cond_channels=arch.get("cond_channels", 0),
                  attention=arch.get("attention", 0))
    if arch["norm"] not in NORMS:
        raise UserError(f"unknown norm {arch['norm']!r}; choose from {', '.join(NORMS)}")
    try:
        if family == "resnet":
            return ResnetGenerator(n_blocks=n, **common)
        return UnetGenerator(n_down=n, **common)
    except ValueError as exc:  # an option the chosen architecture cannot take
        raise UserError(f"generator {arch['name']}: {exc}") from None


def generator_gflop(arch: dict, height: int, width: int | None = None) -> float:
    """GFLOP of one generator forward on one image (counted on meta tensors: nothing is computed)."""
    with torch.device("meta"):
        net = build_generator(arch)
        x = torch.empty(1, arch["in_channels"], height, width or height)
        cond = torch.empty(1, arch["cond_channels"]) if arch.get("cond_channels") else None
    with FlopCounterMode(display=False) as counter:
        net(x, cond) if cond is not None else net(x)
    return counter.get_total_flops() / 1e9


def build_discriminator(arch: dict) -> nn.Module:
    try:
        return PatchDiscriminator(in_channels=arch["in_channels"], ndf=arch["ndf"], n_layers=arch["n_layers"],
                                  norm=arch["norm"], spectral_norm=arch.get("spectral_norm", False),
                                  n_classes=arch.get("n_classes", 0), attention=arch.get("attention", 0),
                                  minibatch_std=arch.get("minibatch_std", False))
    except ValueError as exc:
        raise UserError(f"discriminator: {exc}") from None


__all__ = ["build_generator", "build_discriminator", "init_weights", "generator_stride", "generator_gflop",
           "parse_generator_name", "resolve_generator_name", "GENERATOR_FORMS"]
