"""Image and folder translation: decode, batch same-sized images, translate, write atomically.

One bad item never stops the batch: whatever goes wrong with one file (it does not decode, it is too
small to translate, the generator fails on it even alone, its output cannot be written) is reported
for that file and the others go on; the caller turns failures into a non-zero exit code. Only a full
or read-only disk stops the batch, since every later output would fail the same way.
"""

from __future__ import annotations

import collections
import errno
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import torch

from img2img.data.io import load_image, pil_to_tensor, save_image_atomic, tensor_to_pil
from img2img.errors import UserError
from img2img.translate.outputs import Job
from img2img.translate.translator import Translator

# The disk, not the file: stop instead of failing every remaining output the same way.
FATAL_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


@dataclass
class TranslateReport:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


T = TypeVar("T")
R = TypeVar("R")
IO_THREADS = 2  # decoding and encoding (PIL, zlib, libjpeg) release the GIL, so they run beside the model


def prefetched(fn: Callable[[T], R], items: Iterable[T], pool: ThreadPoolExecutor, ahead: int) -> Iterator[tuple[T, Future]]:
    """(item, future of fn(item)) in order, with up to `ahead` items being worked on before they are asked for."""
    window: collections.deque = collections.deque()
    for item in items:
        window.append((item, pool.submit(fn, item)))
        if len(window) > ahead:
            yield window.popleft()
    while window:
        yield window.popleft()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or (
        isinstance(exc, RuntimeError) and any(s in str(exc) for s in ("out of memory", "can't allocate memory", "not enough memory")))


def _describe(job: Job, exc: BaseException, hw: tuple[int, int] | None = None) -> str:
    """One line for a failed item, starting with its path."""
    if isinstance(exc, UserError):
        text = str(exc)
        return text if text.startswith(str(job.source)) else f"{job.source}: {text}"
    if _is_out_of_memory(exc):
        size = f" {hw[1]}x{hw[0]}" if hw else ""
        return f"{job.source}: not enough memory to translate this{size} image; try --size N (a smaller short side) or --tile N"
    return f"{job.source}: cannot translate ({_first_line(exc)})"


def translate_files(translator: Translator, jobs: list[Job], *, batch_size: int = 8, overwrite: bool = False,
                    on_progress: Callable[[int], None] | None = None,
                    on_error: Callable[[Path, str], None] | None = None) -> TranslateReport:
    """Translate each job's source into its target. A bad input is reported and the rest go on.

    Decoding runs ahead and encoding behind the model on IO_THREADS threads, as for videos, so the
    model rarely waits for image I/O; outputs are still written and reported in input order.
    """
    report = TranslateReport()
    pending: dict[tuple[int, int], list[tuple[Job, torch.Tensor]]] = {}
    writes: collections.deque = collections.deque()  # (job, future of the write)

    def fail(job: Job, message: str) -> None:
        report.failed.append((job.source, message))
        if on_error:
            on_error(job.source, message)
        if on_progress:
            on_progress(1)

    def write(job: Job, out: torch.Tensor) -> None:
        job.target.parent.mkdir(parents=True, exist_ok=True)
        save_image_atomic(tensor_to_pil(out), job.target)

    def finish_writes(keep: int) -> None:
        while len(writes) > keep:
            job, future = writes.popleft()
            try:
                future.result()
            except OSError as exc:  # an OutputWriteError (a UserError) from the atomic writer, or mkdir's
                message = str(exc) if isinstance(exc, UserError) else f"cannot write {job.target}: {exc.strerror or exc}"
                if exc.errno in FATAL_WRITE_ERRORS:
                    raise UserError(message + "; stopped (the outputs written so far are complete)") from None
                fail(job, message)
                continue
            except Exception as exc:  # noqa: BLE001 - an encoder refusing this one image
                fail(job, f"cannot write {job.target}: {_first_line(exc)}")
                continue
            report.written.append(job.target)
            if on_progress:
                on_progress(1)

    def run(group: list[tuple[Job, torch.Tensor]]) -> None:
        """Translate a same-sized group; if that fails, each image alone, so only a bad one fails."""
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
            writes.append((job, writer.submit(write, job, out)))

    def flush(key: tuple[int, int]) -> None:
        group = pending.pop(key, [])
        if group:
            run(group)
            finish_writes(keep=2 * batch_size)  # bounded: at most two batches of outputs wait for the disk

    def decode(job: Job) -> torch.Tensor:
        return pil_to_tensor(load_image(job.source, translator.channels))

    todo = []
    for job in jobs:
        if job.target.exists() and not overwrite:
            report.skipped.append(job.target)
            if on_progress:
                on_progress(1)
        else:
            todo.append(job)
    with ThreadPoolExecutor(IO_THREADS) as reader, ThreadPoolExecutor(IO_THREADS) as writer:
        try:
            for job, future in prefetched(decode, todo, reader, ahead=batch_size + IO_THREADS):
                try:
                    tensor = future.result()
                except Exception as exc:  # noqa: BLE001 - a decoder failing in any way is this file's problem only
                    fail(job, _describe(job, exc))
                    continue
                key = tuple(tensor.shape[-2:])
                pending.setdefault(key, []).append((job, tensor))
                if len(pending[key]) >= batch_size:
                    flush(key)
            for key in list(pending):
                flush(key)
            finish_writes(keep=0)
        finally:
            for _, future in writes:
                future.cancel()
    return report
