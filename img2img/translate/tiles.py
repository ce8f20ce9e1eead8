"""Tiled translation of images too big to translate whole (`translate --tile N`, or automatic).

A generator is a stack of local convolutions except for its per-image normalisations (instance norm,
and BatchNorm evaluated per image): their statistics are taken over the whole image. Tiles that each
normalised by their own statistics would disagree in tone at every seam. So:

  pass 1 (statistics): the whole image goes through the net once and every per-image norm records
                       its per-channel mean and variance; when even that would not fit, a mosaic of
                       full-resolution patches taken evenly across the image stands in for it;
  pass 2 (tiles):      overlapping tiles at full resolution go through the net with every norm using
                       those recorded statistics instead of the tile's own; the overlaps are blended
                       with linear (feathered) weights, so the convolutions' edge effects fade out.

With statistics fixed the net is translation-equivariant on a grid of its stride, so tiles start on
multiples of the stride and the only differences from the untiled result are the edge effects in the
overlaps and, when pass 1 had to sample, the statistics' estimate.
"""

from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterator

import torch
from torch import nn

from img2img.nets.layers import InstanceNorm2d, PerImageNorm, SeededDropout

# Peak memory of one no-grad generator forward, per pixel and per first-layer filter, in elements
# (a ResNet-9 with ngf 64 at 1080p in fp32 held 11.8 GiB: about 6 * 4 * 64 elements per pixel).
PEAK_ELEMENTS_PER_PIXEL_AND_FILTER = 24
MIN_TILE = 128


def _per_image_norms(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules()
            if isinstance(m, PerImageNorm) or (isinstance(m, InstanceNorm2d) and not m.track_running_stats)]


@contextlib.contextmanager
def norm_statistics(net: nn.Module, mode: str, stats: list) -> Iterator[list]:
    """mode "record": each per-image norm appends its (mean, var) to stats, in call order; mode
    "fixed": each uses the next entry of stats instead of its input's statistics."""
    norms = _per_image_norms(net)
    calls = iter(range(10**9))

    def forward(module, x):
        i = next(calls)
        w, b = module.weight, module.bias
        if mode == "record":
            xf = x.float()
            var, mean = torch.var_mean(xf, dim=(2, 3), unbiased=False, keepdim=True)
            stats.append((mean, var))
        else:
            mean, var = stats[i % len(stats)]
        y = (x.float() - mean) * torch.rsqrt(var + module.eps)
        if w is not None:
            y = y * w.float()[None, :, None, None] + b.float()[None, :, None, None]
        return y.to(x.dtype)

    for m in norms:
        m.forward = (lambda x, m=m: forward(m, x))
    try:
        yield stats
    finally:
        for m in norms:
            del m.forward


@contextlib.contextmanager
def tile_origin(net: nn.Module, top: int, left: int, height: int) -> Iterator[None]:
    """Seeded test-time dropout (pix2pix) draws its mask from the position in the feature map: inside a
    tile starting at (top, left) of the image, use the image's positions, not the tile's."""
    drops = [m for m in net.modules() if isinstance(m, SeededDropout)]

    def forward(module, x):
        scale = x.shape[2] / height
        r0, c0 = round(top * scale), round(left * scale)
        keep = module.keep_mask(x.shape[1], r0 + x.shape[2], c0 + x.shape[3], x.device)[:, r0:, c0:]
        return x * (keep.to(x.dtype) * (1.0 / (1.0 - module.p)))

    for m in drops:
        m.forward = (lambda x, m=m: forward(m, x))
    try:
        yield
    finally:
        for m in drops:
            del m.forward


def has_per_image_norms(net: nn.Module) -> bool:
    return bool(_per_image_norms(net))


def available_bytes(device: torch.device) -> int:
    """Memory a translation may use: free GPU memory, or the RAM Linux says is available (page cache included)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not Linux
        return 8 << 30


def memory_budget(device: torch.device) -> int:
    return int(available_bytes(device) * 0.85)


def peak_bytes(height: int, width: int, ngf: int, element_size: int) -> int:
    return PEAK_ELEMENTS_PER_PIXEL_AND_FILTER * ngf * element_size * height * width


def auto_tile(height: int, width: int, ngf: int, element_size: int, budget: int, stride: int) -> int:
    """0 when the whole image fits the memory budget, else the largest tile side that does (with its overlap)."""
    if peak_bytes(height, width, ngf, element_size) <= budget:
        return 0
    side = int((budget / (PEAK_ELEMENTS_PER_PIXEL_AND_FILTER * ngf * element_size)) ** 0.5)
    side = side * 2 // 3  # room for the overlap around it
    return max(MIN_TILE, side // stride * stride, stride)


def _ramp(length: int, overlap: int, before: bool, after: bool, device) -> torch.Tensor:
    w = torch.ones(length, device=device)
    if overlap > 0:
        edge = (torch.arange(overlap, device=device, dtype=torch.float32) + 0.5) / overlap
        if before:
            w[:overlap] = torch.minimum(w[:overlap], edge)
        if after:
            w[-overlap:] = torch.minimum(w[-overlap:], edge.flip(0))
    return w


def mosaic(x: torch.Tensor, pixels: int, stride: int, patch: int) -> torch.Tensor:
    """At most `pixels` of x at full resolution: a grid of patches centred evenly across the image, put
    side by side. Statistics of its features are those of the image at the right scale (a downscaled
    copy's are not: its features are those of a smaller scene), estimated from a sample of it."""
    h, w = x.shape[-2:]
    patch = max(stride, min(patch, int((pixels / 16) ** 0.5)) // stride * stride)  # at least a 4x4 grid
    rows = max(1, min(h // patch, round((pixels / patch**2 * h / w) ** 0.5)))
    cols = max(1, min(w // patch, pixels // patch**2 // rows))
    tops = [int((k + 0.5) * h / rows - patch / 2) // stride * stride for k in range(rows)]
    lefts = [int((k + 0.5) * w / cols - patch / 2) // stride * stride for k in range(cols)]
    return torch.cat([torch.cat([x[..., t:t + patch, l:l + patch] for l in lefts], dim=-1) for t in tops], dim=-2)


def _starts(size: int, tile: int, step: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, step))
    return starts + [size - tile]


@torch.no_grad()
def translate_tiled(run: Callable[[torch.Tensor, int], torch.Tensor], net: nn.Module, x: torch.Tensor, *, tile: int,
                    stride: int, overlap: int | None = None, stats_budget_pixels: int | None = None) -> torch.Tensor:
    """run(x, i) on an (N, C, H, W) input with H, W multiples of stride, in tiles of about `tile` pixels.

    run(part, i) is the generator call on part of image i (device, precision and condition handled there); net is the module it
    runs, whose per-image norms are switched to recorded statistics. stats_budget_pixels caps the
    pixels of the statistics pass (a mosaic of full-resolution patches when the image is bigger).
    (Re-estimating the statistics over the tiles with the first estimate fixed made it worse, 6 -> 11/255
    on a random ResNet-6: every norm shifts at once, each from features made with the others' old values.)
    """
    n, _, h, w = x.shape
    tile = max(2 * stride, tile // stride * stride)
    overlap = overlap if overlap is not None else tile // 4
    overlap = min(overlap, tile // 2) // (2 * stride) * (2 * stride)  # its halves stay on the stride grid
    step = tile - overlap
    outputs = []
    for i in range(n):
        xi = x[i:i + 1]
        stats: list = []
        if has_per_image_norms(net):
            sample = xi
            if stats_budget_pixels and h * w > stats_budget_pixels:
                sample = mosaic(xi, stats_budget_pixels, stride, min(tile, h, w))
            with norm_statistics(net, "record", stats):
                run(sample, i)
        ys, xs = _starts(h, tile, step), _starts(w, tile, step)
        out = None
        weight = None
        context = norm_statistics(net, "fixed", stats) if stats else contextlib.nullcontext()
        with context:
            for top in ys:
                for left in xs:
                    th, tw = min(tile, h - top), min(tile, w - left)
                    with tile_origin(net, top, left, th):
                        y = run(xi[..., top:top + th, left:left + tw], i).float()
                    if out is None:
                        out = torch.zeros((1, y.shape[1], h, w), device=y.device)
                        weight = torch.zeros((1, 1, h, w), device=y.device)
                    wy = _ramp(th, overlap, top > 0, top + th < h, y.device)
                    wx = _ramp(tw, overlap, left > 0, left + tw < w, y.device)
                    mask = (wy[:, None] * wx[None, :])[None, None]
                    out[..., top:top + th, left:left + tw] += y * mask
                    weight[..., top:top + th, left:left + tw] += mask
        outputs.append(out / weight)
    return torch.cat(outputs)
