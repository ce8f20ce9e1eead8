"""A corpus of bad and awkward image files, generated on the fly (no committed binaries)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def write_bad_files(folder: Path, size: int = 32) -> list[str]:
    """Files that must be skipped; returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = Image.fromarray((np.random.default_rng(0).random((size, size, 3)) * 255).astype(np.uint8))
    full = _jpeg(rgb)
    files = {
        "zero bytes.jpg": b"",
        "truncated.jpg": full[: len(full) // 2],
        "notes.jpg": b"this is a text file, not a photo\n",
        "unknown-format.png": b"\x00\x01GARBAGE" * 50,
        "bomb.png": bomb_png(),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return sorted(files)


def write_awkward_good_files(folder: Path, size: int = 32) -> list[str]:
    """Unusual but valid files that must be used: CMYK, 16-bit, palette, unicode and spaces in names."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    rgb = Image.fromarray((rng.random((size, size, 3)) * 255).astype(np.uint8))
    rgb.convert("CMYK").save(folder / "cmyk photo.jpg")
    Image.fromarray((rng.random((size, size)) * 65535).astype(np.uint16)).save(folder / "sixteen-bit.png")
    rgb.convert("P").save(folder / "palette.png")
    rgb.save(folder / "zèbre ünïcode 写真.png")
    return ["cmyk photo.jpg", "sixteen-bit.png", "palette.png", "zèbre ünïcode 写真.png"]
