"""Preview grids written during training: one row per fixed input, one titled column per view of the method.

Kept small: tiles are shown at most PREVIEW_TILE pixels wide and the grid is a JPEG (a 4-row CycleGAN
grid at 256 px was a 4 MB PNG; at 128 px tiles as JPEG it is about 100 kB).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from img2img.data.io import save_image_atomic

PREVIEW_TILE = 128
PAD, TITLE_H = 2, 14


def save_preview(columns: list[torch.Tensor], titles: list[str], path: Path) -> None:
    """columns: tensors (N, C, H, W) in [-1, 1], one per view; titles: one per column."""
    rows = min(c.shape[0] for c in columns)
    tiles = [c[:rows].detach().float().cpu().clamp(-1, 1) for c in columns]
    h, w = tiles[0].shape[-2:]
    scale = min(1.0, PREVIEW_TILE / max(h, w))
    if scale < 1.0:
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        tiles = [F.interpolate(t, size=size, mode="bilinear", antialias=True, align_corners=False) for t in tiles]
        h, w = size
    width = len(tiles) * (w + PAD) + PAD
    height = TITLE_H + rows * (h + PAD) + PAD
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for k, (tile, title) in enumerate(zip(tiles, titles)):
        x = PAD + k * (w + PAD)
        text = title
        while text and draw.textlength(text, font=font) > w:  # narrow tiles: shorten the title
            text = text[:-1]
        draw.text((x + 1, 1), text, fill=(0, 0, 0), font=font)
        for r in range(rows):
            arr = tile[r].add(1).mul(127.5).round().to(torch.uint8)
            arr = arr.expand(3, -1, -1) if arr.shape[0] == 1 else arr[:3]
            canvas.paste(Image.fromarray(arr.permute(1, 2, 0).numpy()), (x, TITLE_H + PAD + r * (h + PAD)))
    save_image_atomic(canvas, path)
