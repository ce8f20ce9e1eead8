"""The fast paths compute what the plain ones compute: instance norm as group norm (values and
gradients, any memory layout), and the inference form (channels-last, bf16 weights) of a trained
generator: exactly in fp32, within bf16 rounding otherwise."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image

from img2img.nets import build_generator, init_weights
from img2img.nets.layers import InstanceNorm2d, for_inference
from img2img.translate import Translator
from img2img.translate.translator import InferenceGenerator
from tiny_runs import tiny_run

CPU = torch.device("cpu")


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_instance_norm_values_and_gradients_match_torch(batch, layout):
    torch.manual_seed(batch)
    x = torch.randn(batch, 16, 9, 7) * 3 + 1
    grad_out = torch.randn_like(x)
    ref_in = x.clone().requires_grad_()
    expected = torch.nn.functional.instance_norm(ref_in)
    expected.backward(grad_out)
    ours_in = x.contiguous(memory_format=layout).requires_grad_()
    got = InstanceNorm2d(16)(ours_in)
    got.backward(grad_out.contiguous(memory_format=layout))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours_in.grad, ref_in.grad, atol=1e-5, rtol=1e-5)


def trained_like(name: str, norm: str, cond_channels: int = 0) -> torch.nn.Module:
    """A generator with non-trivial norm parameters and BatchNorm running statistics, as after training."""
    torch.manual_seed(0)
    net = init_weights(build_generator(dict(name=name, in_channels=3, out_channels=3, ngf=8, norm=norm,
                                            dropout=False, cond_channels=cond_channels)))
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.bias.data.uniform_(-0.3, 0.3)
    return net


CASES = [("resnet_6", "instance", "running"), ("unet_32", "batch", "per_image"), ("unet_32", "batch", "running"),
         ("unet_32", "instance", "running")]


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("name,norm,test_time_norm", CASES)
def test_fp32_fast_form_equals_the_inference_net(name, norm, test_time_norm, channels_last):
    reference = for_inference(trained_like(name, norm), test_time_norm)
    fast = InferenceGenerator(copy.deepcopy(reference), "fp32", CPU, channels_last=channels_last)
    layouts = {p.is_contiguous(memory_format=torch.channels_last) for p in fast.net.parameters() if p.dim() == 4}
    assert layouts == {channels_last}
    x = torch.rand(3, 3, 32, 64) * 2 - 1
    with torch.no_grad():
        expected = reference(x)
    got = fast(x)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    # per image: an image's output does not depend on what it is batched with
    torch.testing.assert_close(fast(x[1:2]), expected[1:2], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name,norm,test_time_norm", CASES)
def test_bf16_fast_form_stays_within_bf16_rounding(name, norm, test_time_norm):
    reference = for_inference(trained_like(name, norm), test_time_norm)
    fast = InferenceGenerator(copy.deepcopy(reference), "bf16", CPU)
    assert all(p.dtype == torch.bfloat16 for p in fast.net.parameters())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = reference(x)
    diff = (fast(x) - expected).abs()
    assert diff.mean() < 0.02 and diff.max() < 0.2, (diff.mean().item(), diff.max().item())


def test_conditioned_generator_takes_its_label_in_bf16():
    reference = for_inference(trained_like("resnet_6", "instance", cond_channels=4))
    fast = InferenceGenerator(copy.deepcopy(reference), "bf16", CPU)
    x, label = torch.rand(2, 3, 32, 32) * 2 - 1, torch.eye(4)[[1, 3]]
    with torch.no_grad():
        expected = reference(x, label)
    assert (fast(x, label) - expected).abs().mean() < 0.02


@pytest.fixture(scope="module")
def cyclegan_model(tmp_path_factory, paired_dir, unpaired_dirs):
    return tiny_run("cyclegan", tmp_path_factory.mktemp("fast_inference") / "run", paired_dir, unpaired_dirs) / "model.pt"


def test_bf16_and_fp32_translations_agree_to_about_one_level(cyclegan_model):
    x = torch.rand(2, 3, 45, 37) * 2 - 1
    exact = Translator(cyclegan_model, device="cpu", precision="fp32")(x)
    fast = Translator(cyclegan_model, device="cpu", precision="bf16")(x)
    levels = (exact - fast).abs() * 127.5
    assert fast.shape == x.shape
    assert levels.mean() < 1.0 and levels.max() < 16


def test_translate_compile_flag_writes_the_same_images(cli, cyclegan_model, unpaired_dirs, tmp_path):
    eager, compiled = tmp_path / "eager", tmp_path / "compiled"
    for out, extra in ((eager, []), (compiled, ["--compile"])):
        result = cli(["translate", cyclegan_model, unpaired_dirs[0], "-o", out, "-q", "--device", "cpu", *extra])
        assert result.exit_code == 0, result.output
    names = sorted(p.name for p in eager.iterdir())
    assert names and names == sorted(p.name for p in compiled.iterdir())
    for name in names:
        a = np.asarray(Image.open(eager / name), dtype=np.int16)
        b = np.asarray(Image.open(compiled / name), dtype=np.int16)
        assert a.shape == b.shape and np.abs(a - b).max() <= 4
