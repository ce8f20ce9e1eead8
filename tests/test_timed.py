"""Training for a wall-clock budget: the run fits its time, its schedule ends where it stops, and the
deadline itself stops (and saves) a run whose plan outlasts it."""

from __future__ import annotations

import json
import time

import pytest
import torch

from conftest import TINY_OVERRIDES
from img2img import config as config_mod
from img2img.errors import UserError
from img2img.methods import get_method
from img2img.train import train, train_for
from img2img.train.checkpoint import load_checkpoint
from img2img.train.timed import CALIBRATION_STEPS, UNPLANNED_STEPS, replan_fraction, with_steps


def cyclegan_cfg(unpaired_dirs, **extra):
    a, b = unpaired_dirs
    return config_mod.build_config(get_method("cyclegan"), None, {**TINY_OVERRIDES, "data.a": str(a), "data.b": str(b),
                                                                  "train.log_every": 5, **extra})


def events(out):
    return [r for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "event" in r]


def lr_of(out):
    """The learning rate of the last logged step."""
    return [r for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "lr" in r][-1]["lr"]


def test_a_budget_is_planned_into_steps_that_fit_it_with_the_schedule_run_out(unpaired_dirs, tmp_path):
    out = tmp_path / "run"
    seconds = 8.0
    began = time.monotonic()
    result = train_for(cyclegan_cfg(unpaired_dirs), out, seconds, progress=False)
    wall = time.monotonic() - began
    assert not result.interrupted
    # it used the time: many more steps than the timing stage, within the budget (plus the final save)
    assert result.step > 50 and result.seconds <= seconds + 1.0 and wall <= seconds + 5.0
    # the planned end was reached or the deadline stopped it near that end; either way the model is saved there
    assert result.step >= 0.8 * result.total_steps
    assert load_checkpoint(out / "checkpoint.pt")["step"] == result.step
    stored = json.loads((out / "config.json").read_text())["train"]
    assert stored["steps"] == result.total_steps and stored["epochs"] == 0
    # the learning rate decayed as for a run told that many steps: near zero at the end, not the constant 2e-4
    assert lr_of(out) < 0.25 * 2e-4
    kinds = [e["event"] for e in events(out)]
    assert kinds[0] == "start" and kinds.count("resume") == 2  # timing, first stretch, the rest


def test_the_deadline_stops_and_saves_a_run_whose_plan_outlasts_it(unpaired_dirs, tmp_path):
    out = tmp_path / "run"
    cfg = cyclegan_cfg(unpaired_dirs, **{"train.steps": 10**6})
    result = train(cfg, out, progress=False, deadline=time.monotonic() + 2.0)
    assert result.out_of_time and not result.interrupted and 0 < result.step < 10**6
    assert load_checkpoint(out / "checkpoint.pt")["step"] == result.step
    assert events(out)[-1]["event"] == "out_of_time"
    # and the run continues from there as any stopped run does
    again = train(cfg, out, resume=True, stop_after=3, progress=False)
    assert again.step == result.step + 3


def test_resuming_with_a_budget_trains_that_much_longer(unpaired_dirs, tmp_path):
    out = tmp_path / "run"
    cfg = cyclegan_cfg(unpaired_dirs, **{"train.steps": 20})
    first = train(cfg, out, progress=False)
    more = train_for(config_mod.from_dict(load_checkpoint(out / "checkpoint.pt")["config"], get_method("cyclegan")),
                     out, 5.0, resume=True, progress=False)
    assert more.step > first.step + 20 and more.seconds <= 6.0


@pytest.mark.parametrize("seconds", [0, -1.0, float("nan"), float("inf")])
def test_a_budget_of_nothing_or_of_no_number_is_refused(unpaired_dirs, tmp_path, seconds):
    with pytest.raises(UserError, match="--minutes must be a number more than 0"):
        train_for(cyclegan_cfg(unpaired_dirs), tmp_path / "run", seconds, progress=False)
    assert not (tmp_path / "run").exists()


def test_cli_minutes(cli, unpaired_dirs, tmp_path):
    a, b = unpaired_dirs
    out = tmp_path / "run"
    result = cli(["train", "cyclegan", "--a", a, "--b", b, "--image-size", "32", "--ngf", "8", "--ndf", "8",
                  "--minutes", "0.1", "--out", out, "-q"])
    assert result.exit_code == 0, result.output
    assert "steps in all" in result.output
    step = load_checkpoint(out / "checkpoint.pt")["step"]
    assert step > 20 and (out / "model.pt").is_file()
    assert lr_of(out) < 0.25 * 2e-4


@pytest.mark.parametrize("other", [["--minutes", "1", "--steps", "5"], ["--minutes", "1", "--epochs", "1"],
                                   ["--minutes", "1", "--stop-after", "5"], ["--minutes", "0"], ["--minutes", "inf"],
                                   ["--minutes", "nan"], ["--minutes", "-3"], ["--minutes", "ten"]])
def test_cli_bad_minutes_are_one_line_errors(cli, unpaired_dirs, tmp_path, other):
    a, b = unpaired_dirs
    result = cli(["train", "cyclegan", "--a", a, "--b", b, *other, "--out", tmp_path / "r"])
    assert result.exit_code != 0
    assert "--minutes" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_stages_with_a_changing_plan_end_where_one_plan_would(unpaired_dirs, tmp_path):
    """What train_for does (time 10 steps under a far total, run 40% of a first plan, then the final plan) leaves
    the weights a run told the final total from the start has: nothing before the decay depends on the total."""
    cfg = cyclegan_cfg(unpaired_dirs, **{"train.steps": 40})
    train(cfg, tmp_path / "one", progress=False)
    staged = tmp_path / "staged"
    train(with_steps(cfg, UNPLANNED_STEPS), staged, stop_after=CALIBRATION_STEPS, progress=False)
    first_plan = 44  # the speed over the timing steps misjudged by 10%
    train(with_steps(cfg, first_plan), staged, resume=True, stop_after=int(replan_fraction(cfg) * first_plan) - CALIBRATION_STEPS,
          progress=False)
    train(with_steps(cfg, 40), staged, resume=True, progress=False)
    one, two = (load_checkpoint(d / "checkpoint.pt")["method"]["nets"] for d in (tmp_path / "one", staged))
    assert len(one) == 4  # two generators, two discriminators
    for net, weights in one.items():
        for key, value in weights.items():
            assert torch.equal(value, two[net][key]), (net, key)


@pytest.mark.parametrize("policy,decay_start,expected", [("linear", 0.5, 0.4), ("linear", 0.25, 0.2), ("linear", 0.0, 0.0),
                                                         ("constant", 0.0, 0.4)])
def test_the_replan_comes_before_the_decay(unpaired_dirs, policy, decay_start, expected):
    cfg = cyclegan_cfg(unpaired_dirs, **{"train.lr_policy": policy, "train.decay_start": decay_start})
    assert replan_fraction(cfg) == pytest.approx(expected)


def test_minutes_under_torchrun_is_refused_before_anything_is_written(unpaired_dirs, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(UserError, match="torchrun"):
        train_for(cyclegan_cfg(unpaired_dirs), tmp_path / "run", 60.0, progress=False)
    assert not (tmp_path / "run").exists()
