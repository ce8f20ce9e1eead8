"""The help of every command shows every help text, choice list and default as written, and the CLI
starts without importing torch (fast --help and argument errors)."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from img2img import cli, config
from img2img.method_catalog import CATALOG, DATA_FLAGS

runner = CliRunner()
BOX = re.compile(r"[│╭╮╰╯─┃━]")


def flat(text: str) -> str:
    """Help text with box drawing and line wrapping removed, so a wrapped sentence reads as one."""
    return " ".join(BOX.sub(" ", text).split())


def help_of(*words: str) -> str:
    result = runner.invoke(cli.app, [*words, "--help"], env={"TERMINAL_WIDTH": "400", "COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    return flat(result.output)


def all_commands():
    """(words, click command) for every command and sub-command of the app."""
    root = typer.main.get_command(cli.app)
    stack = [((), root)]
    while stack:
        words, cmd = stack.pop()
        yield words, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            stack.append(((*words, name), sub))


def test_every_help_text_of_every_command_is_shown_whole():
    checked = 0
    for words, cmd in all_commands():
        shown = help_of(*words)
        assert "<int>" not in shown and "<bool>" not in shown and "<path>" not in shown, words
        if cmd.help:
            assert flat(cmd.help.split("\f")[0].replace("\\[", "[")) in shown, words
        for param in cmd.params:
            plain = getattr(param, "_escaped_help", None) and param.help.replace("\\[", "[") or param.help
            if words and words[0] == "train" and len(words) == 2 and param.name in cli.FLAG_KEYS:
                plain = cli.flag_help({f.name: f for f in cli.TRAIN_FLAGS}[param.name])[0]
            if plain:
                assert flat(plain) in shown, (words, param.name, plain)
                checked += 1
        for name, sub in getattr(cmd, "commands", {}).items():
            assert name in shown
    assert checked > 80


@pytest.mark.parametrize("method", sorted(CATALOG))
def test_train_help_lists_the_methods_options_with_defaults_and_choices(method):
    from img2img.methods import get_method

    shown = help_of("train", method)
    method_cls = get_method(method)
    defaults = config.default_config(method_cls)
    kind = CATALOG[method].dataset_kind
    for flag in cli.TRAIN_FLAGS:
        decl = flag.decls[0].split("/")[0]
        is_data = flag.name in cli._DATA_FLAG_NAMES
        if is_data and flag.name not in DATA_FLAGS[kind]:
            assert f"{decl} " not in shown, f"{decl} is listed for {method}, which does not read it"
            continue
        assert f"{decl} " in shown
        text, choices = cli.flag_help(flag)
        assert flat(text) in shown, (flag.name, text)
        if choices:
            assert "|".join(map(str, choices)) in shown
        if flag.key:
            section, name = flag.key.split(".")
            value = getattr(getattr(defaults, section), name)
            if value not in (None, ""):
                default = cli._shown_default(value)
                assert flat(f"{text} [default: {default}]") in shown, (flag.name, default)
    for f in dataclasses.fields(method_cls.LossConfig):
        assert "--" + f.name.replace("_", "-") in shown
        assert flat(f.metadata["help"]) in shown
        assert f"default {cli._shown_default(getattr(defaults.loss, f.name))}" in shown


def test_brackets_in_settings_survive():
    shown = help_of("train", "cyclegan")
    assert "TOML file with [data] [net] [train] [loss] tables" in shown
    assert "instance|instance_affine|batch|none" in shown and "vanilla|lsgan|hinge|wgan-gp" in shown
    assert "--labels" not in shown and "--direction" not in help_of("train", "cyclegan")
    assert "--labels" not in help_of("train", "pix2pix") and "a2b|b2a" in help_of("train", "pix2pix")
    assert "--a " not in help_of("train", "stargan")


def test_catalog_agrees_with_the_registry():
    from img2img.methods import METHODS

    assert set(CATALOG) == set(METHODS)
    for name, cls in METHODS.items():
        assert CATALOG[name].dataset_kind == cls.dataset_kind, name
        assert CATALOG[name].summary == cls.summary, name
        assert CATALOG[name].dataset_kind in DATA_FLAGS


def _modules_after(args: list[str]) -> set[str]:
    code = ("import sys; from img2img import cli\n"
            "try:\n    cli.app(args=%r, standalone_mode=True)\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted(sys.modules)))" % (args,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return set(out.stdout.split())


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["translate", "--help"],
                                  ["train", "cyclegan", "--norm", "bogus"], ["translate"]])
def test_help_and_argument_errors_do_not_import_torch(args):
    modules = _modules_after(args)
    assert "typer" in modules  # the run happened
    assert "torch" not in modules and "torchvision" not in modules, args


def test_train_without_data_says_so_before_announcing_a_run(tmp_path):
    result = runner.invoke(cli.app, ["train", "cyclegan", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    assert "needs --a DIR and --b DIR" in result.output
    assert "new run" not in result.output
    assert not (tmp_path / "run").exists()


def test_kid_line_says_why_there_is_no_spread():
    assert cli._kid_spread({"kid_subsets": 1, "kid_subset_size": 50, "kid_std": 0.0}).startswith(" (one subset")
    same = cli._kid_spread({"kid_subsets": 100, "kid_subset_size": 5, "kid_std": 0.0})
    assert "same 5 images" in same and "0.0000" not in same
    assert cli._kid_spread({"kid_subsets": 100, "kid_subset_size": 50, "kid_std": 0.0012}) == " ± 0.0012"
