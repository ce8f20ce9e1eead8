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
from img2img.train import resume_config, train, train_for
from img2img.train.checkpoint import load_checkpoint
from img2img.train.timed import CALIBRATION_STEPS, UNPLANNED_STEPS, DeadlinePlanner, with_steps


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
    plans = [e for e in events(out) if e["event"] == "plan"]
    assert len(plans) >= 2 and plans[-1]["final"] and plans[-1]["total_steps"] == result.total_steps
    assert [e["event"] for e in events(out)].count("start") == 1  # one run, planned on the way
    # the last plan came before the decay started (half the run, the paper default)
    assert plans[-1]["step"] < 0.5 * result.total_steps


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


class ScriptedPlanner:
    """Plans given totals at given steps, as the deadline planner would from its clock."""

    def __init__(self, plans: dict[int, int]):
        self.plans = plans

    def begin(self, step, now):
        pass

    def update(self, step, now):
        return self.plans.get(step)


def test_re_planning_before_the_decay_ends_where_one_plan_would(unpaired_dirs, tmp_path):
    """A run planned on the way (a far total at first, then a first guess, then the final plan) ends with the
    weights of a run told the final total from the start: nothing before the decay depends on the total."""
    cfg = cyclegan_cfg(unpaired_dirs, **{"train.steps": 40})
    train(cfg, tmp_path / "one", progress=False)
    planned = tmp_path / "planned"
    result = train(with_steps(cfg, UNPLANNED_STEPS), planned, progress=False,
                   planner=ScriptedPlanner({CALIBRATION_STEPS: 44, 16: 40}))
    assert result.step == result.total_steps == 40
    assert json.loads((planned / "config.json").read_text())["train"]["steps"] == 40
    one, two = (load_checkpoint(d / "checkpoint.pt")["method"]["nets"] for d in (tmp_path / "one", planned))
    assert len(one) == 4  # two generators, two discriminators
    for net, weights in one.items():
        for key, value in weights.items():
            assert torch.equal(value, two[net][key]), (net, key)
    # and the run resumes as any other: its stored total is the plan
    assert train(resume_config(planned, {"train.steps": 45}), planned, resume=True, progress=False).step == 45


def test_a_re_plan_inside_the_decay_would_change_the_weights(unpaired_dirs, tmp_path):
    """The test above can fail: the same re-plan made after the decay started leaves other weights."""
    cfg = cyclegan_cfg(unpaired_dirs, **{"train.steps": 40})
    train(cfg, tmp_path / "one", progress=False)
    late = tmp_path / "late"
    train(with_steps(cfg, UNPLANNED_STEPS), late, progress=False, planner=ScriptedPlanner({CALIBRATION_STEPS: 60, 26: 40}))
    one, two = (load_checkpoint(d / "checkpoint.pt")["method"]["nets"] for d in (tmp_path / "one", late))
    assert any(not torch.equal(v, two[n][k]) for n, w in one.items() for k, v in w.items())


def test_the_planner_plans_from_recent_speed_and_keeps_its_plan_before_the_decay():
    planner = DeadlinePlanner(deadline=1000.0, budget_s=1000.0, lr_policy="linear", decay_start=0.5)
    planner.begin(0, 0.0)
    assert planner.update(9, 9.0) is None  # still timing
    assert planner.update(10, 10.0) == 10 + 990  # 1 step/s for the 990 s left
    assert planner.update(15, 14.0) is None  # every 20 s (2% of the budget) at most
    assert planner.update(90, 30.0) == 90 + 4 * 970  # the first stretch ran at 4 steps/s: the plan follows it
    assert planner.update(170, 50.0) == 170 + 4 * 950  # so did the second
    assert planner.update(210, 70.0) == 210 + 4 * 930  # one slow stretch (2 steps/s, another job) does not move it
    assert planner.update(250, 90.0) == 250 + 3 * 910  # a second one does: the median is half-way
    # the plan is kept once the next re-plan (20 s on, 80 steps later) could come after 90% of the decay's start
    planner.rates = [4.0]
    total, step, now = None, 250, 90.0
    while not planner.final:
        step, now = step + 80, now + 20.0
        total = planner.update(step, now)
    assert total is not None and step + 80 >= 0.9 * 0.5 * total and step < 0.5 * total
    assert planner.update(step + 80, now + 20.0) is None  # final
    constant = DeadlinePlanner(deadline=100.0, budget_s=100.0, lr_policy="constant", decay_start=0.5)
    constant.begin(0, 0.0)
    assert constant.update(10, 10.0) == 100 and not constant.final  # no decay: re-plans all the way


def test_minutes_under_torchrun_is_refused_before_anything_is_written(unpaired_dirs, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(UserError, match="torchrun"):
        train_for(cyclegan_cfg(unpaired_dirs), tmp_path / "run", 60.0, progress=False)
    assert not (tmp_path / "run").exists()
