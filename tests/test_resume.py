"""Exact resume: stopping and continuing a run gives bit-identical weights to running it straight through.

This holds only if everything random is a function of (seed, step) or is checkpointed: the data order
and augmentation (StepBatchSampler keys), dropout and the image pool (the global RNG state), the
optimizers' moments, the schedules and the pool's contents.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import TINY_FLAGS


def data_flags(method: str, paired_dir: Path, unpaired_dirs: tuple[Path, Path]) -> list:
    return ["--data", paired_dir] if method == "pix2pix" else ["--a", unpaired_dirs[0], "--b", unpaired_dirs[1]]


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def tensors(tree, prefix: str = "") -> dict[str, torch.Tensor]:
    """Every tensor in a nested dict/list, keyed by its path."""
    out = {}
    if torch.is_tensor(tree):
        out[prefix] = tree
    elif isinstance(tree, dict):
        for k, v in tree.items():
            out.update(tensors(v, f"{prefix}/{k}"))
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            out.update(tensors(v, f"{prefix}/{i}"))
    return out


def assert_identical(a: dict, b: dict, what: str) -> None:
    ta, tb = tensors(a), tensors(b)
    assert ta.keys() == tb.keys(), f"{what}: different entries"
    assert ta, f"{what}: no tensors compared"
    differ = [k for k in ta if not torch.equal(ta[k], tb[k])]
    assert not differ, f"{what}: {len(differ)} of {len(ta)} tensors differ, e.g. {differ[:5]}"


def run_ok(cli, args: list) -> None:
    result = cli(args)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("method,extra", [
    ("pix2pix", ["--workers", "1"]),  # unet_32 (no dropout at this depth): data order and augmentation, in a worker process
    ("pix2pix", ["--generator", "resnet_6"]),  # dropout in the ResNet blocks draws from the global RNG
    ("cyclegan", ["--pool-size", "2"]),  # a pool that fills at step 2, then swaps at random
], ids=["pix2pix-unet-worker", "pix2pix-resnet-dropout", "cyclegan-pool"])
def test_stop_and_resume_equals_uninterrupted(cli, tmp_path, paired_dir, unpaired_dirs, method, extra):
    data = data_flags(method, paired_dir, unpaired_dirs)
    a, b = tmp_path / "A", tmp_path / "B"
    run_ok(cli, ["train", method, *data, "--steps", "6", "--out", a, *TINY_FLAGS, *extra])
    run_ok(cli, ["train", method, *data, "--steps", "6", "--stop-after", "3", "--out", b, *TINY_FLAGS, *extra])
    assert load(b / "checkpoint.pt")["step"] == 3
    run_ok(cli, ["train", method, "--resume", "--out", b, "--device", "cpu", "-q"])

    ca, cb = load(a / "checkpoint.pt"), load(b / "checkpoint.pt")
    assert ca["step"] == cb["step"] == 6
    assert_identical(ca["method"]["nets"], cb["method"]["nets"], f"{method} nets")
    assert_identical(ca["method"]["optimizers"], cb["method"]["optimizers"], f"{method} optimizer states")
    assert ca["method"]["extra"].keys() == cb["method"]["extra"].keys()
    if ca["method"]["extra"]:
        assert_identical(ca["method"]["extra"], cb["method"]["extra"], f"{method} extra state (image pools)")
    assert_identical(ca["rng"], cb["rng"], f"{method} RNG state")
    ma, mb = load(a / "model.pt"), load(b / "model.pt")
    assert_identical(ma["generators"], mb["generators"], f"{method} model.pt weights")

    # The resumed run's log continues where the first part stopped.
    records = [json.loads(line) for line in (b / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "event" not in r] == [1, 2, 3, 4, 5, 6]
    assert [r["event"] for r in records if "event" in r and r["event"] != "saved"] == ["start", "stop", "resume", "done"]
    assert [r["step"] for r in records if r.get("event") == "saved"] == [3, 6]  # each save is logged
    # Losses logged after the resume equal the uninterrupted run's.
    log_a = [json.loads(line) for line in (a / "log.jsonl").read_text().splitlines()]
    loss_keys = [k for k in [r for r in records if "event" not in r][-1] if k not in ("step", "epoch", "lr", "it_s", "time")]
    assert loss_keys
    for ra, rb in zip([r for r in log_a if "event" not in r], [r for r in records if "event" not in r]):
        assert {k: ra[k] for k in loss_keys} == {k: rb[k] for k in loss_keys}, f"step {ra['step']}"


def test_extending_a_constant_lr_run_equals_a_longer_run(cli, tmp_path, paired_dir, unpaired_dirs):
    """With a constant schedule, '--steps 3' then '--resume --steps 6' is the same run as '--steps 6'."""
    data = data_flags("cyclegan", paired_dir, unpaired_dirs)
    const = ["--set", "train.lr_policy=constant"]
    a, b = tmp_path / "A", tmp_path / "B"
    run_ok(cli, ["train", "cyclegan", *data, "--steps", "6", "--out", a, *TINY_FLAGS, *const])
    run_ok(cli, ["train", "cyclegan", *data, "--steps", "3", "--out", b, *TINY_FLAGS, *const])
    run_ok(cli, ["train", "cyclegan", "--resume", "--steps", "6", "--out", b, "--device", "cpu", "-q"])
    ca, cb = load(a / "checkpoint.pt"), load(b / "checkpoint.pt")
    assert ca["step"] == cb["step"] == 6
    assert_identical(ca["method"], cb["method"], "constant-lr extended run")
    assert_identical(load(a / "model.pt")["generators"], load(b / "model.pt")["generators"], "model.pt")


def test_resume_refuses_changed_settings(cli, tmp_path, paired_dir):
    out = tmp_path / "run"
    run_ok(cli, ["train", "pix2pix", "--data", paired_dir, "--steps", "2", "--out", out, *TINY_FLAGS])
    result = cli(["train", "pix2pix", "--resume", "--out", out, "--lr", "0.1", "-q"])
    assert result.exit_code == 2 and "cannot change train.lr" in result.output
    result = cli(["train", "cyclegan", "--resume", "--out", out, "-q"])
    assert result.exit_code == 2 and "pix2pix run" in result.output
    result = cli(["train", "pix2pix", "--resume", "--out", tmp_path / "empty", "-q"])
    assert result.exit_code == 2 and "nothing to resume" in result.output
    # A finished run resumed without more steps has nothing to do and leaves the files alone.
    before = (out / "model.pt").read_bytes()
    run_ok(cli, ["train", "pix2pix", "--resume", "--out", out, "--device", "cpu", "-q"])
    assert (out / "model.pt").read_bytes() == before


def test_only_the_run_seed_reaches_the_gpu_generators(cli, tmp_path, paired_dir, monkeypatch):
    """Loading an image seeds the CPU generator with the image's key (its crop and flip); it must not
    reseed CUDA's, which draws the generator's dropout masks. It did: on an H200 a pix2pix run resumed
    after 3 of 6 steps ended up to 0.015 off the uninterrupted one, as the preview images reset the GPU
    masks on restart. Recorded on any machine: every seed that goes to the CUDA generators."""
    import torch.cuda

    from img2img.metrics.features import random_features

    seeds = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda s: seeds.append(int(s)))
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda s: seeds.append(int(s)))
    flags = [f if f != "0" or TINY_FLAGS[i - 1] != "--seed" else "7" for i, f in enumerate(TINY_FLAGS)]
    result = cli(["train", "pix2pix", "--data", paired_dir, "--steps", 3, "--workers", 0, "--out", tmp_path / "run", *flags])
    assert result.exit_code == 0, result.output
    random_features(seed=3)
    assert seeds == [7], f"seeds given to the CUDA generators: {seeds} (only the run's --seed 7 belongs there)"
