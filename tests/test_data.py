"""Data layer: pair alignment under joint augmentation, folder layouts, image decoding, step-exact sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from img2img.config import DataConfig
from img2img.data.datasets import (PairedABDataset, PairedFoldersDataset, StepBatchSampler, UnpairedDataset,
                                   build_dataset)
from img2img.data.io import image_size, load_image
from img2img.data.transforms import PairTransform
from img2img.errors import UserError


def noise_image(w: int, h: int, seed: int) -> np.ndarray:
    """Random RGB content: any spatial misalignment (crop offset, flip) changes it."""
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def bgr(x: torch.Tensor) -> torch.Tensor:
    """The pixelwise f used for B = f(A): the channel order reversed (exact under resize/crop/flip)."""
    return x.flip(0)


def write_png(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


# ----------------------------------------------------------------------------- joint augmentation

def test_pair_transform_applies_identical_crop_and_flip():
    cfg = DataConfig(image_size=32, load_size=44)
    transform = PairTransform(cfg)
    arr = noise_image(50, 40, seed=1)
    a_img, b_img = Image.fromarray(arr), Image.fromarray(arr[:, :, ::-1].copy())
    outputs = set()
    for seed in range(40):
        torch.manual_seed(seed)
        a, b = transform.pair(a_img, b_img)
        assert a.shape == b.shape == (3, 32, 32)
        assert torch.equal(b, bgr(a)), f"seed {seed}: A and B were augmented differently"
        outputs.add(a.numpy().tobytes())
    # The check above only means something if the augmentation really varies between seeds.
    assert len(outputs) > 10


def test_pair_transform_flips_both_or_neither():
    """Without cropping (load_size == image_size) each result is the resized image or its mirror."""
    cfg = DataConfig(image_size=32, load_size=32)
    transform = PairTransform(cfg)
    arr = noise_image(32, 32, seed=2)
    a_img, b_img = Image.fromarray(arr), Image.fromarray(arr[:, :, ::-1].copy())
    plain = torch.from_numpy(arr).permute(2, 0, 1).float().div(127.5).sub(1)
    seen = {"plain": 0, "mirrored": 0}
    for seed in range(30):
        torch.manual_seed(seed)
        a, b = transform.pair(a_img, b_img)
        assert torch.equal(b, bgr(a))
        if torch.allclose(a, plain, atol=1e-5):
            seen["plain"] += 1
        elif torch.allclose(a, plain.flip(-1), atol=1e-5):
            seen["mirrored"] += 1
        else:
            pytest.fail("output is neither the image nor its mirror")
    assert seen["plain"] and seen["mirrored"], seen


def test_no_flip_option_never_mirrors():
    cfg = DataConfig(image_size=32, load_size=32, flip=False)
    transform = PairTransform(cfg)
    arr = noise_image(32, 32, seed=3)
    plain = torch.from_numpy(arr).permute(2, 0, 1).float().div(127.5).sub(1)
    for seed in range(10):
        torch.manual_seed(seed)
        assert torch.allclose(transform.single(Image.fromarray(arr)), plain, atol=1e-5)


def test_paired_ab_dataset_splits_left_a_right_b_and_stays_aligned(tmp_path):
    folder = tmp_path / "ab"
    for n in range(3):
        left = noise_image(40, 40, seed=10 + n)
        write_png(folder / f"{n}.png", np.concatenate([left, left[:, :, ::-1]], axis=1))
    # A marker image: left half black, right half white, to see which side becomes which.
    write_png(folder / "z_marker.png", np.concatenate([np.zeros((40, 40, 3), np.uint8), np.full((40, 40, 3), 255, np.uint8)], 1))
    ds = PairedABDataset(folder, DataConfig(image_size=32, load_size=36))
    assert len(ds) == 4
    marker = ds[(3, 3, 0)]
    assert torch.all(marker["a"] == -1) and torch.all(marker["b"] == 1)
    crops = set()
    for seed in range(30):
        item = ds[(seed % 3, seed % 3, seed)]
        assert item["a"].shape == item["b"].shape == (3, 32, 32)
        assert torch.equal(item["b"], bgr(item["a"])), f"seed {seed}: pair misaligned"
        crops.add(item["a"].numpy().tobytes())
    assert len(crops) > 10


def test_paired_dataset_is_a_pure_function_of_the_key(paired_dir):
    ds = PairedABDataset(paired_dir, DataConfig(image_size=32))
    torch.manual_seed(0)
    first = ds[(1, 1, 77)]
    torch.manual_seed(999)  # the global RNG must not matter ...
    again = ds[(1, 1, 77)]
    assert torch.equal(first["a"], again["a"]) and torch.equal(first["b"], again["b"])
    state = torch.get_rng_state()
    ds[(2, 2, 5)]
    assert torch.equal(state, torch.get_rng_state())  # ... and loading must not consume it


def test_paired_folders_dataset_stays_aligned(tmp_path):
    for n in range(3):
        arr = noise_image(37, 45, seed=20 + n)
        write_png(tmp_path / "A" / f"img{n}.png", arr)
        write_png(tmp_path / "B" / f"img{n}.png", arr[:, :, ::-1].copy())
    ds = PairedFoldersDataset(tmp_path / "A", tmp_path / "B", DataConfig(image_size=32))
    assert [p.name for p in ds.a_files] == [p.name for p in ds.b_files] == ["img0.png", "img1.png", "img2.png"]
    for seed in range(30):
        item = ds[(seed % 3, 0, seed)]
        assert Path(item["a_path"]).stem == Path(item["b_path"]).stem
        assert torch.equal(item["b"], bgr(item["a"])), f"seed {seed}: pair misaligned"


def test_paired_folders_match_by_stem_across_extensions(tmp_path):
    arr = noise_image(32, 32, seed=4)
    write_png(tmp_path / "A" / "x.png", arr)
    (tmp_path / "B").mkdir()
    Image.fromarray(arr).save(tmp_path / "B" / "x.bmp")
    ds = build_dataset("paired", DataConfig(a=str(tmp_path / "A"), b=str(tmp_path / "B"), image_size=32), "pix2pix")
    assert isinstance(ds, PairedFoldersDataset) and ds.b_files[0].name == "x.bmp"


def test_paired_folders_with_unmatched_stems_name_the_files(tmp_path):
    for name in ("0001", "0002", "only_in_a"):
        write_png(tmp_path / "A" / f"{name}.png", noise_image(32, 32, 0))
    for name in ("0001", "0002", "only_in_b"):
        write_png(tmp_path / "B" / f"{name}.png", noise_image(32, 32, 0))
    with pytest.raises(UserError) as err:
        PairedFoldersDataset(tmp_path / "A", tmp_path / "B", DataConfig(image_size=32))
    assert "only_in_a" in str(err.value) and "only_in_b" in str(err.value)
    assert "0001" not in str(err.value)


def test_pair_of_different_sizes_is_refused(tmp_path):
    write_png(tmp_path / "A" / "p.png", noise_image(32, 32, 0))
    write_png(tmp_path / "B" / "p.png", noise_image(40, 32, 0))
    with pytest.raises(UserError, match="differs in size"):
        PairedFoldersDataset(tmp_path / "A", tmp_path / "B", DataConfig(image_size=32))


def test_build_dataset_flags(paired_dir, unpaired_dirs):
    a, b = unpaired_dirs
    assert isinstance(build_dataset("paired", DataConfig(data=str(paired_dir)), "pix2pix"), PairedABDataset)
    assert isinstance(build_dataset("unpaired", DataConfig(a=str(a), b=str(b)), "cyclegan"), UnpairedDataset)
    with pytest.raises(UserError, match="--data"):
        build_dataset("paired", DataConfig(), "pix2pix")
    with pytest.raises(UserError, match="not both"):
        build_dataset("paired", DataConfig(data=str(paired_dir), a=str(a), b=str(b)), "pix2pix")
    with pytest.raises(UserError, match="--a DIR --b DIR"):
        build_dataset("unpaired", DataConfig(data=str(paired_dir)), "cyclegan")


# ----------------------------------------------------------------------------- unpaired data

def test_unpaired_folders_of_different_sizes_draw_b_independently(tmp_path):
    for n in range(6):
        write_png(tmp_path / "A" / f"a{n}.png", noise_image(32, 32, n))
    for n in range(3):
        write_png(tmp_path / "B" / f"b{n}.png", noise_image(36, 30, 100 + n))  # other size, other count
    ds = build_dataset("unpaired", DataConfig(a=str(tmp_path / "A"), b=str(tmp_path / "B"), image_size=32), "cyclegan")
    assert len(ds) == 6 and ds.n_b == 3
    sampler = StepBatchSampler(len(ds), batch_size=2, seed=0, n_b=ds.n_b)
    it = iter(sampler)
    partners_of: dict[int, set[int]] = {}
    b_used = set()
    for _ in range(30):  # ten epochs
        for key in next(it):
            i, j, _seed = key
            assert 0 <= i < 6 and 0 <= j < 3
            partners_of.setdefault(i, set()).add(j)
            item = ds[key]
            assert item["a"].shape == item["b"].shape == (3, 32, 32)
            assert Path(item["b_path"]).parent.name == "B"
            b_used.add(Path(item["b_path"]).name)
    assert b_used == {"b0.png", "b1.png", "b2.png"}
    # Independent draws: an A image does not always meet the same B image.
    assert sum(len(s) > 1 for s in partners_of.values()) >= 4


def test_unpaired_dataset_augments_a_and_b_separately(tmp_path):
    arr = noise_image(40, 40, seed=5)
    write_png(tmp_path / "A" / "x.png", arr)
    write_png(tmp_path / "B" / "x.png", arr)
    ds = UnpairedDataset(tmp_path / "A", tmp_path / "B", DataConfig(image_size=32, load_size=40))
    # same picture, different random crops/flips: no pairing is implied (noise crops that differ are
    # ~0.6 apart on average in [-1, 1]; a shared crop would be 0)
    differ = sum(float((ds[(0, 0, s)]["a"] - ds[(0, 0, s)]["b"]).abs().mean()) > 0.1 for s in range(10))
    assert differ >= 8


# ----------------------------------------------------------------------------- decoding

def _decode(path: Path, channels: int = 3):
    img = load_image(path, channels)
    return img, np.asarray(img)


def test_load_grayscale_as_rgb_and_as_one_channel(tmp_path):
    gray = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (7, 1))  # 25 x 7
    path = tmp_path / "g.png"
    Image.fromarray(gray, mode="L").save(path)
    img, arr = _decode(path)
    assert img.mode == "RGB" and img.size == (25, 7) and arr.shape == (7, 25, 3)
    assert np.array_equal(arr[:, :, 0], gray) and np.array_equal(arr[:, :, 1], gray)
    img1, arr1 = _decode(path, channels=1)
    assert img1.mode == "L" and arr1.shape == (7, 25) and np.array_equal(arr1, gray)


def test_load_rgba_composites_on_white(tmp_path):
    rgba = np.zeros((6, 9, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :4, 3] = 255  # opaque red-ish on the left, fully transparent on the right
    path = tmp_path / "a.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    img, arr = _decode(path)
    assert img.mode == "RGB" and img.size == (9, 6)
    assert tuple(arr[0, 0]) == (200, 0, 0)
    assert tuple(arr[0, 8]) == (255, 255, 255)
    assert _decode(path, channels=1)[1].shape == (6, 9)


def test_load_palette_with_and_without_transparency(tmp_path):
    pal = Image.new("P", (11, 5))
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
    px = np.zeros((5, 11), np.uint8)
    px[:, 5:] = 1
    px[0, 0] = 2
    pal.putdata(px.flatten().tolist())
    plain = tmp_path / "p.png"
    pal.save(plain)
    img, arr = _decode(plain)
    assert img.mode == "RGB" and img.size == (11, 5)
    assert tuple(arr[0, 0]) == (0, 255, 0) and tuple(arr[1, 0]) == (0, 0, 0) and tuple(arr[1, 6]) == (255, 0, 0)

    transparent = tmp_path / "pt.png"
    pal.save(transparent, transparency=0)  # palette index 0 is transparent
    with Image.open(transparent) as check:
        assert check.mode == "P" and "transparency" in check.info
    img, arr = _decode(transparent)
    assert img.mode == "RGB" and img.size == (11, 5)
    assert tuple(arr[1, 0]) == (255, 255, 255)  # transparent -> white background
    assert tuple(arr[1, 6]) == (255, 0, 0)


def test_load_16_bit_png_scales_to_8_bit(tmp_path):
    arr16 = np.zeros((4, 6), np.uint16)
    arr16[:, 1] = 65535
    arr16[:, 2] = 32896  # 128.5/255 of the range -> 128
    arr16[:, 3] = 257 * 10  # exactly 10 in 8 bits
    path = tmp_path / "d.png"
    Image.fromarray(arr16).save(path)
    with Image.open(path) as check:
        assert check.mode.startswith("I")  # PIL decodes it as I;16 (or I)
    img, arr = _decode(path)
    assert img.mode == "RGB" and img.size == (6, 4)
    assert list(arr[0, :4, 0]) == [0, 255, 128, 10]  # scaled, not clipped at 255
    assert _decode(path, channels=1)[1].shape == (4, 6)


def test_exif_rotated_jpeg_is_upright(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)  # stored 40 wide, 20 high
    arr[:, :20] = (255, 0, 0)  # red on the stored left, blue on the right
    arr[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    path = tmp_path / "rot.jpg"
    Image.fromarray(arr).save(path, exif=exif.tobytes(), quality=95)
    img, out = _decode(path)
    assert img.mode == "RGB" and img.size == (20, 40)  # width and height swapped
    assert image_size(path) == (20, 40)  # the header-only size agrees
    # Orientation 6: the stored left edge becomes the top.
    assert out[2, 10, 0] > 200 and out[2, 10, 2] < 60
    assert out[37, 10, 2] > 200 and out[37, 10, 0] < 60


def test_unreadable_file_is_a_user_error(tmp_path):
    path = tmp_path / "bad.png"
    path.write_bytes(b"not an image at all")
    with pytest.raises(UserError):
        load_image(path)


# ----------------------------------------------------------------------------- step-exact sampling

@pytest.mark.parametrize("n_a,n_b,batch", [(7, 0, 2), (6, 3, 1), (5, 9, 3)])
def test_step_batch_sampler_batch_depends_only_on_step(n_a, n_b, batch):
    full = StepBatchSampler(n_a, batch, seed=3, start_step=0, n_b=n_b)
    it = iter(full)
    from_zero = [next(it) for _ in range(25)]
    for s in (1, 2, 3, 7, 11, 24):
        resumed = iter(StepBatchSampler(n_a, batch, seed=3, start_step=s, n_b=n_b))
        assert [next(resumed) for _ in range(25 - s)] == from_zero[s:], f"start {s}"
    # an epoch is max(|A|, |B|) samples (the reference's unaligned dataset); within it the A side is a
    # permutation revisited as evenly as possible (incomplete last batch dropped)
    per_epoch = max(n_a, n_b) // batch
    assert full.steps_per_epoch == per_epoch
    firsts = [k[0] for b in from_zero[:per_epoch] for k in b]
    assert len(firsts) == per_epoch * batch
    counts = [firsts.count(i) for i in range(n_a)]
    assert max(counts) <= -(-max(n_a, n_b) // n_a)  # no A image more often than ceil(L / |A|)
    # seeds for augmentation are unique per sample
    seeds = [k[2] for b in from_zero for k in b]
    assert len(set(seeds)) == len(seeds)
    # another run seed gives another order
    other = iter(StepBatchSampler(n_a, batch, seed=4, n_b=n_b))
    assert [next(other) for _ in range(25)] != from_zero


@pytest.mark.parametrize("n_a,n_b", [(4, 12), (12, 4)])
def test_unpaired_epoch_spans_the_larger_folder(n_a, n_b):
    """horse2zebra has 1067 A and 1334 B images: an epoch is 1334 samples, not 1067, as in the reference."""
    sampler = StepBatchSampler(n_a, 2, seed=1, n_b=n_b)
    assert sampler.steps_per_epoch == 6
    it = iter(sampler)
    keys = [k for _ in range(6) for k in next(it)]
    a_counts = [sum(k[0] == i for k in keys) for i in range(n_a)]
    assert a_counts == [12 // n_a] * n_a  # every A image, equally often
    assert all(0 <= k[1] < n_b for k in keys)


def test_step_batch_sampler_refuses_batch_larger_than_data():
    with pytest.raises(UserError, match="batch size"):
        StepBatchSampler(3, 4, seed=0)


def test_training_resize_is_bicubic_and_identical_on_both_images_of_a_pair():
    """The reference resizes with PIL bicubic; a pair must stay aligned pixel for pixel."""
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    img = Image.fromarray(arr)
    t = PairTransform(DataConfig(image_size=32, load_size=32, flip=False))
    a, b = t.pair(img, img.copy())
    assert torch.equal(a, b)
    got = (a + 1) * 127.5
    bicubic = torch.from_numpy(np.array(img.resize((32, 32), Image.BICUBIC))).permute(2, 0, 1).float()
    bilinear = torch.from_numpy(np.array(img.resize((32, 32), Image.BILINEAR))).permute(2, 0, 1).float()
    assert (got - bicubic).abs().mean() < 1.5  # PIL's bicubic, up to rounding
    assert (got - bilinear).abs().mean() > 4 * (got - bicubic).abs().mean()


def _train_pix2pix_on(cli, folder, out):
    from conftest import TINY_FLAGS

    return cli(["train", "pix2pix", "--data", folder, "--steps", "1", "--out", out, *TINY_FLAGS])


@pytest.mark.parametrize("size", [(64, 64), (48, 64), (300, 64)])
def test_pix2pix_on_photos_that_are_not_ab_pairs_warns_once_and_trains(cli, tmp_path, size):
    """Square, portrait or very wide strips are not A|B pairs: one warning line, and the run still trains."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for k in range(4):
        Image.new("RGB", size, (40 * k, 90, 200)).save(folder / f"{k}.png")
    Image.new("RGB", (128, 64)).save(folder / "4.png")  # one pair-shaped image among them changes nothing
    result = _train_pix2pix_on(cli, folder, tmp_path / "run")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "A|B side-by-side" in line]
    assert len(lines) == 1, result.output
    assert "4 of 5 images" in lines[0] and "--a DIR --b DIR" in lines[0] and "halves" in lines[0]
    assert (tmp_path / "run" / "model.pt").is_file()


@pytest.mark.parametrize("size", [(128, 64), (96, 64), (200, 64)])
def test_pix2pix_on_ab_pairs_does_not_warn(cli, tmp_path, size):
    folder = tmp_path / "pairs"
    folder.mkdir()
    for k in range(4):
        Image.new("RGB", size, (40 * k, 90, 200)).save(folder / f"{k}.png")
    Image.new("RGB", (64, 64)).save(folder / "4.png")  # a minority of odd shapes is not worth a warning
    result = _train_pix2pix_on(cli, folder, tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert "A|B side-by-side" not in result.output
