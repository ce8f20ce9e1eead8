"""`img2img import`: reference pix2pix/CycleGAN generators give the same outputs as in the reference code.

The reference networks are written here again from their documented layer order (pytorch-CycleGAN-and-
pix2pix models/networks.py: ResnetGenerator, ResnetBlock, UnetGenerator, UnetSkipConnectionBlock), with
the reference's module names, so their state dicts have the reference's keys. Nothing is downloaded.
"""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from img2img import cli
from img2img.modelfile import load_model

runner = CliRunner()


def norm_factory(kind: str):
    if kind == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if kind == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    return lambda channels: nn.Identity()


def uses_bias(norm_layer) -> bool:
    return isinstance(norm_layer, functools.partial) and norm_layer.func is nn.InstanceNorm2d


class RefResnetBlock(nn.Module):
    def __init__(self, dim, norm_layer, use_dropout, use_bias):
        super().__init__()
        block = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=use_bias), norm_layer(dim), nn.ReLU(True)]
        if use_dropout:
            block.append(nn.Dropout(0.5))
        block += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, padding=0, bias=use_bias), norm_layer(dim)]
        self.conv_block = nn.Sequential(*block)

    def forward(self, x):
        return x + self.conv_block(x)


class RefResnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, ngf, norm_layer, use_dropout, n_blocks):
        super().__init__()
        use_bias = uses_bias(norm_layer)
        model = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, padding=0, bias=use_bias), norm_layer(ngf), nn.ReLU(True)]
        for i in range(2):
            mult = 2**i
            model += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=use_bias),
                      norm_layer(ngf * mult * 2), nn.ReLU(True)]
        for _ in range(n_blocks):
            model.append(RefResnetBlock(ngf * 4, norm_layer, use_dropout, use_bias))
        for i in range(2):
            mult = 2 ** (2 - i)
            model += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1, bias=use_bias),
                      norm_layer(ngf * mult // 2), nn.ReLU(True)]
        model += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x)


class RefUnetBlock(nn.Module):
    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None, outermost=False, innermost=False,
                 norm_layer=None, use_dropout=False):
        super().__init__()
        self.outermost = outermost
        use_bias = uses_bias(norm_layer)
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=use_bias)
        if outermost:
            model = [downconv, submodule, nn.ReLU(True), nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1), nn.Tanh()]
        elif innermost:
            model = [nn.LeakyReLU(0.2, True), downconv, nn.ReLU(True),
                     nn.ConvTranspose2d(inner_nc, outer_nc, 4, 2, 1, bias=use_bias), norm_layer(outer_nc)]
        else:
            model = [nn.LeakyReLU(0.2, True), downconv, norm_layer(inner_nc), submodule, nn.ReLU(True),
                     nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=use_bias), norm_layer(outer_nc)]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class RefUnetGenerator(nn.Module):
    def __init__(self, input_nc, output_nc, num_downs, ngf, norm_layer, use_dropout):
        super().__init__()
        block = RefUnetBlock(ngf * 8, ngf * 8, norm_layer=norm_layer, innermost=True)
        for _ in range(num_downs - 5):
            block = RefUnetBlock(ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer, use_dropout=use_dropout)
        block = RefUnetBlock(ngf * 4, ngf * 8, submodule=block, norm_layer=norm_layer)
        block = RefUnetBlock(ngf * 2, ngf * 4, submodule=block, norm_layer=norm_layer)
        block = RefUnetBlock(ngf, ngf * 2, submodule=block, norm_layer=norm_layer)
        self.model = RefUnetBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm_layer=norm_layer)

    def forward(self, x):
        return self.model(x)


def randomized(net: nn.Module, seed: int) -> nn.Module:
    """Random weights (at a trained net's scale) and BatchNorm statistics far from the defaults, so a
    mis-mapped tensor shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if not t.dtype.is_floating_point:
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith("weight") and t.ndim == 4:  # conv: unit gain per layer
                t.copy_(torch.randn(t.shape, generator=g) / (t[0].numel() if t.shape[0] > 1 else t.numel()) ** 0.5)
            elif name.endswith("weight"):  # norm scale
                t.copy_(1 + 0.3 * torch.randn(t.shape, generator=g))
            else:
                t.copy_(0.2 * torch.randn(t.shape, generator=g))
    return net.eval()


def import_file(tmp_path, files, method, *extra):
    out = tmp_path / "model.pt"
    result = runner.invoke(cli.app, ["import", *map(str, files), "--method", method, "-o", str(out), *extra])
    assert result.exit_code == 0, result.output
    return load_model(out)


RESNETS = [(6, "instance", False), (9, "instance", False), (6, "batch", False), (6, "instance", True), (6, "none", False)]
UNETS = [(7, "batch", True), (7, "batch", False), (8, "batch", True), (8, "batch", False), (7, "instance", False)]


@pytest.mark.parametrize("blocks,norm,dropout", RESNETS)
def test_resnet_generators_import_exactly(tmp_path, blocks, norm, dropout):
    ref = randomized(RefResnetGenerator(3, 3, 8, norm_factory(norm), dropout, blocks), seed=blocks)
    torch.save(ref.state_dict(), tmp_path / "latest_net_G_A.pth")
    mf = import_file(tmp_path, [tmp_path / "latest_net_G_A.pth"], "cyclegan")
    arch = mf.data["generators"]["G_AB"]["arch"]
    assert (arch["name"], arch["norm"], arch["ngf"], arch["dropout"]) == (f"resnet_{blocks}", norm, 8, dropout)
    x = torch.rand(2, 3, 32, 40) * 2 - 1
    with torch.no_grad():
        expected, got = ref(x), mf.generator("G_AB")(x)
    assert (got - expected).abs().max().item() < 1e-5
    assert expected.std() > 0.05  # a real signal, not a flat image


@pytest.mark.parametrize("num_downs,norm,dropout", UNETS)
def test_unet_generators_import_exactly(tmp_path, num_downs, norm, dropout):
    ref = randomized(RefUnetGenerator(3, 3, num_downs, 8, norm_factory(norm), dropout), seed=num_downs)
    torch.save(ref.state_dict(), tmp_path / "latest_net_G.pth")
    mf = import_file(tmp_path, [tmp_path / "latest_net_G.pth"], "pix2pix", "--test-time-norm", "running",
                     "--dropout" if dropout else "--no-dropout")
    arch = mf.data["generators"]["G"]["arch"]
    assert (arch["name"], arch["norm"], arch["dropout"]) == (f"unet_{2 ** num_downs}", norm, dropout)
    assert mf.data["image_size"] == 2**num_downs
    assert mf.data.get("test_dropout_seed") == (0 if dropout else None)  # pix2pix keeps dropout on at test time
    x = torch.rand(1, 3, 2**num_downs, 2**num_downs) * 2 - 1
    with torch.no_grad():
        expected, got = ref(x), mf.generator("G", test_dropout=False)(x)  # the reference with --eval
    assert (got - expected).abs().max().item() < 1e-5
    assert expected.std() > 0.05


def test_pix2pix_default_matches_the_reference_test_script_batchnorm_per_image(tmp_path):
    """The reference test script (without --eval) runs BatchNorm on the test image's own statistics."""
    ref = randomized(RefUnetGenerator(3, 3, 7, 8, norm_factory("batch"), False), seed=3)
    torch.save(ref.state_dict(), tmp_path / "latest_net_G.pth")
    mf = import_file(tmp_path, [tmp_path / "latest_net_G.pth"], "pix2pix", "--no-dropout")
    assert mf.data["test_time_norm"] == "per_image"
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        expected = ref.train()(x)
        got = mf.generator("G")(x)
        in_eval = ref.eval()(x)
    assert (got - expected).abs().max().item() < 1e-5
    assert (in_eval - expected).abs().max().item() > 1e-2  # the two test-time norms really differ here


def test_cyclegan_pair_old_instance_norm_stats_and_dataparallel_prefix(tmp_path):
    """G_A and G_B become a2b and b2a; running stats of pre-0.4 InstanceNorm files and 'module.' are dropped."""
    g_a = randomized(RefResnetGenerator(3, 3, 8, norm_factory("instance"), False, 6), seed=1)
    g_b = randomized(RefResnetGenerator(3, 3, 8, norm_factory("instance"), False, 6), seed=2)
    old = {f"module.{k}": v for k, v in g_a.state_dict().items()}
    for i in (2, 5, 8):  # the InstanceNorm layers of the stem and downsamplings carried running stats
        old[f"module.model.{i}.running_mean"] = torch.randn(old[f"module.model.{i - 1}.weight"].shape[0])
        old[f"module.model.{i}.running_var"] = torch.rand(old[f"module.model.{i - 1}.weight"].shape[0]) + 1
    old["module.model.10.conv_block.2.running_mean"] = torch.randn(32)
    torch.save(old, tmp_path / "latest_net_G_A.pth")
    torch.save(g_b.state_dict(), tmp_path / "latest_net_G_B.pth")
    mf = import_file(tmp_path, [tmp_path / "latest_net_G_A.pth", tmp_path / "latest_net_G_B.pth"], "cyclegan")
    assert set(mf.directions) == {"a2b", "b2a"}
    x = torch.rand(1, 3, 36, 28) * 2 - 1
    with torch.no_grad():
        for ref, name in ((g_a, "G_AB"), (g_b, "G_BA")):
            assert (mf.generator(name)(x) - ref(x)).abs().max().item() < 1e-5


def test_imported_model_translates_through_the_cli(tmp_path):
    from PIL import Image

    ref = randomized(RefResnetGenerator(3, 3, 8, norm_factory("instance"), False, 6), seed=5)
    torch.save(ref.state_dict(), tmp_path / "g.pth")
    import_file(tmp_path, [tmp_path / "g.pth"], "cyclegan")
    Image.new("RGB", (30, 22), (200, 40, 90)).save(tmp_path / "in.png")
    result = runner.invoke(cli.app, ["translate", str(tmp_path / "model.pt"), str(tmp_path / "in.png"),
                                     "-o", str(tmp_path / "out.png"), "--precision", "fp32", "-q"])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out.png").size == (30, 22)


@pytest.mark.parametrize("content,words", [
    ({"model.0.weight": "not a tensor"}, "not a generator state dict"),
    ({"encoder.weight": torch.zeros(3, 3)}, "not a reference ResNet generator"),
])
def test_files_that_are_not_reference_generators_get_one_line(tmp_path, content, words):
    torch.save(content, tmp_path / "bad.pth")
    result = runner.invoke(cli.app, ["import", str(tmp_path / "bad.pth"), "--method", "cyclegan", "-o", str(tmp_path / "m.pt")])
    assert result.exit_code == 2
    assert words in result.output and "Traceback" not in result.output
    assert not (tmp_path / "m.pt").exists()


def test_import_never_overwrites(tmp_path):
    ref = randomized(RefResnetGenerator(3, 3, 8, norm_factory("instance"), False, 6), seed=5)
    torch.save(ref.state_dict(), tmp_path / "g.pth")
    (tmp_path / "model.pt").write_bytes(b"mine")
    result = runner.invoke(cli.app, ["import", str(tmp_path / "g.pth"), "--method", "cyclegan", "-o", str(tmp_path / "model.pt")])
    assert result.exit_code == 2 and (tmp_path / "model.pt").read_bytes() == b"mine"


class RefStarResidualBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False), nn.InstanceNorm2d(dim, affine=True, track_running_stats=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False), nn.InstanceNorm2d(dim, affine=True, track_running_stats=True))

    def forward(self, x):
        return x + self.main(x)


class RefStarGenerator(nn.Module):
    """yunjey/stargan model.py Generator, from its documented layer order."""

    def __init__(self, conv_dim=64, c_dim=5, repeat_num=6):
        super().__init__()
        layers = [nn.Conv2d(3 + c_dim, conv_dim, 7, 1, 3, bias=False),
                  nn.InstanceNorm2d(conv_dim, affine=True, track_running_stats=True), nn.ReLU(inplace=True)]
        curr = conv_dim
        for _ in range(2):
            layers += [nn.Conv2d(curr, curr * 2, 4, 2, 1, bias=False),
                       nn.InstanceNorm2d(curr * 2, affine=True, track_running_stats=True), nn.ReLU(inplace=True)]
            curr *= 2
        layers += [RefStarResidualBlock(curr) for _ in range(repeat_num)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(curr, curr // 2, 4, 2, 1, bias=False),
                       nn.InstanceNorm2d(curr // 2, affine=True, track_running_stats=True), nn.ReLU(inplace=True)]
            curr //= 2
        layers += [nn.Conv2d(curr, 3, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x, c):
        c = c.view(c.size(0), c.size(1), 1, 1).repeat(1, 1, x.size(2), x.size(3))
        return self.main(torch.cat([x, c], dim=1))


def test_stargan_generator_imports_with_its_label_count(tmp_path):
    from img2img.nets.layers import NORMS

    if "instance_affine" not in NORMS:
        pytest.skip("the shared backbone has no StarGAN generator options in this build")
    ref = randomized(RefStarGenerator(conv_dim=8, c_dim=4, repeat_num=3), seed=7)
    for name, t in ref.state_dict().items():  # statistics gathered in training, never used by their test code
        if name.endswith("running_mean"):
            t.copy_(torch.randn(t.shape))
    torch.save(ref.state_dict(), tmp_path / "200000-G.ckpt")
    mf = import_file(tmp_path, [tmp_path / "200000-G.ckpt"], "stargan", "--domains", "black,blond,brown,male")
    assert mf.data["domains"] == ["black", "blond", "brown", "male"]
    assert mf.data["generators"]["G"]["arch"]["cond_channels"] == 4
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    g = mf.generator("G")
    outs = []
    with torch.no_grad():
        for k, name in enumerate(["black", "blond", "brown", "male"]):
            c = torch.zeros(2, 4)
            c[:, k] = 1
            expected = ref.train()(x, c)  # the authors' solver never calls G.eval()
            got = g(x, torch.tensor(mf.directions[f"to:{name}"]["cond"]).expand(2, 4))
            assert (got - expected).abs().max().item() < 1e-5
            outs.append(got)
    assert (outs[0] - outs[1]).abs().mean() > 1e-2  # the label matters
