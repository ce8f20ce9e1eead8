"""Losses shared by every method.

Adversarial losses (D sees real x and fake G(z); logits are D's raw outputs):
  vanilla  D: BCE(D(x), 1) + BCE(D(G), 0)            G: BCE(D(G), 1)   (non-saturating, Goodfellow 2014)
  lsgan    D: (D(x) - 1)^2 + D(G)^2                   G: (D(G) - 1)^2   (Mao 2017)
  hinge    D: relu(1 - D(x)) + relu(1 + D(G))         G: -D(G)          (Lim & Ye 2017; SAGAN)
  wgan-gp  D: D(G) - D(x) + lambda * (||grad D(x_hat)|| - 1)^2          G: -D(G)   (Gulrajani 2017)
The vanilla and lsgan D losses are halved, as in the CycleGAN/pix2pix code, which slows D relative to G.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

GAN_LOSSES = ("vanilla", "lsgan", "hinge", "wgan-gp")


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[(||d critic(x_hat) / d x_hat||_2 - 1)^2] at random interpolates x_hat of real and fake samples.

    create_graph=True keeps the penalty differentiable with respect to the critic's weights.
    """
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()


class AdversarialLoss:
    """One adversarial objective for D and for G. For wgan-gp, the penalty is always part of the D loss."""

    def __init__(self, kind: str, gp_weight: float = 10.0):
        if kind not in GAN_LOSSES:
            raise ValueError(f"unknown GAN loss {kind!r}; choose from {', '.join(GAN_LOSSES)}")
        self.kind, self.gp_weight = kind, gp_weight

    def discriminator(self, real_logits: torch.Tensor, fake_logits: torch.Tensor, *,
                      critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """D's loss. critic/real/fake are what D judged; wgan-gp uses them for the gradient penalty."""
        real_logits, fake_logits = real_logits.float(), fake_logits.float()
        if self.kind == "vanilla":
            return 0.5 * (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
                          + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        if self.kind == "lsgan":
            return 0.5 * (F.mse_loss(real_logits, torch.ones_like(real_logits)) + F.mse_loss(fake_logits, torch.zeros_like(fake_logits)))
        if self.kind == "hinge":
            return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
        wasserstein = fake_logits.mean() - real_logits.mean()
        return wasserstein + self.gp_weight * gradient_penalty(critic, real, fake)

    def generator(self, fake_logits: torch.Tensor) -> torch.Tensor:
        fake_logits = fake_logits.float()
        if self.kind == "vanilla":
            return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
        if self.kind == "lsgan":
            return F.mse_loss(fake_logits, torch.ones_like(fake_logits))
        return -fake_logits.mean()


def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute error: pix2pix's L1 term, CycleGAN's cycle and identity terms."""
    return F.l1_loss(x.float(), y.float())


def patch_nce(query: torch.Tensor, key: torch.Tensor, batch_size: int, temperature: float = 0.07) -> torch.Tensor:
    """PatchNCE (Park et al. 2020, CUT): each output patch must pick its own input patch out of the others.

    query, key: (batch_size * P, D) L2-normalised embeddings of the same P patch positions of each image
    (query from the translated image, key from the input). For patch i the positive is key i; the negatives
    are the other P - 1 patches of the same image (CUT's default: no negatives from other images of the
    batch). Loss per patch = cross-entropy of [q.k+, q.k-_1, ...] / temperature with the positive as class 0;
    returned as the mean over patches. The key side is detached, as in the reference: gradients reach the
    generator through the query only (and through the key's MLP head only via the query's path).
    """
    query, key = query.float(), key.detach().float()
    n, dim = query.shape
    positives = (query * key).sum(dim=1, keepdim=True)  # (N, 1)
    q, k = query.view(batch_size, -1, dim), key.view(batch_size, -1, dim)
    p = q.shape[1]
    negatives = torch.bmm(q, k.transpose(1, 2))  # (B, P, P): patch i against every patch j of its image
    # The diagonal is the positive pair; mask it out of the negatives (exp(-10 / 0.07) is 0 in fp32).
    negatives = negatives.masked_fill(torch.eye(p, dtype=torch.bool, device=q.device)[None], -10.0).view(n, p)
    logits = torch.cat([positives, negatives], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(n, dtype=torch.long, device=query.device))
