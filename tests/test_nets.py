"""The shared backbone: generator/discriminator shapes, conditional input, norms, spectral norm, init."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from img2img.errors import UserError
from img2img.nets import (build_discriminator, build_generator, generator_stride, init_weights, parse_generator_name,
                          resolve_generator_name)
from img2img.nets.layers import NORMS, InstanceNorm2d, for_inference


def gen(name: str, ngf: int = 4, norm: str = "instance", dropout: bool = False, cond: int = 0, in_ch: int = 3, out_ch: int = 3,
        **options):
    return build_generator({"name": name, "in_channels": in_ch, "out_channels": out_ch, "ngf": ngf, "norm": norm,
                            "dropout": dropout, "cond_channels": cond, **options})


def disc(in_ch: int = 3, ndf: int = 4, n_layers: int = 3, norm: str = "instance", spectral_norm: bool = False, n_classes: int = 0):
    return build_discriminator({"in_channels": in_ch, "ndf": ndf, "n_layers": n_layers, "norm": norm,
                                "spectral_norm": spectral_norm, "n_classes": n_classes})


@pytest.mark.parametrize("name,sizes", [
    ("resnet_6", [(32, 32), (36, 20), (64, 48)]),
    ("resnet_9", [(32, 32), (40, 24)]),
    ("unet_32", [(32, 32), (64, 32), (96, 64)]),
    ("unet_64", [(64, 64), (128, 64)]),
    ("unet_128", [(128, 128)]),
    ("unet_256", [(256, 256)]),
])
@pytest.mark.parametrize("batch", [1, 3])
def test_generator_output_shape(name, sizes, batch):
    net = gen(name, ngf=4, norm="batch" if name.startswith("unet") else "instance", dropout=True)
    stride = generator_stride(name)
    for h, w in sizes:
        assert h % stride == 0 and w % stride == 0
        x = torch.rand(batch, 3, h, w) * 2 - 1
        with torch.no_grad():
            y = net.eval()(x)
        assert y.shape == (batch, 3, h, w)
        assert y.min() >= -1 and y.max() <= 1  # tanh output, the image range


def test_generator_channels_in_and_out():
    with torch.no_grad():
        assert gen("resnet_6", in_ch=1, out_ch=3)(torch.zeros(2, 1, 32, 32)).shape == (2, 3, 32, 32)
        assert gen("unet_32", in_ch=3, out_ch=1, norm="batch").eval()(torch.zeros(2, 3, 32, 32)).shape == (2, 1, 32, 32)


def test_strides():
    assert generator_stride("resnet_9") == 4
    assert generator_stride("unet_32") == 32
    assert generator_stride("unet_256") == 256
    assert gen("unet_64").stride == 64 and gen("resnet_6").stride == 4


@pytest.mark.parametrize("n_layers,size,expected", [(3, 32, 2), (3, 64, 6), (3, 256, 30), (2, 32, 6), (1, 32, 14)])
def test_patchgan_output_shape(n_layers, size, expected):
    d = disc(in_ch=6, n_layers=n_layers)
    with torch.no_grad():
        out = d(torch.zeros(2, 6, size, size))
    assert out.shape == (2, 1, expected, expected)


def test_patchgan_non_square_and_class_head():
    d = disc(n_classes=5)
    with torch.no_grad():
        adv, cls = d.forward_with_classes(torch.zeros(3, 3, 64, 32))
    assert adv.shape == (3, 1, 6, 2) and cls.shape == (3, 5)
    with pytest.raises(RuntimeError):
        disc().forward_with_classes(torch.zeros(1, 3, 32, 32))


@pytest.mark.parametrize("name", ["resnet_6", "unet_32"])
def test_conditional_input(name):
    torch.manual_seed(0)
    # first_pad "zero": what methods write for a conditional ResNet (reflection would erase the label).
    net = gen(name, cond=4, norm="batch" if name.startswith("unet") else "instance", first_pad="zero").eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    c1 = torch.tensor([[1.0, 0, 0, 0], [1.0, 0, 0, 0]])
    c2 = torch.tensor([[0.0, 0, 1, 0], [0.0, 0, 1, 0]])
    with torch.no_grad():
        y1, y2 = net(x, c1), net(x, c2)
    assert y1.shape == y2.shape == (2, 3, 32, 32)
    assert float((y1 - y2).abs().mean() / y1.abs().mean()) > 0.05  # the condition moves the output
    first = net.model[1] if name.startswith("resnet") else net.down[0]
    assert first.in_channels == 3 + 4


def test_spectral_norm_puts_parametrizations_on_every_conv():
    d = disc(spectral_norm=True)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5
    assert all(parametrize.is_parametrized(c, "weight") for c in convs)
    # Spectral norm replaces the normalisation layers.
    assert not any(isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d)) for m in d.modules())
    init_weights(d, "normal", 1.0)  # large weights: the parametrization must rescale them
    d.train()
    x = torch.randn(2, 3, 32, 32)
    for _ in range(20):  # power iterations converge while training
        d(x)
    for c in convs:
        w = c.weight.detach().flatten(1)
        assert torch.linalg.matrix_norm(w, ord=2) < 1.1
    plain = disc(spectral_norm=False)
    assert not any(parametrize.is_parametrized(m, "weight") for m in plain.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("norm", NORMS)
def test_norm_choices(norm):
    expected = {"instance": InstanceNorm2d, "instance_affine": InstanceNorm2d, "batch": nn.BatchNorm2d, "none": None}[norm]
    for net in (gen("resnet_6", norm=norm), gen("unet_32", norm=norm), disc(norm=norm)):
        norms = [m for m in net.modules() if isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d))]
        assert {type(m) for m in norms} == ({expected} if expected else set())
        # Affine norms learn a scale and shift; plain instance norm has neither, nor running statistics.
        assert all(m.affine == (norm != "instance") for m in norms)
        assert all(not m.track_running_stats for m in norms if isinstance(m, nn.InstanceNorm2d))
        # A conv followed by BatchNorm or affine InstanceNorm carries no bias (the norm's shift replaces it);
        # otherwise convs keep theirs.
        biases = [m.bias is not None for m in net.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        if norm not in ("batch", "instance_affine"):
            assert all(biases)
        else:
            assert not all(biases)
    x = torch.rand(2, 3, 32, 32)
    y = gen("resnet_6", norm=norm)(x)
    y.mean().backward()


def test_unknown_norm_is_refused():
    with pytest.raises(UserError, match="unknown norm"):
        gen("resnet_6", norm="layer")


@pytest.mark.parametrize("kind,check", [
    ("normal", lambda w, fan_in: abs(w.std().item() - 0.02) < 0.004 and abs(w.mean().item()) < 0.004),
    ("xavier", lambda w, fan_in: w.std().item() < 0.05),
    ("kaiming", lambda w, fan_in: abs(w.std().item() - math.sqrt(2 / fan_in)) < 0.25 * math.sqrt(2 / fan_in)),
    ("orthogonal", lambda w, fan_in: w.std().item() < 0.05),
])
def test_init_kinds(kind, check):
    torch.manual_seed(0)
    net = init_weights(gen("resnet_6", ngf=16, norm="batch"), kind, 0.02)
    # The resnet blocks' 3x3 convs are the biggest: enough samples for the statistics.
    conv = net.model[10].body[1]
    assert isinstance(conv, nn.Conv2d)
    fan_in = conv.in_channels * 9
    assert check(conv.weight.detach(), fan_in)
    for m in net.modules():
        if isinstance(m, nn.Conv2d) and m.bias is not None:
            assert torch.all(m.bias == 0)
        if isinstance(m, nn.BatchNorm2d):
            assert abs(m.weight.mean().item() - 1) < 0.05 and torch.all(m.bias == 0)


def test_orthogonal_init_rows_are_orthogonal():
    net = init_weights(gen("resnet_6", ngf=8), "orthogonal", 1.0)
    w = net.model[10].body[1].weight.detach().flatten(1)  # 32 x 288
    assert torch.allclose(w @ w.T, torch.eye(w.shape[0]), atol=1e-4)


def test_init_reaches_spectral_norm_original_weights():
    d = init_weights(disc(spectral_norm=True), "normal", 0.5)
    w = d.trunk[0].parametrizations.weight.original
    assert abs(w.std().item() - 0.5) < 0.1


def test_unknown_init_is_refused():
    with pytest.raises(ValueError):
        init_weights(gen("resnet_6"), "uniform")


@pytest.mark.parametrize("bad", ["resnet", "resnet_0", "unet_100", "unet_2", "vgg_16", "unet_abc", ""])
def test_unknown_generator_name_lists_the_forms(bad):
    with pytest.raises(UserError) as err:
        gen(bad)
    msg = str(err.value)
    assert "resnet_<blocks>" in msg and "unet_<size>" in msg


def test_generator_name_parsing():
    assert parse_generator_name("resnet_9") == ("resnet", 9)
    assert parse_generator_name("unet_256") == ("unet", 8)


@pytest.mark.parametrize("size,expected", [(256, "unet_256"), (512, "unet_256"), (128, "unet_128"), (32, "unet_32"),
                                           (96, "unet_32"), (48, "unet_16")])
def test_unet_resolves_with_image_size(size, expected):
    assert resolve_generator_name("unet", size) == expected
    assert resolve_generator_name("resnet_9", size) == "resnet_9"
    # The resolved U-Net accepts a training crop of that size.
    net = gen(expected, ngf=2, norm="batch").eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, size, size)).shape == (1, 3, size, size)


def test_for_inference_per_image_norm_is_batch_independent():
    torch.manual_seed(0)
    net = gen("unet_32", norm="batch", dropout=True)
    net.train()
    net(torch.randn(4, 3, 32, 32))  # move the running stats
    inf = for_inference(net, "per_image")
    x = torch.randn(3, 3, 32, 32)
    together = inf(x)
    alone = torch.cat([inf(x[i : i + 1]) for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-5)
    assert torch.equal(inf(x), together)  # eval: dropout off, deterministic
    assert not any(p.requires_grad for p in inf.parameters())
    assert net.training  # the original is untouched
