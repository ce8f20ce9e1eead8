"""Which files to read and where each result goes, decided before anything is written.

Rules: an input may be an image, a video, a folder (its images and videos, not recursive) or a
glob. -o naming an image or video file takes exactly one input of that kind; otherwise -o is a
folder and each output keeps its input's file name (a video in a container OpenCV cannot write
becomes .mp4); -o with any other extension is refused (a folder of such a name is written `-o name.x/`).
No output may be an input, two jobs may not map to one output (across --to domains too), and existing
outputs are kept unless --overwrite.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from img2img.data.io import IMAGE_EXTENSIONS, is_image_path, list_images
from img2img.errors import UserError
from img2img.translate.video import VIDEO_EXTENSIONS, is_video_path, list_videos, output_suffix

DEFAULT_OUT = Path("translated")


@dataclass
class Job:
    source: Path
    target: Path


def expand_inputs(inputs: list[str], failed: list[tuple[Path, str]] | None = None) -> list[Path]:
    """The files the inputs name. A folder that cannot be listed is added to `failed` (when given) and skipped."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            try:
                videos = list_videos(path)
                found += sorted(_images_in(path) + videos) if videos else list_images(path, "input folder")
            except OSError as exc:
                if failed is None:
                    raise UserError(f"cannot read the folder {path}: {exc.strerror or exc}") from None
                failed.append((path, f"{path}: cannot read this folder ({exc.strerror or exc})"))
        elif path.is_file():
            if not is_image_path(path) and not is_video_path(path):
                raise UserError(f"{path} is not an image or video file ({', '.join(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)})")
            found.append(path)
        elif any(ch in item for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True)
                             if (is_image_path(p) or is_video_path(p)) and Path(p).is_file())
            if not matches:
                raise UserError(f"the pattern {item!r} matched no images or videos")
            found += matches
        else:
            raise UserError(f"input not found: {item}")
    if not found:
        raise UserError(failed[0][1] if failed else "no input images given")
    unique: dict[Path, Path] = {}  # a file named twice (a folder and a glob over it) is translated once
    for path in found:
        unique.setdefault(path.resolve(), path)
    return list(unique.values())


def _images_in(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and is_image_path(p) and not p.name.startswith(".")]


def _target_name(src: Path, name_suffix: str) -> str:
    suffix = output_suffix(src) if is_video_path(src) else src.suffix
    return f"{src.stem}{name_suffix}{suffix}"


def _check_output_kind(out: str | Path) -> None:
    """-o is an image or video file by its extension, or a folder; an unknown extension is neither."""
    text, path = str(out), Path(out)
    if path.suffix and not (is_image_path(path) or is_video_path(path)) and not path.is_dir() \
            and not text.endswith(("/", os.sep)):
        raise UserError(f"-o {text}: {path.suffix!r} is not an image or video type ({', '.join(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)}); "
                        f"for a folder of that name write -o {text}/")


def plan_jobs(inputs: list[str], out: str | Path | None, name_suffix: str = "",
              failed: list[tuple[Path, str]] | None = None) -> list[Job]:
    """Input files -> output paths; inputs that cannot be listed go to `failed` (when given)."""
    if out is not None:
        _check_output_kind(out)
    sources = expand_inputs(inputs, failed)
    out_path = Path(out) if out is not None else DEFAULT_OUT
    if out is not None and (is_image_path(out_path) or is_video_path(out_path)) and not out_path.is_dir() \
            and not str(out).endswith(("/", os.sep)):
        kind = "video" if is_video_path(out_path) else "image"
        if len(sources) != 1:
            raise UserError(f"-o {out_path} names one {kind} file, but there are {len(sources)} inputs; give a folder instead")
        if is_video_path(sources[0]) != (kind == "video"):
            raise UserError(f"-o {out_path} names {'a video' if kind == 'video' else 'an image'} file, but the input "
                            f"{sources[0]} is {'an image' if kind == 'video' else 'a video'}")
        jobs = [Job(sources[0], out_path.with_name(out_path.stem + name_suffix + out_path.suffix))]
    else:
        if out_path.exists() and not out_path.is_dir():
            raise UserError(f"-o {out_path} exists and is not a folder")
        jobs = [Job(src, out_path / _target_name(src, name_suffix)) for src in sources]
    check_targets(jobs)
    return jobs


def check_targets(jobs: list[Job], clash_hint: str = "translate them into separate folders") -> None:
    """No output may be an input; no two jobs may share an output."""
    resolved_inputs = {j.source.resolve() for j in jobs}
    seen: dict[Path, Job] = {}
    for job in jobs:
        target = job.target.resolve()
        if target in resolved_inputs:
            raise UserError(f"refusing to write over the input {job.source}; choose another -o")
        if target in seen:
            first = seen[target]
            what = f"{first.source} and {job.source}" if first.source != job.source else f"{job.source} twice"
            raise UserError(f"{what} would both be written to {job.target}; {clash_hint}")
        seen[target] = job


def plan_targets(inputs: list[str], out: str | Path | None, suffixes: list[str],
                 failed: list[tuple[Path, str]] | None = None) -> list[list[Job]]:
    """One job list per output-name suffix (per --to domain), checked together: no output written twice."""
    failed = [] if failed is None else failed
    plans = [plan_jobs(inputs, out, name_suffix=suffix, failed=failed if k == 0 else [])
             for k, suffix in enumerate(suffixes)]
    if len(plans) > 1:
        check_targets([j for jobs in plans for j in jobs],
                      "outputs are named <stem>_<domain>, and these names collide; translate to the clashing domains "
                      "in separate runs (--to DOMAIN -o DIR)")
    return plans


def prepare_targets(jobs: list[Job]) -> None:
    """Create the output folders up front, so an unwritable location fails before any work is done."""
    for folder in sorted({job.target.parent for job in jobs}):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the output folder {folder}: {exc.strerror or exc}") from None
        if not os.access(folder, os.W_OK):
            raise UserError(f"cannot write to the output folder {folder}: permission denied")
