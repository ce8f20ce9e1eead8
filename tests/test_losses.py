"""Adversarial losses, the WGAN-GP gradient penalty, and the image pool."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from img2img.image_pool import ImagePool
from img2img.losses import GAN_LOSSES, AdversarialLoss, gradient_penalty, l1


def toy_batch(g: torch.Generator, n: int = 32, dim: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Real ~ N(+1, 1), fake ~ N(-1, 1): separable on average, so any sound D objective can fall."""
    return torch.randn(n, dim, generator=g) + 1, torch.randn(n, dim, generator=g) - 1


@pytest.mark.parametrize("kind", GAN_LOSSES)
def test_discriminator_loss_falls_on_separable_toy_problem(kind):
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(8, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    opt = torch.optim.Adam(critic.parameters(), lr=3e-3)
    adv = AdversarialLoss(kind, gp_weight=10.0)
    g = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(120):
        real, fake = toy_batch(g)
        loss = adv.discriminator(critic(real), critic(fake), critic=critic, real=real, fake=fake)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert all(torch.isfinite(torch.tensor(losses)))
    assert last < first - 0.2, f"{kind}: D loss {first:.3f} -> {last:.3f}"
    # After training, D scores real above fake.
    real, fake = toy_batch(g)
    with torch.no_grad():
        assert critic(real).mean() > critic(fake).mean()


@pytest.mark.parametrize("kind", GAN_LOSSES)
def test_generator_loss_rewards_fooling_d(kind):
    adv = AdversarialLoss(kind)
    fooled, caught = torch.full((4, 1, 2, 2), 3.0), torch.full((4, 1, 2, 2), -3.0)
    assert adv.generator(fooled) < adv.generator(caught)


def test_unknown_gan_loss_is_refused():
    with pytest.raises(ValueError, match="unknown GAN loss"):
        AdversarialLoss("relativistic")


def linear_critic(scale: float, dim: int = 12) -> nn.Linear:
    """A linear critic has gradient w everywhere, so the penalty is exactly (||w|| - 1)^2."""
    critic = nn.Linear(dim, 1)
    with torch.no_grad():
        w = torch.randn(1, dim)
        critic.weight.copy_(w / w.norm() * scale)
    return critic


def test_gradient_penalty_value_for_known_gradient_norm():
    real, fake = torch.randn(5, 12), torch.randn(5, 12)
    assert gradient_penalty(linear_critic(3.0), real, fake).item() == pytest.approx(4.0, rel=1e-5)
    assert gradient_penalty(linear_critic(1.0), real, fake).item() == pytest.approx(0.0, abs=1e-8)


def test_gradient_penalty_is_differentiable_wrt_critic_weights():
    critic = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3, padding=1))
    real, fake = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    gp = gradient_penalty(critic, real, fake)
    assert gp.item() > 0
    gp.backward()
    for name, p in critic.named_parameters():
        if name.endswith("weight"):
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    # Stepping on the penalty alone moves the critic's gradient norm towards 1.
    lin = linear_critic(3.0)
    opt = torch.optim.SGD(lin.parameters(), lr=0.05)
    for _ in range(50):
        opt.zero_grad()
        gradient_penalty(lin, real.flatten(1)[:, :12], fake.flatten(1)[:, :12]).backward()
        opt.step()
    assert abs(lin.weight.norm().item() - 1) < 0.1


def test_gradient_penalty_does_not_backprop_into_the_samples():
    real = torch.randn(3, 12, requires_grad=True)
    fake = torch.randn(3, 12, requires_grad=True)
    gradient_penalty(linear_critic(2.0), real, fake).backward()
    assert real.grad is None and fake.grad is None


def test_wgan_gp_discriminator_loss_includes_the_penalty():
    critic = linear_critic(3.0)
    real, fake = torch.randn(6, 12) + 1, torch.randn(6, 12) - 1
    r, f = critic(real), critic(fake)
    wasserstein = (f.mean() - r.mean()).item()
    for weight in (10.0, 2.5):
        loss = AdversarialLoss("wgan-gp", gp_weight=weight).discriminator(r, f, critic=critic, real=real, fake=fake)
        assert loss.item() == pytest.approx(wasserstein + weight * 4.0, rel=1e-5, abs=1e-5)
    # For the other losses the critic arguments change nothing.
    hinge = AdversarialLoss("hinge").discriminator(r, f, critic=critic, real=real, fake=fake)
    assert hinge.item() == pytest.approx((torch.relu(1 - r).mean() + torch.relu(1 + f).mean()).item())


def test_l1():
    assert l1(torch.zeros(2, 3), torch.full((2, 3), 0.5)).item() == pytest.approx(0.5)


# ----------------------------------------------------------------------------- image pool

def test_image_pool_fills_then_mixes_history():
    torch.manual_seed(0)
    pool = ImagePool(size=5)
    batches = [torch.full((2, 3, 4, 4), float(k)) for k in range(10)]
    out = pool.query(batches[0])
    assert out.shape == (2, 3, 4, 4) and torch.equal(out, batches[0])  # not full yet: passes through
    pool.query(batches[1])
    out = pool.query(batches[2])
    assert len(pool.images) == 5  # filled to its size, never beyond
    assert out.shape == (2, 3, 4, 4)
    returned_old = False
    for k in range(3, 10):
        out = pool.query(batches[k])
        assert out.shape == (2, 3, 4, 4) and len(pool.images) == 5
        values = out[:, 0, 0, 0].tolist()
        assert all(v <= k for v in values)
        returned_old |= any(v < k for v in values)
    assert returned_old  # history really is replayed


def test_image_pool_size_zero_passes_through_detached():
    pool = ImagePool(0)
    x = torch.randn(3, 3, 4, 4, requires_grad=True)
    out = pool.query(x * 2)
    assert torch.equal(out, x.detach() * 2) and pool.images == []
    assert not out.requires_grad  # D's update must never backpropagate into G (whose graph is already freed)


def test_image_pool_output_is_detached_when_filling():
    x = torch.randn(2, 3, 4, 4, requires_grad=True)
    assert not ImagePool(4).query(x * 2).requires_grad


def test_image_pool_state_dict_round_trip():
    torch.manual_seed(1)
    pool = ImagePool(size=4)
    for k in range(3):
        pool.query(torch.randn(2, 3, 4, 4))
    state = pool.state_dict()
    assert state["images"].shape == (4, 3, 4, 4)
    restored = ImagePool(size=50)
    restored.load_state_dict(state)
    assert restored.size == 4 and len(restored.images) == 4
    assert all(torch.equal(a, b) for a, b in zip(pool.images, restored.images))
    # Same RNG state + same state -> same choices.
    x = torch.randn(2, 3, 4, 4)
    rng = torch.get_rng_state()
    a = pool.query(x)
    torch.set_rng_state(rng)
    b = restored.query(x)
    assert torch.equal(a, b)
    empty = ImagePool(3)
    fresh = ImagePool(9)
    fresh.load_state_dict(empty.state_dict())
    assert fresh.size == 3 and fresh.images == []
