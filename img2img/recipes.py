"""Named recipes: settings measured to give better results than the paper defaults at a given budget.

A recipe is applied over the method's paper defaults and under everything the user sets (flags, --set,
--config), and its name is stored in the run's config, so `img2img info` shows which recipe made a model.
The paper defaults stay the default; each recipe says where its evidence is.
"""

from __future__ import annotations

from dataclasses import dataclass

from img2img.errors import UserError


@dataclass(frozen=True)
class Recipe:
    name: str
    methods: tuple[str, ...]
    settings: dict
    summary: str
    evidence: str


RECIPES: dict[str, Recipe] = {}


def register(recipe: Recipe) -> None:
    RECIPES[recipe.name] = recipe


def recipe_settings(name: str, method: str) -> dict:
    """The settings of recipe `name` for `method`, or a one-line error naming the recipes there are."""
    recipe = RECIPES.get(name)
    if recipe is None:
        known = ", ".join(f"{r.name} ({'/'.join(r.methods)})" for r in RECIPES.values()) or "none"
        raise UserError(f"unknown recipe {name!r}; recipes: {known}")
    if method not in recipe.methods:
        raise UserError(f"recipe {name!r} is for {', '.join(recipe.methods)}, not {method}")
    return dict(recipe.settings)


def describe(name: str) -> str:
    recipe = RECIPES.get(name)
    if recipe is None:
        return f"{name} (not known to this version)"
    shown = ", ".join(f"{k}={v}" for k, v in recipe.settings.items())
    return f"{name}: {recipe.summary} ({shown})"


register(Recipe(
    name="quick",
    methods=("cyclegan",),
    settings={"net.generator": "resnet_6", "net.ngf": 16, "net.ndf": 32, "net.input_skip": True,
              "train.ema": 0.999, "loss.lambda_idt": 0.0},
    summary="CycleGAN for budgets of minutes (a CPU, 64 px): a small generator that edits its input "
            "(starts as the identity), EMA weights, no identity loss",
    evidence="bench/results/2026-11-30-cpu-budget2/README.md: horse2zebra 64 px, 15 minutes of a 2-core AMD EPYC, "
             "testA->B FID 204.0 and 200.7 / KID 0.111 and 0.106 (seeds 0, 1) against 208.8 / 0.119 for the untranslated "
             "inputs and 288.7 and 269.8 / 0.215 and 0.196 for the same small nets with the paper's settings; "
             "bench/results/2026-12-01-cpu-budget3/README.md: on data it was not tuned on, UTKFace ages 0-19 -> 60+ "
             "(64 px, 15 minutes) FID 107.1 and 125.7 against 183.0 untranslated, and zebra -> horse 203.7 against 208.8",
))
