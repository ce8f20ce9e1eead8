"""Crash-safe writes: a file is either the old complete version or the new complete version."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename over the target."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def next_free_folder(base: str | Path, empty_counts_as_free: bool = False) -> Path:
    """base, or base-2, base-3, ... : the first that does not exist (or is empty, if allowed), so nothing is overwritten."""
    base = Path(base)
    candidate, n = base, 2

    def taken(path: Path) -> bool:
        return path.exists() and not (empty_counts_as_free and path.is_dir() and not any(path.iterdir()))

    while taken(candidate):
        candidate, n = Path(f"{base}-{n}"), n + 1
    return candidate
