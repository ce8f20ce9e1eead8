"""bench/budget.py end to end at tiny size: train to a budget, resume to extend it, score, tabulate.

A random conv net saved as TorchScript stands in for Inception (as in test_metrics.py): the numbers mean
nothing, but every stage runs as it does for a real measurement.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch

from img2img.data.synthetic import make_paired

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--size", "32", "--set", "net.ngf=8", "--set", "net.ndf=8", "--set", "net.generator=resnet_2", "--quiet",
        "--sample-every", "2", "--limit", "6"]


def load_budget():
    spec = importlib.util.spec_from_file_location("budget", ROOT / "bench" / "budget.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def budget():
    return load_budget()


@pytest.fixture(scope="module")
def h2z_like(unpaired_dirs, tmp_path_factory) -> Path:
    """horse2zebra's layout (trainA, trainB, testA, testB) from the synthetic unpaired folders."""
    root = tmp_path_factory.mktemp("h2z") / "tiny_h2z"
    for split in ("train", "test"):
        for d, side in zip(unpaired_dirs, "AB"):
            shutil.copytree(d, root / f"{split}{side}")
    return root


def test_steps_budget_trains_scores_extends_and_tabulates(budget, h2z_like, random_net_file, tmp_path, capsys):
    common = ["--dataset", str(h2z_like), "--root", str(tmp_path), "--inception", str(random_net_file), *TINY]
    budget.main(["run", "--method", "cut", "--steps", "3", "--name", "cut", *common])
    run = tmp_path / "cut"
    rec = json.loads((run / "record.json").read_text())
    assert rec["steps"] == 3 and rec["method"] == "cut" and rec["image_size"] == 32 and rec["budget"] == {"steps": 3}
    assert rec["scores"]["images"] == 6 and rec["scores"]["fid"] > 0 and "kid" in rec["scores"]
    assert "budget.py run" in rec["command"] and "--steps 3" in rec["command"]
    assert (run / "grid.png").is_file()
    first_fid = rec["scores"]["fid"]
    # A larger budget resumes the same run and extends it.
    budget.main(["run", "--method", "cut", "--steps", "5", "--name", "cut", *common])
    rec = json.loads((run / "record.json").read_text())
    assert rec["steps"] == 5 and rec["planned_steps"] == 5
    log = [json.loads(l) for l in (run / "log.jsonl").read_text().splitlines()]
    assert [r["event"] for r in log if r.get("event") in ("start", "resume")] == ["start", "resume"]
    assert rec["scores"]["fid"] != first_fid  # re-scored after the extra steps
    # The untranslated baseline and the table.
    budget.main(["baseline", *common[:-len(TINY)], "--size", "32", "--limit", "6"])
    capsys.readouterr()
    budget.main(["table", str(tmp_path), "-o", str(tmp_path / "table.md")])
    text = capsys.readouterr().out
    rows = [l for l in text.splitlines() if l.startswith("| ") and not l.startswith("| run")]
    assert len(rows) == 2 and any("identity" in r for r in rows)
    cut_row = next(r for r in rows if r.startswith("| cut |"))
    assert "ngf=8" in cut_row and "| 5 |" in cut_row and "--steps 5" in cut_row  # settings, steps, the command
    assert (tmp_path / "table.md").read_text().strip() == text.strip()


def test_minutes_budget_measures_speed_then_fits_the_run_to_the_clock(budget, h2z_like, random_net_file, tmp_path):
    budget.main(["run", "--method", "cyclegan", "--minutes", "0.1", "--name", "cg", "--dataset", str(h2z_like),
                 "--root", str(tmp_path), "--inception", str(random_net_file), *TINY])
    rec = json.loads((tmp_path / "cg" / "record.json").read_text())
    assert rec["budget"] == {"minutes": 0.1}
    assert rec["steps"] > 10  # past the 10 calibration steps
    assert rec["train_seconds"] <= 6 + 3  # the clock stops it near the budget (one step's overrun allowed)
    assert rec["stopped_by_clock"] or rec["steps"] == rec["planned_steps"]


def test_paired_dataset_scores_pixels_too(budget, tmp_path, random_net_file):
    root = tmp_path / "facades"
    make_paired(root / "train", count=4, size=32)
    make_paired(root / "test", count=4, size=32, seed=1)
    budget.main(["run", "--method", "pix2pix", "--steps", "2", "--dataset", str(root), "--root", str(tmp_path / "runs"),
                 "--inception", str(random_net_file), "--size", "32", "--set", "net.ngf=8", "--set", "net.ndf=8", "--quiet"])
    rec = json.loads(next((tmp_path / "runs").glob("*/record.json")).read_text())
    assert {"l1", "psnr", "ssim", "fid"} <= rec["scores"].keys()
    assert json.loads((tmp_path / "runs" / rec["name"] / "config.json").read_text())["data"]["direction"] == "b2a"  # facades: labels -> photo


def test_bad_requests_are_one_line_errors(budget, tmp_path, h2z_like, capsys):
    with pytest.raises(SystemExit) as exc:
        budget.main(["run", "--method", "pix2pix", "--steps", "2", "--dataset", str(h2z_like), "--root", str(tmp_path)])
    assert exc.value.code == 2 and "pix2pix trains on paired data" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        budget.main(["run", "--method", "cut", "--steps", "2", "--dataset", str(tmp_path), "--root", str(tmp_path)])
    assert exc.value.code == 2 and "expected trainA/" in capsys.readouterr().err


def test_a_recipe_is_applied_and_recorded(budget, h2z_like, random_net_file, tmp_path, capsys):
    common = ["--dataset", str(h2z_like), "--root", str(tmp_path), "--inception", str(random_net_file), *TINY]
    budget.main(["run", "--method", "cyclegan", "--recipe", "quick", "--steps", "2", "--name", "q", *common])
    stored = json.loads((tmp_path / "q" / "config.json").read_text())
    assert stored["train"]["recipe"] == "quick" and stored["net"]["input_skip"] and stored["train"]["ema"] == 0.999
    assert stored["net"]["ngf"] == 8  # the recipe sits under what the command sets
    assert json.loads((tmp_path / "q" / "record.json").read_text())["settings"]["train.recipe"] == "quick"
    with pytest.raises(SystemExit) as exc:
        budget.main(["run", "--method", "cut", "--recipe", "quick", "--steps", "2", "--name", "c", *common])
    assert exc.value.code == 2 and "recipe 'quick' is for cyclegan, not cut" in capsys.readouterr().err


def test_summary_groups_seeds_of_one_setting_however_it_was_spelled(budget):
    def rec(name, seed, fid, settings, method="cyclegan", **extra):
        return {"name": name, "method": method, "dataset": "/x/horse2zebra", "image_size": 64, "seed": seed,
                "settings": settings, "scores": {"fid": fid, "kid": 0.1}, "steps": 100, "train_seconds": 60.0,
                "budget": {"minutes": 1.0}, "command": "", **extra}

    spelled_out = {"net.generator": "resnet_6", "net.ngf": "16", "net.ndf": "32", "net.input_skip": "true",
                   "train.ema": "0.999", "loss.lambda_idt": "0"}
    records = [rec("q0", 0, 204.0, spelled_out), rec("q1", 1, 200.0, {"train.recipe": "quick"}),
               rec("q-attn", 0, 201.0, {"train.recipe": "quick", "net.attention_res": "16"}),
               rec("paper", 0, 280.0, {}), rec("b2a", 0, 203.0, {"train.recipe": "quick"}, direction="b2a"),
               rec("none", None, 208.0, {}, method="identity"),
               rec("q2-short", 2, 230.0, {"train.recipe": "quick"}, train_seconds=40.0)]  # 40 of its 60 s
    text = budget.summary(records)
    assert text.splitlines()[-1] == "Left out, trained for under 80% of their budget: q2-short (0.7 of 1 min, FID 230.0)"
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()[2:] if line.startswith("|")]
    rows = {(c[0], c[3]): c for c in cells}
    assert len(rows) == len(cells) == 5
    # data, px, method, settings, seeds, FID per seed, mean FID, vs untranslated
    assert rows["horse2zebra a2b", "recipe quick"][4:8] == ["0, 1", "204.0 / 200.0", "202.0", "-6.0"]
    assert rows["horse2zebra a2b", "recipe quick + attention_res=16"][6:8] == ["201.0", "-7.0"]
    assert rows["horse2zebra a2b", "paper defaults"][6:8] == ["280.0", "+72.0"]
    assert rows["horse2zebra b2a", "recipe quick"][6:8] == ["203.0", "-"]  # its own test set, no baseline for it here


def _record(name, seed, fid, settings, dataset="/data/horse2zebra", method="cyclegan", seconds=900.0):
    return {"name": name, "method": method, "dataset": dataset, "image_size": 64, "seed": seed, "settings": settings,
            "scores": {"fid": fid, "kid": 0.1}, "steps": 100, "train_seconds": seconds, "budget": {"minutes": 15.0},
            "command": ""}


def test_grid_file_expands_seeds_and_variables_and_refuses_what_the_grid_sets(budget, tmp_path):
    spec = tmp_path / "grid.txt"
    spec.write_text("# comment\nlet SMALL --set net.ngf=16 --set net.ndf=32\n"
                    "small  --dataset d/horse2zebra --method cyclegan $SMALL   # two seeds\n"
                    "one    --dataset d/horse2zebra --method cut $SMALL --seed 7\n")
    rows = budget.read_grid(spec, [0, 1])
    assert [n for n, _ in rows] == ["small-s0", "small-s1", "one"]
    assert rows[1][1] == ["--dataset", "d/horse2zebra", "--method", "cyclegan", "--set", "net.ngf=16", "--set", "net.ndf=32",
                          "--seed", "1"]
    for bad, message in [("x --dataset d --method cut --minutes 3\n", "--minutes come from the grid command"),
                         ("x --dataset d --method cut $NOPE\n", "undefined variable"),
                         ("x --dataset d --method cut\nx --dataset e --method cut\n", "run names used twice: x-s0")]:
        spec.write_text(bad)
        with pytest.raises(budget.UserError, match=message):
            budget.read_grid(spec, [0])


def test_grid_matches_runs_by_settings_not_names_and_runs_only_the_missing(budget, h2z_like, random_net_file, tmp_path,
                                                                            capsys):
    have = tmp_path / "results"
    have.mkdir()
    # Measured under other names: seed 0 spelled as a recipe's settings, seed 1 by the recipe's name.
    spelled_out = {"net.generator": "resnet_6", "net.ngf": "16", "net.ndf": "32", "net.input_skip": "true",
                   "train.ema": "0.999", "loss.lambda_idt": "0"}
    (have / "a.json").write_text(json.dumps(_record("old-name", 0, 204.0, spelled_out)))
    (have / "b.json").write_text(json.dumps(_record("other", 1, 200.0, {"train.recipe": "quick"})))
    (have / "short.json").write_text(json.dumps(_record("short", 0, 250.0, {}, seconds=300.0)))  # 5 of 15 min
    (have / "not-a-record.json").write_text(json.dumps({"hello": 1}))
    spec = tmp_path / "grid.txt"
    spec.write_text(f"quick --dataset {h2z_like.parent}/horse2zebra --method cyclegan --recipe quick\n"
                    f"paper --dataset {h2z_like.parent}/horse2zebra --method cyclegan\n")
    budget.main(["grid", str(spec), "--have", str(have)])
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["measured", "quick-s0"] and "(old-name)" in out[0]
    assert out[1].split()[:2] == ["measured", "quick-s1"] and "(other)" in out[1]
    assert out[2:] == ["missing   paper-s0", "missing   paper-s1", "2 of 4 runs measured, 2 missing"]

    # --run trains and scores exactly the missing rows (tiny settings, a budget of seconds), each in its own process.
    spec.write_text(f"tiny --dataset {h2z_like} --method cut --inception {random_net_file} " + " ".join(TINY[:-5]) + " --limit 6\n")
    root = tmp_path / "runs"
    with pytest.raises(SystemExit):
        budget.main(["grid", str(spec), "--seeds", "3", "4", "--run", "--only", "tiny-s9", "--root", str(root)])
    assert "error: --only tiny-s9: no run of" in capsys.readouterr().err and not root.exists()
    budget.main(["grid", str(spec), "--seeds", "3", "4", "--run", "--only", "*-s3", "--minutes", "0.05", "--root", str(root),
                 "--have", str(root)])
    rec = json.loads((root / "tiny-s3" / "record.json").read_text())
    assert rec["seed"] == 3 and rec["budget"] == {"minutes": 0.05} and rec["steps"] > 0 and rec["scores"]["images"] == 6
    assert "done  tiny-s3" in capsys.readouterr().out
    assert not (root / "tiny-s4").exists()  # left out by --only
    budget.main(["grid", str(spec), "--seeds", "3", "4", "--have", str(root)])  # s3 now found among the run folders
    assert capsys.readouterr().out.splitlines()[-2:] == ["missing   tiny-s4", "1 of 2 runs measured, 1 missing"]
