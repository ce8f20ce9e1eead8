"""fp16 training with its GradScaler, run on the CPU (torch autocasts fp16 there too) so CI covers the
loss-scaling logic that tests/test_cuda.py checks on a GPU: the scale must start low enough that the
first steps are not skipped, and the run must follow the fp32 one."""

from __future__ import annotations

import json

import pytest

import img2img.train.loop as loop
from conftest import TINY_FLAGS
from img2img.methods.base import FP16_INIT_SCALE
from test_cuda import output_distance as distance
from test_cuda import outputs as generators


@pytest.fixture
def fp16_on_cpu(monkeypatch):
    """The CLI refuses fp16 on a CPU (slow there); the loop's arithmetic is the same on any device."""
    real = loop.resolve_precision
    monkeypatch.setattr(loop, "resolve_precision", lambda p, d, **k: "fp16" if p == "fp16" else real(p, d, **k))


def test_fp16_training_steps_from_the_first_step_and_follows_fp32(cli, tmp_path, unpaired_dirs, fp16_on_cpu):
    data = ["cyclegan", "--a", unpaired_dirs[0], "--b", unpaired_dirs[1], "--pool-size", 0]
    runs = {"fp32": ["--steps", 12, "--precision", "fp32"], "fp16": ["--steps", 12, "--precision", "fp16"],
            "init": ["--steps", 1, "--precision", "fp32", "--set", "train.lr=1e-12"]}
    for name, extra in runs.items():
        result = cli(["train", *data, *extra, "--out", tmp_path / name, *TINY_FLAGS])
        assert result.exit_code == 0, result.output
    log = [json.loads(line) for line in (tmp_path / "fp16" / "log.jsonl").read_text().splitlines()]
    assert log[0]["precision"] == "fp16"
    scales = [r["loss_scale"] for r in log if "event" not in r]
    # Under torch's default start, 2**16, the generators' steps 1-5 were skipped while the scale halved to 2048.
    assert scales == [FP16_INIT_SCALE] * 12, f"fp16 skipped steps: loss scale went {scales}"
    fp16, fp32, init = (generators(tmp_path / n) for n in ("fp16", "fp32", "init"))
    moved = distance(fp32, init)
    assert distance(fp16, init) > 0.8 * moved, "fp16 trained less far than fp32"
    assert distance(fp16, fp32) < 0.3 * moved, "fp16 left the fp32 path"
