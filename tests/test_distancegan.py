"""DistanceGAN: the distance loss and its statistics, the one-way model file, flags and exact resume."""

from __future__ import annotations

import itertools

import pytest
import torch

from conftest import TINY_FLAGS, TINY_OVERRIDES
from img2img import config as config_mod
from img2img.cli import parse_method_args
from img2img.methods.distancegan import (DistanceGAN, distance_loss, distance_stats, halves, pairwise_distances,
                                         self_distances)

FAST = [*TINY_FLAGS, "--generator", "resnet_2"]  # depth is irrelevant to what these tests check


def load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


# ----- the loss itself

def test_pairwise_distances_cover_every_pair_once():
    x = torch.randn(4, 3, 6, 6)
    expected = [float((x[i] - x[j]).abs().mean()) for i, j in itertools.combinations(range(4), 2)]
    assert pairwise_distances(x).tolist() == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("self_distance", [False, True])
def test_distance_loss_is_zero_when_g_preserves_normalised_distances(self_distance):
    torch.manual_seed(0)
    x = torch.rand(5, 3, 8, 8) * 2 - 1
    stats_x, stats_y = (0.6, 0.2), (0.3, 0.1)
    # y = 0.5 x + c halves every distance; with the B statistics halved too, normalised distances agree.
    y = 0.5 * x + 0.2
    assert float(distance_loss(x, y, stats_x, stats_y, self_distance)) == pytest.approx(0.0, abs=1e-6)
    # The same y judged with other B statistics, an unrelated y, and y = x (distances not halved): all positive.
    assert float(distance_loss(x, y, stats_x, (0.3, 0.2), self_distance)) > 0.05
    assert float(distance_loss(x, torch.rand_like(x), stats_x, stats_y, self_distance)) > 0.05
    assert float(distance_loss(x, x.clone(), stats_x, stats_y, self_distance)) > 0.05


def test_self_distance_splits_along_the_height_axis():
    # Top and bottom halves equal, left and right halves different: zero self-distance.
    row = torch.linspace(-1, 1, 8)
    same_halves = row.expand(1, 3, 8, 8).clone()  # every row identical, columns differ
    assert float(self_distances(same_halves)[0]) == 0.0
    # Top half -1, bottom half +1 (left/right identical): self-distance 2.
    top_bottom = torch.cat([-torch.ones(1, 3, 4, 8), torch.ones(1, 3, 4, 8)], dim=2)
    assert float(self_distances(top_bottom)[0]) == pytest.approx(2.0)
    # Non-square images: halves are (H//2) x W, an odd middle row dropped.
    top, bottom = halves(torch.randn(2, 3, 7, 10))
    assert top.shape == bottom.shape == (2, 3, 3, 10)


def test_distance_stats_match_a_brute_force_over_all_pairs():
    torch.manual_seed(1)
    imgs = torch.rand(10, 3, 8, 8)
    d = torch.tensor([float((imgs[i] - imgs[j]).abs().mean()) for i, j in itertools.combinations(range(10), 2)], dtype=torch.float64)
    mu, sd = distance_stats(imgs, self_distance=False, chunk=3)  # blocks of 3: diagonal and off-diagonal blocks
    assert mu == pytest.approx(float(d.mean()), rel=1e-5) and sd == pytest.approx(float(d.std(unbiased=False)), rel=1e-4)
    s = self_distances(imgs).double()
    mu, sd = distance_stats(imgs, self_distance=True)
    assert mu == pytest.approx(float(s.mean())) and sd == pytest.approx(float(s.std(unbiased=False)))


@pytest.mark.parametrize("self_distance", [False, True])
def test_distance_stats_are_taken_between_whole_batches_as_in_the_reference(self_distance):
    """Reference: mean |batch_i - batch_j| over pairs of training batches; its std is ~sqrt(batch) smaller."""
    torch.manual_seed(2)
    imgs = torch.rand(41, 3, 8, 8)  # 20 batches of 2, one image left over (dropped, as there)
    batches = imgs[:40].view(20, 2, 3, 8, 8)
    if self_distance:
        d = torch.tensor([float(self_distances(b).mean()) for b in batches], dtype=torch.float64)
    else:
        d = torch.tensor([float((batches[i] - batches[j]).abs().mean()) for i, j in itertools.combinations(range(20), 2)],
                         dtype=torch.float64)
    mu, sd = distance_stats(imgs, self_distance, batch_size=2, chunk=7)
    assert mu == pytest.approx(float(d.mean()), rel=1e-5) and sd == pytest.approx(float(d.std(unbiased=False)), rel=1e-4)
    _, sd_images = distance_stats(imgs[:40], self_distance, batch_size=1)
    assert 1.2 < sd_images / sd < 1.7  # averaging two independent distances: about sqrt(2)


class FakeUnpaired:
    """A dataset with the unpaired interface that records which images prepare() reads."""

    def __init__(self, n_a: int, n_b: int):
        self.a_files, self.b_files = [f"a{i}" for i in range(n_a)], [f"b{j}" for j in range(n_b)]
        self.read_a, self.read_b = [], []

    def image(self, tag: str, k: int) -> torch.Tensor:
        g = torch.Generator().manual_seed({"a": 1, "b": 2}[tag] * 1000 + k)
        return torch.rand(3, 8, 8, generator=g) * 2 - 1

    def __getitem__(self, key):
        i, j, _ = key
        self.read_a.append(i)
        self.read_b.append(j)
        return {"a": self.image("a", i), "b": self.image("b", j)}


def method(**overrides) -> DistanceGAN:
    cfg = config_mod.build_config(DistanceGAN, None, {**TINY_OVERRIDES, "train.steps": 1, "net.generator": "resnet_1", **overrides})
    return DistanceGAN(cfg, torch.device("cpu"))


def test_prepare_uses_a_bounded_sample_and_its_statistics():
    m = method(**{"loss.max_items": 8, "train.batch_size": 2})
    data = FakeUnpaired(10, 3)
    m.prepare(data)
    order_a = list(dict.fromkeys(data.read_a))  # sample order: the batches are consecutive images
    used_b = sorted(set(data.read_b))
    assert len(order_a) == 8 and len(used_b) == 3  # at most max_items per domain, fewer if the folder is smaller
    expected_a = distance_stats(torch.stack([data.image("a", i) for i in order_a]).half(), False, 2)
    assert m.stats["a"] == pytest.approx(list(expected_a), rel=1e-4)
    per_image_a = distance_stats(torch.stack([data.image("a", i) for i in order_a]).half(), False, 1)
    assert m.stats["a"][1] < 0.85 * per_image_a[1]  # between batches of 2, not single images
    # Self-distance statistics are taken on halves of single images (batch size 1).
    s = method(**{"loss.max_items": 4, "loss.self_distance": True, "train.batch_size": 1})
    s.prepare(FakeUnpaired(10, 3))
    imgs = torch.stack([FakeUnpaired(0, 0).image("a", i) for i in order_a[:4]]).half()
    assert s.stats["a"] == pytest.approx(list(distance_stats(imgs, True)), rel=1e-4)


def test_method_flags_become_loss_settings():
    overrides = parse_method_args(DistanceGAN, ["--self-distance", "--one-way", "--no-normalize", "--lambda-distance", "2.5",
                                                "--max-items=50"])
    cfg = config_mod.build_config(DistanceGAN, None, overrides)
    w = cfg.loss
    assert (w.self_distance, w.one_way, w.normalize, w.lambda_distance, w.max_items, w.cycle) == (True, True, False, 2.5, 50, False)
    defaults = config_mod.build_config(DistanceGAN).loss
    assert (defaults.lambda_distance, defaults.normalize, defaults.max_items) == (1.0, True, 900)


def test_refuses_batch_of_one_without_self_distance_and_one_way_cycle(cli, tmp_path, unpaired_dirs):
    a, b = unpaired_dirs
    result = cli(["train", "distancegan", "--a", a, "--b", b, "--steps", "1", "--batch-size", "1", "--out", tmp_path / "r", *FAST])
    assert result.exit_code == 2 and "--batch-size 2 or more, or --self-distance" in result.output
    result = cli(["train", "distancegan", "--a", a, "--b", b, "--steps", "1", "--one-way", "--cycle", "--out", tmp_path / "r", *FAST])
    assert result.exit_code == 2 and "--cycle needs both directions" in result.output


def test_one_way_self_distance_at_batch_one_trains_and_translates_a2b_only(cli, tmp_path, unpaired_dirs):
    a, b = unpaired_dirs
    run = tmp_path / "run"
    result = cli(["train", "distancegan", "--a", a, "--b", b, "--steps", "2", "--batch-size", "1", "--one-way", "--self-distance",
                  "--out", run, *FAST])
    assert result.exit_code == 0, result.output
    model = load(run / "model.pt")
    assert list(model["directions"]) == ["a2b"] and list(model["generators"]) == ["G_AB"]
    assert set(load(run / "checkpoint.pt")["method"]["nets"]) == {"G_AB", "D_B"}
    result = cli(["translate", run / "model.pt", a, "-o", tmp_path / "out", "--direction", "b2a", "-q"])
    assert result.exit_code == 2
    assert "trained one way (a2b only) and cannot translate b2a" in result.output
    assert not (tmp_path / "out").exists()
    result = cli(["translate", run / "model.pt", a, "-o", tmp_path / "out", "-q"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in a.iterdir())
    assert "a2b" in cli(["info", run / "model.pt"]).output


def test_two_way_with_cycle_resumes_exactly(cli, tmp_path, unpaired_dirs):
    a, b = unpaired_dirs
    flags = ["--a", a, "--b", b, "--steps", "6", "--batch-size", "2", "--cycle", "--pool-size", "2", *FAST]
    straight, parts = tmp_path / "straight", tmp_path / "parts"
    assert cli(["train", "distancegan", *flags, "--out", straight]).exit_code == 0
    assert cli(["train", "distancegan", *flags, "--stop-after", "3", "--out", parts]).exit_code == 0
    assert load(parts / "checkpoint.pt")["step"] == 3
    result = cli(["train", "distancegan", "--resume", "--out", parts, "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    ca, cb = load(straight / "checkpoint.pt"), load(parts / "checkpoint.pt")
    assert ca["step"] == cb["step"] == 6
    assert set(ca["method"]["nets"]) == {"G_AB", "G_BA", "D_A", "D_B"}
    for net, state in ca["method"]["nets"].items():
        for k, t in state.items():
            assert torch.equal(t, cb["method"]["nets"][net][k]), f"{net}.{k}"
    stats = ca["method"]["extra"]["stats"]
    assert stats == cb["method"]["extra"]["stats"] and stats["a"][1] > 0 and stats["b"][1] > 0
    ma, mb = load(straight / "model.pt"), load(parts / "model.pt")
    assert set(ma["directions"]) == {"a2b", "b2a"}
    for g in ma["generators"]:
        for k, t in ma["generators"][g]["state_dict"].items():
            assert torch.equal(t, mb["generators"][g]["state_dict"][k])
