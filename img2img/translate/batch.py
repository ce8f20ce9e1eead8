"""Batch conversion of many videos: resumable, failure-tolerant, and splittable across processes.

- Resumable: an output that exists is complete (outputs are renamed into place only when finished,
  see video.convert_video), so a re-run skips it and redoes only what an interruption cut short.
- Failure-tolerant: a file that cannot be converted is reported and the others go on; the caller
  turns any failure into a non-zero exit code.
- Splittable: `--shard I/N` and torchrun's RANK/WORLD_SIZE pick a share of the inputs, taken from
  the sorted input list round-robin, so N processes (or N array jobs, or N GPUs per node times M
  nodes) cover every input exactly once without talking to each other.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from img2img.errors import UserError
from img2img.translate.images import TranslateReport
from img2img.translate.outputs import Job, check_targets
from img2img.translate.temporal import TemporalFilter
from img2img.translate.video import VideoInfo, VideoResult, convert_video

_FRAME_FILE = re.compile(r"\d{6,}\.png")


# ----------------------------------------------------------------------------------------------
# Sharding.

def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' with 0 <= I < N -> (I, N)."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m:
        raise UserError(f"--shard {text!r}: expected I/N, e.g. --shard 0/4 (shards are numbered from 0)")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1 or index >= count:
        raise UserError(f"--shard {text}: the index must be in 0..{count - 1} (shards are numbered from 0)")
    return index, count


def shard_spec(shard: str | None, environ: Mapping[str, str] = os.environ) -> tuple[int, int]:
    """The share this process takes: --shard I/N combined with torchrun's RANK/WORLD_SIZE.

    Under torchrun each of the WORLD_SIZE processes of job-array task I takes shard I*WORLD_SIZE+RANK
    of N*WORLD_SIZE, so array tasks and GPUs can be combined.
    """
    index, count = parse_shard(shard) if shard else (0, 1)
    try:
        rank, world = int(environ.get("RANK", 0)), int(environ.get("WORLD_SIZE", 1))
    except ValueError:
        raise UserError("RANK and WORLD_SIZE must be integers (as torchrun sets them)") from None
    if world < 1 or not 0 <= rank < world:
        raise UserError(f"RANK={rank} is not within WORLD_SIZE={world}")
    return index * world + rank, count * world


def select_shard(jobs: list[Job], index: int, count: int) -> list[Job]:
    """Every count-th job of the list sorted by input path, starting at index: disjoint, and together complete."""
    if count == 1:
        return jobs
    return sorted(jobs, key=lambda j: str(j.source))[index::count]


def local_device(device: str, environ: Mapping[str, str] = os.environ) -> str:
    """Under torchrun, `auto`/`cuda` become this process's own GPU (cuda:LOCAL_RANK)."""
    local = environ.get("LOCAL_RANK")
    if local is None or device not in ("auto", "cuda"):
        return device
    import torch

    if not torch.cuda.is_available():
        return device
    return f"cuda:{int(local) % torch.cuda.device_count()}"


# ----------------------------------------------------------------------------------------------
# Frame folders.

def frames_dir_jobs(jobs: list[Job], frames_dir: Path, single: bool) -> list[Job]:
    """One video -> its frames directly in frames_dir; several -> frames_dir/<stem>/ each."""
    out = [Job(j.source, frames_dir if single else frames_dir / j.source.stem) for j in jobs]
    check_targets(out)
    return out


def _frames_complete(folder: Path) -> bool:
    """A folder of our frames only (renamed into place when complete); one holding anything else is not ours."""
    return folder.is_dir() and any(folder.iterdir()) and not _other_files(folder)


def _other_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if not (p.is_file() and _FRAME_FILE.fullmatch(p.name))]


def _clear_frames(folder: Path) -> None:
    """Empty a frame folder for --overwrite, refusing when it holds anything this tool did not write."""
    _refuse_other_files(folder)
    for p in folder.iterdir():
        p.unlink()


def _refuse_other_files(folder: Path) -> None:
    others = _other_files(folder)
    if others:
        raise UserError(f"{folder} holds files other than frames ({others[0].name}, ...); "
                        "give --frames-dir a new or empty folder")


# ----------------------------------------------------------------------------------------------
# The batch loop.

@dataclass
class VideoBatchReport(TranslateReport):
    results: list[VideoResult] = field(default_factory=list)
    audio_dropped: list[tuple[Path, str]] = field(default_factory=list)


def translate_videos(translator, jobs: list[Job], *, frames: bool = False, batch_size: int = 8,
                     size: int | None = None, temporal: dict | None = None, overwrite: bool = False,
                     audio: bool = True, crf: int | None = None,
                     on_video: Callable[[int, Job, VideoInfo], None] | None = None,
                     on_frames: Callable[[int], None] | None = None,
                     on_done: Callable[[Job, VideoResult | None, str | None], None] | None = None) -> VideoBatchReport:
    """Convert each job's video; skip finished targets, report failures and go on.

    temporal: keyword arguments for a TemporalFilter (a new one per video), or None for none.
    on_video(i, job, info) when a video starts; on_frames(n) as frames are written;
    on_done(job, result, error) after each job (result None when skipped or failed).
    """
    report = VideoBatchReport()
    for i, job in enumerate(jobs):
        if frames and job.target.is_dir() and _other_files(job.target):
            try:
                _refuse_other_files(job.target)
            except UserError as exc:
                _failed(report, job, str(exc), on_done)
                continue
        done = _frames_complete(job.target) if frames else job.target.exists()
        if done and not overwrite:
            report.skipped.append(job.target)
            if on_done:
                on_done(job, None, None)
            continue
        try:
            if frames and job.target.is_dir():
                _clear_frames(job.target)
            elif not frames and job.target.is_dir():
                raise UserError(f"{job.target} is a folder; cannot write the video there")
            result = convert_video(
                translator, job.source, job.target, frames=frames, batch_size=batch_size, size=size,
                temporal=TemporalFilter(**temporal) if temporal is not None else None, audio=audio, crf=crf,
                on_start=(lambda info, i=i, job=job: on_video(i, job, info)) if on_video else None,
                on_frames=on_frames)
        except UserError as exc:
            _failed(report, job, str(exc), on_done)
            continue
        except Exception as exc:  # noqa: BLE001 - OSError, cv2.error, ...: one bad file must not stop the batch
            first = str(exc).splitlines()[0][:200] if str(exc) else ""
            _failed(report, job, f"{job.source}: {type(exc).__name__}: {first}", on_done)
            continue
        report.written.append(job.target)
        report.results.append(result)
        if result.audio.startswith("dropped"):
            report.audio_dropped.append((job.source, result.audio))
        if on_done:
            on_done(job, result, None)
    return report


def _failed(report: VideoBatchReport, job: Job, message: str, on_done) -> None:
    report.failed.append((job.source, message))
    if on_done:
        on_done(job, None, message)


__all__ = ["parse_shard", "shard_spec", "select_shard", "local_device", "frames_dir_jobs", "translate_videos",
           "VideoBatchReport"]
