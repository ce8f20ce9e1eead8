"""Image and folder translation: decode, batch same-sized images, translate, write atomically."""

from __future__ import annotations

import collections
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import torch

from img2img.data.io import load_image, pil_to_tensor, save_image_atomic, tensor_to_pil
from img2img.errors import UserError
from img2img.translate.outputs import Job
from img2img.translate.translator import Translator


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


def translate_files(translator: Translator, jobs: list[Job], *, batch_size: int = 8, overwrite: bool = False,
                    on_progress: Callable[[int], None] | None = None,
                    on_error: Callable[[Path, str], None] | None = None) -> TranslateReport:
    """Translate each job's source into its target. A bad input is reported and the rest go on.

    Decoding runs ahead and encoding behind the model on IO_THREADS threads, as for videos, so the
    model rarely waits for image I/O; outputs are still written and reported in input order.
    """
    report = TranslateReport()
    pending: dict[tuple[int, int], list[tuple[Job, torch.Tensor]]] = {}
    writes: collections.deque = collections.deque()  # (job, future of the write, batch it ends or 0)

    def write(job: Job, out: torch.Tensor) -> None:
        job.target.parent.mkdir(parents=True, exist_ok=True)
        save_image_atomic(tensor_to_pil(out), job.target)

    def finish_writes(keep: int) -> None:
        while len(writes) > keep:
            job, future, batch_done = writes.popleft()
            try:
                future.result()
            except OSError as exc:
                raise UserError(f"cannot write {job.target}: {exc.strerror or exc}") from None
            report.written.append(job.target)
            if batch_done and on_progress:
                on_progress(batch_done)

    def flush(key: tuple[int, int]) -> None:
        group = pending.pop(key, [])
        if not group:
            return
        outputs = translator(torch.stack([t for _, t in group]))
        for i, ((job, _), out) in enumerate(zip(group, outputs)):
            writes.append((job, writer.submit(write, job, out), len(group) if i == len(group) - 1 else 0))
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
                except UserError as exc:
                    report.failed.append((job.source, str(exc)))
                    if on_error:
                        on_error(job.source, str(exc))
                    if on_progress:
                        on_progress(1)
                    continue
                key = tuple(tensor.shape[-2:])
                pending.setdefault(key, []).append((job, tensor))
                if len(pending[key]) >= batch_size:
                    flush(key)
            for key in list(pending):
                flush(key)
            finish_writes(keep=0)
        finally:
            for _, future, _ in writes:
                future.cancel()
    return report
