"""Which files to read and where each result goes, decided before anything is written.

Rules: an input may be an image, a folder (its images, not recursive) or a glob. -o naming an image
file takes exactly one input; otherwise -o is a folder and each output keeps its input's file
name. No output may be an input, two inputs may not map to one output, and existing outputs are
kept unless --overwrite.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from img2img.data.io import IMAGE_EXTENSIONS, is_image_path, list_images
from img2img.errors import UserError

DEFAULT_OUT = Path("translated")


@dataclass
class Job:
    source: Path
    target: Path


def expand_inputs(inputs: list[str]) -> list[Path]:
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found += list_images(path, "input folder")
        elif path.is_file():
            if not is_image_path(path):
                raise UserError(f"{path} is not an image file ({', '.join(IMAGE_EXTENSIONS)})")
            found.append(path)
        elif any(ch in item for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True) if is_image_path(p) and Path(p).is_file())
            if not matches:
                raise UserError(f"the pattern {item!r} matched no images")
            found += matches
        else:
            raise UserError(f"input not found: {item}")
    if not found:
        raise UserError("no input images given")
    return found


def plan_jobs(inputs: list[str], out: str | Path | None, name_suffix: str = "") -> list[Job]:
    sources = expand_inputs(inputs)
    out_path = Path(out) if out is not None else DEFAULT_OUT
    if out is not None and is_image_path(out_path) and not out_path.is_dir():
        if len(sources) != 1:
            raise UserError(f"-o {out_path} names one image file, but there are {len(sources)} inputs; give a folder instead")
        jobs = [Job(sources[0], out_path.with_name(out_path.stem + name_suffix + out_path.suffix))]
    else:
        if out_path.exists() and not out_path.is_dir():
            raise UserError(f"-o {out_path} exists and is not a folder")
        jobs = [Job(src, out_path / f"{src.stem}{name_suffix}{src.suffix}") for src in sources]
    resolved_inputs = {s.resolve() for s in sources}
    seen: dict[Path, Path] = {}
    for job in jobs:
        target = job.target.resolve()
        if target in resolved_inputs:
            raise UserError(f"refusing to write over the input {job.source}; choose another -o")
        if target in seen:
            raise UserError(f"{seen[target]} and {job.source} would both be written to {job.target}; translate them into separate folders")
        seen[target] = job.source
    return jobs
