"""The GAN stabilisers every method can switch on: each test checks the computation really changes as intended."""

from __future__ import annotations

import pytest
import torch

from conftest import TINY_FLAGS
from img2img.modelfile import load_model
from img2img.nets import build_discriminator, build_generator
from img2img.nets.attention import SelfAttention
from img2img.nets.d_inputs import DiscriminatorInputs, color, cutout, diff_augment, translation
from img2img.nets.patchgan import PatchDiscriminator, minibatch_std
from test_methods import METHOD_NAMES, build


# ----- self-attention
def test_attention_map_is_a_distribution_over_positions_and_the_block_starts_as_identity():
    torch.manual_seed(0)
    block = SelfAttention(16)
    x = torch.randn(2, 16, 6, 5)
    attn = block.attention_map(x)
    assert attn.shape == (2, 30, 30)
    assert torch.allclose(attn.sum(-1), torch.ones(2, 30), atol=1e-5) and (attn >= 0).all()
    assert torch.equal(block(x), x)  # gamma = 0
    with torch.no_grad():
        block.gamma.fill_(1.0)
    # With gamma 1 the output is x plus the attention-weighted values: check against the formula.
    v = block.value(x).flatten(2)
    expected = x + torch.einsum("bcn,bjn->bcj", v, attn).view_as(x)
    assert torch.allclose(block(x), expected, atol=1e-5)


def test_attention_is_non_local():
    """One output position responds to an input change at the far corner (a 3x3 conv stack of this depth would not)."""
    torch.manual_seed(0)
    block = SelfAttention(8)
    with torch.no_grad():
        block.gamma.fill_(1.0)
    x = torch.randn(1, 8, 16, 16)
    y = x.clone()
    y[..., 15, 15] += 5.0
    with torch.no_grad():
        assert float((block(y) - block(x))[..., 0, 0].abs().max()) > 1e-3


def attention_sides(net: torch.nn.Module, x: torch.Tensor) -> list[int]:
    sides = []
    hooks = [m.register_forward_hook(lambda m, i, o: sides.append(i[0].shape[-1])) for m in net.modules() if isinstance(m, SelfAttention)]
    net(x)
    for h in hooks:
        h.remove()
    return sides


@pytest.mark.parametrize("generator,res", [("resnet_2", 32), ("resnet_2", 16), ("resnet_2", 8), ("unet_32", 16), ("unet_32", 4)])
def test_attention_sits_where_the_generator_maps_have_the_chosen_side(generator, res):
    arch = {"name": generator, "in_channels": 3, "out_channels": 3, "ngf": 8, "norm": "instance", "dropout": False, "attention": 32 // res}
    assert attention_sides(build_generator(arch), torch.zeros(1, 3, 32, 32)) == [res]
    # The stored fraction, not the pixel count, places it: at 64 px the block sees maps twice as large.
    assert attention_sides(build_generator(arch), torch.zeros(1, 3, 64, 64)) == [2 * res]


@pytest.mark.parametrize("res", [16, 8, 4])
def test_attention_sits_where_the_discriminator_maps_have_the_chosen_side(res):
    d = build_discriminator({"in_channels": 3, "ndf": 8, "n_layers": 3, "norm": "instance", "attention": 32 // res})
    assert attention_sides(d, torch.zeros(1, 3, 32, 32)) == [res]


def test_attention_through_the_cli_trains_translates_at_another_size_and_is_stored(cli, tmp_path, unpaired_dirs):
    out = tmp_path / "run"
    result = cli(["train", "cyclegan", "--a", unpaired_dirs[0], "--b", unpaired_dirs[1], "--steps", "2", "--out", out,
                  "--generator", "resnet_2", "--set", "net.attention_res=8", "--set", "net.minibatch_std=true", *TINY_FLAGS])
    assert result.exit_code == 0, result.output
    mf = load_model(out / "model.pt")
    assert mf.data["generators"]["G_AB"]["arch"]["attention"] == 4
    assert mf.data["config"]["net"]["attention_res"] == 8 and mf.data["config"]["net"]["minibatch_std"]
    net = mf.generator("G_AB")
    assert attention_sides(net, torch.zeros(1, 3, 48, 48)) == [12]
    info = cli(["info", out / "model.pt"])
    assert info.exit_code == 0 and "self-attention at 1/4" in info.output


@pytest.mark.parametrize("res,message", [(32, "no attention at 1/1"), (12, "power of 2"), (-1, "must be at least 0")])
def test_attention_sizes_the_nets_cannot_take_are_refused(cli, tmp_path, unpaired_dirs, res, message):
    result = cli(["train", "cyclegan", "--a", unpaired_dirs[0], "--b", unpaired_dirs[1], "--steps", "1", "--out", tmp_path / "r",
                  "--set", f"net.attention_res={res}", *TINY_FLAGS])
    assert result.exit_code == 2 and message in result.output, result.output


def test_old_arch_dicts_build_the_same_nets_as_before():
    """Files written before these options have no attention/minibatch_std keys: same modules, same state-dict keys."""
    g_arch = {"name": "resnet_2", "in_channels": 3, "out_channels": 3, "ngf": 8, "norm": "instance", "dropout": False}
    assert build_generator(g_arch).state_dict().keys() == build_generator({**g_arch, "attention": 0}).state_dict().keys()
    assert not any(isinstance(m, SelfAttention) for m in build_generator(g_arch).modules())
    d = build_discriminator({"in_channels": 3, "ndf": 8, "n_layers": 3, "norm": "instance"})
    assert not d.minibatch_std and d.adv_head.in_channels == 64


# ----- minibatch standard deviation
def test_minibatch_std_feature_is_the_group_std_averaged_over_features():
    x = torch.stack([torch.full((2, 3, 3), v) for v in (0.0, 2.0, 1.0, 1.0)])  # groups of 4: one group
    y = minibatch_std(x)
    assert y.shape == (4, 3, 3, 3) and torch.equal(y[:, :2], x)
    expected = torch.tensor([0.0, 2.0, 1.0, 1.0]).std(unbiased=False)
    assert torch.allclose(y[:, 2], torch.full((4, 3, 3), float(expected)), atol=1e-4)
    assert float(minibatch_std(x[:1])[:, 2].abs().max()) < 1e-3  # batch of one: nothing to compare


def test_minibatch_std_makes_d_see_the_rest_of_the_batch():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    x2 = x.clone()
    x2[1] = torch.randn(3, 32, 32) * 3
    for flag in (False, True):
        torch.manual_seed(0)
        d = PatchDiscriminator(3, 8, 2, "instance", minibatch_std=flag)
        with torch.no_grad():
            change = float((d(x)[0] - d(x2)[0]).abs().max())
        assert (change > 1e-4) if flag else (change == 0.0), (flag, change)


# ----- instance noise
def test_instance_noise_has_the_requested_std_at_step_0_and_anneals_to_nothing():
    stage = DiscriminatorInputs(noise_std=0.3, noise_steps=100)
    x = torch.zeros(8, 3, 64, 64)
    torch.manual_seed(0)
    assert float(stage(x).std()) == pytest.approx(0.3, rel=0.03)
    stage.step = 50
    assert float(stage(x).std()) == pytest.approx(0.15, rel=0.03)
    for step in (100, 150):
        stage.step = step
        assert torch.equal(stage(x), x)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_every_method_noises_all_d_inputs_until_the_horizon(name, paired_dir, unpaired_dirs):
    """sigma 10 dwarfs images in [-1, 1]: every D input in the step has std ~10 at step 0 and <= 1 past the horizon."""
    method, batch = build(name, paired_dir, unpaired_dirs, **{"train.instance_noise": 10.0, "train.instance_noise_steps": 4})
    for step, low, high in ((0, 9.0, 11.0), (4, 0.0, 1.0)):
        seen = record_d_inputs(method, batch, step)
        assert seen, f"{name}: no discriminator call recorded"
        stds = [float(x.float().std()) for x in seen]
        assert all(low <= s <= high for s in stds), (name, step, stds)


# ----- DiffAugment
def record_d_inputs(method, batch: dict, step: int) -> list[torch.Tensor]:
    """Run one train_step and return what each discriminator's first conv received."""
    seen = []
    hooks = [net.trunk[0].register_forward_pre_hook(lambda m, i: seen.append(i[0].detach().clone()))
             for name, net in method.nets().items() if isinstance(net, PatchDiscriminator)]
    method.train_step(batch, step)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_every_method_cuts_out_a_square_of_every_d_input_real_and_fake(name, paired_dir, unpaired_dirs):
    """Cutout zeroes at least 1/16 of each image (a half-side square, at worst centred on a corner); real
    images in [-1, 1] from 8-bit files are never exactly 0 in all channels, nor are generated ones."""
    method, batch = build(name, paired_dir, unpaired_dirs, **{"train.diffaugment": "cutout"})
    seen = record_d_inputs(method, batch, 0)
    assert len(seen) >= 3  # real and fake in D's step, fake in G's step
    for x in seen:
        zero = (x == 0).all(dim=1).flatten(1).float().mean(1)
        assert (zero >= 1 / 16 - 1e-6).all(), (name, zero)


def test_translation_shifts_content_by_whole_pixels_and_fills_with_zeros():
    torch.manual_seed(3)
    x = torch.arange(1, 1 + 32 * 32, dtype=torch.float32).view(1, 1, 32, 32).repeat(4, 1, 1, 1)
    y = translation(x)
    for img_in, img_out in zip(x, y):
        nz = img_out[0] != 0
        rows, cols = nz.any(1).nonzero(), nz.any(0).nonzero()
        # Content is x shifted: every non-zero pixel equals the input pixel a fixed offset away.
        v = img_out[0][nz]
        offsets = {int(d) for d in (v - img_in[0][nz])}
        assert len(offsets) == 1 and abs(offsets.pop()) <= 4 * 32 + 4
        assert len(rows) >= 28 and len(cols) >= 28


def test_color_treats_each_image_of_a_pair_with_the_same_factors_and_its_own_saturation():
    torch.manual_seed(0)
    a = torch.rand(3, 3, 8, 8) * 2 - 1
    pair = torch.cat([a, a], dim=1)  # pix2pix's D input: input|output in channels
    y = color(pair, 3)
    assert torch.allclose(y[:, :3], y[:, 3:])  # same transform on both halves, no channel mixing between them
    assert float((y[:, :3] - a).abs().mean()) > 0.05
    # A grey image next to a coloured one stays grey: saturation is taken over each image's own channels
    # (over all six channels, the grey half would take on the coloured half's tint).
    grey = a.mean(1, keepdim=True).expand(-1, 3, -1, -1)
    y = color(torch.cat([a, grey], dim=1), 3)
    assert float((y[:, 3:] - y[:, 3:4]).abs().max()) < 1e-5


def test_diffaugment_keeps_gradients_to_its_input():
    torch.manual_seed(0)
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_(True)
    diff_augment(x, ("color", "translation", "cutout")).pow(2).sum().backward()
    assert x.grad is not None
    assert float((x.grad != 0).float().mean()) > 0.3  # every kept pixel passes a gradient


@pytest.mark.parametrize("name", ["cyclegan", "cut", "pix2pix"])
def test_methods_train_every_parameter_with_all_stabilisers_on(name, paired_dir, unpaired_dirs):
    extra = {"train.diffaugment": "color,translation,cutout", "train.instance_noise": 0.1, "net.minibatch_std": True,
             "net.attention_res": 8}
    if name != "pix2pix":
        extra["net.generator"] = "resnet_2"
    method, batch = build(name, paired_dir, unpaired_dirs, **extra)
    before = {k: {n: p.detach().clone() for n, p in net.named_parameters()} for k, net in method.nets().items()}
    for step in range(2):
        method.train_step(batch, step)
    for k, net in method.nets().items():
        frozen = [n for n, p in net.named_parameters() if torch.equal(p, before[k][n])]
        assert not frozen, f"{name}.{k}: parameters never updated: {frozen[:5]}"


def test_bad_diffaugment_policy_is_refused(cli, tmp_path, unpaired_dirs):
    result = cli(["train", "cyclegan", "--a", unpaired_dirs[0], "--b", unpaired_dirs[1], "--steps", "1", "--out", tmp_path / "r",
                  "--set", "train.diffaugment=color,rotate", *TINY_FLAGS])
    assert result.exit_code == 2 and "unknown DiffAugment op 'rotate'" in result.output


def test_instance_noise_by_epochs_needs_a_horizon(cli, tmp_path, unpaired_dirs):
    result = cli(["train", "cyclegan", "--a", unpaired_dirs[0], "--b", unpaired_dirs[1], "--epochs", "1", "--out", tmp_path / "r",
                  "--set", "train.instance_noise=0.1", *TINY_FLAGS])
    assert result.exit_code == 2 and "instance_noise_steps" in result.output


@pytest.mark.parametrize("batch,warned", [(1, True), (2, False)])
def test_minibatch_std_with_one_image_a_batch_says_it_does_nothing(cli, tmp_path, unpaired_dirs, batch, warned):
    result = cli(["train", "cyclegan", "--a", unpaired_dirs[0], "--b", unpaired_dirs[1], "--steps", "1", "--out", tmp_path / "r",
                  "--generator", "resnet_2", "--batch-size", str(batch), "--set", "net.minibatch_std=true", *TINY_FLAGS])
    assert result.exit_code == 0, result.output
    assert ("minibatch_std compares the images of a batch" in result.output) == warned
