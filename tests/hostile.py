"""Helpers for the hostile-input tests: what every case asserts, and tiny model files built once.

Every case drives the CLI and checks the same four things a user cares about: the exit code, one
clear "error:" / "failed:" line (no traceback), nothing of the user's files changed, and no partial
file under a final name. Nothing here is committed as a binary: every input is generated.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from typer.testing import CliRunner

from conftest import TINY_FLAGS
from img2img.cli import app
from img2img.data.synthetic import make_unpaired

TEMPORARY_SUFFIXES = (".tmp", ".part")


def invoke(args: list) -> "object":
    """Run the CLI in-process; an exception escaping the CLI fails the test (it would be a traceback)."""
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def snapshot(*roots: Path) -> dict[str, tuple[str, int]]:
    """{path: (sha256, mode)} of every file under roots: compare before and after to prove nothing changed."""
    state = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for p in files:
            state[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode)
    return state


def lines_starting(result, prefix: str) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith(prefix)]


def assert_refused(result, *needles: str, code: int = 2) -> str:
    """Exit `code`, no traceback, exactly one error line, holding every needle; returns that line."""
    assert "Traceback" not in result.output, result.output
    assert result.exit_code == code, result.output
    errors = lines_starting(result, "error:")
    assert len(errors) == 1, result.output
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def assert_some_failed(result, failed_names: list[str], written: Path, expected_written: list[str]) -> None:
    """Exit 1, one 'failed:' line per bad item naming it, and exactly the good outputs written (complete)."""
    assert "Traceback" not in result.output, result.output
    assert result.exit_code == 1, result.output
    failed = lines_starting(result, "failed:")
    assert len(failed) == len(failed_names), result.output
    for name in failed_names:
        assert sum(name in line for line in failed) == 1, (name, failed)
    assert sorted(p.name for p in written.iterdir()) == sorted(expected_written)
    assert_no_partial_files(written)


def assert_no_partial_files(*folders: Path) -> None:
    """No temporary file left behind, and every image under a final name decodes completely."""
    for folder in folders:
        if not folder.exists():
            continue
        for p in (folder.rglob("*") if folder.is_dir() else [folder]):
            assert not p.name.endswith(TEMPORARY_SUFFIXES), f"temporary file left: {p}"
            if p.is_file() and p.suffix.lower() in (".png", ".jpg"):
                with Image.open(p) as img:
                    img.load()


def noise_image(path: Path, width: int, height: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(path)
    return path


_MODELS: dict[str, Path] = {}


def tiny_model(tmp_path_factory, kind: str = "cyclegan") -> Path:
    """A 1-step model file with 8-filter nets, trained once per session: 'cyclegan', or 'stargan_clash'
    (StarGAN with domains 'b_c' and 'c', whose --to all names can collide)."""
    if kind in _MODELS:
        return _MODELS[kind]
    root = tmp_path_factory.mktemp(f"model_{kind}")
    if kind == "cyclegan":
        a, b = make_unpaired(root / "data", count=2, size=32)
        args = ["train", "cyclegan", "--a", a, "--b", b, "--generator", "resnet_2"]
    elif kind == "stargan_clash":
        for k, name in enumerate(("b_c", "c")):
            for n in range(2):
                noise_image(root / "data" / name / f"{name}{n}.png", 32, 32, seed=10 * k + n)
        args = ["train", "stargan", "--data", root / "data", "--generator", "resnet_1", "--n-critic", "1",
                "--batch-size", "2"]
    else:
        raise ValueError(kind)
    result = invoke([*args, "--steps", "1", "--out", root / "run", *TINY_FLAGS])
    assert result.exit_code == 0, result.output
    _MODELS[kind] = root / "run" / "model.pt"
    return _MODELS[kind]


def model_payload(model: Path) -> dict:
    return torch.load(model, map_location="cpu", weights_only=True)


def umask_mode(umask: int) -> int:
    return 0o666 & ~umask


class umask:
    """with umask(0o002): ... sets the process umask for the block."""

    def __init__(self, mask: int):
        self.mask = mask

    def __enter__(self):
        self.previous = os.umask(self.mask)
        return self

    def __exit__(self, *exc):
        os.umask(self.previous)
