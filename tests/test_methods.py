"""Every registered method: tiny nets, a few train_steps on small batches, finite losses, all weights trained."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch.utils.data import default_collate

from conftest import TINY_OVERRIDES
from img2img import config as config_mod
from img2img.data.datasets import build_dataset
from img2img.methods import METHODS, get_method
from img2img.errors import UserError

METHOD_NAMES = sorted(METHODS)


def data_overrides(kind: str, paired_dir, unpaired_dirs) -> dict:
    if kind == "paired":
        return {"data.data": str(paired_dir)}
    if kind == "unpaired":
        a, b = unpaired_dirs
        return {"data.a": str(a), "data.b": str(b)}
    if kind == "domains":  # the unpaired fixture's parent holds sub-folders A and B: two domains
        return {"data.data": str(unpaired_dirs[0].parent)}
    pytest.skip(f"no test data for dataset kind {kind!r} yet: extend data_overrides in tests/test_methods.py")


def build(name: str, paired_dir, unpaired_dirs, **extra):
    """A method with tiny nets, its dataset, and a batch of 2 real samples from the synthetic folders."""
    cls = get_method(name)
    overrides = {**TINY_OVERRIDES, "train.steps": 2, "train.batch_size": 2,
                 **data_overrides(cls.dataset_kind, paired_dir, unpaired_dirs), **extra}
    cfg = config_mod.build_config(cls, None, overrides)
    dataset = build_dataset(cls.dataset_kind, cfg.data, name)
    torch.manual_seed(0)
    method = cls(cfg, torch.device("cpu"))
    method.prepare(dataset)
    batch = default_collate([dataset[(i, i % max(getattr(dataset, "n_b", 0), 1), 100 + i)] for i in range(2)])
    return method, batch


def is_discriminator(name: str) -> bool:
    return name.startswith("D")


def wgan_cancelled_bias(method, param_name: str, p: torch.Tensor) -> bool:
    """Under WGAN-GP a critic's output bias cancels in E[D(fake)] - E[D(real)] and the penalty ignores it,
    so its gradient is exactly zero in D's step and the weight legitimately never moves."""
    return (method.cfg.train.gan_loss == "wgan-gp" and param_name.endswith("bias")
            and p.grad is not None and not p.grad.any())


def cancelled_by_instance_norm(net: torch.nn.Module, param_name: str) -> bool:
    """A conv bias right before an InstanceNorm: the norm subtracts it, so its gradient is zero up to float
    noise (measured ~1e-9) and Adam moves it on that noise alone. The reference code has these biases too."""
    if not param_name.endswith(".bias"):
        return False
    owner, _, index = param_name[: -len(".bias")].rpartition(".")
    parent = net.get_submodule(owner) if owner else net
    if not (isinstance(parent, torch.nn.Sequential) and index.isdigit() and int(index) + 1 < len(parent)):
        return False
    return isinstance(parent[int(index) + 1], torch.nn.InstanceNorm2d)


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_train_steps_give_finite_losses_and_train_every_parameter(name, paired_dir, unpaired_dirs):
    method, batch = build(name, paired_dir, unpaired_dirs)
    nets = method.nets()
    assert any(is_discriminator(k) for k in nets) and any(not is_discriminator(k) for k in nets)
    before = {f"{n}.{k}": p.detach().clone() for n, net in nets.items() for k, p in net.named_parameters()}
    # Methods that update G once per n_critic D updates (WGAN-style) need that many steps to touch G.
    for step in range(max(2, getattr(method.cfg.loss, "n_critic", 1))):
        losses = method.train_step(batch, step)
        assert losses, "train_step must report its losses"
        for k, v in losses.items():
            assert torch.is_tensor(v) and not v.requires_grad, f"{k} must be a detached tensor"
            assert torch.isfinite(v).all(), f"{name}: loss {k} = {v}"
    unchanged, no_grad, noise_grad = [], [], []
    for n, net in nets.items():
        for k, p in net.named_parameters():
            if p.grad is None or not torch.isfinite(p.grad).all():
                no_grad.append(f"{n}.{k}")
            elif float(p.grad.abs().mean()) < 1e-6 and not cancelled_by_instance_norm(net, k) and not wgan_cancelled_bias(method, k, p):
                noise_grad.append(f"{n}.{k}: {float(p.grad.abs().mean()):.1e}")  # smallest real one measured: 9e-5
            if torch.equal(p.detach(), before[f"{n}.{k}"]) and not wgan_cancelled_bias(method, k, p):
                unchanged.append(f"{n}.{k}")
    assert not no_grad, f"{name}: parameters without a (finite) gradient: {no_grad}"
    # Adam moves a weight by ~lr even on a float-noise gradient, so "updated" alone proves nothing
    assert not noise_grad, f"{name}: parameters whose gradient is only float noise: {noise_grad}"
    assert not unchanged, f"{name}: parameters not updated by train_step: {unchanged}"


@pytest.mark.parametrize("gan_loss", ["hinge", "wgan-gp"])
@pytest.mark.parametrize("name", METHOD_NAMES)
def test_other_gan_losses_run(name, gan_loss, paired_dir, unpaired_dirs):
    """The stabilisers are options of every method (wgan-gp needs double backward through its nets)."""
    method, batch = build(name, paired_dir, unpaired_dirs, **{"train.gan_loss": gan_loss})
    losses = method.train_step(batch, 0)
    assert all(torch.isfinite(v).all() for v in losses.values())


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_spectral_norm_method_trains(name, paired_dir, unpaired_dirs):
    method, batch = build(name, paired_dir, unpaired_dirs, **{"net.spectral_norm": True, "train.gan_loss": "hinge"})
    losses = method.train_step(batch, 0)
    assert all(torch.isfinite(v).all() for v in losses.values())


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_sample_returns_images_of_the_input_shape(name, paired_dir, unpaired_dirs):
    method, batch = build(name, paired_dir, unpaired_dirs)
    method.train_step(batch, 0)
    training_modes = {k: net.training for k, net in method.nets().items()}
    state = copy.deepcopy({k: net.state_dict() for k, net in method.nets().items()})
    views = method.sample(batch)
    assert isinstance(views, list) and len(views) >= 2
    for v in views:
        assert v.shape == batch["a"].shape
        assert torch.isfinite(v).all() and v.min() >= -1 and v.max() <= 1
    # Sampling leaves the training state alone (no BatchNorm statistics updated, no mode switch).
    assert {k: net.training for k, net in method.nets().items()} == training_modes
    for k, net in method.nets().items():
        for key, t in net.state_dict().items():
            assert torch.equal(t, state[k][key]), f"{k}.{key} changed by sample()"


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_exported_generators_match_directions(name, paired_dir, unpaired_dirs):
    method, _ = build(name, paired_dir, unpaired_dirs)
    gens, directions = method.exported()
    assert directions
    for entry in directions.values():
        assert entry["generator"] in gens
    for arch, net in gens.values():
        assert arch["name"] == method.cfg.net.generator  # resolved, e.g. 'unet' -> 'unet_32'


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_state_dict_round_trip(name, paired_dir, unpaired_dirs):
    method, batch = build(name, paired_dir, unpaired_dirs)
    method.train_step(batch, 0)
    other, _ = build(name, paired_dir, unpaired_dirs, **{"train.seed": 5})
    # Through bytes, as in checkpoint.pt (loading an in-memory state_dict would alias the optimizer state).
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    other.load_state_dict(torch.load(buffer, weights_only=True))
    for k, net in method.nets().items():
        for key, t in net.state_dict().items():
            assert torch.equal(t, other.nets()[k].state_dict()[key])
    rng = torch.get_rng_state()
    la = method.train_step(batch, 1)
    torch.set_rng_state(rng)
    lb = other.train_step(batch, 1)
    assert {k: v.item() for k, v in la.items()} == {k: v.item() for k, v in lb.items()}


def test_pix2pix_paper_defaults_and_direction(paired_dir, unpaired_dirs):
    method, batch = build("pix2pix", paired_dir, unpaired_dirs)
    assert method.cfg.net.generator == "unet_32" and method.cfg.net.norm == "batch"
    x, y = method._source_target(batch)
    assert x is batch["a"] and y is batch["b"]
    reverse, _ = build("pix2pix", paired_dir, unpaired_dirs, **{"data.direction": "b2a"})
    assert list(reverse.exported()[1]) == ["b2a"]


def test_cyclegan_knows_both_directions(paired_dir, unpaired_dirs):
    method, batch = build("cyclegan", paired_dir, unpaired_dirs)
    assert set(method.exported()[1]) == {"a2b", "b2a"}
    assert "idt" in method.train_step(batch, 0)
    no_idt, _ = build("cyclegan", paired_dir, unpaired_dirs, **{"loss.lambda_idt": 0})
    assert "idt" not in no_idt.train_step(batch, 0)
    no_pool, _ = build("cyclegan", paired_dir, unpaired_dirs, **{"loss.pool_size": 0})
    for step in range(2):  # without a pool D still trains on detached fakes
        assert all(torch.isfinite(v) for v in no_pool.train_step(batch, step).values())


def test_unknown_method_lists_known():
    with pytest.raises(UserError) as err:
        get_method("pix3pix")
    assert all(n in str(err.value) for n in METHOD_NAMES)
