"""Hostile inputs and faults for translate and eval: one bad item never stops the rest, outputs never
replace inputs, two outputs never share a name, and nothing half-written appears under a final name."""

from __future__ import annotations

import errno
import pathlib
import warnings

import pytest
import torch
from PIL import Image

from hostile import (assert_no_partial_files, assert_refused, assert_some_failed, invoke, lines_starting, noise_image,
                     snapshot, tiny_model, umask)
from img2img.translate import images as images_mod
from img2img.translate.translator import Translator

GOOD = {"good1.png": (40, 28), "good2.jpg": (32, 32)}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory)


def _inputs(folder: pathlib.Path, extra: dict[str, tuple[int, int]] | None = None) -> pathlib.Path:
    for k, (name, (w, h)) in enumerate({**GOOD, **(extra or {})}.items()):
        noise_image(folder / name, w, h, seed=k)
    return folder


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (4, 4), (4, 40), (40, 3)])
def test_a_tiny_image_fails_alone_and_the_rest_are_written(tmp_path, model, size):
    inputs = _inputs(tmp_path / "in", {"tiny.png": size})
    before = snapshot(inputs)
    result = invoke(["translate", model, inputs, "-o", tmp_path / "out", "-q"])
    assert_some_failed(result, ["tiny.png"], tmp_path / "out", list(GOOD))
    assert "too small" in lines_starting(result, "failed:")[0]
    assert snapshot(inputs) == before
    for name in GOOD:
        assert Image.open(tmp_path / "out" / name).size == Image.open(inputs / name).size


def _failing_for_width(monkeypatch, width: int, exc: Exception):
    original = Translator.__call__

    def call(self, x):
        if x.shape[-1] == width:
            raise exc
        return original(self, x)

    monkeypatch.setattr(Translator, "__call__", call)


@pytest.mark.parametrize("exc,needle", [
    (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 99999999999 bytes"), "not enough memory"),
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"), "not enough memory"),
    (MemoryError(), "not enough memory"),
    (RuntimeError("Padding size should be less than the corresponding input dimension"), "cannot translate"),
    (ValueError("something odd in the generator"), "cannot translate"),
])
def test_a_failure_inside_the_generator_fails_that_image_only(tmp_path, model, monkeypatch, exc, needle):
    inputs = _inputs(tmp_path / "in", {"odd.png": (52, 36)})
    _failing_for_width(monkeypatch, 52, exc)
    result = invoke(["translate", model, inputs, "-o", tmp_path / "out", "-q"])
    assert_some_failed(result, ["odd.png"], tmp_path / "out", list(GOOD))
    assert needle in lines_starting(result, "failed:")[0]


def test_a_batch_too_large_for_memory_is_retried_one_image_at_a_time(tmp_path, model, monkeypatch):
    original = Translator.__call__

    def call(self, x):
        if x.shape[0] > 1:
            raise RuntimeError("CUDA out of memory.")
        return original(self, x)

    monkeypatch.setattr(Translator, "__call__", call)
    inputs = tmp_path / "in"
    for k in range(3):
        noise_image(inputs / f"same{k}.png", 32, 32, seed=k)
    result = invoke(["translate", model, inputs, "-o", tmp_path / "out", "--batch-size", "3", "-q"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["same0.png", "same1.png", "same2.png"]


@pytest.mark.parametrize("exc", [ZeroDivisionError("decoder bug"), KeyError("exif"), IndexError("palette"),
                                 OSError(errno.EIO, "Input/output error")])
def test_any_decoder_exception_fails_that_file_only(tmp_path, model, monkeypatch, exc):
    original = images_mod.load_image

    def load(path, channels=3):
        if pathlib.Path(path).name == "cursed.png":
            raise exc
        return original(path, channels)

    monkeypatch.setattr(images_mod, "load_image", load)
    inputs = _inputs(tmp_path / "in", {"cursed.png": (32, 32)})
    result = invoke(["translate", model, inputs, "-o", tmp_path / "out", "-q"])
    assert_some_failed(result, ["cursed.png"], tmp_path / "out", list(GOOD))


def test_an_unreadable_input_folder_is_reported_and_the_other_inputs_are_written(tmp_path, model, monkeypatch):
    inputs = _inputs(tmp_path / "in")
    locked = tmp_path / "locked"
    noise_image(locked / "secret.png", 32, 32)
    original = pathlib.Path.iterdir

    def iterdir(self):  # chmod 000 does not stop root, so the refusal is simulated
        if self.name == "locked":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return original(self)

    monkeypatch.setattr(pathlib.Path, "iterdir", iterdir)
    result = invoke(["translate", model, inputs, locked, "-o", tmp_path / "out", "-q"])
    assert_some_failed(result, ["locked"], tmp_path / "out", list(GOOD))
    assert "Permission denied" in lines_starting(result, "failed:")[0]


def test_only_unreadable_input_folders_is_one_error(tmp_path, model, monkeypatch):
    locked = tmp_path / "locked"
    noise_image(locked / "secret.png", 32, 32)
    original = pathlib.Path.iterdir
    monkeypatch.setattr(pathlib.Path, "iterdir", lambda self: (_ for _ in ()).throw(PermissionError(errno.EACCES, "Permission denied"))
                        if self.name == "locked" else original(self))
    assert_refused(invoke(["translate", model, locked, "-o", tmp_path / "out", "-q"]), "locked", "Permission denied")


def _save_failing(monkeypatch, on_name: str, err: int):
    """PIL writes part of the file for `on_name`, then the write fails with errno `err`."""
    original = Image.Image.save

    def save(self, fp, format=None, **params):
        target = pathlib.Path(fp)
        if on_name in target.name:
            target.write_bytes(b"\x89PNG half")
            raise OSError(err, {errno.ENOSPC: "No space left on device"}.get(err, "File name too long"))
        return original(self, fp, format, **params)

    monkeypatch.setattr(Image.Image, "save", save)


def test_a_full_disk_stops_cleanly_keeping_complete_outputs(tmp_path, model, monkeypatch):
    inputs = _inputs(tmp_path / "in")
    _save_failing(monkeypatch, "good2", errno.ENOSPC)
    out = tmp_path / "out"
    result = invoke(["translate", model, inputs, "-o", out, "-q", "--batch-size", "1"])
    assert_refused(result, "No space left")
    assert [p.name for p in out.iterdir()] == ["good1.png"]
    assert_no_partial_files(out)


def test_an_output_that_cannot_be_written_fails_alone(tmp_path, model, monkeypatch):
    inputs = _inputs(tmp_path / "in")
    _save_failing(monkeypatch, "good2", errno.ENAMETOOLONG)
    result = invoke(["translate", model, inputs, "-o", tmp_path / "out", "-q"])
    assert_some_failed(result, ["good2.jpg"], tmp_path / "out", ["good1.png"])


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_outputs_get_the_mode_the_umask_asks_for(tmp_path, model, mask, mode):
    inputs = _inputs(tmp_path / "in")
    with umask(mask):
        result = invoke(["translate", model, inputs, "-o", tmp_path / "out", "-q"])
    assert result.exit_code == 0, result.output
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "out").iterdir()} == {mode}


@pytest.mark.parametrize("name", ["out.xyz", "result.txt", "picture.gif", "x.pdf"])
def test_an_output_with_an_unknown_extension_is_refused_not_made_a_folder(tmp_path, model, name):
    photo = noise_image(tmp_path / "photo.png", 32, 32)
    result = invoke(["translate", model, photo, "-o", tmp_path / name, "-q"])
    assert_refused(result, name, "not an image or video type")
    assert not (tmp_path / name).exists()


def test_a_folder_with_a_dot_in_its_name_is_allowed_with_a_trailing_slash(tmp_path, model):
    photo = noise_image(tmp_path / "photo.png", 32, 32)
    result = invoke(["translate", model, photo, "-o", f"{tmp_path / 'run.v2'}/", "-q"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run.v2" / "photo.png").is_file()


def test_to_all_refuses_colliding_output_names(tmp_path, tmp_path_factory):
    model = tiny_model(tmp_path_factory, "stargan_clash")  # domains b_c and c
    inputs = tmp_path / "in"
    noise_image(inputs / "a.png", 32, 32)  # a + _b_c -> a_b_c.png
    noise_image(inputs / "a_b.png", 32, 32, seed=1)  # a_b + _c -> a_b_c.png
    before = snapshot(inputs)
    result = invoke(["translate", model, inputs, "--to", "all", "-o", tmp_path / "out", "-q"])
    assert_refused(result, "a_b_c.png", "a.png", "a_b.png")
    assert not (tmp_path / "out").exists() and snapshot(inputs) == before


def test_to_all_without_a_collision_writes_one_output_per_domain(tmp_path, tmp_path_factory):
    model = tiny_model(tmp_path_factory, "stargan_clash")
    noise_image(tmp_path / "in" / "a.png", 32, 32)
    result = invoke(["translate", model, tmp_path / "in", "--to", "all", "-o", tmp_path / "out", "-q"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_b_c.png", "a_c.png"]


# ------------------------------------------------------------------- eval

def _test_folders(root: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    for k, name in enumerate(("x", "y")):
        noise_image(root / "A" / f"{name}.png", 32, 32, seed=k)
        noise_image(root / "B" / f"{name}.png", 32, 32, seed=10 + k)
    return root / "A", root / "B"


@pytest.mark.parametrize("which", ["a", "b", "a-sub"])
def test_eval_save_refuses_to_write_into_the_test_folders(tmp_path, model, which):
    a, b = _test_folders(tmp_path)
    target = {"a": a, "b": b, "a-sub": a / "." }[which]
    before = snapshot(a, b)
    result = invoke(["eval", model, "--a", a, "--b", b, "--paired", "--no-fid", "--save", target, "-q"])
    assert_refused(result, "test images")
    assert snapshot(a, b) == before


def test_eval_save_refuses_the_data_folder_of_pairs(tmp_path, model):
    data = tmp_path / "pairs"
    noise_image(data / "p.png", 64, 32)
    before = snapshot(data)
    assert_refused(invoke(["eval", model, "--data", data, "--no-fid", "--save", data, "-q"]), "test images")
    assert snapshot(data) == before


@pytest.mark.parametrize("target", ["image", "model"])
def test_eval_json_refuses_to_replace_an_input(tmp_path, model, target):
    a, b = _test_folders(tmp_path)
    own_model = tmp_path / "model.pt"
    own_model.write_bytes(model.read_bytes())
    json_path = a / "x.png" if target == "image" else own_model
    before = snapshot(a, b, own_model)
    result = invoke(["eval", own_model, "--a", a, "--b", b, "--paired", "--no-fid", "--json", json_path, "-q"])
    assert_refused(result, "refusing to write")
    assert snapshot(a, b, own_model) == before


@pytest.fixture(scope="module")
def feature_net(tmp_path_factory) -> pathlib.Path:
    """A random feature network as TorchScript, standing in for Inception (no download, fast)."""
    from img2img.metrics.features import random_features

    path = tmp_path_factory.mktemp("features") / "random_features.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(random_features().net), str(path))
    return path


def test_eval_save_refuses_two_inputs_with_one_name(tmp_path, model, feature_net):
    a, b = _test_folders(tmp_path)
    noise_image(a / "x.jpg", 32, 32, seed=5)  # x.png and x.jpg would both be saved as x.png
    result = invoke(["eval", model, "--a", a, "--b", b, "--unpaired", "--inception", feature_net,
                     "--save", tmp_path / "saved", "-q"])
    assert_refused(result, "x.png")
    assert not (tmp_path / "saved").exists()


def test_eval_json_refuses_to_replace_a_scored_image(tmp_path, feature_net):
    a, b = _test_folders(tmp_path)
    before = snapshot(a, b)
    result = invoke(["eval", "--real", a, "--fake", b, "--inception", feature_net, "--json", b / "y.png", "-q"])
    assert_refused(result, "refusing to write")
    assert snapshot(a, b) == before


def test_eval_paired_refuses_two_inputs_with_one_stem(tmp_path, model):
    a, b = _test_folders(tmp_path)
    noise_image(a / "x.jpg", 32, 32, seed=5)
    assert_refused(invoke(["eval", model, "--a", a, "--b", b, "--paired", "--no-fid", "-q"]), "x.png", "x.jpg")


def test_eval_outputs_are_complete_and_follow_the_umask(tmp_path, model):
    a, b = _test_folders(tmp_path)
    with umask(0o002), warnings.catch_warnings():
        result = invoke(["eval", model, "--a", a, "--b", b, "--paired", "--no-fid", "--save", tmp_path / "saved",
                         "--json", tmp_path / "scores.json", "-q"])
    assert result.exit_code == 0, result.output
    files = [*(tmp_path / "saved").iterdir(), tmp_path / "scores.json"]
    assert sorted(p.name for p in files) == ["scores.json", "x.png", "y.png"]
    assert {p.stat().st_mode & 0o777 for p in files} == {0o664}
    assert_no_partial_files(tmp_path / "saved", tmp_path / "scores.json")


def test_eval_turns_a_generator_failure_into_one_line(tmp_path, model, monkeypatch):
    a, b = _test_folders(tmp_path)
    monkeypatch.setattr(Translator, "__call__", lambda self, x: (_ for _ in ()).throw(RuntimeError("CUDA out of memory.")))
    result = invoke(["eval", model, "--a", a, "--b", b, "--paired", "--no-fid", "--save", tmp_path / "saved",
                     "--json", tmp_path / "s.json", "-q"])
    assert_refused(result, "out of memory", "--batch-size")
    assert not (tmp_path / "s.json").exists()
    assert_no_partial_files(tmp_path / "saved")


@pytest.mark.parametrize("folder,name", [("in[", "b]x.png"), ("in", "[red]colour.png"), ("in", "[link=x]a.png")])
def test_paths_that_look_like_markup_are_printed_as_they_are(tmp_path, model, folder, name):
    """'in[' + '/' + 'b]x.png' reads as a closing tag [/b] to rich: it must be printed, not parsed."""
    inputs = _inputs(tmp_path / folder)
    (inputs / name).write_bytes(b"not an image")
    result = invoke(["translate", model, inputs, "-o", tmp_path / "out [x]", "-q"])
    assert_some_failed(result, [f"{folder}/{name}"], tmp_path / "out [x]", list(GOOD))


def test_an_input_named_twice_is_translated_once(tmp_path, model):
    inputs = _inputs(tmp_path / "in")
    result = invoke(["translate", model, inputs, str(inputs / "*.png"), inputs / "good1.png", "-o", tmp_path / "out", "-q"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(GOOD)
