"""CUT and FastCUT: PatchNCE's arithmetic, the encoder taps, exact resume, and learning a toy translation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from conftest import TINY_FLAGS
from img2img import config as config_mod
from img2img.losses import patch_nce
from img2img.methods import get_method
from img2img.methods.cut import encode, encoder_taps
from img2img.nets import build_generator
from test_resume import assert_identical, load, run_ok


def unit(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=1)


@pytest.mark.parametrize("patches", [16, 64, 256])
def test_patch_nce_of_unrelated_features_is_log_of_the_patch_count(patches):
    """Random high-dimensional unit vectors are near-orthogonal: every logit ~ 0, so the loss is log(P)."""
    g = torch.Generator().manual_seed(patches)
    q, k = unit(torch.randn(2 * patches, 4096, generator=g)), unit(torch.randn(2 * patches, 4096, generator=g))
    loss = float(patch_nce(q, k, batch_size=2))
    assert abs(loss - math.log(patches)) < 0.05 * math.log(patches), (loss, math.log(patches))


def test_patch_nce_is_near_zero_when_each_query_is_its_key_and_negatives_are_far():
    """One-hot (orthogonal) patches: positive logit 1/0.07, negatives 0 -> loss = log(1 + 255 e^-14.3) ~ 1.6e-4.
    Were the positive left among the negatives (no diagonal mask), the loss would be log 2 = 0.69."""
    q = torch.eye(256).repeat(2, 1)
    loss = float(patch_nce(q, q.clone(), batch_size=2))
    assert loss < 1e-3
    assert abs(loss - math.log(1 + 255 * math.exp(-1 / 0.07))) < 1e-5


def test_patch_nce_takes_negatives_from_the_same_image_only():
    """Image 2's keys copying image 1's queries must not change image 1's loss (no cross-image negatives)."""
    g = torch.Generator().manual_seed(0)
    q = unit(torch.randn(2 * 32, 64, generator=g))
    k = unit(q + 0.3 * torch.randn(q.shape, generator=g))
    per_image = [float(patch_nce(q[i * 32:(i + 1) * 32], k[i * 32:(i + 1) * 32], 1)) for i in range(2)]
    assert float(patch_nce(q, k, 2)) == pytest.approx(sum(per_image) / 2, rel=1e-5)
    k2 = k.clone()
    k2[32:] = q[:32]  # image 2's keys now match image 1's queries exactly
    assert float(patch_nce(q[:32], k2[:32], 1)) == pytest.approx(per_image[0], rel=1e-6)


def test_patch_nce_gradient_pulls_query_towards_its_key():
    g = torch.Generator().manual_seed(1)
    k = unit(torch.randn(64, 32, generator=g))
    q = unit(torch.randn(64, 32, generator=g)).requires_grad_(True)
    patch_nce(q, k, 1).backward()
    # Descent direction -grad has a positive component along the positive key for (nearly) every patch.
    along = (-q.grad * k).sum(1)
    assert (along > 0).float().mean() > 0.95
    assert k.grad is None  # keys are detached


def test_encoder_taps_are_pixels_two_downsamplings_and_blocks_1_and_5():
    arch = {"name": "resnet_9", "in_channels": 3, "out_channels": 3, "ngf": 8, "norm": "instance", "dropout": False}
    g = build_generator(arch)
    taps = encoder_taps(g)
    assert taps == [0, 4, 7, 10, 14]
    feats = encode(g, torch.zeros(1, 3, 32, 32), taps)
    assert [tuple(f.shape[1:]) for f in feats] == [(3, 38, 38), (16, 16, 16), (32, 8, 8), (32, 8, 8), (32, 8, 8)]
    assert taps[-1] == 14 and type(g.model[14]).__name__ == "ResnetBlock"


def test_the_mlp_heads_small_gradient_is_real(unpaired_dirs, paired_dir):
    """After the first Adam steps the head's gradients are ~1e-7 (its output is L2-normalised, so the loss
    ignores the head's scale and the gradient shrinks as Adam grows the weights from xavier gain 0.02).
    A step along them, sized to the weights, lowers the PatchNCE loss of the same patches: not float noise."""
    from test_methods import build

    m, batch = build("cut", paired_dir, unpaired_dirs)
    for step in range(2):
        m.train_step(batch, step)
    a = batch["a"]
    with torch.no_grad():
        fake = m.G(a)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    loss = m.nce_loss(a, fake, False)
    m.F.zero_grad()
    loss.backward()
    grads = [p.grad.clone() for p in m.F.parameters()]
    assert min(float(g.abs().mean()) for g in grads) < 1e-5  # as small as the registry-wide test sees
    with torch.no_grad():
        for p, g in zip(m.F.parameters(), grads):
            p -= 0.05 * g * (p.norm() / g.norm().clamp_min(1e-30))
    torch.set_rng_state(state)  # the same patches
    with torch.no_grad():
        after = float(m.nce_loss(a, fake, False))
    before = float(loss.detach())
    assert after < before - 0.01, (before, after)


def test_paper_defaults():
    cut = config_mod.default_config(get_method("cut"))
    fast = config_mod.default_config(get_method("fastcut"))
    for cfg in (cut, fast):
        assert (cfg.net.generator, cfg.net.norm, cfg.net.init, cfg.train.gan_loss) == ("resnet_9", "instance", "xavier", "lsgan")
        assert (cfg.train.lr, cfg.train.beta1, cfg.train.beta2) == (2e-4, 0.5, 0.999)
        assert (cfg.loss.num_patches, cfg.loss.nce_temperature, cfg.loss.mlp_width) == (256, 0.07, 256)
    assert (cut.loss.lambda_nce, cut.loss.nce_idt, cut.loss.flip_equivariance, cut.train.epochs) == (1.0, True, False, 400)
    assert (fast.loss.lambda_nce, fast.loss.nce_idt, fast.loss.flip_equivariance, fast.train.epochs) == (10.0, False, True, 200)


def test_cut_refuses_a_unet(unpaired_dirs, cli, tmp_path):
    result = cli(["train", "cut", "--a", unpaired_dirs[0], "--b", unpaired_dirs[1], "--generator", "unet_32",
                  "--steps", "1", "--out", tmp_path / "r", *TINY_FLAGS])
    assert result.exit_code == 2 and "ResNet generator" in result.output


@pytest.mark.parametrize("flag,value", [("--num-patches", "0"), ("--nce-temperature", "0"), ("--lambda-nce", "-1"),
                                        ("--mlp-width", "0")])
def test_bad_cut_settings_are_one_line_errors(cli, tmp_path, unpaired_dirs, flag, value):
    result = cli(["train", "cut", "--a", unpaired_dirs[0], "--b", unpaired_dirs[1], "--steps", "1", "--out", tmp_path / "r",
                  flag, value, *TINY_FLAGS])
    key = "loss." + flag[2:].replace("-", "_")
    assert result.exit_code == 2 and key in result.output and "Traceback" not in result.output, result.output


@pytest.mark.parametrize("method", ["cut", "fastcut"])
def test_stop_and_resume_equals_uninterrupted(cli, tmp_path, unpaired_dirs, method):
    data = ["--a", unpaired_dirs[0], "--b", unpaired_dirs[1], "--generator", "resnet_2", "--batch-size", "2"]
    a, b = tmp_path / "A", tmp_path / "B"
    run_ok(cli, ["train", method, *data, "--steps", "4", "--out", a, *TINY_FLAGS])
    run_ok(cli, ["train", method, *data, "--steps", "4", "--stop-after", "2", "--out", b, *TINY_FLAGS])
    run_ok(cli, ["train", method, "--resume", "--out", b, "--device", "cpu", "-q"])
    ca, cb = load(a / "checkpoint.pt"), load(b / "checkpoint.pt")
    assert ca["step"] == cb["step"] == 4
    assert set(ca["method"]["nets"]) == {"G", "F", "D"}
    assert_identical(ca["method"]["nets"], cb["method"]["nets"], f"{method} nets (G, MLP head F, D)")
    assert_identical(ca["method"]["optimizers"], cb["method"]["optimizers"], f"{method} optimizers")
    assert_identical(load(a / "model.pt")["generators"], load(b / "model.pt")["generators"], "model.pt")


def tinted(g: torch.Generator, n: int, red_minus_blue: float) -> torch.Tensor:
    """Smooth random grey structure plus a colour cast: R - B averages red_minus_blue."""
    base = F.interpolate(torch.rand(n, 1, 8, 8, generator=g), size=32, mode="bilinear", align_corners=False) * 1.2 - 0.6
    cast = torch.tensor([red_minus_blue / 2, 0.0, -red_minus_blue / 2]).view(1, 3, 1, 1)
    return (base + cast).clamp(-1, 1)


def red_minus_blue(x: torch.Tensor) -> float:
    return float((x[:, 0] - x[:, 2]).mean())


@pytest.mark.parametrize("method,extra", [("cut", {}), ("fastcut", {"loss.lambda_nce": 1.0})])
def test_learns_a_toy_colour_translation_and_keeps_the_structure(method, extra):
    """A is red-cast, B blue-cast, same kind of structure. After 60 tiny steps (lr raised for speed) G(A) has
    moved R - B at least 70% of the way from A's to B's value, and keeps the input's structure (the grey
    pattern of G(A) correlates with A's). FastCUT runs its own path (flip-equivariance, no identity term)
    at lambda_NCE 1: at its paper weight 10 the pixel-level NCE term holds this toy's colour cast at about
    half-way for the first 140 steps, too slow for a unit test."""
    cls = get_method(method)
    cfg = config_mod.build_config(cls, None, {**extra, "data.image_size": 32, "net.ngf": 8, "net.ndf": 8, "net.generator": "resnet_2",
                                              "train.steps": 60, "train.batch_size": 4, "train.lr": 1e-3,
                                              "train.device": "cpu", "train.lr_policy": "constant"})
    torch.manual_seed(0)
    m = cls(cfg, torch.device("cpu"))
    g = torch.Generator().manual_seed(0)
    for step in range(60):
        m.train_step({"a": tinted(g, 4, 0.8), "b": tinted(g, 4, -0.8)}, step)
    test_a = tinted(torch.Generator().manual_seed(99), 16, 0.8)
    with torch.no_grad():
        out = m.inference_copy(m.G)(test_a)
    moved = (red_minus_blue(test_a) - red_minus_blue(out)) / (0.8 - -0.8)
    assert moved > 0.7, f"{method}: R-B moved only {moved:.0%} of the way (A {red_minus_blue(test_a):.2f} -> {red_minus_blue(out):.2f})"
    grey_in, grey_out = test_a.mean(1).flatten(1), out.mean(1).flatten(1)
    corr = torch.stack([torch.corrcoef(torch.stack([i, o]))[0, 1] for i, o in zip(grey_in, grey_out)])
    assert float(corr.mean()) > 0.5, f"{method}: structure lost (mean correlation {float(corr.mean()):.2f})"
