"""Each method visibly learns its job on a tiny synthetic task (32 px, 8-filter nets, CPU, seconds).

These are the tests that a broken objective fails: a generator loss cut off from the generator,
real/fake labels swapped, a missing L1 or distance term. Margins were checked by breaking each of
those once (see the report of issue 11): the broken runs stay near the identity or the baseline.
Methods are driven through their own train_step on in-memory tensors, as the loop drives them.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import TINY_OVERRIDES
from img2img import config as config_mod
from img2img.data.synthetic import _label_layout, _render_labels, _render_photo
from img2img.methods import get_method
from img2img.methods.distancegan import distance_loss

SIZE = 32
# Unpaired domains: the same kind of smooth random pattern, tinted red (A) or blue (B).
TINT = {"a": torch.tensor([1.0, 0.25, 0.1]), "b": torch.tensor([0.1, 0.25, 1.0])}


def tinted(domain: str, n: int, g: torch.Generator) -> torch.Tensor:
    """n images in [-1, 1]: a smooth random brightness pattern times the domain's tint."""
    p = F.interpolate(torch.rand(n, 1, 4, 4, generator=g), size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    p = 0.3 + 0.7 * p
    return (p * TINT[domain][None, :, None, None]) * 2 - 1


def redness(x: torch.Tensor) -> torch.Tensor:
    """Mean red minus mean blue per image: about +0.9 for A, -0.9 for B."""
    return (x[:, 0] - x[:, 2]).flatten(1).mean(1)


class InMemoryUnpaired:
    """The unpaired dataset interface (a_files, b_files, keys (i, j, seed)) over fixed tensors."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor):
        self.a, self.b = a, b
        self.a_files, self.b_files = list(range(len(a))), list(range(len(b)))
        self.n_b = len(b)

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, key):
        i, j, _ = key
        return {"a": self.a[i], "b": self.b[j]}


def build(method: str, **overrides):
    cfg = config_mod.build_config(get_method(method), None, {
        **TINY_OVERRIDES, "train.steps": 1, "train.lr": 1e-3, "net.d_layers": 2, **overrides})
    torch.manual_seed(0)
    return get_method(method)(cfg, torch.device("cpu"))


def train_unpaired(method: str, steps: int, batch: int = 2, **overrides):
    g = torch.Generator().manual_seed(0)
    data = InMemoryUnpaired(tinted("a", 64, g), tinted("b", 64, g))
    m = build(method, **{"train.batch_size": batch, "net.generator": "resnet_1", **overrides})
    m.prepare(data)
    order = torch.Generator().manual_seed(1)
    for step in range(steps):
        i = torch.randint(len(data.a), (batch,), generator=order)
        j = torch.randint(len(data.b), (batch,), generator=order)
        m.train_step({"a": data.a[i], "b": data.b[j]}, step)
    held_out = torch.Generator().manual_seed(99)
    return m, tinted("a", 16, held_out), tinted("b", 16, held_out)


def share_moved(translated: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> float:
    """How far the redness moved from the source domain's mean to the target's (0 = identity, 1 = all the way)."""
    s, t = float(redness(source).mean()), float(redness(target).mean())
    return (float(redness(translated).mean()) - s) / (t - s)


def distance_correlation(x: torch.Tensor, y: torch.Tensor) -> float:
    """Pearson correlation of the pairwise distances among inputs and among their translations."""
    i, j = torch.triu_indices(len(x), len(x), 1)
    dx, dy = (x[i] - x[j]).abs().flatten(1).mean(1), (y[i] - y[j]).abs().flatten(1).mean(1)
    return float(torch.corrcoef(torch.stack([dx, dy]))[0, 1])


def realness_gap(score: torch.Tensor, real: torch.Tensor, fake: torch.Tensor) -> float:
    """Mean discriminator score of held-out real images minus that of translations (1 = told apart perfectly).

    A generator whose adversarial term is cut off or points the wrong way leaves its discriminator
    winning (measured 0.44-0.98 here); a working one keeps it unsure (0.06-0.29).
    """
    with torch.no_grad():
        return float(score(real).mean() - score(fake).mean())


@pytest.mark.parametrize("method,overrides", [
    ("cyclegan", {}),
    ("distancegan", {}),
    ("distancegan", {"loss.one_way": True}),
], ids=["cyclegan", "distancegan", "distancegan-one-way"])
def test_unpaired_methods_recolour_one_domain_into_the_other(method, overrides):
    m, a, b = train_unpaired(method, steps=60, **overrides)
    nets = m.exported()[0]
    with torch.no_grad():
        fake_b = m.inference_copy(nets["G_AB"][1])(a)
    moved = share_moved(fake_b, a, b)
    assert moved > 0.7, f"{method}: A->B moved the red/blue balance only {moved:.0%} of the way to domain B"
    # The cycle alone can recolour this toy (G_AB learns to rebuild B images), so also ask whether the
    # translations fool D_B: that needs the adversarial term. (One-way runs oscillate too much at this
    # budget for a fixed line: 0.57-0.75 after 60-100 steps; the two-way run covers the same loss code.)
    if "G_BA" in nets:
        gap = realness_gap(m.D_B, b, fake_b)
        assert gap < 0.4, f"{method}: D_B still tells translations from real B images (score gap {gap:.2f})"
    if method == "distancegan":  # the distance term is learnt: measured 1.5 with it, 5.3 without
        held_out = float(distance_loss(a, fake_b, m._stats("a"), m._stats("b")))
        assert held_out < 3.0, f"normalised distances of held-out pairs differ by {held_out:.2f} after translation"
    if "G_BA" in nets:
        with torch.no_grad():
            fake_a = m.inference_copy(nets["G_BA"][1])(b)
        back = share_moved(fake_a, b, a)
        assert back > 0.7, f"{method}: B->A moved only {back:.0%} of the way to domain A"
    # the content (the brightness pattern) survives: distances between images are kept
    corr = distance_correlation(a, fake_b)
    assert corr > 0.4, f"{method}: distances among translations correlate {corr:.2f} with those among the inputs"
    if method == "cyclegan":  # and the round trip comes back (measured 0.105 vs 0.109; 0.249 without the cycle term)
        with torch.no_grad():
            rec = m.inference_copy(nets["G_BA"][1])(fake_b)
        err, spread = float((rec - a).abs().mean()), float((a.mean(0) - a).abs().mean())
        assert err < 1.5 * spread, f"cycle A->B->A error {err:.3f} vs the spread of A {spread:.3f}"


def facades_like(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Label maps (A) and their textured renderings (B), the paired task of the demo, at 32 px."""
    rng = np.random.default_rng(seed)
    a, b = [], []
    for _ in range(n):
        labels = _label_layout(rng, SIZE, max_rects=4)
        a.append(_render_labels(labels))
        b.append(_render_photo(labels))
    to_t = lambda xs: torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 127.5 - 1  # noqa: E731
    return to_t(a), to_t(b)


def test_pix2pix_beats_the_mean_target_on_held_out_pairs():
    train_a, train_b = facades_like(48, seed=0)
    test_a, test_b = facades_like(16, seed=1)
    m = build("pix2pix", **{"train.batch_size": 4})  # its paper generator: unet_32 at this size, BatchNorm, dropout
    order = torch.Generator().manual_seed(1)
    for step in range(150):
        i = torch.randint(len(train_a), (4,), generator=order)
        m.train_step({"a": train_a[i], "b": train_b[i]}, step)
    with torch.no_grad():
        fake = m.inference_copy(m.G)(test_a)
    l1 = float((fake - test_b).abs().mean())
    baseline = float((train_b.mean(0, keepdim=True) - test_b).abs().mean())
    assert l1 < 0.7 * baseline, f"pix2pix L1 {l1:.3f} vs the mean-target baseline {baseline:.3f}"
    # L1 alone would pass the line above; the cGAN term shows in D being fooled (measured 0.20; 0.48 without it)
    gap = realness_gap(lambda y: torch.sigmoid(m.D(torch.cat([test_a, y], 1))), test_b, fake)
    assert gap < 0.35, f"pix2pix: D still tells translations from real pairs (score gap {gap:.2f})"
