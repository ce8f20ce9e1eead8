"""Data-parallel training under torchrun on CPU (gloo): replicas average gradients, rank 0 writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_FLAGS

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _torchrun(args: list[str], nproc: int = 2) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", "-m", "img2img", *map(str, args)]
    result = subprocess.run(cmd, capture_output=True, env=ENV, timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    return result


def _single(args: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "img2img", *map(str, args)], capture_output=True, env=ENV, timeout=300)
    assert result.returncode == 0, result.stderr.decode()[-3000:]


def _nets(run: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    return {f"{n}.{k}": v for n, sd in ckpt["method"]["nets"].items() for k, v in sd.items()}


def test_two_processes_of_batch_1_match_one_process_of_batch_2(tmp_path, unpaired_dirs):
    """Both see the same keys per step, and mean-reduced losses make the averaged gradient the batch-2 gradient."""
    a, b = unpaired_dirs
    common = ["train", "cyclegan", "--a", a, "--b", b, "--pool-size", 0, *TINY_FLAGS]
    _torchrun([*common, "--steps", 3, "--batch-size", 1, "--out", tmp_path / "ddp"])
    _single([*common, "--steps", 3, "--batch-size", 2, "--out", tmp_path / "single"])
    fresh = tmp_path / "fresh"  # the common starting point: one step at a negligible learning rate
    _single([*common, "--batch-size", 2, "--steps", 1, "--set", "train.lr=1e-12", "--out", fresh])
    ddp, single, init = _nets(tmp_path / "ddp"), _nets(tmp_path / "single"), _nets(fresh)
    assert ddp.keys() == single.keys()
    weights = [k for k in ddp if k.endswith("weight")]
    gap = sum(float((ddp[k] - single[k]).abs().sum()) for k in weights)
    moved = sum(float((single[k] - init[k]).abs().sum()) for k in weights)
    # Adam turns float noise in near-zero gradients into full-size steps, so bit equality is not expected;
    # without gradient averaging the gap would be of the order of the movement itself.
    assert moved > 0
    assert gap < 0.02 * moved, f"replicas differ from the equivalent single-process run: gap {gap:.4g} vs movement {moved:.4g}"


def _domain_folders(root: Path, size: int = 32) -> Path:
    rng = np.random.default_rng(0)
    for d, colour in (("red", (200, 40, 40)), ("green", (40, 200, 40)), ("blue", (40, 40, 200))):
        (root / d).mkdir(parents=True)
        for n in range(4):
            img = np.clip(np.array(colour) + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / d / f"{d}{n}.png")
    return root


def test_stargan_trains_under_ddp_resumes_and_translates(tmp_path, cli):
    data = _domain_folders(tmp_path / "domains")
    run = tmp_path / "run"
    common = ["train", "stargan", "--data", data, "--steps", 4, "--batch-size", 2, *TINY_FLAGS, "--out", run]
    _torchrun([*common, "--stop-after", 2])
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2
    _torchrun([*common, "--resume"])
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 4
    photo = tmp_path / "photo.png"
    Image.new("RGB", (37, 29), (120, 120, 120)).save(photo)
    result = cli(["translate", run / "model.pt", photo, "--to", "green", "-o", tmp_path / "out.png", "-q"])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out.png").size == (37, 29)


FP16_SKIP_WORKER = '''
import datetime, json, sys, types
import torch, torch.distributed as dist
from img2img.methods.base import Method
from img2img.train.distributed import average_gradients_before_step

dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=20))
rank = dist.get_rank()
torch.manual_seed(0)
net = torch.nn.Linear(4, 2)
opt = torch.optim.Adam(net.parameters(), lr=0.1)
average_gradients_before_step(opt, 2)
owner = types.SimpleNamespace(scaler=torch.amp.GradScaler("cpu", init_scale=1024.0))
weights, scales = [], []
for step in range(3):
    opt.zero_grad()
    x = torch.full((2, 4), float(rank + 1))
    owner.scaler.scale(net(x).square().mean()).backward()
    if step == 1 and rank == 1:
        net.weight.grad[0, 0] = float("inf")  # an fp16 overflow on this rank only
    Method.step(owner, opt)
    owner.scaler.update()
    weights.append(net.weight.detach().flatten().tolist())
    scales.append(owner.scaler.get_scale())
# One file per rank: two ranks printing to one stdout can interleave their lines.
with open(f"{sys.argv[1]}/rank{rank}.json", "w") as fh:
    json.dump({"rank": rank, "weights": weights, "scales": scales}, fh)
dist.destroy_process_group()
'''


def test_fp16_inf_on_one_rank_makes_every_rank_skip_the_step(tmp_path):
    """GradScaler skips a step whose gradients hold an inf; the decision must be the same on every rank,
    or one rank skips the all-reduce inside the step while the other waits in it (a hang or drifting replicas)."""
    script = tmp_path / "worker.py"
    script.write_text(FP16_SKIP_WORKER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(script), str(tmp_path)]
    result = subprocess.run(cmd, capture_output=True, env={**ENV, "PYTHONPATH": str(Path(__file__).parents[1])}, timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    import json

    runs = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert len(runs) == 2
    for r in runs:
        w = np.array(r["weights"])
        assert np.abs(w[1] - w[0]).max() == 0.0, "step 1 held an inf on rank 1: every rank must skip it"
        assert np.abs(w[2] - w[1]).max() > 0.01, "the following step must train again"
        assert r["scales"] == [1024.0, 512.0, 512.0]  # the scale backs off once, on both ranks
    np.testing.assert_array_equal(runs[0]["weights"], runs[1]["weights"])  # replicas stay identical
