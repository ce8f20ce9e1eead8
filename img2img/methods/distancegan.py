"""DistanceGAN (Benaim & Wolf, NIPS 2017): one-sided unpaired mapping that keeps distances.

Paper:  L = L_GAN(G_AB, D_B) + lambda_dist * L_dist(G_AB)  [+ the same for G_BA, D_A when two-way]
        L_dist = E_{i<j} | (d(x_i, x_j) - mu_A) / sd_A - (d(G(x_i), G(x_j)) - mu_B) / sd_B |
        with d = mean absolute pixel difference and mu, sd the mean and standard deviation of d over
        pairs of images of each domain, estimated once before training. Self-distance variant:
        d(top half of x, bottom half of x) for each image instead of pairs of images (works at batch 1).
        Optionally + lambda_cyc * cycle L1 as in CycleGAN (needs both directions).
Code (vs. paper): the reference's CycleGAN-based model (distance_gan_model.py): lambda_distance 1,
lambda_cycle 10, max_items 900 for the statistics (population std over all pairs of the sample), batch
size 2, LSGAN, ResNet-9 G, 70x70 PatchGAN D, InstanceNorm, image pool 50, Adam 2e-4 beta1 0.5, lr
constant then linear decay; no identity loss; D's loss halved. Statistics between whole batches of
the training batch size, as the reference (see distance_stats). Here they come from up to max_items
images per domain as the training transform presents them (fixed augmentation seeds), cut into
batches; the reference used the first max_items training batches (max_items x batch size images).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from img2img.config import option
from img2img.errors import UserError
from img2img.image_pool import ImagePool
from img2img.losses import AdversarialLoss, l1
from img2img.methods import register_method
from img2img.methods.base import Method, set_requires_grad

STATS_SEED = 424_242  # fixed augmentation seeds of the statistics sample (any fixed value works)


# ----- the distance and its statistics (plain functions: the tests check them directly)

def pairwise_distances(x: torch.Tensor) -> torch.Tensor:
    """d(x_i, x_j) = mean |x_i - x_j| for every pair i < j of the batch: shape (B*(B-1)/2,)."""
    i, j = torch.triu_indices(x.shape[0], x.shape[0], 1, device=x.device)
    return (x[i].float() - x[j].float()).abs().flatten(1).mean(1)


def halves(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top and bottom halves of NCHW images (split along the HEIGHT axis; an odd middle row is dropped)."""
    h = x.shape[-2] // 2
    return x[..., :h, :], x[..., x.shape[-2] - h :, :]


def self_distances(x: torch.Tensor) -> torch.Tensor:
    """d(top half, bottom half) of each image: shape (B,)."""
    top, bottom = halves(x)
    return (top.float() - bottom.float()).abs().flatten(1).mean(1)


def distances(x: torch.Tensor, self_distance: bool) -> torch.Tensor:
    return self_distances(x) if self_distance else pairwise_distances(x)


def distance_loss(x: torch.Tensor, y: torch.Tensor, stats_x: tuple[float, float], stats_y: tuple[float, float],
                  self_distance: bool = False) -> torch.Tensor:
    """| n_X(d(x_i, x_j)) - n_Y(d(y_i, y_j)) | averaged over the pairs, n(d) = (d - mu) / sd; y = G(x)."""
    (mu_x, sd_x), (mu_y, sd_y) = stats_x, stats_y
    dx, dy = distances(x, self_distance), distances(y, self_distance)
    return ((dx - mu_x) / sd_x - (dy - mu_y) / sd_y).abs().mean()


def distance_stats(images: torch.Tensor, self_distance: bool, batch_size: int = 1, chunk: int = 64) -> tuple[float, float]:
    """(mean, population std) of the distance between whole batches, as the reference estimates them.

    The reference (distance_gan_model.py, set_expectation_and_std) takes its training batches and
    measures mean |batch_i - batch_j| for every pair of batches i < j: the mean over k of the
    distance between image k of batch i and image k of batch j (self-distance: the mean over a
    batch of each image's top-bottom distance). The mean equals the per-pair mean, but the std is
    that of an average of batch_size distances, about sqrt(batch_size) smaller (1.4x at the default
    batch of 2, measured 1.4x on horse2zebra), so the distance term weighs that much more. Here the N
    images are cut into N // batch_size batches in sample order (a partial last batch is dropped, as
    there). Image pairs are taken block by block with cdist (p=1), never an N x N x pixels tensor.
    """
    n_batches = images.shape[0] // batch_size
    images = images[: n_batches * batch_size]
    if self_distance:
        d = self_distances(images).double().view(n_batches, batch_size).mean(1)
        return float(d.mean()), float(d.std(unbiased=False))
    flat = images.flatten(1)
    n, dim = flat.shape
    image_d = torch.empty(n, n, dtype=torch.float64)
    for r in range(0, n, chunk):
        rows = flat[r : r + chunk].float()
        for c in range(0, n, chunk):
            image_d[r : r + chunk, c : c + chunk] = torch.cdist(rows, flat[c : c + chunk].float(), p=1).double().cpu() / dim
    # image_d[i*bs + k, j*bs + k] averaged over k: the distance between batches i and j
    batch_d = image_d.view(n_batches, batch_size, n_batches, batch_size).diagonal(dim1=1, dim2=3).mean(-1)
    d = batch_d[tuple(torch.triu_indices(n_batches, n_batches, 1))]
    return float(d.mean()), float(d.std(unbiased=False))


@dataclass
class DistanceGANLoss:
    lambda_distance: float = option(1.0, "weight of the distance-preservation loss", ge=0, le=1e6)
    self_distance: bool = option(False, "compare the top and bottom halves of each image instead of pairs of images (works at batch size 1)")
    one_way: bool = option(False, "train A->B only (G_AB and D_B); the model file then holds a2b only")
    cycle: bool = option(False, "add CycleGAN's cycle-consistency loss (needs both directions)")
    lambda_cyc: float = option(10.0, "weight of the cycle loss when --cycle is on", ge=0, le=1e6)
    normalize: bool = option(True, "normalise distances by each domain's mean and std (--no-normalize compares raw distances)")
    max_items: int = option(900, "images per domain sampled to estimate the distance mean and std", ge=2, le=10**6)
    pool_size: int = option(50, "generated images kept to train the discriminators (0 = none)", ge=0, le=10000)


@register_method("distancegan")
class DistanceGAN(Method):
    summary = "unpaired, one-sided: GAN + distance preservation (Benaim & Wolf 2017)"
    dataset_kind = "unpaired"
    LossConfig = DistanceGANLoss
    paper_defaults = {"net.generator": "resnet_9", "net.norm": "instance", "net.dropout": False,
                      "train.gan_loss": "lsgan", "train.epochs": 200, "train.batch_size": 2}

    def __init__(self, cfg, device, amp_dtype=None):
        super().__init__(cfg, device, amp_dtype)
        w = cfg.loss
        if cfg.train.batch_size < 2 and not w.self_distance:
            raise UserError("distancegan compares pairs of images within a batch: use --batch-size 2 or more, "
                            "or --self-distance (top vs bottom half of each image), which works at batch size 1")
        if w.one_way and w.cycle:
            raise UserError("--cycle needs both directions (G_BA maps the translations back): drop --one-way or --cycle")
        if w.max_items < (1 if w.self_distance else 2):
            raise UserError(f"loss.max_items must be at least {1 if w.self_distance else 2}, got {w.max_items}")
        self.two_way = not w.one_way
        self.arch_g, self.arch_g_ba = self.generator_arch(direction="a2b"), self.generator_arch(direction="b2a")
        self.G_AB, self.D_B = self.new_generator(self.arch_g), self.new_discriminator(self.discriminator_arch(self.channels("b")))
        gens, discs = [self.G_AB], [self.D_B]
        if self.two_way:
            self.G_BA, self.D_A = self.new_generator(self.arch_g_ba), self.new_discriminator(self.discriminator_arch(self.channels("a")))
            gens.append(self.G_BA)
            discs.append(self.D_A)
        self._discs = discs
        self.opt_G = self.adam(itertools.chain(*(g.parameters() for g in gens)), cfg.train.lr)
        self.opt_D = self.adam(itertools.chain(*(d.parameters() for d in discs)), self.lr_d)
        self.adv = AdversarialLoss(cfg.train.gan_loss, cfg.train.gp_weight)
        self.pool_a, self.pool_b = ImagePool(w.pool_size), ImagePool(w.pool_size)
        self.stats: dict[str, list[float]] | None = None  # {"a": [mu, sd], "b": [mu, sd]} once prepared

    # ----- statistics
    def prepare(self, dataset) -> None:
        """Estimate each domain's distance mean/std from up to max_items images of it.

        Images are drawn through the dataset's own keys, so they pass the training transform (resize,
        crop, flip) with fixed seeds: a given run always gets the same statistics. Stored in the
        checkpoint, so a resumed run never recomputes them.
        """
        w = self.cfg.loss
        if not w.normalize:
            self.stats = {"a": [0.0, 1.0], "b": [0.0, 1.0]}
            return
        n_a, n_b = len(dataset.a_files), len(dataset.b_files)
        g = torch.Generator().manual_seed(self.cfg.train.seed + STATS_SEED)
        pick_a = torch.randperm(n_a, generator=g)[: w.max_items].tolist()
        pick_b = torch.randperm(n_b, generator=g)[: w.max_items].tolist()
        a_imgs, b_imgs = [], []
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # per-image transforms are small ops: on a busy CPU, 2 threads made them 6x slower
        try:
            for k in range(max(len(pick_a), len(pick_b))):
                item = dataset[(pick_a[k % len(pick_a)], pick_b[k % len(pick_b)], STATS_SEED + k)]
                if k < len(pick_a):
                    a_imgs.append(item["a"].half())  # half precision halves the memory of 900 images
                if k < len(pick_b):
                    b_imgs.append(item["b"].half())
        finally:
            torch.set_num_threads(threads)
        need = 1 if w.self_distance else 2
        stats = {}
        for name, imgs in (("a", a_imgs), ("b", b_imgs)):
            if any(img.shape != imgs[0].shape for img in imgs):  # distances are taken between images of one shape
                raise UserError(f"distancegan compares images pixel by pixel, but --preprocess {self.cfg.data.preprocess} keeps "
                                f"the {name.upper()} images whole in several shapes: use a --preprocess that crops")
            if len(imgs) < need:
                raise UserError(f"distancegan needs at least {need} images in domain {name.upper()} to estimate distance statistics")
            # at least 3 batches (3 pairs; self-distance: 2 values) for a std; a small folder gets smaller batches
            batch = max(1, min(self.cfg.train.batch_size, len(imgs) // (need + 1)))
            mu, sd = distance_stats(torch.stack(imgs).to(self.device), w.self_distance, batch)
            if not sd > 1e-8:
                raise UserError(f"all sampled images of domain {name.upper()} are equally far apart (std 0): distances cannot be "
                                f"normalised; add varied images or use --no-normalize")
            stats[name] = [mu, sd]
        self.stats = stats

    def _stats(self, domain: str) -> tuple[float, float]:
        if self.stats is None:
            raise RuntimeError("DistanceGAN.prepare(dataset) must run before training (the loop does this on a new run)")
        mu, sd = self.stats[domain]
        return mu, sd

    # ----- training
    def train_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        a, b = batch["a"], batch["b"]
        w = self.cfg.loss
        stats_a, stats_b = self._stats("a"), self._stats("b")
        set_requires_grad(self._discs, False)
        self.opt_G.zero_grad(set_to_none=True)
        with self.amp():
            fake_b = self.G_AB(a)
            adv = self.adv.generator(self.D_B(fake_b))
            dist = distance_loss(a, fake_b, stats_a, stats_b, w.self_distance)
            if self.two_way:
                fake_a = self.G_BA(b)
                adv = adv + self.adv.generator(self.D_A(fake_a))
                dist = dist + distance_loss(b, fake_a, stats_b, stats_a, w.self_distance)
            loss_g = adv + w.lambda_distance * dist
            if w.cycle:
                cyc = l1(self.G_BA(fake_b), a) + l1(self.G_AB(fake_a), b)
                loss_g = loss_g + w.lambda_cyc * cyc
        self.backward(loss_g)
        self.step(self.opt_G)

        set_requires_grad(self._discs, True)
        self.opt_D.zero_grad(set_to_none=True)
        with self.amp():
            old_b = self.pool_b.query(fake_b)
            loss_d_b = self.adv.discriminator(self.D_B(b), self.D_B(old_b), critic=self.D_B, real=b, fake=old_b)
            loss_d = loss_d_b
            if self.two_way:
                old_a = self.pool_a.query(fake_a)
                loss_d_a = self.adv.discriminator(self.D_A(a), self.D_A(old_a), critic=self.D_A, real=a, fake=old_a)
                loss_d = loss_d + loss_d_a
        self.backward(loss_d)
        self.step(self.opt_D)
        out = {"G_adv": adv.detach(), "distance": dist.detach(), "D_B": loss_d_b.detach()}
        if self.two_way:
            out["D_A"] = loss_d_a.detach()
        if w.cycle:
            out["cycle"] = cyc.detach()
        return out

    @torch.no_grad()
    def sample(self, batch: dict) -> list[torch.Tensor]:
        a, b = batch["a"], batch["b"]
        g_ab = self.inference_copy(self.G_AB)
        fake_b = g_ab(a)
        if not self.two_way:
            return [a, fake_b]
        g_ba = self.inference_copy(self.G_BA)
        return [a, fake_b, b, g_ba(b)]

    def sample_titles(self, count):
        return ["A", "A to B", "B", "B to A"][:count]

    def nets(self):
        nets = {"G_AB": self.G_AB, "D_B": self.D_B}
        if self.two_way:
            nets.update(G_BA=self.G_BA, D_A=self.D_A)
        return nets

    def optimizers(self):
        return {"G": self.opt_G, "D": self.opt_D}

    def extra_state(self):
        return {"stats": self.stats, "pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def load_extra_state(self, state):
        self.stats = state["stats"]
        self.pool_a.load_state_dict(state["pool_a"], self.device)
        self.pool_b.load_state_dict(state["pool_b"], self.device)

    def exported(self):
        gens = {"G_AB": (self.arch_g, self.G_AB)}
        directions = {"a2b": {"generator": "G_AB"}}
        if self.two_way:
            gens["G_BA"] = (self.arch_g_ba, self.G_BA)
            directions["b2a"] = {"generator": "G_BA"}
        return gens, directions
