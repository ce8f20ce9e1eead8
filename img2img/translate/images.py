"""Image and folder translation: decode, batch same-sized images, translate, write atomically."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

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


def translate_files(translator: Translator, jobs: list[Job], *, batch_size: int = 8, overwrite: bool = False,
                    on_progress: Callable[[int], None] | None = None,
                    on_error: Callable[[Path, str], None] | None = None) -> TranslateReport:
    """Translate each job's source into its target. A bad input is reported and the rest go on."""
    report = TranslateReport()
    pending: dict[tuple[int, int], list[tuple[Job, torch.Tensor]]] = {}

    def flush(key: tuple[int, int]) -> None:
        group = pending.pop(key, [])
        if not group:
            return
        outputs = translator(torch.stack([t for _, t in group]))
        for (job, _), out in zip(group, outputs):
            job.target.parent.mkdir(parents=True, exist_ok=True)
            try:
                save_image_atomic(tensor_to_pil(out), job.target)
            except OSError as exc:
                raise UserError(f"cannot write {job.target}: {exc.strerror or exc}") from None
            report.written.append(job.target)
        if on_progress:
            on_progress(len(group))

    for job in jobs:
        if job.target.exists() and not overwrite:
            report.skipped.append(job.target)
            if on_progress:
                on_progress(1)
            continue
        try:
            tensor = pil_to_tensor(load_image(job.source, translator.channels))
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
    return report
