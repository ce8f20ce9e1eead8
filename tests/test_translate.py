"""`img2img translate` and `img2img info` on tiny trained models: sizes, names, directions, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from img2img.data.io import load_image, pil_to_tensor, tensor_to_pil
from img2img.translate import Translator
from img2img.translate.translator import crop_padding, pad_to_multiple
from tiny_runs import tiny_run


@pytest.fixture(scope="module")
def models(tmp_path_factory, paired_dir, unpaired_dirs) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("translate_runs")
    return {m: tiny_run(m, base / m, paired_dir, unpaired_dirs) / "model.pt" for m in ("pix2pix", "cyclegan")}


def photo(path: Path, w: int, h: int, seed: int = 0, mode: str = "RGB") -> Path:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    img = Image.fromarray(arr)
    if mode != "RGB":
        img = img.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


@pytest.mark.parametrize("method", ["pix2pix", "cyclegan"])
def test_translate_one_photo_keeps_its_size(cli, models, tmp_path, method):
    src = photo(tmp_path / "photo.png", 75, 53)
    out = tmp_path / "out.png"
    result = cli(["translate", models[method], src, "-o", out, "-q", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    with Image.open(out) as img:
        assert img.size == (75, 53) and img.mode == "RGB"
        got = np.asarray(img)
    # The CLI writes exactly what the library computes (PNG is lossless).
    tr = Translator(models[method], device="cpu")
    expected = np.asarray(tensor_to_pil(tr(pil_to_tensor(load_image(src))[None])[0]))
    assert np.array_equal(got, expected)


def test_pix2pix_unet_pads_to_its_stride_and_crops_back(models):
    tr = Translator(models["pix2pix"], device="cpu")
    assert tr.stride == 32  # unet_32: a 1x1 bottleneck at the 32 px training size
    x = torch.rand(2, 3, 53, 75) * 2 - 1
    padded, pads = pad_to_multiple(x, 32)
    assert padded.shape[-2:] == (64, 96)
    assert torch.equal(crop_padding(padded, pads), x)
    assert tr(x).shape == (2, 3, 53, 75)
    # Batch-independent: per-image normalisation at test time.
    assert torch.allclose(tr(x)[:1], tr(x[:1]), atol=1e-5)


@pytest.mark.parametrize("method", ["pix2pix", "cyclegan"])
def test_translate_folder_keeps_names_and_sizes(cli, models, tmp_path, method):
    inputs = tmp_path / "in"
    sizes = {"a.png": (75, 53), "b.png": (32, 32), "odd.png": (33, 17), "tall.jpg": (21, 64), "gray.png": (40, 29)}
    for n, (name, (w, h)) in enumerate(sizes.items()):
        photo(inputs / name, w, h, seed=n, mode="L" if name.startswith("gray") else "RGB")
    out = tmp_path / "out"
    result = cli(["translate", models[method], inputs, "-o", out, "-q", "--device", "cpu", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(sizes)
    for name, size in sizes.items():
        with Image.open(out / name) as img:
            assert img.size == size, name
            assert img.mode == "RGB"  # a 3-channel model turns a grayscale input into colour


def test_output_onto_the_input_is_refused(cli, models, tmp_path):
    src = photo(tmp_path / "photo.png", 75, 53)
    before = src.read_bytes()
    result = cli(["translate", models["pix2pix"], src, "-o", src, "-q", "--device", "cpu"])
    assert result.exit_code == 2
    assert "refusing to write over the input" in result.output
    assert src.read_bytes() == before
    # The same through a folder: -o pointing at the input folder would overwrite every input.
    folder = src.parent
    result = cli(["translate", models["pix2pix"], folder, "-o", folder, "-q", "--device", "cpu"])
    assert result.exit_code == 2 and src.read_bytes() == before


def test_cyclegan_translates_both_ways(cli, models, tmp_path):
    src = photo(tmp_path / "photo.png", 75, 53)
    outs = {}
    for direction in ("a2b", "b2a"):
        outs[direction] = tmp_path / f"{direction}.png"
        result = cli(["translate", models["cyclegan"], src, "-o", outs[direction], "--direction", direction, "-q", "--device", "cpu"])
        assert result.exit_code == 0, result.output
        with Image.open(outs[direction]) as img:
            assert img.size == (75, 53)
    # Two different generators: the two directions give different images (by far more than 8-bit rounding;
    # two independently initialised tiny generators differ by ~10 grey levels on average here).
    a2b, b2a = (np.asarray(Image.open(outs[d])).astype(np.float64) for d in ("a2b", "b2a"))
    assert np.abs(a2b - b2a).mean() > 2.0


def test_b2a_on_a_one_way_model_is_a_clear_error(cli, models, tmp_path):
    src = photo(tmp_path / "photo.png", 40, 40)
    result = cli(["translate", models["pix2pix"], src, "-o", tmp_path / "x.png", "--direction", "b2a", "-q", "--device", "cpu"])
    assert result.exit_code == 2
    assert "b2a" in result.output and "a2b" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("method,directions", [("pix2pix", "a2b"), ("cyclegan", "a2b, b2a")])
def test_info_prints_method_and_directions(cli, models, method, directions):
    result = cli(["info", models[method]])
    assert result.exit_code == 0, result.output
    assert method in result.output
    assert directions in result.output
    assert "32 px" in result.output


def test_translate_missing_input_and_model(cli, models, tmp_path):
    result = cli(["translate", models["pix2pix"], tmp_path / "nope.png", "-q", "--device", "cpu"])
    assert result.exit_code == 2 and "not found" in result.output
    src = photo(tmp_path / "p.png", 32, 32)
    result = cli(["translate", tmp_path / "missing.pt", src, "-q", "--device", "cpu"])
    assert result.exit_code == 2 and "not found" in result.output
