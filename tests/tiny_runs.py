"""A tiny training run through the library (no CLI), for tests that need a trained model.pt."""

from __future__ import annotations

from pathlib import Path

from conftest import TINY_OVERRIDES
from img2img import config as config_mod
from img2img.methods import get_method
from img2img.train import train


def tiny_run(method: str, out: Path, paired_dir: Path, unpaired_dirs: tuple[Path, Path], steps: int = 2, **overrides) -> Path:
    """Train `method` for a few steps with 8-filter nets at 32 px into out; returns out."""
    data = {"data.data": str(paired_dir)} if method == "pix2pix" else {"data.a": str(unpaired_dirs[0]), "data.b": str(unpaired_dirs[1])}
    cfg = config_mod.build_config(get_method(method), None, {**TINY_OVERRIDES, **data, "train.steps": steps, **overrides})
    train(cfg, out, progress=False)
    return out
