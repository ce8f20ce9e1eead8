"""Domains with their own channel counts: grayscale to colour and colour to grayscale (data.channels_a / channels_b)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import default_collate

from conftest import TINY_OVERRIDES
from img2img import config as config_mod
from img2img.data.cache import CachedBatches, cache_bytes
from img2img.data.datasets import StepBatchSampler, build_dataset
from img2img.errors import UserError
from img2img.methods import get_method
from img2img.modelfile import load_model
from img2img.nets.d_inputs import color
from img2img.train import train
from img2img.translate.translator import Translator


def _photo(size: tuple[int, int], seed: int) -> Image.Image:
    """A colourful RGB image with structure (gradients plus noise), so grayscale loses real information."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h) + 60], -1) + rng.integers(0, 40, (h, w, 3))
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


@pytest.fixture(scope="module")
def gray_colour_pairs(tmp_path_factory) -> tuple[Path, Path]:
    """--a: grayscale versions, --b: the colour originals, matched by name (48x40, not square)."""
    root = tmp_path_factory.mktemp("gray2rgb")
    (root / "A").mkdir()
    (root / "B").mkdir()
    for k in range(4):
        rgb = _photo((48, 40), k)
        rgb.save(root / "B" / f"{k}.png")
        rgb.convert("L").save(root / "A" / f"{k}.png")
    return root / "A", root / "B"


def _run(method: str, out: Path, overrides: dict, steps: int = 2) -> Path:
    cfg = config_mod.build_config(get_method(method), None, {**TINY_OVERRIDES, "train.steps": steps, **overrides})
    train(cfg, out, progress=False)
    return out / "model.pt"


def _arch_channels(model_path: Path) -> dict[str, tuple[int, int]]:
    data = load_model(model_path).data
    return {name: (g["arch"]["in_channels"], g["arch"]["out_channels"]) for name, g in data["generators"].items()}


def test_pix2pix_grayscale_to_colour_trains_and_translates_a_colour_photo_to_colour_of_its_size(cli, gray_colour_pairs, tmp_path):
    a, b = gray_colour_pairs
    model = _run("pix2pix", tmp_path / "run", {"data.a": str(a), "data.b": str(b), "data.channels_a": 1, "data.channels_b": 3,
                                               "train.diffaugment": "color,translation"})
    assert _arch_channels(model) == {"G": (1, 3)}
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    first_d = next(v for k, v in ckpt["method"]["nets"]["D"].items() if k.endswith("weight") and v.ndim == 4)
    assert first_d.shape[1] == 4  # D sees the 1-channel input and the 3-channel output side by side

    photo = _photo((45, 37), 9)  # odd sizes: padded to the stride and cropped back
    photo.save(tmp_path / "photo.png")
    photo.convert("L").save(tmp_path / "photo_gray.png")
    result = cli(["translate", model, tmp_path / "photo.png", tmp_path / "photo_gray.png", "-o", tmp_path / "out",
                  "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out" / "photo.png") as out, Image.open(tmp_path / "out" / "photo_gray.png") as out_gray:
        assert out.mode == "RGB" and out.size == (45, 37)
        # the colour photo was read as grayscale, as the model was trained: the same output as its gray version
        assert np.array_equal(np.asarray(out), np.asarray(out_gray))
        arr = np.asarray(out).astype(int)
    assert np.abs(arr[..., 0] - arr[..., 1]).mean() + np.abs(arr[..., 1] - arr[..., 2]).mean() > 1  # really colour


def test_pix2pix_colour_to_grayscale_writes_grayscale_images(cli, gray_colour_pairs, tmp_path):
    a, b = gray_colour_pairs
    model = _run("pix2pix", tmp_path / "run", {"data.a": str(b), "data.b": str(a), "data.channels_b": 1})  # A: RGB (data.channels)
    assert _arch_channels(model) == {"G": (3, 1)}
    _photo((40, 36), 3).save(tmp_path / "in.jpg")
    result = cli(["translate", model, tmp_path / "in.jpg", "-o", tmp_path / "out.png", "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out.png") as out:
        assert out.mode == "L" and out.size == (40, 36)


def test_pix2pix_b2a_swaps_the_generator_channels(gray_colour_pairs, tmp_path):
    a, b = gray_colour_pairs
    model = _run("pix2pix", tmp_path / "run", {"data.a": str(a), "data.b": str(b), "data.channels_a": 1,
                                               "data.direction": "b2a"}, steps=1)
    assert _arch_channels(model) == {"G": (3, 1)}


def test_cyclegan_with_grayscale_a_and_colour_b_builds_each_net_for_its_domain_and_translates_both_ways(gray_colour_pairs, tmp_path):
    a, b = gray_colour_pairs
    data = {"data.a": str(a), "data.b": str(b), "data.channels_a": 1}
    with pytest.raises(UserError, match="identity loss.*--lambda-idt 0"):
        _run("cyclegan", tmp_path / "refused", data)
    model = _run("cyclegan", tmp_path / "run", {**data, "loss.lambda_idt": 0})
    assert _arch_channels(model) == {"G_AB": (1, 3), "G_BA": (3, 1)}
    nets = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["method"]["nets"]
    for d, channels in (("D_A", 1), ("D_B", 3)):
        first = next(v for k, v in nets[d].items() if k.endswith("weight") and v.ndim == 4)
        assert first.shape[1] == channels, d
    mf = load_model(model)
    photo = _photo((44, 36), 5)
    to_b = Translator(mf, direction="a2b", device="cpu").translate_image(photo)
    to_a = Translator(mf, direction="b2a", device="cpu").translate_image(photo)
    assert (to_b.mode, to_b.size) == ("RGB", (44, 36)) and (to_a.mode, to_a.size) == ("L", (44, 36))


@pytest.mark.parametrize("method", ["cut", "stargan"])
def test_methods_that_need_equal_channels_refuse_different_ones_in_one_line(method, gray_colour_pairs, tmp_path):
    a, b = gray_colour_pairs
    data = {"data.a": str(a), "data.b": str(b)} if method == "cut" else {"data.data": str(a.parent)}  # domains A, B
    with pytest.raises(UserError, match="differ in channels"):
        cfg = config_mod.build_config(get_method(method), None, {**TINY_OVERRIDES, "train.steps": 1, "data.channels_b": 1, **data})
        get_method(method)(cfg, torch.device("cpu"))


def test_a_model_file_and_checkpoint_without_the_new_keys_still_load_and_resume(paired_dir, tmp_path):
    """Files written before channels_a/channels_b: data.channels is the count of both sides."""
    out = tmp_path / "run"
    model = _run("pix2pix", out, {"data.data": str(paired_dir), "data.channels": 1})
    for name in ("model.pt", "checkpoint.pt"):
        payload = torch.load(out / name, weights_only=True)
        for key in ("channels_a", "channels_b"):
            payload["config"]["data"].pop(key)
        torch.save(payload, out / name)
    mf = load_model(model)
    assert _arch_channels(model) == {"G": (1, 1)}
    img = Translator(mf, device="cpu").translate_image(_photo((40, 32), 1))
    assert (img.mode, img.size) == ("L", (40, 32))
    cfg = config_mod.from_dict(mf.data["config"], get_method("pix2pix"))
    assert cfg.data.direction_channels("a2b") == (1, 1)
    from img2img.train import resume_config

    resumed = resume_config(out, {"train.steps": 3})
    assert resumed.data.channels_of("a") == resumed.data.channels_of("b") == 1
    train(resumed, out, resume=True, progress=False)
    assert load_model(out / "model.pt").data["step"] == 3


@pytest.mark.parametrize("kind", ["paired_ab", "paired_folders", "unpaired"])
def test_cached_batches_hold_each_domain_at_its_channels_and_equal_the_streaming_ones(kind, paired_dir, gray_colour_pairs):
    a, b = gray_colour_pairs
    method, data = {"paired_ab": ("pix2pix", {"data.data": str(paired_dir)}),
                    "paired_folders": ("pix2pix", {"data.a": str(b), "data.b": str(b)}),
                    "unpaired": ("cyclegan", {"data.a": str(b), "data.b": str(a), "loss.lambda_idt": 0})}[kind]
    cfg = config_mod.build_config(get_method(method), overrides={**data, "data.image_size": 24, "data.load_size": 30,
                                                                  "data.channels_a": 1, "train.steps": 1})
    ds = build_dataset(get_method(method).dataset_kind, cfg.data, method)
    assert cache_bytes(ds) == (len(ds.a_files) * 1 + (len(getattr(ds, "b_files", ds.a_files))) * 3) * 30 * 30
    sampler = StepBatchSampler(len(ds), 2, 3, 0, getattr(ds, "n_b", 0))
    cached = CachedBatches(ds, sampler, torch.device("cpu"), prefetch=False)
    for _, keys in zip(range(4), iter(sampler)):
        want, got = default_collate([ds[k] for k in keys]), cached.batch(keys)
        assert want["a"].shape == (2, 1, 24, 24) and want["b"].shape == (2, 3, 24, 24)
        assert torch.equal(want["a"], got["a"]) and torch.equal(want["b"], got["b"])
        if kind == "paired_folders":  # both folders are the same images: A is the grayscale of B (ITU-R 601 luma)
            luma = (want["b"] * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
            assert (want["a"] - luma).abs().max() < 2 / 127.5


def test_diffaugment_colour_gives_an_input_and_an_output_of_different_channels_the_same_factors():
    """Gray image g and the RGB image (g, g, g) side by side must stay equal after the colour augmentation."""
    torch.manual_seed(0)
    g = torch.rand(4, 1, 8, 8) * 2 - 1
    y = color(torch.cat([g, g.expand(-1, 3, -1, -1)], 1), (1, 3))
    assert y.shape == (4, 4, 8, 8)
    assert (y[:, :1] - y[:, 1:]).abs().max() < 1e-5
    assert (y[:, :1] - g).abs().mean() > 0.05  # and it did change them


@pytest.fixture(scope="module")
def cyclegan_gray_colour(tmp_path_factory, gray_colour_pairs) -> Path:
    a, b = gray_colour_pairs
    return _run("cyclegan", tmp_path_factory.mktemp("cg") / "run", {"data.a": str(a), "data.b": str(b), "data.channels_a": 1,
                                                                     "loss.lambda_idt": 0}, steps=1)


@pytest.mark.parametrize("direction, out_channels", [("a2b", 3), ("b2a", 1)])
def test_video_of_a_grayscale_in_or_out_model_plays_with_its_frames_and_size(cli, cyclegan_gray_colour, tmp_path,
                                                                            direction, out_channels):
    from test_video import make_clip, read_frames

    clip = make_clip(tmp_path / "clip.mp4", frames=5, size=(40, 32))
    out = tmp_path / "out.mp4"
    result = cli(["translate", cyclegan_gray_colour, clip, "-o", out, "--direction", direction, "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    frames = read_frames(out)
    assert frames.shape == (5, 32, 40, 3)  # players get 3-channel frames either way
    spread = np.abs(frames[..., 0].astype(int) - frames[..., 2].astype(int)).mean()
    assert (spread < 3) if out_channels == 1 else (spread > 3)  # a grayscale output stays gray


def test_onnx_export_of_a_grayscale_to_colour_generator_takes_1_channel_and_gives_3(cyclegan_gray_colour, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from img2img.export import export_model

    export_model(cyclegan_gray_colour, tmp_path / "g.onnx", "a2b")
    session = ort.InferenceSession(str(tmp_path / "g.onnx"))
    x = session.get_inputs()[0]
    assert x.shape[1] == 1
    y = session.run(None, {x.name: np.zeros((2, 1, 24, 36), np.float32)})[0]
    assert y.shape == (2, 3, 24, 36)


def test_eval_reads_inputs_at_the_models_input_channels_and_references_at_its_output_channels(gray_colour_pairs, tmp_path):
    from img2img.metrics.evaluate import plan_eval

    a, b = gray_colour_pairs
    plan = plan_eval(a=b, b=b, channels=(1, 3), paired=True)  # a grayscale-to-colour model scored on colour photos
    sample = plan.samples[0]
    assert sample.source().shape[0] == 1 and sample.target().shape[0] == 3 and plan.references[0]().shape[0] == 3
    pairs = tmp_path / "ab"
    pairs.mkdir()
    photo = _photo((40, 32), 2)
    both = Image.new("RGB", (80, 32))
    both.paste(photo, (0, 0))
    both.paste(photo, (40, 0))
    both.save(pairs / "0.png")
    sample = plan_eval(data=pairs, channels=(3, 1)).samples[0]
    assert sample.source().shape == (3, 32, 40) and sample.target().shape == (1, 32, 40)
