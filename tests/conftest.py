"""Shared fixtures: tiny synthetic folders and tiny-network settings, so every test runs in seconds on a CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from img2img.cli import app
from img2img.data.synthetic import make_paired, make_unpaired

# Tiny tensors gain nothing from intra-op threads, and on a busy 2-core machine OpenMP spin-waiting
# made a 32 px pix2pix step about 25x slower (2.6 s instead of 0.07 s). One thread keeps tests fast.
torch.set_num_threads(1)

# Flags that make any method tiny: 32 px crops, 8 filters, CPU, no per-step sampling.
TINY_FLAGS = ["--image-size", "32", "--ngf", "8", "--ndf", "8", "--device", "cpu", "--seed", "0",
              "--sample-every", "0", "--log-every", "1", "-q"]
TINY_OVERRIDES = {"data.image_size": 32, "net.ngf": 8, "net.ndf": 8, "train.device": "cpu",
                  "train.sample_every": 0, "train.log_every": 1}


def pytest_collection_modifyitems(config, items):
    """Tests marked `cuda` need a GPU: skipped where torch sees none (bench/gpu.sh runs them on one)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run bench/gpu.sh on one)")
    for item in items:
        if item.get_closest_marker("cuda"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def paired_dir(tmp_path_factory) -> Path:
    """Six 64x32 A|B side-by-side images."""
    return make_paired(tmp_path_factory.mktemp("paired") / "train", count=6, size=32)


@pytest.fixture(scope="session")
def unpaired_dirs(tmp_path_factory) -> tuple[Path, Path]:
    """Folders A and B of 32x32 images (B has the same count; tests that need uneven sizes delete some)."""
    return make_unpaired(tmp_path_factory.mktemp("unpaired"), count=6, size=32)


@pytest.fixture
def cli():
    """Run the CLI in-process: cli(["train", ...]) -> click Result (exit_code, output)."""
    runner = CliRunner()

    def invoke(args: list[str]):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke


@pytest.fixture(scope="session")
def random_net_file(tmp_path_factory) -> Path:
    """A random feature net saved as TorchScript, the format --inception accepts (FID tests without Inception)."""
    import warnings

    from img2img.metrics.features import random_features

    path = tmp_path_factory.mktemp("features") / "random_features.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(random_features().net), str(path))
    return path
