"""The shared trainer as a user meets it: the decoded-image data path, honest time, Ctrl-C, and a run
directory that is never someone else's files, never two writers, never a half-written save."""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch.utils.data import default_collate

from conftest import TINY_FLAGS
from img2img.config import build_config
from img2img.data import cache as cache_mod
from img2img.data.cache import CachedBatches, cache_bytes
from img2img.data.datasets import StepBatchSampler, build_dataset
from img2img.data.synthetic import make_paired
from img2img.methods import get_method
from img2img.train import loop as loop_mod
from img2img.train.timing import clock, human_duration


def _no_traceback(result) -> None:
    assert "Traceback" not in result.output


def _ckpt_step(run: Path) -> int:
    return torch.load(run / "checkpoint.pt", weights_only=True)["step"]


def _events(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def _domain_dir(root: Path) -> Path:
    for k, name in enumerate(("cat", "dog", "fox")):
        (root / name).mkdir(parents=True)
        for n in range(3):
            ramp = torch.linspace(0, 255, 40 + 3 * n).to(torch.uint8).expand(36, -1)  # left to right: a flip shows
            rgb = torch.stack([ramp, ramp.flip(-1) // (k + 1), torch.full_like(ramp, 9 * n)], -1)
            Image.fromarray(rgb.numpy()).save(root / name / f"{n}.png")
    return root


# ---------------------------------------------------------------- the decoded-image cache

@pytest.mark.parametrize("kind", ["paired", "unpaired", "domains"])
def test_cached_batches_equal_the_streaming_batches_bit_for_bit(tmp_path, paired_dir, unpaired_dirs, kind):
    """Same keys -> same crops, flips, pair alignment, paths and labels as the DataLoader path, with and without flips."""
    method, data = {"paired": ("pix2pix", {"data.data": str(paired_dir)}),
                    "unpaired": ("cyclegan", {"data.a": str(unpaired_dirs[0]), "data.b": str(unpaired_dirs[1])}),
                    "domains": ("stargan", {"data.data": str(_domain_dir(tmp_path / "dom"))})}[kind]
    for flip in (True, False):
        cfg = build_config(get_method(method), overrides={**data, "data.image_size": 24, "data.load_size": 30,
                                                           "data.flip": flip, "train.steps": 1})
        ds = build_dataset(get_method(method).dataset_kind, cfg.data, method)
        sampler = StepBatchSampler(len(ds), 2, 7, 0, getattr(ds, "n_b", 0))
        cached = CachedBatches(ds, sampler, torch.device("cpu"), prefetch=False)
        flips = 0
        for _, keys in zip(range(12), iter(sampler)):
            want, got = default_collate([ds[k] for k in keys]), cached.batch(keys)
            assert want.keys() == got.keys()
            for k, v in want.items():
                assert torch.equal(v, got[k]) if torch.is_tensor(v) else v == got[k], (kind, k)
            flips += int(not torch.equal(got["a"], cached.transform.finish(
                cached.images.store["a"].index_select(0, torch.tensor([cached.images.resolve(0, key[0]) for key in keys])),
                [(t, l, False) for t, l, _ in (cached.transform.draw(torch.Generator().manual_seed(key[2])) for key in keys)])))
        assert (flips > 0) == flip  # the flip really is drawn (and off when asked)


def test_training_from_the_cache_equals_streaming_training_and_streaming_is_used_when_the_cache_does_not_fit(
        cli, tmp_path, unpaired_dirs, monkeypatch):
    a, b = unpaired_dirs
    args = ["train", "cyclegan", "--a", a, "--b", b, "--steps", "3", *TINY_FLAGS[:-1]]  # with the progress line
    cached = cli([*args, "--out", tmp_path / "cached"])
    assert cached.exit_code == 0, cached.output
    assert "decoded once into a" in cached.output
    monkeypatch.setattr(cache_mod, "memory_budget_bytes", lambda: 1000)  # a 6+6 image cache at 37 px needs 49 kB
    streamed = cli([*args, "--out", tmp_path / "streamed"])
    assert streamed.exit_code == 0, streamed.output
    assert "decoded every step" in streamed.output
    ca, cb = (torch.load(tmp_path / d / "checkpoint.pt", weights_only=True)["method"]["nets"] for d in ("cached", "streamed"))
    assert all(torch.equal(ca[n][k], cb[n][k]) for n in ca for k in ca[n])


def test_cache_size_is_estimated_from_counts_channels_and_load_size(unpaired_dirs):
    a, b = unpaired_dirs
    cfg = build_config(get_method("cyclegan"), overrides={"data.a": str(a), "data.b": str(b), "data.image_size": 32,
                                                          "data.load_size": 40, "train.steps": 1})
    ds = build_dataset("unpaired", cfg.data, "cyclegan")
    assert cache_bytes(ds) == (len(ds.a_files) + len(ds.b_files)) * 3 * 40 * 40


def test_an_image_that_breaks_during_training_is_named_once_and_replaced(tmp_path, capsys):
    data = make_paired(tmp_path / "p", count=4, size=32)
    cfg = build_config(get_method("pix2pix"), overrides={"data.data": str(data), "data.image_size": 32, "train.steps": 1})
    ds = build_dataset("paired", cfg.data, "pix2pix")
    broken = ds.a_files[1]
    broken.write_bytes(b"not an image any more")
    batches = CachedBatches(ds, StepBatchSampler(len(ds), 2, 0, 0), torch.device("cpu"), prefetch=False)
    seen = set()
    for _, batch in zip(range(20), batches):
        seen.update(batch["a_path"])
    err = capsys.readouterr().err
    assert err.count("warning: skipping") == 1 and broken.name in err, err
    assert str(broken) not in seen and len(seen) == 3


def test_resume_with_a_one_pixel_wide_pair_in_the_data_skips_it_with_one_warning(cli, tmp_path):
    data = make_paired(tmp_path / "p", count=4, size=32)
    run = tmp_path / "run"
    first = cli(["train", "pix2pix", "--data", data, "--steps", "6", "--stop-after", "2", "--out", run, *TINY_FLAGS])
    assert first.exit_code == 0, first.output
    Image.new("RGB", (1, 32), (255, 0, 0)).save(data / "zz_thin.png")
    for _ in range(2):  # and again: the same step must not fail every time
        resumed = cli(["train", "pix2pix", "--resume", "--out", run, "--steps", "6" if _ == 0 else "8", "--device", "cpu", "-q"])
        assert resumed.exit_code == 0, resumed.output
        _no_traceback(resumed)
        assert resumed.output.count("zz_thin.png") == 1
    assert _ckpt_step(run) == 8


# ---------------------------------------------------------------- the run directory

@pytest.mark.parametrize("owned", [["config.json"], ["model.pt"], ["log.jsonl", "notes.txt"], ["samples/"]])
def test_out_holding_the_users_own_files_is_refused_and_they_stay_unchanged(cli, tmp_path, paired_dir, owned):
    out = tmp_path / "mine"
    out.mkdir()
    for name in owned:
        if name.endswith("/"):
            (out / name).mkdir()
            (out / name / "holiday.jpg").write_bytes(b"\xff\xd8 my photo")
        else:
            (out / name).write_text(f"the user's own {name}")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    result = cli(["train", "pix2pix", "--data", paired_dir, "--steps", "2", "--out", out, *TINY_FLAGS])
    assert result.exit_code == 2
    _no_traceback(result)
    error_lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "did not write" in error_lines[0]
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_folder_of_unrelated_files_and_a_run_killed_before_its_first_save_are_usable(cli, tmp_path, paired_dir):
    out = tmp_path / "project"
    out.mkdir()
    (out / "README.txt").write_text("my notes")
    args = ["train", "pix2pix", "--data", paired_dir, "--steps", "2", "--out", out, *TINY_FLAGS]
    assert cli(args).exit_code == 0
    assert (out / "README.txt").read_text() == "my notes"
    (out / "checkpoint.pt").unlink()  # as if killed before the first save: config.json says it is ours
    (out / "model.pt").unlink()
    again = cli(args)
    assert again.exit_code == 0, again.output


def test_a_second_training_into_the_same_out_is_refused_while_the_first_runs(cli, tmp_path, paired_dir):
    import fcntl

    out = tmp_path / "run"
    out.mkdir()
    holder = os.open(out / ".img2img.lock", os.O_RDWR | os.O_CREAT)  # what a running training holds
    os.write(holder, b"4242")
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        result = cli(["train", "pix2pix", "--data", paired_dir, "--steps", "2", "--out", out, *TINY_FLAGS])
    finally:
        os.close(holder)
    assert result.exit_code == 2
    _no_traceback(result)
    assert "another img2img training (process 4242) is writing to" in result.output
    assert not (out / "config.json").exists() and not (out / "log.jsonl").exists()
    # The holder ended (as a killed process's lock ends): its lock file is stale and the next run proceeds.
    after = cli(["train", "pix2pix", "--data", paired_dir, "--steps", "2", "--out", out, *TINY_FLAGS])
    assert after.exit_code == 0, after.output
    assert not (out / ".img2img.lock").exists()


def test_a_full_disk_during_a_checkpoint_save_is_one_line_and_keeps_the_previous_checkpoint(cli, tmp_path, paired_dir, monkeypatch):
    run = tmp_path / "run"
    assert cli(["train", "pix2pix", "--data", paired_dir, "--steps", "8", "--stop-after", "2", "--out", run, *TINY_FLAGS]).exit_code == 0
    before = (run / "checkpoint.pt").read_bytes()
    import torch

    def full(obj, f, *a, **k):  # half a file, then the disk is full
        if isinstance(f, (str, os.PathLike)):
            Path(f).write_bytes(b"x" * 100)
        else:
            f.write(b"x" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    result = cli(["train", "pix2pix", "--resume", "--out", run, "--save-every", "1", "--device", "cpu", "-q"])
    assert result.exit_code == 2
    _no_traceback(result)
    error_lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1, result.output
    assert "No space left on device" in result.output and "still holds step 2" in result.output
    assert (run / "checkpoint.pt").read_bytes() == before
    assert not list(run.glob(".*.tmp"))


def test_a_stale_temporary_from_a_killed_save_is_removed(cli, tmp_path, paired_dir):
    run = tmp_path / "run"
    assert cli(["train", "pix2pix", "--data", paired_dir, "--steps", "4", "--stop-after", "2", "--out", run, *TINY_FLAGS]).exit_code == 0
    (run / ".checkpoint.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")
    (run / ".model.pt.x.tmp").write_bytes(b"half a model")
    assert cli(["train", "pix2pix", "--resume", "--out", run, "--device", "cpu", "-q"]).exit_code == 0
    assert not list(run.glob(".*.tmp"))


def test_nan_before_any_save_does_not_claim_a_checkpoint(cli, tmp_path, paired_dir, monkeypatch):
    original = loop_mod.Trainer.train_step

    def poisoned(self, batch, step):
        losses = original(self, batch, step)
        return {**losses, "L1": torch.tensor(float("nan"))} if step >= 1 else losses

    monkeypatch.setattr(loop_mod.Trainer, "train_step", poisoned)
    run = tmp_path / "run"
    result = cli(["train", "pix2pix", "--data", paired_dir, "--steps", "6", "--out", run, *TINY_FLAGS])
    assert result.exit_code == 2
    _no_traceback(result)
    assert "no checkpoint was saved yet" in result.output and "still holds" not in result.output
    assert not (run / "checkpoint.pt").exists()


def test_stop_after_negative_is_refused(cli, tmp_path, paired_dir):
    run = tmp_path / "run"
    result = cli(["train", "pix2pix", "--data", paired_dir, "--steps", "4", "--stop-after", "-1", "--out", run, *TINY_FLAGS])
    assert result.exit_code == 2
    _no_traceback(result)
    assert "--stop-after" in result.output
    assert not (run / "model.pt").exists()


# ---------------------------------------------------------------- time

def test_saves_follow_elapsed_time_by_default_and_steps_when_asked(cli, tmp_path, paired_dir):
    base = ["train", "pix2pix", "--data", paired_dir, "--steps", "5", *TINY_FLAGS]
    by_default = tmp_path / "default"
    assert cli([*base, "--out", by_default]).exit_code == 0
    assert [e["step"] for e in _events(by_default) if e.get("event") == "saved"] == [5]  # a short run: only at the end
    often = tmp_path / "often"
    assert cli([*base, "--out", often, "--set", "train.save_minutes=0.00001"]).exit_code == 0
    assert [e["step"] for e in _events(often) if e.get("event") == "saved"] == [1, 2, 3, 4, 5]
    steps = tmp_path / "steps"
    assert cli([*base, "--out", steps, "--save-every", "2"]).exit_code == 0
    assert [e["step"] for e in _events(steps) if e.get("event") == "saved"] == [2, 4, 5]


def test_a_long_run_is_projected_in_days_with_the_ways_out(cli, tmp_path, paired_dir):
    run = tmp_path / "run"
    result = cli(["train", "pix2pix", "--data", paired_dir, "--steps", "50000000", "--stop-after", "5", "--out", run, *TINY_FLAGS])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("projected time:"))
    assert "days for 49,999,99" in line and "s/step on cpu" in line
    assert "--image-size 128" in result.output and "--device cuda" in result.output and "--steps" in result.output
    assert any(e.get("event") == "projection" for e in _events(run))


def test_losses_are_logged_from_the_first_step(cli, tmp_path, paired_dir):
    run = tmp_path / "run"
    assert cli(["train", "pix2pix", "--data", paired_dir, "--steps", "4", "--out", run, *TINY_FLAGS[:-3]]).exit_code == 0
    assert [e["step"] for e in _events(run) if "event" not in e] == [1, 4]  # log_every 50: step 1, then the end


def test_durations_read_as_people_say_them():
    assert human_duration(42) == "42 s" and human_duration(720) == "12 min" and human_duration(12000) == "3 h 20 min"
    assert human_duration(74 * 86400 + 5000) == "74 days" and human_duration(2.5 * 86400) == "2.5 days"
    assert clock(3725) == "1:02:05" and clock(1442 * 3600 + 56 * 60) == "60d 02h"


# ---------------------------------------------------------------- Ctrl-C

def _press_ctrl_c_at(monkeypatch, at_step: int, presses: int):
    original = loop_mod.Trainer.train_step

    def step(self, batch, n):
        if n == at_step:
            for _ in range(presses):
                os.kill(os.getpid(), signal.SIGINT)
        return original(self, batch, n)

    monkeypatch.setattr(loop_mod.Trainer, "train_step", step)


def test_ctrl_c_is_acknowledged_at_once_then_the_checkpoint_is_saved(cli, tmp_path, paired_dir, monkeypatch):
    _press_ctrl_c_at(monkeypatch, at_step=2, presses=1)
    run = tmp_path / "run"
    result = cli(["train", "pix2pix", "--data", paired_dir, "--steps", "10", "--out", run, *TINY_FLAGS])
    assert result.exit_code == 130
    _no_traceback(result)
    out = result.output
    assert "stopping after this step; saving" in out and "checkpoint saved" in out
    assert out.index("stopping after this step") < out.index("checkpoint saved")
    assert _ckpt_step(run) == 3


def test_a_second_ctrl_c_stops_at_once_and_says_what_was_not_saved(cli, tmp_path, paired_dir, monkeypatch):
    _press_ctrl_c_at(monkeypatch, at_step=3, presses=2)
    run = tmp_path / "run"
    result = cli(["train", "pix2pix", "--data", paired_dir, "--steps", "10", "--save-every", "2", "--out", run, *TINY_FLAGS])
    assert result.exit_code == 130
    _no_traceback(result)
    assert "stopped at once at step 3: not saved: 1 step since the last save" in result.output
    assert "holds step 2" in result.output and "continue from step 2" in result.output
    assert _ckpt_step(run) == 2


def test_an_interrupted_demo_says_so(cli, tmp_path, monkeypatch):
    _press_ctrl_c_at(monkeypatch, at_step=1, presses=1)
    result = cli(["demo", "--out", tmp_path / "demo", "--steps", "40", "--device", "cpu"])
    assert result.exit_code == 130
    _no_traceback(result)
    assert "demo interrupted after 2 of 40 training steps" in result.output
    assert "done." not in result.output


# ---------------------------------------------------------------- previews

def test_preview_grids_are_small_titled_jpegs(cli, tmp_path, unpaired_dirs):
    a, b = unpaired_dirs
    run = tmp_path / "run"
    assert cli(["train", "cyclegan", "--a", a, "--b", b, "--steps", "2", "--out", run, *TINY_FLAGS]).exit_code == 0
    grid = run / "samples" / "step_0000002.jpg"
    with Image.open(grid) as im:
        assert im.format == "JPEG"
        pixels = torch.frombuffer(bytearray(im.convert("L").tobytes()), dtype=torch.uint8).view(im.height, im.width).float()
    assert pixels.shape[1] == 6 * (32 + 2) + 2  # six titled views of 32 px
    titles = pixels[:14]
    for k in range(6):  # dark title text over each column
        assert (titles[:, 2 + k * 34: 2 + k * 34 + 32] < 100).sum() > 5, k
    assert grid.stat().st_size < 40_000


def test_gpus_train_in_bf16_by_default_and_fp16_only_where_bf16_is_missing(monkeypatch):
    from img2img.device import resolve_precision

    gpu = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", gpu, step_gflop=0.01) == "bf16"  # whatever the size of the step
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision("auto", gpu, step_gflop=99.0) == "fp16"
