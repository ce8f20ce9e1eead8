"""Ownership of a run directory: recognise an img2img run, refuse to write over anything else, one writer at a time.

A run directory is recognised by its config.json, which carries RUN_MARKER (written before anything
else), or by its checkpoint.pt. A folder that holds files under the names a run writes
(config.json, model.pt, ...) but no marker belongs to the user and is refused, never overwritten.

One training at a time per directory: an exclusive flock on LOCK_FILE, held for the whole run. The
kernel drops it when the process ends in any way (kill -9 included), so a lock left by a killed
process is recognised as stale by simply being lockable again.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from img2img.errors import UserError

MODEL_FILE, CHECKPOINT_FILE, LOG_FILE, SAMPLES_DIR, CONFIG_FILE = "model.pt", "checkpoint.pt", "log.jsonl", "samples", "config.json"
RUN_FILES = (CONFIG_FILE, MODEL_FILE, CHECKPOINT_FILE, LOG_FILE, SAMPLES_DIR, "model_best.pt")
RUN_MARKER = "img2img_run"
LOCK_FILE = ".img2img.lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, one writer is the user's business
    fcntl = None


def is_run_dir(out: Path) -> bool:
    """True if out holds an img2img run (even one killed before its first checkpoint)."""
    if (out / CHECKPOINT_FILE).is_file():
        return True
    try:
        return json.loads((out / CONFIG_FILE).read_text(encoding="utf-8")).get(RUN_MARKER) is True
    except (OSError, ValueError, AttributeError):
        return False


def check_new_run_dir(out: Path) -> None:
    """A new run may go into a missing or empty folder, a folder of unrelated files, or a run of ours that never saved."""
    if (out / CHECKPOINT_FILE).exists():
        raise UserError(f"{out} already holds a run; continue it with --resume or choose another --out")
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file, not a folder; choose another --out")
    if is_run_dir(out):
        return
    clash = [name for name in RUN_FILES if (out / name).exists()]
    if clash:
        raise UserError(f"{out} holds {', '.join(clash)} that img2img did not write; a run there would overwrite "
                        f"{'it' if len(clash) == 1 else 'them'}. Choose another --out")


def write_config(out: Path, config: dict) -> None:
    """config.json with the run marker, through a temporary file so it is never half-written."""
    tmp = out / f".{CONFIG_FILE}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps({RUN_MARKER: True, **config}, indent=2), encoding="utf-8")
        os.replace(tmp, out / CONFIG_FILE)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UserError(f"cannot write {out / CONFIG_FILE}: {exc.strerror or exc}") from None


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Half-written saves of a killed process (.checkpoint.pt.XXXX.tmp, ...); call only while holding the lock."""
    stale = [p for name in (CHECKPOINT_FILE, MODEL_FILE, "model_best.pt", CONFIG_FILE)
             for p in out.glob(f".{name}.*.tmp") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


@contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold the run directory's lock; a second training into the same folder is refused with one line."""
    if fcntl is None:
        yield
        return
    path = out / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise UserError(f"cannot create the lock file {path}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            raise UserError(f"another img2img training{f' (process {holder})' if holder.isdigit() else ''} is writing to {out}; "
                            f"wait for it to end or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)  # while still locked: nobody can have taken it meanwhile
    finally:
        os.close(fd)
