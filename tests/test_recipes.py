"""--recipe NAME: named settings over the paper defaults, under the user's own; stored and shown by info."""

from __future__ import annotations

import pytest

from conftest import TINY_FLAGS
from img2img import recipes
from img2img.config import build_config
from img2img.errors import UserError
from img2img.methods import get_method
from img2img.modelfile import load_model


@pytest.fixture
def trial_recipe(monkeypatch):
    recipe = recipes.Recipe("trial", ("cyclegan",), {"train.lr": 3e-4, "net.ngf": 12, "loss.lambda_idt": 0.0},
                            "a recipe for these tests", "tests")
    monkeypatch.setitem(recipes.RECIPES, "trial", recipe)
    return recipe


def test_a_recipe_goes_over_the_defaults_and_under_the_users_settings(trial_recipe):
    cyclegan = get_method("cyclegan")
    plain = build_config(cyclegan)
    cfg = build_config(cyclegan, overrides={"train.recipe": "trial", "net.ngf": 20})
    assert cfg.train.recipe == "trial"
    assert cfg.train.lr == 3e-4 != plain.train.lr
    assert cfg.loss.lambda_idt == 0.0 != plain.loss.lambda_idt
    assert cfg.net.ngf == 20  # the user's flag wins over the recipe
    assert build_config(cyclegan).train.recipe == ""  # the paper defaults stay the default


def test_the_model_file_names_its_recipe(cli, tmp_path, unpaired_dirs, trial_recipe):
    run = tmp_path / "run"
    result = cli(["train", "cyclegan", "--a", unpaired_dirs[0], "--b", unpaired_dirs[1], "--steps", 2, "--recipe", "trial",
                  "--out", run, *[f for f in TINY_FLAGS]])
    assert result.exit_code == 0, result.output
    cfg = load_model(run / "model.pt").data["config"]
    assert cfg["train"]["recipe"] == "trial" and cfg["train"]["lr"] == 3e-4
    assert cfg["net"]["ngf"] == 8  # TINY_FLAGS' --ngf beats the recipe's 12
    info = cli(["info", run / "model.pt"])
    assert "recipe" in info.output and "trial" in info.output and "train.lr=0.0003" in info.output


def test_unknown_or_misapplied_recipes_are_one_line_errors(cli, tmp_path, unpaired_dirs, paired_dir, trial_recipe):
    with pytest.raises(UserError, match="unknown recipe 'nope'; recipes: .*trial"):
        build_config(get_method("cyclegan"), overrides={"train.recipe": "nope"})
    result = cli(["train", "pix2pix", "--data", paired_dir, "--steps", 1, "--recipe", "trial", "--out", tmp_path / "r", *TINY_FLAGS])
    assert result.exit_code == 2 and "is for cyclegan, not pix2pix" in result.output


@pytest.mark.parametrize("name", sorted(recipes.RECIPES))
def test_every_shipped_recipe_builds_a_valid_config_for_its_methods(name):
    recipe = recipes.RECIPES[name]
    assert recipe.summary and recipe.evidence
    for method in recipe.methods:
        cfg = build_config(get_method(method), overrides={"train.recipe": name, "data.a": "-", "data.b": "-"})
        flat = {f"{s}.{k}": v for s in ("data", "net", "train", "loss") for k, v in cfg.to_dict()[s].items()}
        for key, value in recipe.settings.items():
            assert str(flat[key]).lower() == str(value).lower(), key
