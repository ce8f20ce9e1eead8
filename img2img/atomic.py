"""Crash-safe writes: a file is either the old complete version or the new complete version."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from img2img.errors import UserError


class OutputWriteError(UserError, OSError):
    """An output could not be written (disk full, permission...): one line for the user, an OSError for callers."""

    @classmethod
    def wrap(cls, exc: OSError, path: Path) -> "OutputWriteError":
        err = cls(f"cannot write {path}: {exc.strerror or exc}")
        err.errno = exc.errno  # callers can still tell a full disk from a bad name
        return err


def default_file_mode() -> int:
    """The mode open() would give a new file: 0o666 less the umask (mkstemp alone gives 0o600)."""
    try:  # Linux reports the umask without changing it (os.umask would, for a moment, for every thread)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path: str | Path, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block succeeds it replaces `path` in one rename.

    The final name therefore only ever holds a complete file: a crash, a kill or a full disk leaves
    the previous version (or nothing), and the temporary file is removed on any error. The new file
    gets the mode the umask asks for. An OSError becomes an OutputWriteError naming the file.
    """
    path = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputWriteError.wrap(exc, path) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, default_file_mode())
        if fsync:
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OutputWriteError):
            raise
        raise OutputWriteError.wrap(exc, path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file in the same folder, fsync, then rename over the target."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def next_free_folder(base: str | Path, empty_counts_as_free: bool = False) -> Path:
    """base, or base-2, base-3, ... : the first that does not exist (or is empty, if allowed), so nothing is overwritten."""
    base = Path(base)
    candidate, n = base, 2

    def taken(path: Path) -> bool:
        return path.exists() and not (empty_counts_as_free and path.is_dir() and not any(path.iterdir()))

    while taken(candidate):
        candidate, n = Path(f"{base}-{n}"), n + 1
    return candidate
