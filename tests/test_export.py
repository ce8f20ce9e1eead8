"""img2img export: ONNX and torch.export (.pt2) files that match PyTorch at any batch and image size.

The `dev` extra brings onnx, onnxscript and onnxruntime, so these tests always run (no skips).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import torch

from conftest import TINY_FLAGS
from img2img.export import read_metadata, run_onnx, run_pt2
from img2img.methods import METHODS
from img2img.modelfile import load_model
from img2img.nets import generator_stride

TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def domains_dir(unpaired_dirs, tmp_path_factory) -> Path:
    """Two domain sub-folders (StarGAN's layout), copied from the unpaired A and B folders."""
    root = tmp_path_factory.mktemp("domains")
    for d in unpaired_dirs:
        shutil.copytree(d, root / d.name)
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory, paired_dir, unpaired_dirs, domains_dir):
    """method -> model.pt of a 1-step tiny run, trained on demand through the CLI."""
    from typer.testing import CliRunner

    from img2img.cli import app

    data = {"paired": ["--data", paired_dir], "unpaired": ["--a", unpaired_dirs[0], "--b", unpaired_dirs[1]],
            "domains": ["--data", domains_dir]}
    root, cache = tmp_path_factory.mktemp("export-runs"), {}

    def get(method: str) -> Path:
        if method not in cache:
            kind = METHODS[method].dataset_kind
            if kind not in data:
                pytest.fail(f"no tiny data for dataset kind {kind!r} of {method}; add it to this fixture")
            args = ["train", method, *data[kind], "--out", root / method, "--steps", "1", "--batch-size", "2",
                    "--set", "net.d_layers=2", *TINY_FLAGS]
            result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
            assert result.exit_code == 0, result.output
            cache[method] = root / method / "model.pt"
        return cache[method]

    return get


def _reference(model_path: Path, direction: str | None, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    mf = load_model(model_path)
    direction = direction or ("a2b" if "a2b" in mf.directions else next(iter(mf.directions)))
    net = mf.generator(mf.directions[direction]["generator"])
    with torch.no_grad():
        return net(x, cond) if cond is not None else net(x)


def _inputs(model_path: Path, batch: int, h: int, w: int, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    mf = load_model(model_path)
    arch = next(iter(mf.data["generators"].values()))["arch"]
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, arch["in_channels"], h, w, generator=g) * 2 - 1
    n = arch.get("cond_channels", 0)
    cond = torch.eye(n)[torch.arange(batch) % n] if n else None
    return x, cond


def _two_sizes(model_path: Path) -> list[tuple[int, int, int]]:
    """(batch, H, W) pairs unlike the traced example (batch 2, 2x2 stride blocks): other batches, non-square."""
    mf = load_model(model_path)
    s = generator_stride(next(iter(mf.data["generators"].values()))["arch"]["name"])
    k = max(1, 32 // s)
    return [(1, s * k, s * 2 * k), (3, s * (k + 1), s * k)]


DIRECTION = {"cyclegan": "b2a"}  # one export goes through --direction; the rest use the default


@pytest.mark.parametrize("method", sorted(METHODS))
def test_onnx_matches_pytorch_at_two_sizes(method, trained, cli, tmp_path):
    model = trained(method)
    direction = DIRECTION.get(method)
    out = tmp_path / f"{method}.onnx"
    result = cli(["export", model, "-o", out, *(["--direction", direction] if direction else [])])
    assert result.exit_code == 0, result.output
    assert "max abs difference" in result.output and "ok" in result.output
    meta = read_metadata(out)
    conditional = meta["inputs"] == ["x", "cond"]
    assert conditional == (method == "stargan")
    for batch, h, w in _two_sizes(model):
        x, cond = _inputs(model, batch, h, w, seed=h * w)
        got = run_onnx(out, x, cond)
        expected = _reference(model, direction, x, cond)
        assert got.shape == expected.shape == x.shape
        assert float((got - expected).abs().max()) < TOLERANCE
    if direction == "b2a":  # --direction picked the other generator
        assert meta["generator"] == "G_BA"
        assert float((got - _reference(model, "a2b", x, cond)).abs().max()) > TOLERANCE


@pytest.mark.parametrize("method", ["pix2pix", "stargan"])
def test_pt2_program_matches_pytorch(method, trained, cli, tmp_path):
    """U-Net with per-image BatchNorm (pix2pix) and a conditional ResNet (StarGAN) as torch.export programs."""
    if method not in METHODS:
        pytest.skip(f"{method} is not registered")
    model = trained(method)
    out = tmp_path / f"{method}.pt2"
    result = cli(["export", model, "-o", out])
    assert result.exit_code == 0, result.output
    assert read_metadata(out)["method"] == method
    for batch, h, w in _two_sizes(model):
        x, cond = _inputs(model, batch, h, w, seed=1)
        assert float((run_pt2(out, x, cond) - _reference(model, None, x, cond)).abs().max()) < TOLERANCE


def test_export_refuses_bad_requests(trained, cli, tmp_path):
    model = trained("pix2pix")
    result = cli(["export", model, "-o", tmp_path / "model.bin"])
    assert result.exit_code == 2 and ".onnx or .pt2" in result.output
    result = cli(["export", model, "-o", tmp_path / "m.onnx", "--direction", "b2a"])
    assert result.exit_code == 2 and "no direction 'b2a'" in result.output
    assert not (tmp_path / "m.onnx").exists()


def test_onnx_without_the_extra_says_what_to_install(trained, cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    result = cli(["export", trained("pix2pix"), "-o", tmp_path / "m.onnx"])
    assert result.exit_code == 2 and 'pip install "img2img[onnx]"' in result.output


def test_onnx_label_input_moves_the_output_as_pytorch_does(trained, cli, tmp_path):
    """The exported StarGAN takes its label as a graph input: changing it changes the onnxruntime output
    by a large share of the output's scale, and each output matches PyTorch's for the same label."""
    model = trained("stargan")
    out = tmp_path / "stargan.onnx"
    assert cli(["export", model, "-o", out]).exit_code == 0
    x, _ = _inputs(model, 4, 32, 32, seed=3)
    n = len(load_model(model).data["domains"])
    outputs = []
    for k in range(n):
        cond = torch.eye(n)[[k] * len(x)]
        got = run_onnx(out, x, cond)
        assert float((got - _reference(model, None, x, cond)).abs().max()) < TOLERANCE
        outputs.append(got)
    assert float((outputs[0] - outputs[1]).abs().mean() / outputs[0].abs().mean()) > 0.05
