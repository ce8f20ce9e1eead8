"""`img2img train ...` through the CLI: the run directory it writes and the mistakes it refuses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from conftest import TINY_FLAGS


def data_flags(method: str, paired_dir: Path, unpaired_dirs: tuple[Path, Path]) -> list:
    return ["--data", paired_dir] if method == "pix2pix" else ["--a", unpaired_dirs[0], "--b", unpaired_dirs[1]]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, paired_dir, unpaired_dirs):
    """One 4-step CLI run per method, shared by the tests that only read its outputs."""
    from typer.testing import CliRunner

    from img2img.cli import app

    base = tmp_path_factory.mktemp("cli_runs")
    runs = {}
    for method in ("pix2pix", "cyclegan"):
        out = base / method
        args = ["train", method, *data_flags(method, paired_dir, unpaired_dirs), "--steps", "4", "--out", out, *TINY_FLAGS]
        result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
        runs[method] = (out, result)
    return runs


@pytest.mark.parametrize("method", ["pix2pix", "cyclegan"])
def test_train_writes_the_run_directory(trained, method):
    out, result = trained[method]
    assert result.exit_code == 0, result.output
    assert (out / "model.pt").is_file() and (out / "checkpoint.pt").is_file()
    lines = (out / "log.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is valid JSON
    steps = [r["step"] for r in records if "event" not in r]
    assert steps == [1, 2, 3, 4]  # --log-every 1
    assert records[0]["event"] == "start" and records[-1]["event"] == "done"
    assert all(isinstance(r["lr"], float) for r in records if "event" not in r)
    grids = sorted((out / "samples").glob("*.jpg"))
    assert [g.name for g in grids] == ["step_0000004.jpg"]
    with Image.open(grids[0]) as grid:
        assert grid.width > 2 * 32 and grid.height >= 32  # columns of 32 px views
    config = json.loads((out / "config.json").read_text())
    assert config["method"] == method and config["train"]["steps"] == 4 and config["net"]["ngf"] == 8


def test_second_train_into_same_out_is_refused(cli, trained, paired_dir, unpaired_dirs):
    out, _ = trained["pix2pix"]
    before = (out / "model.pt").read_bytes()
    result = cli(["train", "pix2pix", "--data", paired_dir, "--steps", "4", "--out", out, *TINY_FLAGS])
    assert result.exit_code == 2
    assert "--resume" in result.output and "Traceback" not in result.output
    assert (out / "model.pt").read_bytes() == before


@pytest.mark.parametrize("bad,message", [
    (["--steps", "4", "--epochs", "2"], "--steps or --epochs"),
    (["--steps", "4", "--set", "train.no_such_key=1"], "unknown setting"),
    (["--steps", "4", "--set", "nosection.lr=1"], "unknown setting"),
    (["--steps", "4", "--set", "train.lr=fast"], "must be a number"),
    (["--steps", "4", "--set", "train.gan_loss=wasserstein"], "must be one of"),
    (["--steps", "4", "--lambda-foo", "3"], "unknown option --lambda-foo"),
    (["--steps", "4", "--lambda-cyc", "3"], "unknown option --lambda-cyc"),  # a CycleGAN option, not pix2pix's
    (["--steps", "4", "--generator", "vgg_16"], "unknown generator"),
    (["--steps", "4", "--image-size", "8"], "image size"),
])
def test_bad_train_arguments_are_refused(cli, paired_dir, tmp_path, bad, message):
    out = tmp_path / "run"
    result = cli(["train", "pix2pix", "--data", paired_dir, "--out", out, *TINY_FLAGS, *bad])
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    assert not (out / "checkpoint.pt").exists()


def test_resume_needs_out(cli, paired_dir):
    result = cli(["train", "pix2pix", "--data", paired_dir, "--steps", "4", "--resume", *TINY_FLAGS])
    assert result.exit_code == 2 and "--resume needs --out" in result.output


def test_method_options_are_accepted(cli, unpaired_dirs, tmp_path):
    out = tmp_path / "run"
    a, b = unpaired_dirs
    result = cli(["train", "cyclegan", "--a", a, "--b", b, "--steps", "1", "--out", out, *TINY_FLAGS,
                  "--lambda-cyc", "5", "--pool-size", "0", "--set", "train.lr_policy=constant"])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["loss"]["lambda_cyc"] == 5.0 and config["loss"]["pool_size"] == 0
    assert config["train"]["lr_policy"] == "constant"


def test_missing_data_is_a_clear_error(cli, tmp_path):
    result = cli(["train", "cyclegan", "--a", tmp_path / "nope", "--b", tmp_path / "nope2", "--steps", "1", "--out", tmp_path / "r", *TINY_FLAGS])
    assert result.exit_code == 2 and "not found" in result.output
    result = cli(["train", "pix2pix", "--steps", "1", "--out", tmp_path / "r", *TINY_FLAGS])
    assert result.exit_code == 2 and "--data" in result.output


def test_train_cyclegan_help_mentions_its_options(cli):
    result = cli(["train", "cyclegan", "--help"])
    assert result.exit_code == 0
    assert "--lambda-cyc" in result.output and "--pool-size" in result.output
    assert "--steps" in result.output and "--resume" in result.output


def test_train_lists_every_method(cli):
    from img2img.methods import METHODS

    result = cli(["train", "--help"])
    assert result.exit_code == 0
    assert all(name in result.output for name in METHODS)


def test_python_dash_m_help():
    proc = subprocess.run([sys.executable, "-m", "img2img", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for command in ("train", "translate", "info"):
        assert command in proc.stdout


def test_a_missing_gpu_is_refused_before_the_run_is_announced(cli, unpaired_dirs, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    a, b = unpaired_dirs
    result = cli(["train", "cyclegan", "--a", a, "--b", b, "--device", "cuda", "--out", tmp_path / "run", "-q"])
    assert result.exit_code == 2
    assert "no CUDA GPU" in result.output and "new run" not in result.output, result.output
    assert not (tmp_path / "run").exists()
