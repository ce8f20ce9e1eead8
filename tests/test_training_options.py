"""EMA generator weights and precision choices (issue: fast training)."""

from __future__ import annotations

import torch

from conftest import TINY_FLAGS


def _gen_weights(path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["generators"]["G_AB"]["state_dict"]


def _gen_weights_at_start(cli, a, b, tmp_path) -> dict[str, torch.Tensor]:
    """G_AB's initial weights: the same seed, one step at a negligible learning rate."""
    out = tmp_path / "start"
    args = ["train", "cyclegan", "--a", a, "--b", b, "--steps", 1, "--set", "train.lr=1e-12", *TINY_FLAGS, "--out", out]
    assert cli(args).exit_code == 0
    return torch.load(out / "checkpoint.pt", weights_only=True)["method"]["nets"]["G_AB"]


def test_ema_weights_are_shipped_in_the_model_file_and_resume_exactly(cli, tmp_path, unpaired_dirs):
    a, b = unpaired_dirs
    common = ["train", "cyclegan", "--a", a, "--b", b, "--steps", 6, "--ema", 0.5, *TINY_FLAGS]
    assert cli([*common, "--out", tmp_path / "straight"]).exit_code == 0
    ckpt = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    raw = ckpt["method"]["nets"]["G_AB"]
    ema = {k.removeprefix("module."): v for k, v in ckpt["ema"]["G_AB"].items() if k.startswith("module.")}
    shipped = _gen_weights(tmp_path / "straight" / "model.pt")
    assert all(torch.equal(shipped[k], ema[k]) for k in shipped)
    # the shipped weights are the average, not the raw ones: at decay 0.5 they lag the raw weights by about
    # a step's movement (measured 5.8% of the 6 steps' total); float noise would be ~1e-7 of it
    init = _gen_weights_at_start(cli, a, b, tmp_path)
    weights = [k for k in shipped if k.endswith("weight")]
    ema_gap = sum(float((shipped[k] - raw[k]).abs().sum()) for k in weights)
    movement = sum(float((raw[k] - init[k]).abs().sum()) for k in weights)
    assert ema_gap > 0.02 * movement, f"EMA weights {ema_gap:.3g} from the raw ones, training moved them {movement:.3g}"
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


def test_auto_precision_on_cpu_follows_native_bf16_and_the_work_per_step(monkeypatch):
    import img2img.device as device_mod

    cpu = torch.device("cpu")
    monkeypatch.setattr(device_mod, "_cpu_has_fast_bf16", lambda: True)
    assert device_mod.resolve_precision("auto", cpu, step_gflop=0.03) == "fp32"  # tiny nets: casts cost more
    assert device_mod.resolve_precision("auto", cpu, step_gflop=99.1) == "bf16"
    assert device_mod.resolve_precision("auto", cpu) == "fp32"
    assert device_mod.resolve_precision("auto", cpu, inference=True) == "bf16"
    assert device_mod.resolve_precision("fp32", cpu, step_gflop=99.1) == "fp32"
    monkeypatch.setattr(device_mod, "_cpu_has_fast_bf16", lambda: False)
    assert device_mod.resolve_precision("auto", cpu, step_gflop=99.1) == "fp32"
    assert device_mod.resolve_precision("auto", cpu, inference=True) == "fp32"


def test_generator_work_per_step_is_counted_from_the_settings():
    from img2img.config import build_config
    from img2img.methods import get_method
    from img2img.train.loop import generator_step_gflop

    def cfg(method, size, batch, **extra):
        data = {"data.data": "-"} if method == "pix2pix" else {"data.a": "-", "data.b": "-"}
        return build_config(get_method(method), overrides={**data, "data.image_size": size, "train.batch_size": batch, **extra})

    # the figure: one ResNet-9 (ngf 64) forward at 256x256 is about 99 GFLOP
    assert abs(generator_step_gflop(cfg("cyclegan", 256, 1)) - 99.1) < 0.5
    assert abs(generator_step_gflop(cfg("cyclegan", 256, 4)) - 4 * 99.1) < 2
    assert abs(generator_step_gflop(cfg("cyclegan", 256, 4), world=2) - 2 * 99.1) < 1
    assert generator_step_gflop(cfg("pix2pix", 64, 1)) < 5 < generator_step_gflop(cfg("pix2pix", 256, 1))
    assert generator_step_gflop(cfg("cyclegan", 32, 1, **{"net.ngf": 8})) < 0.1


def test_the_chosen_precision_is_logged(cli, tmp_path, paired_dir):
    import json

    run = tmp_path / "run"
    result = cli(["train", "pix2pix", "--data", paired_dir, "--steps", 1, "--out", run, *TINY_FLAGS])
    assert result.exit_code == 0, result.output
    start = json.loads((run / "log.jsonl").read_text().splitlines()[0])
    assert start["event"] == "start" and start["precision"] == "fp32"


def test_fp16_loss_scaling_trains_and_resumes_exactly(cli, tmp_path, unpaired_dirs, monkeypatch):
    """The GPU fp16 path (autocast fp16 + GradScaler, its state in the checkpoint), run on the CPU."""
    import img2img.train.loop as loop
    from test_resume import assert_identical, load

    monkeypatch.setattr(loop, "resolve_precision", lambda *args, **kwargs: "fp16")
    data = ["--a", unpaired_dirs[0], "--b", unpaired_dirs[1]]
    a, b = tmp_path / "A", tmp_path / "B"
    # 8 steps: the scale starts at 2**16 and halves at each step whose gradients overflow in fp16,
    # which skips that update; here it settles by step 6, so the resumed half makes real updates.
    for args in (["--steps", 8, "--out", a], ["--steps", 8, "--stop-after", 4, "--out", b]):
        result = cli(["train", "cyclegan", *data, *args, *TINY_FLAGS])
        assert result.exit_code == 0, result.output
    halfway = load(b / "checkpoint.pt")
    result = cli(["train", "cyclegan", "--resume", "--out", b, "--device", "cpu", "-q"])
    assert result.exit_code == 0, result.output
    ca, cb = load(a / "checkpoint.pt"), load(b / "checkpoint.pt")
    assert ca["step"] == cb["step"] == 8
    assert "scaler" in ca and ca["scaler"] == cb["scaler"] and ca["scaler"]["scale"] > 0
    assert_identical(ca["method"]["nets"], cb["method"]["nets"], "fp16 nets")
    # the scaler let real updates through after the resume (it skips steps whose gradients overflow)
    # (Adam moves each weight by about lr = 2e-4 per real update; 4 skipped steps would move nothing)
    after, before = cb["method"]["nets"]["G_AB"], halfway["method"]["nets"]["G_AB"]
    weights = [k for k in after if k.endswith("weight")]
    mean_move = sum(float((after[k] - before[k]).abs().sum()) for k in weights) / sum(after[k].numel() for k in weights)
    assert mean_move > 1e-4, f"weights moved {mean_move:.2e} on average after the resume"
    assert all(torch.isfinite(t).all() for t in load(a / "model.pt")["generators"]["G_AB"]["state_dict"].values())
