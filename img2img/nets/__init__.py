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
from img2img.nets.layers import NORMS, PADDINGS, init_weights
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
    """Build (uninitialised) from an arch dict: name, in/out/cond channels, ngf, norm, dropout.

    ResNet keys added later read as the behaviour files had before them, so an older model file
    rebuilds the same net: padding "reflect", first_pad = padding, resample_kernel 3. (Such old
    conditional ResNets ignore their label; methods write first_pad "zero" for new ones.)
    The U-Net zero-pads its strided 4x4 convs and has no norm after the first one, so the label
    maps reach it as they are; it has no padding options.
    """
    family, n = parse_generator_name(arch["name"])
    common = dict(in_channels=arch["in_channels"], out_channels=arch["out_channels"], ngf=arch["ngf"],
                  norm=arch["norm"], dropout=arch["dropout"], cond_channels=arch.get("cond_channels", 0),
                  attention=arch.get("attention", 0))
    if arch["norm"] not in NORMS:
        raise UserError(f"unknown norm {arch['norm']!r}; choose from {', '.join(NORMS)}")
    try:
        if family == "resnet":
            padding = arch.get("padding", "reflect")
            if padding not in PADDINGS or arch.get("first_pad", padding) not in PADDINGS:
                raise UserError(f"unknown padding in {arch!r}; choose from {', '.join(PADDINGS)}")
            return ResnetGenerator(n_blocks=n, padding=padding, first_pad=arch.get("first_pad", padding),
                                   resample_kernel=arch.get("resample_kernel", 3), input_skip=arch.get("input_skip", False),
                                   upsample=arch.get("upsample", "transposed"), **common)
        if arch.get("upsample", "transposed") != "transposed":
            raise ValueError("--set net.upsample=resize is an option of the ResNet generators")
        if arch.get("input_skip"):
            raise ValueError("the input skip is an option of the ResNet generators (the U-Net has skips of its own)")
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


# Discriminator keys added later, with the values that reproduce files written before them.
D_OPTION_DEFAULTS = {"form": "patch", "max_mult": 8, "slope": 0.2, "adv_kernel": 4, "cls_kernel": 0, "head_bias": True}


def build_discriminator(arch: dict) -> nn.Module:
    options = {k: arch.get(k, v) for k, v in D_OPTION_DEFAULTS.items()}
    try:
        return PatchDiscriminator(in_channels=arch["in_channels"], ndf=arch["ndf"], n_layers=arch["n_layers"],
                                  norm=arch["norm"], spectral_norm=arch.get("spectral_norm", False),
                                  n_classes=arch.get("n_classes", 0), attention=arch.get("attention", 0),
                                  minibatch_std=arch.get("minibatch_std", False), **options)
    except ValueError as exc:
        raise UserError(f"discriminator: {exc}") from None


def describe_generator(arch: dict) -> str:
    """One line of what a generator arch dict builds, with the defaults older files imply."""
    family, _ = parse_generator_name(arch["name"])
    parts = [arch["name"], f"ngf {arch['ngf']}", f"norm {arch['norm']}"]
    if family == "resnet":
        padding = arch.get("padding", "reflect")
        k = arch.get("resample_kernel", 3)
        resize = arch.get("upsample", "transposed") == "resize"
        parts += [f"{padding} padding", f"{k}x{k} down convs, resize-conv up" if resize else f"{k}x{k} down/up convs"]
        if arch.get("input_skip"):
            parts.append("input skip (learns a change of the input)")
    if arch.get("cond_channels"):
        first = arch.get("first_pad", arch.get("padding", "reflect")) if family == "resnet" else "zero"
        parts.append(f"{arch['cond_channels']} label maps into a {first}-padded first conv"
                     + (" (the label is erased: retrain)" if first == "reflect" and arch["norm"].startswith("instance") else ""))
    return ", ".join(parts)


def describe_discriminator(arch: dict) -> str:
    """One line of what a discriminator arch dict builds (StarGAN's classifier in the model file)."""
    o = {k: arch.get(k, v) for k, v in D_OPTION_DEFAULTS.items()}
    n, ndf = arch["n_layers"], arch["ndf"]
    if o["form"] == "strided":
        widths = [ndf * min(2**i, o["max_mult"]) for i in range(n)]
        trunk = f"{n} stride-2 4x4 convs ({widths[0]}..{widths[-1]} wide)"
    else:
        trunk = f"PatchGAN, {n} layers, ndf {ndf}"
    parts = [trunk, f"LeakyReLU {o['slope']}", f"norm {arch['norm']}", f"{o['adv_kernel']}x{o['adv_kernel']} real/fake head"]
    if arch.get("n_classes"):
        k = o["cls_kernel"]
        parts.append(f"{k}x{k} class head over the whole map" if k else "3x3 class head averaged over positions")
    if arch.get("spectral_norm"):
        parts.append("spectral norm")
    return ", ".join(parts)


__all__ = ["describe_generator", "describe_discriminator", "build_generator", "build_discriminator", "init_weights", "generator_stride", "generator_gflop",
           "parse_generator_name", "resolve_generator_name", "GENERATOR_FORMS"]
