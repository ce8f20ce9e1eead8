"""net.input_skip: a ResNet generator that learns a change of its input, tanh(atanh(x) + f(x)), and starts
as the identity. Checked: identity at initialisation under every init, that training moves it off the
identity (the zero last conv still gets gradients), model file / info / ONNX carry it, bad uses refused."""

from __future__ import annotations

import pytest
import torch

from conftest import TINY_FLAGS
from img2img.errors import UserError
from img2img.modelfile import load_model
from img2img.nets import build_generator
from img2img.nets.layers import init_weights

ARCH = {"name": "resnet_6", "in_channels": 3, "out_channels": 3, "ngf": 8, "norm": "instance", "dropout": False}
X = torch.rand(2, 3, 32, 40, generator=torch.Generator().manual_seed(0)) * 2 - 1


@pytest.mark.parametrize("init", ["normal", "xavier", "kaiming", "orthogonal", "default"])
def test_the_net_starts_as_the_identity(init):
    torch.manual_seed(0)
    skip = init_weights(build_generator({**ARCH, "input_skip": True}), init, 0.02)
    plain = init_weights(build_generator(ARCH), init, 0.02)
    with torch.no_grad():
        assert float((skip(X) - X).abs().max()) < 2e-3  # inputs clamped to +-0.999 before atanh
        assert float((plain(X) - X).abs().mean()) > 0.05  # what it would be without the skip


def test_training_moves_it_off_the_identity_and_the_file_keeps_it(cli, tmp_path, unpaired_dirs):
    run = tmp_path / "run"
    result = cli(["train", "cyclegan", "--a", unpaired_dirs[0], "--b", unpaired_dirs[1], "--steps", 6,
                  "--generator", "resnet_6", "--set", "net.input_skip=true", "--out", run, *TINY_FLAGS])
    assert result.exit_code == 0, result.output
    mf = load_model(run / "model.pt")
    x = X[:, :, :32, :32]
    for name in ("G_AB", "G_BA"):
        assert mf.data["generators"][name]["arch"]["input_skip"] is True
        with torch.no_grad():
            change = float((mf.generator(name)(x) - x).abs().mean())
        assert change > 0.005, f"{name} still the identity after 6 steps ({change:.2g})"  # 8-bit level: 0.0078
    info = cli(["info", run / "model.pt"])
    assert "input skip" in info.output


def test_onnx_export_carries_the_skip(cli, tmp_path, unpaired_dirs):
    pytest.importorskip("onnxruntime")
    from img2img.export import run_onnx

    run = tmp_path / "run"
    result = cli(["train", "cyclegan", "--a", unpaired_dirs[0], "--b", unpaired_dirs[1], "--steps", 3,
                  "--generator", "resnet_6", "--set", "net.input_skip=true", "--out", run, *TINY_FLAGS])
    assert result.exit_code == 0, result.output
    result = cli(["export", run / "model.pt", "-o", tmp_path / "g.onnx"])
    assert result.exit_code == 0, result.output
    net = load_model(run / "model.pt").generator("G_AB")
    with torch.no_grad():
        expected = net(X)
    assert float((run_onnx(tmp_path / "g.onnx", X, None) - expected).abs().max()) < 1e-4


def test_bad_uses_are_refused():
    with pytest.raises(UserError, match="ResNet"):
        build_generator({**ARCH, "name": "unet_32", "input_skip": True})
    with pytest.raises(UserError, match="output channels"):
        build_generator({**ARCH, "out_channels": 1, "input_skip": True})
