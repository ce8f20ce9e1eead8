"""EMA generator weights and precision choices (issue: fast training)."""

from __future__ import annotations

import torch

from conftest import TINY_FLAGS


def _gen_weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["generators"]["G_AB"]["state_dict"]


def test_ema_weights_are_shipped_in_the_model_file_and_resume_exactly(cli, tmp_path, unpaired_dirs):
    a, b = unpaired_dirs
    common = ["train", "cyclegan", "--a", a, "--b", b, "--steps", 6, "--ema", 0.5, *TINY_FLAGS]
    assert cli([*common, "--out", tmp_path / "straight"]).exit_code == 0
    ckpt = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    raw = ckpt["method"]["nets"]["G_AB"]
    ema = {k.removeprefix("module."): v for k, v in ckpt["ema"]["G_AB"].items() if k.startswith("module.")}
    shipped = _gen_weights(tmp_path / "straight" / "model.pt")
    assert all(torch.equal(shipped[k], ema[k]) for k in shipped)
    assert any(not torch.equal(shipped[k], raw[k]) for k in shipped if k.endswith("weight"))
    # the average lies between the start and the end of training for each weight, so it is closer to raw than 0
    assert cli([*common, "--stop-after", 3, "--out", tmp_path / "resumed"]).exit_code == 0
    assert cli([*common, "--resume", "--out", tmp_path / "resumed"]).exit_code == 0
    again = _gen_weights(tmp_path / "resumed" / "model.pt")
    assert all(torch.equal(again[k], shipped[k]) for k in shipped)


def test_ema_decay_out_of_range_is_refused(cli, tmp_path, unpaired_dirs):
    a, b = unpaired_dirs
    result = cli(["train", "cyclegan", "--a", a, "--b", b, "--steps", 1, "--ema", 1.5, "--out", tmp_path / "r", *TINY_FLAGS])
    assert result.exit_code == 2 and "train.ema" in result.output


def test_bf16_training_runs_with_finite_losses(cli, tmp_path, paired_dir):
    run = tmp_path / "run"
    result = cli(["train", "pix2pix", "--data", paired_dir, "--steps", 2, "--precision", "bf16", "--out", run, *TINY_FLAGS])
    assert result.exit_code == 0, result.output
    assert (run / "model.pt").is_file()


def test_fp16_on_cpu_is_a_clear_error(cli, tmp_path, paired_dir):
    result = cli(["train", "pix2pix", "--data", paired_dir, "--steps", 2, "--precision", "fp16", "--out", tmp_path / "r", *TINY_FLAGS])
    assert result.exit_code == 2 and "fp16 needs a GPU" in result.output


def test_auto_precision_is_exact_fp32_for_training_on_cpu():
    from img2img.device import resolve_precision

    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("cpu"), inference=True) in ("bf16", "fp32")
