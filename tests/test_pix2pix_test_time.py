"""pix2pix at test time as in the paper: dropout on (fixed, seeded masks) and per-image statistics.

The output must be deterministic for a given image and seed, whatever batch or folder it comes in,
and the same in translate, eval's translator and the exported ONNX graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_FLAGS
from img2img.data.io import load_image, pil_to_tensor
from img2img.modelfile import load_model
from img2img.nets.layers import SeededDropout


def test_seeded_dropout_masks_look_like_independent_coin_flips():
    m = SeededDropout(0.5, seed=0, layer=0).keep_mask(64, 32, 32, torch.device("cpu")).float()
    assert abs(float(m.mean()) - 0.5) < 0.01
    # neighbours along every axis agree about half of the time (a biased or striped mask would not)
    for agree in ((m[:, :, 1:] == m[:, :, :-1]), (m[:, 1:] == m[:, :-1]), (m[1:] == m[:-1])):
        assert abs(float(agree.float().mean()) - 0.5) < 0.02
    # other layers and other seeds draw other masks
    for other in (SeededDropout(0.5, 0, 1), SeededDropout(0.5, 1, 0)):
        assert abs(float((other.keep_mask(64, 32, 32, torch.device("cpu")).float() == m).float().mean()) - 0.5) < 0.02
    # p is honoured, and the mask depends on the position only: a larger map contains the smaller one
    assert abs(float(SeededDropout(0.2, 0, 0).keep_mask(64, 32, 32, torch.device("cpu")).float().mean()) - 0.8) < 0.01
    big = SeededDropout(0.5, 0, 0).keep_mask(64, 40, 37, torch.device("cpu")).float()
    assert torch.equal(big[:, :32, :32], m)


def test_seeded_dropout_scales_kept_units_like_training_dropout():
    x = torch.ones(2, 8, 16, 16)
    y = SeededDropout(0.5, 3, 0)(x)
    assert set(torch.unique(y).tolist()) == {0.0, 2.0}
    assert torch.equal(y[0], y[1])  # the same mask for every image of the batch


@pytest.fixture(scope="module")
def model(tmp_path_factory, paired_dir) -> Path:
    """A pix2pix run with dropout in its generator (ResNet blocks; unet_32 is too shallow for dropout)."""
    from typer.testing import CliRunner

    from img2img.cli import app

    out = tmp_path_factory.mktemp("p2p-dropout") / "run"
    args = ["train", "pix2pix", "--data", paired_dir, "--out", out, "--steps", "2", "--batch-size", "2",
            "--generator", "resnet_2", "--set", "net.d_layers=2", *TINY_FLAGS]
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out / "model.pt"


def _photo(path: Path, seed: int, w: int = 32, h: int = 32) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _read(path: Path) -> torch.Tensor:
    return pil_to_tensor(load_image(path, 3)).float()


def test_model_file_keeps_dropout_on_and_says_so(model, cli):
    mf = load_model(model)
    assert mf.test_dropout_seed == 0  # the run seed (TINY_FLAGS --seed 0)
    result = cli(["info", model])
    assert "test-time dropout" in result.output and "seed 0" in result.output


def test_same_image_same_output_whatever_its_batch_or_folder(model, cli, tmp_path):
    alone = _photo(tmp_path / "alone" / "x.png", seed=1)
    crowd = tmp_path / "crowd"
    _photo(crowd / "x.png", seed=1)
    for k in range(5):
        _photo(crowd / f"other{k}.png", seed=10 + k)
    runs = {"alone_b1": (alone, 1), "crowd_b4": (crowd, 4), "crowd_b1": (crowd, 1)}
    outs = {}
    for name, (src, batch) in runs.items():
        out = tmp_path / name
        result = cli(["translate", model, src, "-o", out, "--batch-size", batch, "--device", "cpu", "--precision", "fp32", "-q"])
        assert result.exit_code == 0, result.output
        outs[name] = _read(out / "x.png")
    assert torch.equal(outs["alone_b1"], outs["crowd_b4"]) and torch.equal(outs["alone_b1"], outs["crowd_b1"])
    # and dropout really is on: --no-test-dropout changes the picture by far more than rounding
    off = tmp_path / "off"
    result = cli(["translate", model, alone, "-o", off, "--no-test-dropout", "--device", "cpu", "--precision", "fp32", "-q"])
    assert result.exit_code == 0, result.output
    gap = float((_read(off / "x.png") - outs["alone_b1"]).abs().mean())
    assert gap > 0.01, f"dropout on vs off differ by only {gap:.4f} (pixel range 0..1)"


def test_dropout_off_is_the_eval_mode_generator(model):
    mf = load_model(model)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    on, off = mf.generator("G"), mf.generator("G", test_dropout=False)
    assert not any(isinstance(m, torch.nn.Dropout) and m.training for m in off.modules())
    assert any(isinstance(m, SeededDropout) for m in on.modules())
    assert not any(isinstance(m, SeededDropout) for m in off.modules())
    with torch.no_grad():
        assert torch.equal(on(x), mf.generator("G")(x))  # deterministic
        assert float((on(x) - off(x)).abs().mean()) > 0.01


def test_onnx_export_keeps_the_same_dropout(model, cli, tmp_path):
    pytest.importorskip("onnxruntime")
    from img2img.export import read_metadata, run_onnx

    out = tmp_path / "p2p.onnx"
    result = cli(["export", model, "-o", out])
    assert result.exit_code == 0, result.output
    assert read_metadata(out)["test_dropout_seed"] == 0
    mf = load_model(model)
    x = torch.rand(3, 3, 36, 44) * 2 - 1  # another batch and size than the traced example
    with torch.no_grad():
        on, off = mf.generator("G")(x), mf.generator("G", test_dropout=False)(x)
    got = run_onnx(out, x)
    assert float((got - on).abs().max()) < 1e-4
    assert float((got - off).abs().mean()) > 0.01
