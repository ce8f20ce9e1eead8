"""Image and folder translation: decode, batch same-sized images, translate, write atomically.

One bad item never stops the batch: whatever goes wrong with one file (it does not decode, it is too
small or too large to translate, the generator fails on it, its output cannot be written) is
reported for that file and the others go on; the caller turns failures into a non-zero exit code.
Only a full or read-only disk stops the batch, since every later output would fail the same way.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from img2img.data.io import load_image, pil_to_tensor, save_image_atomic, tensor_to_pil
from img2img.errors import UserError
from img2img.translate.outputs import Job
from img2img.translate.translator import Translator, available_memory

# The disk, not the file: stop instead of failing every remaining output the same way.
FATAL_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


@dataclass
class TranslateReport:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or (
        isinstance(exc, RuntimeError) and any(s in str(exc) for s in ("out of memory", "can't allocate memory", "not enough memory")))


def _describe(job: Job, exc: BaseException, hw: tuple[int, int] | None = None) -> str:
    if isinstance(exc, UserError):
        text = str(exc)
        return text if text.startswith(str(job.source)) else f"{job.source}: {text}"
    if _is_out_of_memory(exc):
        size = f" {hw[1]}x{hw[0]}" if hw else ""
        return f"{job.source}: not enough memory to translate this{size} image; try --size N (a smaller short side)"
    return f"{job.source}: cannot translate ({_first_line(exc)})"


def translate_files(translator: Translator, jobs: list[Job], *, batch_size: int = 8, overwrite: bool = False,
                    on_progress: Callable[[int], None] | None = None,
                    on_error: Callable[[Path, str], None] | None = None) -> TranslateReport:
    """Translate each job's source into its target. A bad input is reported and the rest go on."""
    report = TranslateReport()
    pending: dict[tuple[int, int], list[tuple[Job, torch.Tensor]]] = {}
    device = getattr(translator, "device", None)
    free = available_memory(torch.device(device)) if device is not None else None
    estimate = getattr(translator, "memory_needed", None)

    def fits(h: int, w: int, n: int) -> bool:
        return free is None or estimate is None or estimate(h, w, n) <= 0.9 * free

    def fail(job: Job, message: str) -> None:
        report.failed.append((job.source, message))
        if on_error:
            on_error(job.source, message)
        if on_progress:
            on_progress(1)

    def write(job: Job, out: torch.Tensor) -> None:
        try:
            save_image_atomic(tensor_to_pil(out), job.target)
        except OSError as exc:  # an OutputWriteError (a UserError) from the atomic writer
            message = str(exc) if isinstance(exc, UserError) else f"cannot write {job.target}: {exc.strerror or exc}"
            if exc.errno in FATAL_WRITE_ERRORS:
                raise UserError(message + "; stopped (outputs written so far are complete)") from None
            fail(job, message)
            return
        except Exception as exc:  # noqa: BLE001 - an encoder refusing this image
            fail(job, f"cannot write {job.target}: {_first_line(exc)}")
            return
        report.written.append(job.target)
        if on_progress:
            on_progress(1)

    def run(group: list[tuple[Job, torch.Tensor]]) -> None:
        """Translate a same-sized group; if that fails, each image alone, so only the bad one fails."""
        try:
            outputs = translator(torch.stack([t for _, t in group]))
        except Exception as exc:  # noqa: BLE001 - one image must not take the others down with it
            if len(group) > 1:
                for item in group:
                    run([item])
                return
            job, tensor = group[0]
            fail(job, _describe(job, exc, tuple(tensor.shape[-2:])))
            return
        for (job, _), out in zip(group, outputs):
            write(job, out)

    def flush(key: tuple[int, int]) -> None:
        group = pending.pop(key, [])
        if group and fits(*key, len(group)):
            run(group)
        else:
            for item in group:
                run([item])

    for job in jobs:
        if job.target.exists() and not overwrite:
            report.skipped.append(job.target)
            if on_progress:
                on_progress(1)
            continue
        try:
            tensor = pil_to_tensor(load_image(job.source, translator.channels))
        except Exception as exc:  # noqa: BLE001 - a decoder failing in any way is this file's problem only
            fail(job, _describe(job, exc))
            continue
        h, w = tensor.shape[-2:]
        if not fits(h, w, 1):
            need, have = estimate(h, w, 1) / 2**30, free / 2**30
            fail(job, f"{job.source}: a {w}x{h} image needs about {need:.1f} GiB to translate and {have:.1f} GiB is free; "
                      f"try --size N (a smaller short side)")
            continue
        key = (h, w)
        pending.setdefault(key, []).append((job, tensor))
        if len(pending[key]) >= batch_size:
            flush(key)
    for key in list(pending):
        flush(key)
    return report
