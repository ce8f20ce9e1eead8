"""CUT (Park, Efros, Zhang, Zhu, ECCV 2020): one-sided unpaired translation by patchwise contrastive learning.

Paper:  L = L_GAN(G, D, X, Y) + lambda_NCE * L_PatchNCE(G, H, X) + lambda_NCE * L_PatchNCE(G, H, Y)
        L_PatchNCE(G, H, X) = E_x sum_l sum_s  l(z^_l^s, z_l^s, z_l^(S\\s)),  z_l = H_l(G_enc^l(x)), z^_l = H_l(G_enc^l(G(x)))
        l = cross-entropy picking the positive among 1 + (S-1) logits (cosine similarities / tau), tau = 0.07.
        The second PatchNCE term (identity: G(y) against y) is CUT's; FastCUT drops it and uses lambda_NCE 10.
Code (vs. paper): the loss is averaged over patches and over the L layers, and the two NCE terms are averaged
(not summed); D's LSGAN loss is halved; no image pool; D is updated before G; the key side of PatchNCE is
detached. Defaults: ResNet-9 G, 70x70 PatchGAN D, InstanceNorm, xavier init (gain 0.02), Adam 2e-4 (0.5, 0.999),
batch 1, 400 epochs (200 constant + 200 linear decay) for horse2zebra; 256 patches per layer; MLP head 256 wide.

Layers (reference nce_layers 0,4,8,12,16 of its anti-aliased ResNet's module list): the paper names them as
RGB pixels, the first and second downsampling convolutions, and the first and fifth residual blocks. Our
ResNet has no blur-pool modules, so the same five points are found by kind, not by number, in
ResnetGenerator.model: the leading padding layer (the padded input), the first and second stride-2 convs
(before their norm, as in the reference), and the outputs of residual blocks 1 and 5 (with fewer than 5
blocks, the last). For resnet_9 without options these are indices 0, 4, 7, 10, 14.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from img2img.config import option
from img2img.errors import UserError
from img2img.losses import AdversarialLoss, patch_nce
from img2img.methods import register_method
from img2img.methods.base import Method, set_requires_grad
from img2img.nets import init_weights, parse_generator_name
from img2img.nets.patch_sample import PatchSampleMLP
from img2img.nets.resnet import ResnetBlock


@dataclass
class CUTLoss:
    lambda_gan: float = option(1.0, "weight of the adversarial loss", ge=0, le=1e4)
    lambda_nce: float = option(1.0, "weight of the PatchNCE loss (FastCUT: 10)", ge=0, le=1e4)
    nce_idt: bool = option(True, "identity PatchNCE term: G(y) against y (CUT: on, FastCUT: off)")
    nce_temperature: float = option(0.07, "PatchNCE temperature tau", gt=0, le=100)
    num_patches: int = option(256, "patches sampled per layer and image", ge=1, le=65536)
    mlp_width: int = option(256, "width of the 2-layer MLP head on each tapped layer", ge=1, le=8192)
    flip_equivariance: bool = option(False, "flip the input batch half the time and ask G's features to flip with it (FastCUT: on)")


def encoder_taps(generator: nn.Module) -> list[int]:
    """Indices in a ResnetGenerator's module list of CUT's five feature points (see the module docstring)."""
    layers = list(generator.model)
    strided = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    blocks = [i for i, m in enumerate(layers) if isinstance(m, ResnetBlock)]
    if len(strided) < 2 or not blocks:
        raise ValueError("CUT needs a ResNet generator with two downsamplings and residual blocks")
    return [0, strided[0], strided[1], blocks[0], blocks[min(4, len(blocks) - 1)]]


def encode(generator: nn.Module, x: torch.Tensor, taps: list[int]) -> list[torch.Tensor]:
    """The features at the tapped layers, running the generator only as far as the last tap."""
    feats, h = [], x
    for i, layer in enumerate(generator.model):
        h = layer(h)
        if i in taps:
            feats.append(h)
        if i == taps[-1]:
            break
    return feats


def tap_channels(generator: nn.Module, in_channels: int, taps: list[int]) -> list[int]:
    with torch.no_grad():
        probe = torch.zeros(1, in_channels, 16, 16, device=next(generator.parameters()).device)
        return [f.shape[1] for f in encode(generator, probe, taps)]


@register_method("cut")
class CUT(Method):
    summary = "unpaired one-way translation: GAN + patchwise contrastive loss (Park et al. 2020)"
    dataset_kind = "unpaired"
    LossConfig = CUTLoss
    paper_defaults = {"net.generator": "resnet_9", "net.norm": "instance", "net.dropout": False, "net.init": "xavier",
                      "train.gan_loss": "lsgan", "train.epochs": 400}

    def __init__(self, cfg, device, amp_dtype=None):
        super().__init__(cfg, device, amp_dtype)
        if parse_generator_name(cfg.net.generator)[0] != "resnet":
            raise UserError(f"{self.name} taps the encoder of a ResNet generator; use --generator resnet_9 (or resnet_6)")
        w = cfg.loss
        self.require_same_channels("PatchNCE runs G's encoder on its own outputs (and on B images for the identity term)")
        self.arch_g = self.generator_arch()
        self.G = self.new_generator(self.arch_g)
        self.D = self.new_discriminator(self.discriminator_arch(self.channels("b")))
        self.taps = encoder_taps(self.G)
        self.F = self.new_projection(PatchSampleMLP(tap_channels(self.G, self.channels("a"), self.taps), w.mlp_width))
        self.opt_G = self.adam(self.G.parameters(), cfg.train.lr)
        self.opt_F = self.adam(self.F.parameters(), cfg.train.lr)
        self.opt_D = self.adam(self.D.parameters(), self.lr_d)
        self.adv = AdversarialLoss(cfg.train.gan_loss, cfg.train.gp_weight)

    def new_projection(self, head: nn.Module) -> nn.Module:
        return init_weights(head, self.cfg.net.init, self.cfg.net.init_gain).to(self.device)

    def nce_loss(self, source: torch.Tensor, translated: torch.Tensor, flipped: bool) -> torch.Tensor:
        """Mean over the tapped layers of PatchNCE between G's features of translated (queries) and of source (keys)."""
        w = self.cfg.loss
        queries = encode(self.G, translated, self.taps)
        if flipped:  # translated = G(flip(source)): flip its features back so patch positions line up
            queries = [q.flip(3) for q in queries]
        with torch.no_grad():  # the keys are detached in PatchNCE; no graph needed
            keys = encode(self.G, source, self.taps)
        key_emb, ids = self.F(keys, w.num_patches)
        query_emb, _ = self.F(queries, w.num_patches, ids)
        n = source.shape[0]
        losses = [patch_nce(q, k, n, w.nce_temperature) for q, k in zip(query_emb, key_emb)]
        return torch.stack(losses).mean()

    def train_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        a, b = batch["a"], batch["b"]
        w = self.cfg.loss
        n = a.shape[0]
        use_nce = w.lambda_nce > 0
        idt = use_nce and w.nce_idt
        flipped = w.flip_equivariance and bool(torch.rand(()) < 0.5)
        real = torch.cat([a, b]) if idt else a
        if flipped:
            real = real.flip(3)
        with self.amp():
            fake = self.G(real)
        fake_b = fake[:n]

        set_requires_grad([self.D], True)
        self.opt_D.zero_grad(set_to_none=True)
        with self.amp():
            detached = fake_b.detach()
            loss_d = self.adv.discriminator(self.D(b), self.D(detached), critic=self.D, real=b, fake=detached)
        self.backward(loss_d)
        self.step(self.opt_D)

        set_requires_grad([self.D], False)
        self.opt_G.zero_grad(set_to_none=True)
        self.opt_F.zero_grad(set_to_none=True)
        out = {"D": loss_d.detach()}
        with self.amp():
            adv = self.adv.generator(self.D(fake_b))
            loss_g = w.lambda_gan * adv
            if use_nce:
                nce = self.nce_loss(a, fake_b, flipped)
                out["NCE"] = nce.detach()
                if idt:
                    nce_y = self.nce_loss(b, fake[n:], flipped)
                    out["NCE_Y"] = nce_y.detach()
                    nce = (nce + nce_y) / 2
                loss_g = loss_g + w.lambda_nce * nce
        self.backward(loss_g)
        self.step(self.opt_G)
        if use_nce:
            self.step(self.opt_F)
        out["G_adv"] = adv.detach()
        return out

    @torch.no_grad()
    def sample(self, batch: dict) -> list[torch.Tensor]:
        a, b = batch["a"], batch["b"]
        g = self.inference_copy(self.G)
        return [a, g(a), b, g(b)]  # input, translation; a B image and G(B), which should stay close to it

    def sample_titles(self, count):
        return ["A", "G(A)", "B", "G(B)"][:count]

    def nets(self):
        return {"G": self.G, "F": self.F, "D": self.D}

    def optimizers(self):
        return {"G": self.opt_G, "F": self.opt_F, "D": self.opt_D}

    def exported(self):
        return {"G": (self.arch_g, self.G)}, {"a2b": {"generator": "G"}}
