"""Preprocessing modes (data.preprocess, as the reference's --preprocess) and non-square crops (data.crop_height)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import default_collate

from conftest import TINY_FLAGS
from img2img import config as config_mod
from img2img.config import DataConfig
from img2img.data.cache import CachedBatches, cache_bytes
from img2img.data.datasets import StepBatchSampler, build_dataset
from img2img.data.transforms import PairTransform
from img2img.errors import UserError
from img2img.methods import get_method
from test_resume import assert_identical, load

# (width, height): landscape, portrait, square, and one smaller than the 32x24 crop
MIXED_SIZES = [(80, 40), (40, 90), (64, 64), (30, 20), (100, 52)]


def _picture(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 / w, y * 255 / h, np.full((h, w), 40 * seed % 255)], -1) + rng.integers(0, 30, (h, w, 3))
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def mixed_pairs(tmp_path_factory) -> tuple[Path, Path]:
    """Paired folders (A: the picture, B: its negative) of mixed sizes and aspect ratios."""
    root = tmp_path_factory.mktemp("mixed")
    for side in "AB":
        (root / side).mkdir()
    for k, (w, h) in enumerate(MIXED_SIZES):
        img = _picture(w, h, k)
        img.save(root / "A" / f"{k}.png")
        Image.fromarray(255 - np.asarray(img)).save(root / "B" / f"{k}.png")
    return root / "A", root / "B"


def _dataset(a: Path, b: Path, **data) -> object:
    cfg = config_mod.build_config(get_method("pix2pix"), overrides={
        "data.a": str(a), "data.b": str(b), "net.generator": "resnet_6", "train.steps": 1,
        **{f"data.{k}": v for k, v in data.items()}})
    return build_dataset("paired", cfg.data, "pix2pix", stride=4)


def _round4(x: float) -> int:
    return max(4, round(x / 4) * 4)


# mode -> the (height, width) each image of MIXED_SIZES trains at, with image_size 32, crop_height 24, load_size 40
EXPECTED = {
    "resize_and_crop": lambda w, h: (24, 32),
    "scale_width_and_crop": lambda w, h: (24, 32),
    "crop": lambda w, h: (24, 32),
    "scale_width": lambda w, h: (_round4(max(int(40 * h / w), 24)), 40),
    "none": lambda w, h: (_round4(h), _round4(w)),
}


@pytest.mark.parametrize("mode", sorted(EXPECTED))
def test_each_mode_gives_the_promised_shapes_from_mixed_sizes_alike_streamed_and_cached(mixed_pairs, mode):
    ds = _dataset(*mixed_pairs, preprocess=mode, image_size=32, crop_height=24, load_size=40)
    want = {k: EXPECTED[mode](w, h) for k, (w, h) in enumerate(MIXED_SIZES)}
    sampler = StepBatchSampler(len(ds), 1, 5, 0)
    cached = CachedBatches(ds, sampler, torch.device("cpu"), prefetch=False)
    assert cache_bytes(ds) == sum(3 * 2 * h * w for h, w in (cached.transform.resized_hw(hh, ww) for ww, hh in MIXED_SIZES))
    seen = set()
    for _, keys in zip(range(15), iter(sampler)):
        streamed, got = default_collate([ds[k] for k in keys]), cached.batch(keys)
        index = int(Path(streamed["a_path"][0]).stem)
        seen.add(index)
        assert tuple(streamed["a"].shape[-2:]) == tuple(streamed["b"].shape[-2:]) == want[index], (mode, index)
        assert torch.equal(streamed["a"], got["a"]) and torch.equal(streamed["b"], got["b"])
        # A and B of a pair got the same crop and flip: B is still A's negative (resampling rounds by up to one level)
        assert (streamed["a"] + streamed["b"]).abs().max() < 1.5 / 127.5
    assert seen == set(range(len(MIXED_SIZES)))
    assert ds.training_shapes()["a"] == ({(24, 32)} if "crop" in mode else set(want.values()))


@pytest.mark.parametrize("mode", ["scale_width_and_crop", "crop"])
def test_crop_modes_batch_images_of_mixed_sizes(mixed_pairs, mode):
    ds = _dataset(*mixed_pairs, preprocess=mode, image_size=32, crop_height=24, load_size=40)
    ds.check_shapes(4)
    sampler = StepBatchSampler(len(ds), 4, 1, 0)
    cached = CachedBatches(ds, sampler, torch.device("cpu"), prefetch=False)
    keys = next(iter(sampler))
    assert torch.equal(default_collate([ds[k] for k in keys])["a"], cached.batch(keys)["a"])
    assert cached.batch(keys)["a"].shape == (4, 3, 24, 32)


def test_scale_width_keeps_the_aspect_ratio_of_what_is_in_the_picture():
    """A 30x30 black square in a 120x60 image must stay square (not squashed as resize_and_crop does). The height is
    kept at least the crop's, as the reference does, so the crop here is low enough (16 px) not to force it."""
    img = np.full((60, 120, 3), 255, np.uint8)
    img[15:45, 45:75] = 0
    pil = Image.fromarray(img)
    measured = {}
    for mode in ("scale_width", "resize_and_crop"):
        t = PairTransform(DataConfig(image_size=64, load_size=64, crop_height=16, flip=False, preprocess=mode))
        out = t.resized(pil)
        dark = out[0] < 128
        rows, cols = dark.any(1).nonzero().flatten(), dark.any(0).nonzero().flatten()
        measured[mode] = (int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1), tuple(out.shape[-2:]))
    h, w, shape = measured["scale_width"]
    assert shape == (32, 64)  # 120x60 -> 64 wide, 32 high: 2:1 as the input
    assert abs(h - w) <= 1 and 15 <= w <= 17  # the square stays a square of 16 px
    h, w, shape = measured["resize_and_crop"]
    assert shape == (16, 64) and w >= 1.8 * h  # the default squashes the 2:1 picture to the crop's 4:1: the square is 2:1 wide


def test_whole_image_modes_refuse_batches_of_mixed_shapes_but_take_uniform_ones(mixed_pairs, tmp_path):
    ds = _dataset(*mixed_pairs, preprocess="scale_width", image_size=32, load_size=40)
    with pytest.raises(UserError, match="--batch-size 1"):
        ds.check_shapes(2)
    ds.check_shapes(1)
    with pytest.raises(UserError, match="under the 40 px"):  # the 30x20 image comes out 40x32
        ds.check_shapes(1, min_side=40)
    for side in "AB":
        (tmp_path / side).mkdir()
        for k in range(3):
            _picture(60, 30, k).save(tmp_path / side / f"{k}.png")
    same = _dataset(tmp_path / "A", tmp_path / "B", preprocess="none", image_size=32)
    same.check_shapes(3, min_side=24)
    assert same.training_shapes()["a"] == {(32, 60)}


def test_non_square_crops_train_and_resume_bit_exactly(cli, tmp_path, unpaired_dirs):
    a_dir, b_dir = unpaired_dirs
    flags = ["--a", a_dir, "--b", b_dir, "--crop-height", "24", "--steps", "5", "--pool-size", "2", *TINY_FLAGS]
    a, b = tmp_path / "A", tmp_path / "B"
    for args in ([*flags, "--out", a], [*flags, "--stop-after", "2", "--out", b], ["--resume", "--out", b, "--device", "cpu", "-q"]):
        result = cli(["train", "cyclegan", *args])
        assert result.exit_code == 0, result.output
    ca, cb = load(a / "checkpoint.pt"), load(b / "checkpoint.pt")
    assert ca["step"] == cb["step"] == 5
    assert ca["method"]["extra"]["pool_a"]["images"].shape[-2:] == (24, 32)  # trained on 32x24 crops
    for part in ("nets", "optimizers", "extra"):
        assert_identical(ca["method"][part], cb["method"][part], part)

    # a model trained on non-square crops translates any size, keeping it
    _picture(50, 30, 1).save(tmp_path / "in.png")
    result = cli(["translate", a / "model.pt", tmp_path / "in.png", "-o", tmp_path / "out.png", "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out.png") as out:
        assert out.size == (50, 30)


@pytest.mark.parametrize("mode", ["scale_width", "none"])
def test_whole_image_modes_train_on_mixed_sizes_and_resume_bit_exactly(cli, tmp_path, mixed_pairs, mode):
    """Batch size 1 with images of several shapes: the image pool holds several sizes and is checkpointed as they are."""
    a_dir, b_dir = mixed_pairs
    flags = ["--a", a_dir, "--b", b_dir, "--preprocess", mode, "--load-size", "40", "--crop-height", "16", "--steps", "6", "--pool-size", "3",
             "--set", "net.d_layers=2", *TINY_FLAGS]  # d_layers 2: the 30x20 image (32x20 in mode none) is big enough
    a, b = tmp_path / "A", tmp_path / "B"
    for args in ([*flags, "--out", a], [*flags, "--stop-after", "3", "--out", b], ["--resume", "--out", b, "--device", "cpu", "-q"]):
        result = cli(["train", "cyclegan", *args])
        assert result.exit_code == 0, result.output
    ca, cb = load(a / "checkpoint.pt"), load(b / "checkpoint.pt")
    pool = ca["method"]["extra"]["pool_a"]["images"]
    assert isinstance(pool, list) and len({tuple(p.shape) for p in pool}) > 1  # really mixed sizes
    for part in ("nets", "optimizers", "extra"):
        assert_identical(ca["method"][part], cb["method"][part], part)


def test_settings_that_do_not_fit_the_generator_are_refused(unpaired_dirs):
    a, b = unpaired_dirs
    with pytest.raises(UserError, match="--crop-height 30 does not fit"):
        config_mod.build_config(get_method("cyclegan"), overrides={"data.a": str(a), "data.b": str(b), "data.crop_height": 30})
    with pytest.raises(UserError, match="--load-size 42 does not fit"):
        config_mod.build_config(get_method("cyclegan"), overrides={"data.a": str(a), "data.b": str(b), "data.image_size": 32,
                                                                   "data.load_size": 42, "data.preprocess": "scale_width"})


def test_distancegan_refuses_whole_images_of_several_shapes(cli, tmp_path, mixed_pairs):
    a_dir, b_dir = mixed_pairs
    result = cli(["train", "distancegan", "--a", a_dir, "--b", b_dir, "--preprocess", "none", "--self-distance",
                  "--batch-size", "1", "--steps", "1", "--set", "net.d_layers=2", "--out", tmp_path / "run", *TINY_FLAGS])
    assert result.exit_code == 2 and "pixel by pixel" in result.output, result.output


def test_the_unet_is_sized_for_both_sides_of_a_non_square_crop(paired_dir):
    """'unet' = as deep as the crop allows: 256x144 crops are multiples of 16, so unet_16 (unet_256 would not fit 144)."""
    cfg = config_mod.build_config(get_method("pix2pix"), overrides={"data.data": str(paired_dir), "data.image_size": 256,
                                                                    "data.crop_height": 144})
    m = get_method("pix2pix")(cfg, torch.device("cpu"))
    assert m.arch_g["name"] == "unet_16"
    y = m.G(torch.zeros(1, 3, 144, 256))
    assert y.shape == (1, 3, 144, 256)
    with pytest.raises(UserError, match="--crop-height 144 does not fit the unet_256"):
        config_mod.build_config(get_method("pix2pix"), overrides={"data.data": str(paired_dir), "data.image_size": 256,
                                                                  "data.crop_height": 144, "net.generator": "unet_256"})


def test_info_names_the_crop_a_model_was_trained_on(cli, tmp_path, unpaired_dirs):
    a_dir, b_dir = unpaired_dirs
    result = cli(["train", "cyclegan", "--a", a_dir, "--b", b_dir, "--crop-height", "24", "--preprocess", "crop", "--steps", "1",
                  "--out", tmp_path / "run", *TINY_FLAGS])
    assert result.exit_code == 0, result.output
    info = cli(["info", tmp_path / "run" / "model.pt"])
    assert "32x24 px crops (crop)" in info.output, info.output
