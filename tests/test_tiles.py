"""Tiled translation agrees with translating the whole image, thanks to whole-image norm statistics."""

from __future__ import annotations

import torch

from img2img.nets import build_generator, init_weights
from img2img.nets.layers import for_inference
from img2img.translate.tiles import auto_tile, mosaic, norm_statistics, translate_tiled


def random_generator(seed: int = 0, gain: float = 0.5) -> torch.nn.Module:
    """A ResNet-6 with unit-ish gain per layer, so its output depends strongly on every norm's statistics."""
    torch.manual_seed(seed)
    arch = {"name": "resnet_6", "in_channels": 3, "out_channels": 3, "ngf": 8, "norm": "instance", "dropout": False}
    net = for_inference(init_weights(build_generator(arch), "normal", 0.02))
    with torch.no_grad():
        for p in net.parameters():
            if p.ndim == 4:
                p.normal_(0, gain / p[0].numel() ** 0.5)
    return net


def scene(h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    x = torch.stack([torch.sin(5 * xx + yy), torch.cos(7 * yy) * xx, xx * yy])[None]
    return (x + 0.2 * torch.randn(x.shape, generator=g)).clamp(-1, 1)


@torch.no_grad()
def test_tiles_with_whole_image_statistics_match_the_untiled_result():
    net = random_generator()
    x = scene(256, 320)
    whole = net(x)
    tiled = translate_tiled(lambda t, i: net(t), net, x, tile=160, stride=4, overlap=64)
    diff = (tiled - whole).abs() * 127.5
    assert tiled.shape == whole.shape
    assert whole.std() * 127.5 > 20  # a real picture, not a flat one
    assert diff.mean() < 2.0 and diff.max() < 40, (diff.mean(), diff.max())
    # each tile normalised by its own statistics (what plain tiling does) is far off: the statistics matter
    naive = torch.zeros_like(whole)
    for top in (0, 128):
        for left in (0, 160):
            naive[..., top:top + 128, left:left + 160] = net(x[..., top:top + 128, left:left + 160])
    assert ((naive - whole).abs() * 127.5).mean() > 3 * diff.mean()


@torch.no_grad()
def test_sampled_statistics_when_the_image_would_not_fit_are_still_close():
    net = random_generator()
    x = scene(256, 256, seed=1)
    whole = net(x)
    sampled = translate_tiled(lambda t, i: net(t), net, x, tile=128, stride=4, overlap=32, stats_budget_pixels=128 * 128)
    diff = ((sampled - whole).abs() * 127.5).mean()
    assert diff < 12, diff  # measured 6/255 at 512 px with a quarter sampled; wrong statistics give ~40


def test_norm_statistics_fixed_mode_reproduces_the_recorded_forward():
    net = random_generator(seed=3)
    x = scene(64, 96)
    stats: list = []
    with torch.no_grad():
        with norm_statistics(net, "record", stats):
            recorded = net(x)
        with norm_statistics(net, "fixed", stats):
            fixed = net(x)
        plain = net(x)
    assert len(stats) == 3 + 2 * 6 + 2  # every instance norm of a ResNet-6
    assert (fixed - recorded).abs().max() < 1e-5 and (plain - recorded).abs().max() < 1e-5


def test_auto_tile_only_when_the_image_would_not_fit_and_mosaic_stays_in_budget():
    gib = 1 << 30
    assert auto_tile(1080, 1920, 64, 4, 16 * gib, 4) == 0
    side = auto_tile(4000, 6000, 64, 2, 2 * gib, 4)
    assert 128 <= side < 4000 and side % 4 == 0
    x = torch.arange(600 * 900, dtype=torch.float32).reshape(1, 1, 600, 900)
    m = mosaic(x, 200 * 200, 4, 128)
    assert m.shape[-1] * m.shape[-2] <= 200 * 200
    assert m.min() < 900 * 150 and m.max() > 900 * 450  # patches from the top and from the bottom of the image


def test_translate_cli_tile_flag_keeps_size_and_stays_close(tmp_path, cli, paired_dir):
    from PIL import Image

    from conftest import TINY_FLAGS

    run = tmp_path / "run"
    assert cli(["train", "cyclegan", "--a", paired_dir, "--b", paired_dir, "--out", run, "--steps", "1", *TINY_FLAGS]).exit_code == 0
    img = Image.effect_mandelbrot((200, 150), (-2, -1.2, 1, 1.2), 60).convert("RGB")
    img.save(tmp_path / "in.png")
    for tile, name in ((0, "whole.png"), (128, "tiled.png")):
        result = cli(["translate", run / "model.pt", tmp_path / "in.png", "-o", tmp_path / name, "--tile", tile,
                      "--precision", "fp32", "-q"])
        assert result.exit_code == 0, result.output
    import numpy as np

    a = np.asarray(Image.open(tmp_path / "whole.png"), dtype=float)
    b = np.asarray(Image.open(tmp_path / "tiled.png"), dtype=float)
    assert a.shape == b.shape == (150, 200, 3)
    assert np.abs(a - b).mean() < 2.0


@torch.no_grad()
def test_pix2pix_seeded_test_dropout_is_the_same_in_tiles():
    """pix2pix keeps dropout on at test time with masks fixed by position: tiles must use image positions."""
    torch.manual_seed(0)
    arch = {"name": "unet_64", "in_channels": 3, "out_channels": 3, "ngf": 8, "norm": "batch", "dropout": True}
    trained = init_weights(build_generator(arch), "normal", 0.02)
    with torch.no_grad():
        for p in trained.parameters():
            if p.ndim == 4:
                p.normal_(0, 1.0 / p[0].numel() ** 0.5)
    net = for_inference(trained, "running", dropout_seed=3)
    assert any(type(m).__name__ == "SeededDropout" for m in net.modules())
    x = scene(256, 384)
    whole = net(x)
    dropout_effect = ((whole - for_inference(trained, "running")(x)).abs() * 127.5).mean()
    tiled = translate_tiled(lambda t, i: net(t), net, x, tile=256, stride=64, overlap=128)
    # measured: 0.03/255 with the image's mask positions, 0.23/255 with each tile's own (dropout moves 0.34/255)
    assert ((tiled - whole).abs() * 127.5).mean() < 0.25 * dropout_effect
