"""Reading and writing images: every input becomes 8-bit RGB (or L) the same way everywhere."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image, ImageOps

from rich.console import Console

from img2img.atomic import atomic_path
from img2img.errors import UserError

_stderr = Console(stderr=True, highlight=False)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


class UnreadableImage(UserError):
    """A file that should be an image but cannot be decoded."""


def is_image_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: str | Path, what: str = "folder") -> list[Path]:
    """Image files directly inside folder, sorted by name; a clear error when there are none."""
    folder = Path(folder)
    if not folder.exists():
        raise UserError(f"{what} not found: {folder}")
    if not folder.is_dir():
        raise UserError(f"{what} is not a folder: {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_image_path(p) and not p.name.startswith("."))
    if not files:
        raise UserError(f"{what} {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return files


def files_by_stem(files: list[Path], what: str) -> dict[str, Path]:
    """{stem: file} for folders matched by file name; two files sharing a stem (x.png, x.jpg) are refused, not dropped."""
    by_stem: dict[str, Path] = {}
    for f in files:
        if f.stem in by_stem:
            raise UserError(f"{what} holds both {by_stem[f.stem].name} and {f.name}: files are matched by name "
                            f"({f.stem!r}), so keep one of them or rename the other")
        by_stem[f.stem] = f
    return by_stem


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and float grayscale modes scaled to 8 bits (PIL's convert would clip instead)."""
    arr = np.asarray(img)
    if img.mode.startswith("I;16") or (img.mode == "I" and arr.max(initial=0) > 255):
        arr = (arr.astype(np.float64) / 65535.0 * 255.0).round()
    elif img.mode == "F":
        lo, hi = float(arr.min(initial=0)), float(arr.max(initial=1))
        arr = (arr - lo) / max(hi - lo, 1e-12) * 255.0
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), mode="L")


def to_mode(img: Image.Image, channels: int = 3) -> Image.Image:
    """Normalise any PIL image to RGB (channels=3) or L (channels=1); alpha is composited on white."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        img = _to_8bit(img)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    target = "RGB" if channels == 3 else "L"
    return img if img.mode == target else img.convert(target)


@contextmanager
def _bombs_are_errors() -> Iterator[None]:
    """PIL only warns between MAX_IMAGE_PIXELS and twice that; treat such images as unreadable too."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def load_image(path: str | Path, channels: int = 3) -> Image.Image:
    """Decode an image file upright (EXIF orientation applied) as RGB or L."""
    try:
        with _bombs_are_errors(), Image.open(path) as img:
            img = ImageOps.exif_transpose(img)
            img.load()
            return to_mode(img, channels)
    except FileNotFoundError:
        raise UnreadableImage(f"{path}: file not found") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnreadableImage(f"{path}: cannot read image ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return "image too large (decompression-bomb guard): " + text[:100]
    return text[:160]


def check_image(path: str | Path) -> str | None:
    """None if the file decodes completely as an image, else the reason it does not.

    JPEGs are decoded in draft mode (DCT scaling), which still reads the whole stream, so a
    truncated file is caught at a fraction of the cost of a full decode.
    """
    try:
        with _bombs_are_errors(), Image.open(path) as img:
            if img.format == "JPEG":
                img.draft(img.mode, (max(1, img.width // 8), max(1, img.height // 8)))
            img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return _reason(exc)
    return None


def warn(text: str) -> None:
    """One yellow warning line on stderr (text is rich markup-free: brackets print as written)."""
    from rich.markup import escape

    _stderr.print(f"[yellow]warning:[/] {escape(text)}", soft_wrap=True)


def warn_unreadable(path: str | Path, reason: str) -> None:
    _stderr.print(f"[yellow]warning:[/] skipping {path}: {reason}", soft_wrap=True)


def usable_images(files: list[Path], what: str) -> tuple[list[Path], list[Path]]:
    """Split files into (readable, unreadable), warning once per unreadable file and with a count at the end."""
    good, bad = [], []
    for path in files:
        reason = check_image(path)
        if reason is None:
            good.append(path)
        else:
            warn_unreadable(path, reason)
            bad.append(path)
    if bad:
        _stderr.print(f"[yellow]warning:[/] skipped {len(bad)} unreadable image(s) of {len(files)} in {what}", soft_wrap=True)
    return good, bad


def list_usable_images(folder: str | Path, what: str = "folder") -> list[Path]:
    """list_images without the files that do not decode; a clear error when none is left."""
    good, bad = usable_images(list_images(folder, what), f"{what} {folder}")
    if not good:
        raise UserError(f"{what} {folder}: none of its {len(bad)} image file(s) can be read")
    return good


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) as load_image would return it, reading only the header."""
    try:
        with Image.open(path) as img:
            w, h = img.size
            orientation = img.getexif().get(0x0112, 1)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise UnreadableImage(f"{path}: cannot read image ({_reason(exc)})") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image -> float CHW tensor in [-1, 1] (the generators' range)."""
    arr = torch.from_numpy(np.array(img, dtype=np.uint8, copy=True))
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr.permute(2, 0, 1).float().div(127.5).sub(1.0)


def tensor_to_pil(t: torch.Tensor) -> Image.Image:
    """Float CHW tensor in [-1, 1] -> 8-bit PIL image."""
    arr = t.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    arr = arr.permute(1, 2, 0).numpy()
    return Image.fromarray(arr[:, :, 0], mode="L") if arr.shape[2] == 1 else Image.fromarray(arr, mode="RGB")


def save_image_atomic(img: Image.Image, path: str | Path) -> None:
    """Write an image through a temporary file in the same folder, so a half-written file never appears."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"{path}: unknown image format {path.suffix!r}")
    params = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    with atomic_path(path, fsync=False) as tmp:
        img.save(tmp, format=fmt, **params)
