"""Hostile settings: every number out of range, nan/inf, nets that cannot fit the images, bad flags of
translate/eval/export. Each must be one error line and exit 2, before anything is written."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from conftest import TINY_FLAGS
from hostile import assert_refused, invoke, noise_image, snapshot, tiny_model
from img2img import config as config_mod
from img2img.methods import METHODS


def _numeric_fields():
    """(method, key, field) for every int/float setting, the loss sections of every method included."""
    sections = {"data": config_mod.DataConfig, "net": config_mod.NetConfig, "train": config_mod.TrainConfig}
    out = []
    for section, cls in sections.items():
        hints = typing.get_type_hints(cls)
        out += [("pix2pix", f"{section}.{f.name}", f, hints[f.name]) for f in dataclasses.fields(cls)]
    for name, method in METHODS.items():
        hints = typing.get_type_hints(method.LossConfig)
        out += [(name, f"loss.{f.name}", f, hints[f.name]) for f in dataclasses.fields(method.LossConfig)]
    return [(m, key, f, tp) for m, key, f, tp in out if tp in (int, float) and not f.metadata.get("choices")]


NUMERIC = _numeric_fields()


@pytest.mark.parametrize("method,key,field,tp", NUMERIC, ids=[f"{m}-{k}" for m, k, _, _ in NUMERIC])
def test_every_numeric_setting_has_a_range(method, key, field, tp):
    assert field.metadata.get("bounds"), f"{key} ({method}) has no range: give option(...) ge/gt/le/lt"


def _outside(bounds: dict, tp: type) -> list:
    """Values just outside each bound."""
    step = 1 if tp is int else 0.5
    values = []
    if "ge" in bounds:
        values.append(bounds["ge"] - step)
    if "gt" in bounds:
        values.append(bounds["gt"])
    if "le" in bounds:
        values.append(bounds["le"] + step if tp is float else int(bounds["le"]) + 1)
    if "lt" in bounds:
        values.append(bounds["lt"])
    return [int(v) if tp is int else float(v) for v in values]


CASES = [(m, key, v) for m, key, f, tp in NUMERIC for v in _outside(f.metadata.get("bounds", {}), tp)]


@pytest.mark.parametrize("method,key,value", CASES, ids=[f"{m}-{k}={v}" for m, k, v in CASES])
def test_out_of_range_settings_are_refused_by_name(tmp_path, method, key, value):
    out = tmp_path / "run"
    data = ["--a", tmp_path, "--b", tmp_path] if METHODS[method].dataset_kind == "unpaired" else ["--data", tmp_path]
    result = invoke(["train", method, *data, "--steps", "1", "--set", f"{key}={value}", "--out", out, *TINY_FLAGS])
    assert_refused(result, key)
    assert not out.exists()


@pytest.mark.parametrize("args,needle", [
    (["--log-every", "0"], "train.log_every"),
    (["--set", "train.beta1=1.5"], "train.beta1"),
    (["--lr", "nan"], "finite"),
    (["--set", "train.lr=inf"], "finite"),
    (["--set", "train.gp_weight=-inf"], "finite"),
    (["--ngf", "0"], "net.ngf"),
    (["--ndf", "1000000"], "net.ndf"),
    (["--set", "net.d_layers=9"], "d_layers=9"),
    (["--image-size", "30"], "does not fit"),
    (["--generator", "unet_256"], "does not fit the unet_256"),
    (["--generator", "resnet_100000"], "deeper than img2img builds"),
    (["--generator", "unet_12"], "unknown generator"),
    (["--steps", "99999999999999"], "train.steps"),
    (["--seed", "-1"], "train.seed"),
    (["--workers", "-5"], "train.workers"),
    (["--batch-size", "0"], "train.batch_size"),
    (["--ema", "1"], "train.ema"),
    (["--set", "data.load_size=16"], "--load-size"),
    (["--lambda-cyc", "-1"], "loss.lambda_cyc"),
    (["--lambda-cyc", "nan"], "finite"),
    (["--pool-size", "-2"], "loss.pool_size"),
])
def test_bad_training_flags_give_one_line_before_anything_is_written(tmp_path, unpaired_dirs, args, needle):
    a, b = unpaired_dirs
    out = tmp_path / "run"
    before = snapshot(a, b)
    result = invoke(["train", "cyclegan", "--a", a, "--b", b, "--steps", "2", "--out", out, *TINY_FLAGS, *args])
    assert_refused(result, needle)
    assert not out.exists()
    assert snapshot(a, b) == before


@pytest.mark.parametrize("content,needle", [
    ("[train]\nlr = nan\n", "finite"),
    ("[train]\nlr = inf\n", "finite"),
    ("[net]\ninit_gain = -3\n", "net.init_gain"),
    ("[train]\nbeta2 = 1.0\n", "train.beta2"),
    ("[train]\nsave_every = 2.5\n", "whole number"),
    ("[net]\nd_layers = 12\n", "net.d_layers"),
])
def test_bad_values_in_a_config_file_are_refused(tmp_path, unpaired_dirs, content, needle):
    a, b = unpaired_dirs
    config = tmp_path / "bad.toml"
    config.write_text(content)
    before = snapshot(config)
    out = tmp_path / "run"
    result = invoke(["train", "cyclegan", "--a", a, "--b", b, "--config", config, "--steps", "1", "--out", out, *TINY_FLAGS])
    assert_refused(result, needle)
    assert not out.exists() and snapshot(config) == before


def test_stargan_sizes_its_own_discriminator_so_small_images_are_not_refused(tmp_path):
    """The paper D and global_d replace net.d_layers, so 16 px images must pass the PatchGAN-depth check;
    the shared PatchGAN at its fixed depth is still refused."""
    from img2img.methods.stargan import StarGAN

    cfg = config_mod.build_config(StarGAN, None, {"data.image_size": 16, "data.data": str(tmp_path)})
    assert cfg.data.image_size == 16
    with pytest.raises(Exception, match="d_layers"):
        config_mod.build_config(StarGAN, None, {"data.image_size": 16, "loss.d_form": "patch",
                                                        "loss.global_d": False})


# ------------------------------------------------------------------- translate / eval / export flags

@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory)


@pytest.mark.parametrize("args,needle", [
    (["--size", "60000"], "--size"),
    (["--size", "0"], "--size"),
    (["--size", "-5"], "--size"),
    (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "100000"], "--batch-size"),
    (["--temporal", "--temporal-strength", "nan"], "--temporal-strength"),
    (["--temporal", "--temporal-strength", "2"], "--temporal-strength"),
    (["--shard", "3/2"], "--shard"),
])
def test_bad_translate_flags_are_refused_before_writing(tmp_path, model, args, needle):
    photo = noise_image(tmp_path / "in" / "photo.png", 40, 28)
    before = snapshot(tmp_path / "in")
    result = invoke(["translate", model, photo, "-o", tmp_path / "out", "-q", *args])
    assert_refused(result, needle)
    assert not (tmp_path / "out").exists() and snapshot(tmp_path / "in") == before


@pytest.mark.parametrize("args,needle", [
    (["--image-size", "-5"], "--image-size"),
    (["--image-size", "100000"], "--image-size"),
    (["--batch-size", "0"], "--batch-size"),
    (["--kid-subsets", "0"], "--kid-subsets"),
    (["--kid-subset-size", "1"], "--kid-subset-size"),
    (["--limit", "-1"], "--limit"),
])
def test_bad_eval_flags_are_refused(tmp_path, model, args, needle):
    a = noise_image(tmp_path / "A" / "x.png", 32, 32).parent
    b = noise_image(tmp_path / "B" / "x.png", 32, 32).parent
    result = invoke(["eval", model, "--a", a, "--b", b, "--no-fid", "--paired", "--save", tmp_path / "saved", "-q", *args])
    assert_refused(result, needle)
    assert not (tmp_path / "saved").exists()


@pytest.mark.parametrize("tolerance", ["nan", "-1", "inf"])
def test_bad_export_tolerance_is_refused(tmp_path, model, tolerance):
    result = invoke(["export", model, "-o", tmp_path / "g.pt2", "--tolerance", tolerance])
    assert_refused(result, "--tolerance")
    assert not (tmp_path / "g.pt2").exists()


@pytest.mark.parametrize("steps", ["-5", "0", "99999999999999"])
def test_demo_refuses_a_bad_step_count_before_making_anything(tmp_path, steps):
    assert_refused(invoke(["demo", "--out", tmp_path / "demo", "--steps", steps]), "--steps")
    assert not (tmp_path / "demo").exists()
