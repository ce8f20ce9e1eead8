"""CycleGAN (Zhu et al., ICCV 2017): two generators, two discriminators, cycle consistency.

Paper:  L = L_GAN(G, D_Y) + L_GAN(F, D_X) + lambda_cyc * (|F(G(x)) - x|_1 + |G(F(y)) - y|_1)
        + lambda_id * (|G(y) - y|_1 + |F(x) - x|_1),  lambda_cyc = 10, lambda_id = 0.5 * lambda_cyc
        with least-squares GAN losses, D trained on a history of 50 generated images.
Names here: G = G_AB (A->B), F = G_BA (B->A), D_Y = D_B (judges domain B), D_X = D_A.
Code (vs. paper): D's loss is halved; ResNet-9 G, 70x70 PatchGAN D, InstanceNorm; Adam 2e-4,
beta1 0.5; lr constant for the first half, then linear decay to 0.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from img2img.config import option
from img2img.image_pool import ImagePool
from img2img.losses import AdversarialLoss, l1
from img2img.methods import register_method
from img2img.methods.base import Method, set_requires_grad


@dataclass
class CycleGANLoss:
    lambda_cyc: float = option(10.0, "weight of the cycle-consistency L1 loss", ge=0, le=1e6)
    lambda_idt: float = option(0.5, "identity loss weight, as a fraction of lambda_cyc (0 disables it)", ge=0, le=1e6)
    pool_size: int = option(50, "generated images kept to train the discriminators (0 = none)", ge=0, le=10000)


@register_method("cyclegan")
class CycleGAN(Method):
    summary = "unpaired translation: two GANs + cycle consistency (Zhu et al. 2017)"
    dataset_kind = "unpaired"
    LossConfig = CycleGANLoss
    paper_defaults = {"net.generator": "resnet_9", "net.norm": "instance", "net.dropout": False,
                      "train.gan_loss": "lsgan", "train.epochs": 200}

    def __init__(self, cfg, device, amp_dtype=None):
        super().__init__(cfg, device, amp_dtype)
        if cfg.loss.lambda_idt > 0:  # as the reference asserts input_nc == output_nc for the identity loss
            self.require_same_channels("the identity loss feeds B images to G_AB; train without it: --lambda-idt 0")
        # G_AB: A's channels in, B's out (e.g. grayscale to colour), G_BA the reverse; each D judges its domain.
        self.arch_g, self.arch_g_ba = self.generator_arch(direction="a2b"), self.generator_arch(direction="b2a")
        self.G_AB, self.G_BA = self.new_generator(self.arch_g), self.new_generator(self.arch_g_ba)
        self.D_A = self.new_discriminator(self.discriminator_arch(self.channels("a")))
        self.D_B = self.new_discriminator(self.discriminator_arch(self.channels("b")))
        self.opt_G = self.adam(itertools.chain(self.G_AB.parameters(), self.G_BA.parameters()), cfg.train.lr)
        self.opt_D = self.adam(itertools.chain(self.D_A.parameters(), self.D_B.parameters()), self.lr_d)
        self.adv = AdversarialLoss(cfg.train.gan_loss, cfg.train.gp_weight)
        self.pool_a, self.pool_b = ImagePool(cfg.loss.pool_size), ImagePool(cfg.loss.pool_size)

    def train_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        a, b = batch["a"], batch["b"]
        w = self.cfg.loss
        set_requires_grad([self.D_A, self.D_B], False)
        self.opt_G.zero_grad(set_to_none=True)
        with self.amp():
            fake_b, fake_a = self.G_AB(a), self.G_BA(b)
            rec_a, rec_b = self.G_BA(fake_b), self.G_AB(fake_a)
            adv = self.adv.generator(self.D_B(fake_b)) + self.adv.generator(self.D_A(fake_a))
            cyc = l1(rec_a, a) + l1(rec_b, b)
            loss_g = adv + w.lambda_cyc * cyc
            if w.lambda_idt > 0:
                idt = l1(self.G_AB(b), b) + l1(self.G_BA(a), a)
                loss_g = loss_g + w.lambda_cyc * w.lambda_idt * idt
        self.backward(loss_g)
        self.step(self.opt_G)

        set_requires_grad([self.D_A, self.D_B], True)
        self.opt_D.zero_grad(set_to_none=True)
        with self.amp():
            old_b, old_a = self.pool_b.query(fake_b), self.pool_a.query(fake_a)
            loss_d_b = self.adv.discriminator(self.D_B(b), self.D_B(old_b), critic=self.D_B, real=b, fake=old_b)
            loss_d_a = self.adv.discriminator(self.D_A(a), self.D_A(old_a), critic=self.D_A, real=a, fake=old_a)
        self.backward(loss_d_a + loss_d_b)
        self.step(self.opt_D)
        out = {"G_adv": adv.detach(), "cycle": cyc.detach(), "D_A": loss_d_a.detach(), "D_B": loss_d_b.detach()}
        if w.lambda_idt > 0:
            out["idt"] = idt.detach()
        return out

    @torch.no_grad()
    def sample(self, batch: dict) -> list[torch.Tensor]:
        a, b = batch["a"], batch["b"]
        g_ab, g_ba = self.inference_copy(self.G_AB), self.inference_copy(self.G_BA)
        fake_b, fake_a = g_ab(a), g_ba(b)
        return [a, fake_b, g_ba(fake_b), b, fake_a, g_ab(fake_a)]

    def sample_titles(self, count):
        return ["A", "A to B", "back to A", "B", "B to A", "back to B"]

    def nets(self):
        return {"G_AB": self.G_AB, "G_BA": self.G_BA, "D_A": self.D_A, "D_B": self.D_B}

    def optimizers(self):
        return {"G": self.opt_G, "D": self.opt_D}

    def extra_state(self):
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def load_extra_state(self, state):
        self.pool_a.load_state_dict(state["pool_a"], self.device)
        self.pool_b.load_state_dict(state["pool_b"], self.device)

    def exported(self):
        gens = {"G_AB": (self.arch_g, self.G_AB), "G_BA": (self.arch_g_ba, self.G_BA)}
        return gens, {"a2b": {"generator": "G_AB"}, "b2a": {"generator": "G_BA"}}
