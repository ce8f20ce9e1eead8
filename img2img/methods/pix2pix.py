"""pix2pix (Isola et al., CVPR 2017): conditional GAN with an L1 term.

Paper:  G* = arg min_G max_D  L_cGAN(G, D) + lambda * L_L1(G),  lambda = 100
        L_cGAN = E[log D(x, y)] + E[log(1 - D(x, G(x)))]; D sees the input and the output concatenated.
Code (vs. paper): G minimises -log D(x, G(x)) (non-saturating); D's loss is halved; U-Net 256 with
BatchNorm and dropout 0.5; 70x70 PatchGAN; Adam 2e-4, beta1 0.5.
Test time as in the paper ("exactly the same manner as during the training phase"): dropout on and
batch statistics. Both are made per image so an output does not depend on its batch: BatchNorm uses
each image's own statistics (the paper's batch of 1) and dropout uses fixed masks drawn from the run
seed (SeededDropout), so the same image and seed give the same output. --no-test-dropout: dropout
off at test time (the reference code's --eval).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from img2img.config import option
from img2img.losses import AdversarialLoss, l1
from img2img.methods import register_method
from img2img.methods.base import Method, set_requires_grad


@dataclass
class Pix2PixLoss:
    lambda_l1: float = option(100.0, "weight of the L1 distance to the ground truth", ge=0, le=1e6)
    test_dropout: bool = option(True, "keep dropout on at test time as the paper does (fixed masks from the run seed, so "
                                      "outputs stay deterministic); --no-test-dropout turns it off")


@register_method("pix2pix")
class Pix2Pix(Method):
    summary = "paired translation: conditional GAN + L1 (Isola et al. 2017)"
    dataset_kind = "paired"
    LossConfig = Pix2PixLoss
    paper_defaults = {"net.generator": "unet", "net.norm": "batch", "net.dropout": True,
                      "train.gan_loss": "vanilla", "train.epochs": 200}
    test_time_norm = "per_image"

    def __init__(self, cfg, device, amp_dtype=None):
        super().__init__(cfg, device, amp_dtype)
        self.arch_g = self.generator_arch(direction=cfg.data.direction)  # source channels in, target channels out
        self.G = self.new_generator(self.arch_g)
        # D judges the input and an output side by side: source plus target channels
        self.D = self.new_discriminator(self.discriminator_arch(sum(cfg.data.direction_channels(cfg.data.direction))))
        self.opt_G = self.adam(self.G.parameters(), cfg.train.lr)
        self.opt_D = self.adam(self.D.parameters(), self.lr_d)
        self.adv = AdversarialLoss(cfg.train.gan_loss, cfg.train.gp_weight)
        self.a2b = cfg.data.direction == "a2b"

    def _source_target(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = batch["a"], batch["b"]
        return (a, b) if self.a2b else (b, a)

    def train_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        x, y = self._source_target(batch)
        with self.amp():
            fake = self.G(x)

        set_requires_grad([self.D], True)
        self.opt_D.zero_grad(set_to_none=True)
        with self.amp():
            real_pair, fake_pair = torch.cat([x, y], 1), torch.cat([x, fake.detach()], 1)
            loss_d = self.adv.discriminator(self.D(real_pair), self.D(fake_pair), critic=self.D, real=real_pair, fake=fake_pair)
        self.backward(loss_d)
        self.step(self.opt_D)

        set_requires_grad([self.D], False)
        self.opt_G.zero_grad(set_to_none=True)
        with self.amp():
            loss_gan = self.adv.generator(self.D(torch.cat([x, fake], 1)))
            loss_l1 = l1(fake, y)
            loss_g = loss_gan + self.cfg.loss.lambda_l1 * loss_l1
        self.backward(loss_g)
        self.step(self.opt_G)
        return {"D": loss_d.detach(), "G_gan": loss_gan.detach(), "G_L1": loss_l1.detach()}

    @torch.no_grad()
    def sample(self, batch: dict) -> list[torch.Tensor]:
        x, y = self._source_target(batch)
        return [x, self.inference_copy(self.G)(x), y]

    def sample_titles(self, count):
        return ["input", "output", "target"]

    def test_dropout_seed(self) -> int | None:
        return self.cfg.train.seed if self.cfg.loss.test_dropout and self.cfg.net.dropout else None

    def model_extras(self) -> dict:
        return {"test_dropout_seed": self.test_dropout_seed()}

    def nets(self):
        return {"G": self.G, "D": self.D}

    def optimizers(self):
        return {"G": self.opt_G, "D": self.opt_D}

    def exported(self):
        direction = "a2b" if self.a2b else "b2a"
        return {"G": (self.arch_g, self.G)}, {direction: {"generator": "G"}}
