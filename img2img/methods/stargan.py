"""StarGAN (Choi et al., CVPR 2018): one generator for many domains, conditioned on the target label.

Paper:  D: L_D = -L_adv + lambda_cls * L_cls^r        G: L_G = L_adv + lambda_cls * L_cls^f + lambda_rec * L_rec
        L_adv  = WGAN-GP: E[D_src(x)] - E[D_src(G(x, c))] - lambda_gp * E[(||grad D_src(x_hat)||_2 - 1)^2]
        L_cls^r = -log D_cls(c' | x)  (D learns the real image's domain c')
        L_cls^f = -log D_cls(c | G(x, c))  (G must produce the target domain c)
        L_rec  = |x - G(G(x, c), c')|_1  (translate back to the original domain)
        lambda_cls = 1, lambda_rec = 10, lambda_gp = 10; G updated once per n_critic = 5 D updates;
        Adam lr 1e-4, betas (0.5, 0.999), batch 16, 128 px; lr decays linearly to 0 over the second half.
        Target labels: a random permutation of the batch's real labels. Multi-label attributes use a
        sum of per-attribute binary cross-entropies; single-label domains (one sub-folder each) use
        cross-entropy, as in the reference code's RaFD setting.
Code (vs. paper): by default (loss.d_form "paper" and the paper defaults below) the nets are the authors'
(yunjey/stargan model.py), built as options of the shared backbone:
  G: the ResNet generator (resnet_6) with zero padding, 4x4 stride-2 down/up convs, affine InstanceNorm
     and no conv biases before the norms. The target label enters as constant input maps; the first conv
     MUST zero-pad them (arch first_pad, always "zero" for a conditional G): reflection padding makes each
     constant map a per-channel offset that the instance norm subtracts, so the label never reached the
     output (measured: 1e-5 of the output's scale). The authors' code notes the same. Their
     InstanceNorm2d(affine, track_running_stats) is never put in eval mode by their test code, so it
     normalises each image by its own statistics at test time too: norm "instance_affine" does that.
  D: log2(size) - 1 stride-2 4x4 convs (6 at 128 px: a 2x2 map), widths 64 doubling to at most 2048,
     LeakyReLU 0.01, no normalisation (normalising a WGAN-GP critic would make the per-sample gradient
     penalty depend on the rest of the batch), a 3x3 real/fake head and a class head whose kernel covers
     the whole final map, heads without bias.
  Init: PyTorch's default per layer (net.init "default"), as their code calls no init.
  Kept different: G's last 7x7 conv has a bias (theirs has none; one constant per channel before tanh).
loss.d_form "patch" uses the shared PatchGAN trunk instead (depth from loss.global_d / net.d_layers).
Data: resize then random crop and flip as for the other methods; the paper centre-crops its faces
(CelebA: 178 px) and then resizes with no crop jitter: --set data.center_crop=178 --load-size 128.
The model file also keeps D's classifier, so translate can read an input's current attributes (multi-
label models: set some, keep the rest) and anyone can check translations with the paper's own test.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from img2img.config import option
from img2img.data.domains import domain_spec
from img2img.errors import UserError
from img2img.losses import AdversarialLoss, l1
from img2img.methods import register_method
from img2img.methods.base import Method, set_requires_grad


@dataclass
class StarGANLoss:
    lambda_cls: float = option(1.0, "weight of the domain-classification losses (D on real images, G on translations)", ge=0, le=1e6)
    lambda_rec: float = option(10.0, "weight of the reconstruction L1 loss (translate there and back)", ge=0, le=1e6)
    n_critic: int = option(5, "discriminator updates per generator update", ge=1, le=100)
    d_norm: str = option("none", "discriminator normalisation (the paper's D has none)", ("none", "instance"))
    # The dataclass default is what runs saved before this option used; new runs get "paper" from paper_defaults.
    d_form: str = option("patch", "discriminator: 'paper' = the authors' D (log2(size) - 1 stride-2 convs, widths up to 32*ndf, "
                                  "LeakyReLU 0.01, 3x3 real/fake head, full-map class head); 'patch' = the shared PatchGAN trunk",
                         ("paper", "patch"))
    global_d: bool = option(True, "size D to the image as the paper does (log2(image size) - 2 halvings: a 2x2 real/fake map and a "
                                  "class head that sees the whole image), replacing net.d_layers; --no-global-d keeps net.d_layers (d_form 'patch' only)")

    @property
    def sizes_discriminator(self) -> bool:
        """With the paper's D or global_d the method picks D's depth from the image size, so net.d_layers is
        not checked against it."""
        return self.d_form == "paper" or self.global_d


def classification_loss(logits: torch.Tensor, target: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """BCE summed over attributes and averaged over the batch (multi-label), or cross-entropy (single-label)."""
    logits = logits.float()
    if multi_label:
        return F.binary_cross_entropy_with_logits(logits, target.float(), reduction="sum") / logits.shape[0]
    return F.cross_entropy(logits, target.argmax(1))


def paper_discriminator_layers(image_size: int) -> int:
    """The authors' D depth: stride-2 convs until a 2x2 map (3x3 where the size is not a power of 2)."""
    return max(1, image_size.bit_length() - 2)


def patch_output_size(image_size: int, d_layers: int) -> int:
    """Side of the PatchDiscriminator's adversarial map: d_layers halvings, then two 4x4 stride-1 convs."""
    return image_size // 2**d_layers - 2


@register_method("stargan")
class StarGAN(Method):
    summary = "many domains with one conditional generator (Choi et al. 2018)"
    dataset_kind = "domains"
    LossConfig = StarGANLoss
    paper_defaults = {"net.generator": "resnet_6", "net.norm": "instance_affine", "net.dropout": False,
                      "net.padding": "zero", "net.resample_kernel": 4, "net.init": "default", "loss.d_form": "paper",
                      "train.gan_loss": "wgan-gp", "train.gp_weight": 10.0, "train.lr": 1e-4, "train.beta1": 0.5,
                      "train.beta2": 0.999, "train.batch_size": 16, "train.steps": 200000, "train.lr_policy": "linear",
                      "train.decay_start": 0.5, "data.image_size": 128}

    def __init__(self, cfg, device, amp_dtype=None):
        super().__init__(cfg, device, amp_dtype)
        spec = domain_spec(cfg.data, "stargan")
        self.domains, self.multi_label = spec.names, spec.multi_label
        n = len(self.domains)
        if cfg.loss.n_critic < 1:
            raise UserError(f"loss.n_critic must be at least 1, got {cfg.loss.n_critic}")
        size = cfg.data.image_size
        if cfg.loss.d_form == "paper" and (cfg.data.crop_hw != (size, size) or "crop" not in cfg.data.preprocess):
            raise UserError(f"stargan's paper discriminator classifies {size}x{size} images with one kernel the size of its "
                            f"last map: train on square crops (no --crop-height; a --preprocess that crops) or use --d-form patch")
        if cfg.loss.d_form == "paper":  # recorded in the run's config, like the 'unet' generator name
            cfg.net.d_layers = paper_discriminator_layers(size)
        elif cfg.loss.global_d:
            cfg.net.d_layers = max(1, size.bit_length() - 3)
        layers = cfg.net.d_layers
        if cfg.loss.d_form == "patch" and patch_output_size(size, layers) < 1:
            fit = max(k for k in range(1, 12) if patch_output_size(size, k) >= 2)  # a 2x2 map, as the paper's D
            raise UserError(f"the discriminator with net.d_layers={layers} halves the image {layers} times, too often for "
                            f"{size} px images (needs {3 * 2**layers} px); use --set net.d_layers={fit} or --global-d")
        self.require_same_channels("one generator translates between all domains")
        self.arch_g = self.generator_arch(cond_channels=n)
        self.arch_d = {**self.discriminator_arch(self.channels("a"), n_classes=n), "norm": cfg.loss.d_norm}
        if cfg.loss.d_form == "paper":
            self.arch_d.update(form="strided", max_mult=32, slope=0.01, adv_kernel=3, cls_kernel=size >> layers, head_bias=False)
        self.G, self.D = self.new_generator(self.arch_g), self.new_discriminator(self.arch_d)
        self.opt_G = self.adam(self.G.parameters(), cfg.train.lr)
        self.opt_D = self.adam(self.D.parameters(), self.lr_d)
        self.adv = AdversarialLoss(cfg.train.gan_loss, cfg.train.gp_weight)

    def _cls(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return classification_loss(logits, target, self.multi_label)

    def train_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        x, c_org = batch["a"], batch["label"].float()
        perm = torch.randperm(x.shape[0]).to(x.device)  # CPU generator: reproducible from the checkpointed RNG
        c_trg = c_org[perm]
        w = self.cfg.loss

        set_requires_grad([self.D], True)
        self.opt_D.zero_grad(set_to_none=True)
        with self.amp():
            with torch.no_grad():
                fake = self.G(x, c_trg)
            real_src, real_cls = self.D.forward_with_classes(x)
            loss_d_adv = self.adv.discriminator(real_src, self.D(fake), critic=self.D, real=x, fake=fake)
            loss_d_cls = self._cls(real_cls, c_org)
            loss_d = loss_d_adv + w.lambda_cls * loss_d_cls
        self.backward(loss_d)
        self.step(self.opt_D)
        out = {"D_adv": loss_d_adv.detach(), "D_cls": loss_d_cls.detach()}

        if (step + 1) % w.n_critic == 0:
            set_requires_grad([self.D], False)
            self.opt_G.zero_grad(set_to_none=True)
            with self.amp():
                fake = self.G(x, c_trg)
                fake_src, fake_cls = self.D.forward_with_classes(fake)
                loss_g_adv = self.adv.generator(fake_src)
                loss_g_cls = self._cls(fake_cls, c_trg)
                loss_rec = l1(self.G(fake, c_org), x)
                loss_g = loss_g_adv + w.lambda_cls * loss_g_cls + w.lambda_rec * loss_rec
            self.backward(loss_g)
            self.step(self.opt_G)
            out.update(G_adv=loss_g_adv.detach(), G_cls=loss_g_cls.detach(), rec=loss_rec.detach())
        return out

    def target_labels(self, c_org: torch.Tensor) -> list[torch.Tensor]:
        """The preview's targets: every domain (single-label) or each attribute flipped (multi-label)."""
        n = len(self.domains)
        if not self.multi_label:
            return [F.one_hot(torch.full((c_org.shape[0],), k, device=c_org.device), n).float() for k in range(n)]
        targets = []
        for k in range(n):
            c = c_org.clone().float()
            c[:, k] = 1 - c[:, k]
            targets.append(c)
        return targets

    @torch.no_grad()
    def sample(self, batch: dict) -> list[torch.Tensor]:
        x = batch["a"]
        g = self.inference_copy(self.G)
        return [x] + [g(x, c) for c in self.target_labels(batch["label"])]

    def sample_titles(self, count):
        names = list(self.domains) if not self.multi_label else [f"flip {d}" for d in self.domains]
        return ["input"] + (names if len(names) == count - 1 else [f"target {k + 1}" for k in range(count - 1)])

    def nets(self):
        return {"G": self.G, "D": self.D}

    def optimizers(self):
        return {"G": self.opt_G, "D": self.opt_D}

    def extra_state(self):
        return {"domains": list(self.domains), "multi_label": self.multi_label}

    def load_state_dict(self, state: dict) -> None:
        saved = state["extra"]
        if saved["domains"] != self.domains or saved["multi_label"] != self.multi_label:
            raise UserError(f"the run was trained on domains {', '.join(saved['domains'])}, but the data now gives "
                            f"{', '.join(self.domains)}; resume with the same data")
        super().load_state_dict(state)

    def exported(self):
        gens = {"G": (self.arch_g, self.G)}
        if self.multi_label:
            return gens, {"attributes": {"generator": "G", "attributes": list(self.domains)}}
        n = len(self.domains)
        return gens, {f"to:{d}": {"generator": "G", "cond": [1.0 if j == k else 0.0 for j in range(n)]}
                      for k, d in enumerate(self.domains)}

    def model_extras(self) -> dict:
        """D's classifier (trunk + class head) so translate can read attributes and runs can be checked."""
        state = {k: v.detach().cpu().clone() for k, v in self.D.state_dict().items()}
        return {"classifier": {"arch": dict(self.arch_d), "state_dict": state, "multi_label": self.multi_label,
                               "image_size": self.cfg.data.image_size}}
