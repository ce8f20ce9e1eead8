"""Built-in synthetic datasets for the demo and the tests, written as ordinary image folders.

Writing real files means the demo and the tests go through the same loading code as a user's data.
- paired ("facades-like"): A is a label map of flat-coloured rectangles, B the same layout rendered
  with a texture per label, saved side by side (A|B) like the pix2pix datasets.
- unpaired ("horse2zebra-like"): A holds plain orange disks, B disks filled with black and white
  stripes, each image with its own random layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

LABEL_COLOURS = np.array([[30, 60, 200], [200, 40, 40], [40, 170, 60], [230, 210, 40]], dtype=np.float32)
BACKGROUND_LABEL = np.array([20, 20, 20], dtype=np.float32)


def _label_layout(rng: np.random.Generator, size: int, max_rects: int = 5) -> np.ndarray:
    """An HxW map of label ids (-1 = background) made of overlapping rectangles."""
    labels = np.full((size, size), -1, dtype=np.int64)
    for _ in range(rng.integers(2, max_rects + 1)):
        x0, y0 = rng.integers(0, size - size // 4, size=2)
        w, h = rng.integers(size // 6, size // 2, size=2)
        labels[y0 : y0 + h, x0 : x0 + w] = rng.integers(0, len(LABEL_COLOURS))
    return labels


def _render_photo(labels: np.ndarray) -> np.ndarray:
    """Texture each label: stripes, checks, gradients; fixed so the mapping A->B is learnable."""
    size = labels.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    textures = [
        np.stack([90 + 60 * np.sin(yy / 2.0)] * 3, -1) * np.array([0.6, 0.7, 1.2]),  # blue-grey stripes
        np.stack([150 + 50 * ((xx // 4 + yy // 4) % 2)] * 3, -1) * np.array([1.0, 0.55, 0.4]),  # brick checks
        np.stack([80 + 120 * xx / size] * 3, -1) * np.array([0.5, 1.1, 0.6]),  # green gradient
        np.stack([200 + 30 * np.cos(xx / 3.0)] * 3, -1) * np.array([1.1, 1.0, 0.7]),  # pale ripples
    ]
    photo = np.stack([140 + 40 * yy / size] * 3, -1) * np.array([0.8, 0.85, 0.9])  # sky-like background
    for k, tex in enumerate(textures):
        photo = np.where((labels == k)[..., None], tex, photo)
    return np.clip(photo, 0, 255).astype(np.uint8)


def _render_labels(labels: np.ndarray) -> np.ndarray:
    out = np.where((labels >= 0)[..., None], LABEL_COLOURS[np.clip(labels, 0, None)], BACKGROUND_LABEL)
    return out.astype(np.uint8)


def make_paired(folder: str | Path, count: int = 16, size: int = 64, seed: int = 0) -> Path:
    """Write `count` A|B side-by-side images (2*size x size) into folder; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for n in range(count):
        labels = _label_layout(rng, size)
        ab = np.concatenate([_render_labels(labels), _render_photo(labels)], axis=1)
        Image.fromarray(ab).save(folder / f"{n:04d}.png")
    return folder


def _disks(rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    mask = np.zeros((size, size), dtype=bool)
    for _ in range(rng.integers(1, 4)):
        cx, cy = rng.integers(size // 6, size - size // 6, size=2)
        r = rng.integers(size // 8, size // 4)
        mask |= (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    return mask


def _grass(rng: np.random.Generator, size: int) -> np.ndarray:
    base = np.array([70, 130, 60], dtype=np.float32)
    noise = rng.normal(0, 12, size=(size, size, 1)).astype(np.float32)
    return base + noise


def make_unpaired(folder: str | Path, count: int = 16, size: int = 64, seed: int = 0) -> tuple[Path, Path]:
    """Write folder/A (plain orange disks) and folder/B (striped disks); returns (A, B)."""
    folder = Path(folder)
    a_dir, b_dir = folder / "A", folder / "B"
    a_dir.mkdir(parents=True, exist_ok=True)
    b_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    stripes = (((xx + yy) // 3) % 2).astype(np.float32)[..., None] * 230 + 15
    for n in range(count):
        img = _grass(rng, size)
        img = np.where(_disks(rng, size)[..., None], np.array([200, 120, 50], dtype=np.float32), img)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(a_dir / f"a{n:04d}.png")
        img = _grass(rng, size)
        img = np.where(_disks(rng, size)[..., None], np.repeat(stripes, 3, -1), img)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(b_dir / f"b{n:04d}.png")
    return a_dir, b_dir


SHAPE_COLOURS = {"red": (210, 40, 40), "green": (40, 190, 50), "blue": (40, 60, 210)}
SHAPE_BACKGROUND = 128.0


def shape_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """One or two random disks or squares covering roughly a quarter of a size x size image."""
    yy, xx = np.mgrid[0:size, 0:size]
    mask = np.zeros((size, size), dtype=bool)
    for _ in range(rng.integers(1, 3)):
        cx, cy = rng.integers(size // 4, size - size // 4, size=2)
        r = rng.integers(size // 6, size // 4 + 1)
        if rng.random() < 0.5:
            mask |= (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        else:
            mask |= (abs(xx - cx) <= r) & (abs(yy - cy) <= r)
    return mask


def make_domains(folder: str | Path, count: int = 16, size: int = 32, seed: int = 0) -> Path:
    """Write folder/<colour>/ (red, green, blue): grey images with shapes of that colour (StarGAN's
    layout: one sub-folder per domain). Translating to a domain should recolour the shapes; returns folder."""
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    for name, colour in SHAPE_COLOURS.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for n in range(count):
            img = np.full((size, size, 3), SHAPE_BACKGROUND, dtype=np.float32) + rng.normal(0, 8, (size, size, 1))
            img = np.where(shape_mask(rng, size)[..., None], np.array(colour, dtype=np.float32), img)
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / name / f"{name}{n:03d}.png")
    return folder
