"""Bad input, unsafe files and interruptions, driven through the CLI as a user would meet them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from badfiles import write_awkward_good_files, write_bad_files
from conftest import TINY_FLAGS
from img2img.data.synthetic import make_unpaired


def _no_traceback(result) -> None:
    assert "Traceback" not in result.output


@pytest.fixture
def messy_unpaired(tmp_path) -> tuple[Path, Path, list[str]]:
    a, b = make_unpaired(tmp_path / "data", count=3, size=32)
    bad = write_bad_files(a)
    write_awkward_good_files(b)
    return a, b, bad


def test_bad_images_are_skipped_with_one_warning_each_and_a_count(cli, tmp_path, messy_unpaired):
    a, b, bad = messy_unpaired
    result = cli(["train", "cyclegan", "--a", a, "--b", b, "--steps", "2", "--out", tmp_path / "run", *TINY_FLAGS])
    assert result.exit_code == 0, result.output
    _no_traceback(result)
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: skipping")]
    assert len(warnings) == len(bad)
    for name in bad:
        assert sum(name in line for line in warnings) == 1
    assert f"skipped {len(bad)} unreadable image(s)" in result.output
    assert (tmp_path / "run" / "model.pt").is_file()


def test_folder_with_only_bad_images_stops_with_one_clear_line(cli, tmp_path):
    a = tmp_path / "A"
    write_bad_files(a)
    _, b = make_unpaired(tmp_path / "ok", count=2, size=32)
    result = cli(["train", "cyclegan", "--a", a, "--b", b, "--steps", "2", "--out", tmp_path / "run", *TINY_FLAGS])
    assert result.exit_code == 2
    _no_traceback(result)
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "none of its" in errors[0] and "can be read" in errors[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("case", ["missing", "empty", "no-images", "a-file"])
def test_unusable_folders_give_one_line_and_nonzero_exit(cli, tmp_path, case):
    folder = tmp_path / "A"
    if case == "empty":
        folder.mkdir()
    elif case == "no-images":
        folder.mkdir()
        (folder / "readme.txt").write_text("no pictures here")
    elif case == "a-file":
        folder.write_text("just a file")
    _, b = make_unpaired(tmp_path / "ok", count=2, size=32)
    result = cli(["train", "cyclegan", "--a", folder, "--b", b, "--steps", "2", "--out", tmp_path / "run", *TINY_FLAGS])
    assert result.exit_code == 2
    _no_traceback(result)
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(folder) in errors[0]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from typer.testing import CliRunner

    from img2img.cli import app

    root = tmp_path_factory.mktemp("model")
    a, b = make_unpaired(root / "data", count=2, size=32)
    result = CliRunner().invoke(app, ["train", "cyclegan", "--a", str(a), "--b", str(b), "--steps", "1",
                                      "--out", str(root / "run"), *TINY_FLAGS])
    assert result.exit_code == 0, result.output
    return root / "run" / "model.pt"


def test_translate_skips_a_corrupt_input_converts_the_rest_and_says_so(cli, tmp_path, tiny_model):
    inputs = tmp_path / "in"
    bad = write_bad_files(inputs)
    good = write_awkward_good_files(inputs)
    result = cli(["translate", tiny_model, inputs, "-o", tmp_path / "out", "-q"])
    assert result.exit_code == 1
    _no_traceback(result)
    assert sum(line.startswith("failed:") for line in result.output.splitlines()) == len(bad)
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(good)
    for name in good:
        assert Image.open(tmp_path / "out" / name).size == Image.open(inputs / name).size


def test_translate_never_writes_over_an_input(cli, tmp_path, tiny_model):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (10, 200, 30)).save(photo)
    before = photo.read_bytes()
    for target in (photo, tmp_path):
        result = cli(["translate", tiny_model, photo, "-o", target, "--overwrite", "-q"])
        assert result.exit_code == 2, result.output
        assert "refusing to write over the input" in result.output
        _no_traceback(result)
    assert photo.read_bytes() == before


def test_translate_to_an_unwritable_location_is_a_clear_error(cli, tmp_path, tiny_model):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (40, 30)).save(photo)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = cli(["translate", tiny_model, photo, "-o", blocker / "sub" / "out.png", "-q"])
    assert result.exit_code == 2
    _no_traceback(result)
    assert "cannot create the output folder" in result.output


class _RunsCode:
    """Unpickling this would create a marker file: loading must refuse it first."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.mark.parametrize("case", ["text", "truncated", "newer-version", "code", "checkpoint"])
def test_bad_model_files_are_refused_with_a_clear_message(cli, tmp_path, tiny_model, case):
    target = tmp_path / "model.pt"
    marker = tmp_path / "pwned"
    if case == "text":
        target.write_text("hello, I am not a model")
    elif case == "truncated":
        data = tiny_model.read_bytes()
        target.write_bytes(data[: len(data) // 2])
    elif case == "newer-version":
        payload = torch.load(tiny_model, weights_only=True)
        payload["format_version"] = 999
        torch.save(payload, target)
    elif case == "code":
        torch.save({"format_version": 1, "generators": {}, "evil": _RunsCode(str(marker))}, target)
    elif case == "checkpoint":
        shutil.copy(tiny_model.parent / "checkpoint.pt", target)
    photo = tmp_path / "photo.png"
    Image.new("RGB", (40, 30)).save(photo)
    for args in (["info", target], ["translate", target, photo, "-o", tmp_path / "out", "-q"]):
        result = cli(args)
        assert result.exit_code == 2, result.output
        _no_traceback(result)
        assert result.output.strip().startswith("error:") and len(result.output.strip().splitlines()) <= 2
    assert not marker.exists(), "loading the model file ran code"
    expected = {"text": "not a readable model file", "truncated": "not a readable model file",
                "newer-version": "newer than this img2img", "code": "could run code", "checkpoint": "not an img2img model file"}
    assert expected[case] in " ".join(result.output.split())


# The general settings errors are covered for pix2pix in test_cli_train; these go through a
# method option's own parsing (CycleGAN's --lambda-cyc) and an unknown flag.
@pytest.mark.parametrize("args,message", [
    (["--steps", "2", "--lambda-cyc", "ten"], "must be a number"),
    (["--steps", "2", "--no-such-flag"], "unknown option --no-such-flag"),
])
def test_bad_flags_are_clear_errors(cli, tmp_path, unpaired_dirs, args, message):
    a, b = unpaired_dirs
    result = cli(["train", "cyclegan", "--a", a, "--b", b, "--out", tmp_path / "run", *args, *TINY_FLAGS])
    assert result.exit_code == 2
    _no_traceback(result)
    assert message in result.output


@pytest.mark.parametrize("content,message", [
    ("[train]\nlr = 'fast'\n", "must be a number"),
    ("[train]\nno_such = 1\n", "unknown setting"),
    ("[nonsense]\nx = 1\n", "unknown setting"),
    ("lr = 0.1\n", "must be a table"),
    ("[train\n", "not valid TOML"),
])
def test_bad_config_files_are_clear_errors(cli, tmp_path, unpaired_dirs, content, message):
    a, b = unpaired_dirs
    config = tmp_path / "bad.toml"
    config.write_text(content)
    result = cli(["train", "cyclegan", "--a", a, "--b", b, "--config", config, "--steps", "1", "--out", tmp_path / "run", *TINY_FLAGS])
    assert result.exit_code == 2
    _no_traceback(result)
    assert message in result.output


def test_nan_loss_stops_the_run_naming_the_loss_and_keeps_the_last_good_checkpoint(cli, tmp_path, unpaired_dirs, monkeypatch):
    from img2img.methods.cyclegan import CycleGAN

    original = CycleGAN.train_step

    def poisoned(self, batch, step):
        losses = original(self, batch, step)
        if step >= 3:
            losses["cycle"] = torch.tensor(float("nan"))
        return losses

    monkeypatch.setattr(CycleGAN, "train_step", poisoned)
    a, b = unpaired_dirs
    run = tmp_path / "run"
    result = cli(["train", "cyclegan", "--a", a, "--b", b, "--steps", "8", "--save-every", "2", "--out", run, *TINY_FLAGS])
    assert result.exit_code == 2
    _no_traceback(result)
    assert "loss cycle became nan at step 4" in result.output
    assert torch.load(run / "checkpoint.pt", weights_only=True)["step"] == 2


# ---------------------------------------------------------------- interruptions (real processes)

STEPS = 30
# One thread per training process: the test machine has 2 cores and these runs are tiny.
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, env=SUBPROCESS_ENV, timeout=300, **kwargs)


def _train_cmd(a: Path, b: Path, out: Path, steps: int = STEPS) -> list[str]:
    return [sys.executable, "-m", "img2img", "train", "pix2pix", "--a", str(a), "--b", str(b), "--steps", str(steps),
            "--save-every", "3", "--out", str(out), *TINY_FLAGS]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    flat = {f"{net}.{k}": v for net, sd in ckpt["method"]["nets"].items() for k, v in sd.items()}
    flat.update({f"model.{k}": v for k, v in torch.load(run / "model.pt", weights_only=True)["generators"]["G"]["state_dict"].items()})
    return flat


def _logged_step(run: Path) -> int:
    try:
        lines = (run / "log.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    steps = [json.loads(line).get("step", 0) for line in lines if line.endswith("}")]
    return max(steps, default=0)


@pytest.fixture(scope="module")
def paired_folders(tmp_path_factory) -> tuple[Path, Path]:
    """Pairs by stem: B is A mirrored, so the task is learnable and the pair alignment matters."""
    root = tmp_path_factory.mktemp("pairs")
    a, _ = make_unpaired(root, count=4, size=32)
    b = root / "B_paired"
    b.mkdir()
    for p in sorted(a.iterdir()):
        Image.open(p).transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(b / p.name)
    return a, b


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, paired_folders) -> Path:
    out = tmp_path_factory.mktemp("reference") / "run"
    _run(_train_cmd(*paired_folders, out), check=True)
    return out


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_interrupted_training_resumes_to_a_bit_identical_result(tmp_path, paired_folders, reference_run, how):
    out = tmp_path / "run"
    proc = subprocess.Popen(_train_cmd(*paired_folders, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=SUBPROCESS_ENV)
    deadline = time.time() + 120
    while _logged_step(out) < 4 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    assert proc.poll() is None, "training finished before it could be interrupted"
    proc.send_signal(how)
    _, err = proc.communicate(timeout=120)
    if how == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130, err.decode()
        assert b"checkpoint saved" in err and b"Traceback" not in err
    stopped_at = torch.load(out / "checkpoint.pt", weights_only=True)["step"]
    assert 0 < stopped_at < STEPS
    resumed = _run([*_train_cmd(*paired_folders, out), "--resume"])
    assert resumed.returncode == 0, resumed.stderr.decode()
    got, want = _weights(out), _weights(reference_run)
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want), "resumed run differs from the uninterrupted one"


def test_leftover_temporary_files_from_a_killed_save_do_not_matter(tmp_path, paired_folders, reference_run):
    out = tmp_path / "run"
    _run([*_train_cmd(*paired_folders, out), "--stop-after", "6"], check=True)
    (out / ".checkpoint.pt.abc123.tmp").write_bytes(b"half a checkpoint")
    _run([*_train_cmd(*paired_folders, out), "--resume"], check=True)
    got, want = _weights(out), _weights(reference_run)
    assert all(torch.equal(got[k], want[k]) for k in want)
