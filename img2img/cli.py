"""Command line: `img2img train|translate|info|demo`. Parses, prints, calls the library; nothing more."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import sys
from pathlib import Path
from typing import Any, Callable, Literal, NamedTuple, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from typer.core import TyperCommand, TyperGroup

from img2img import config as config_mod
from img2img.errors import UserError, require_in_range
from img2img.method_catalog import CATALOG, DATA_FLAGS, missing_data_message

console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)

# What the type column of the help shows for an option with a value; on/off flags show nothing.
_TYPE_WORDS = {"int": "N", "float": "X", "Path": "PATH", "str": "TEXT", "list[str]": "TEXT"}


def _as_plain_text(obj: Any, attr: str) -> None:
    """Escape obj.attr once for rich markup, so help texts show every bracket ("[a|b]", "[data]") as written."""
    value, done = getattr(obj, attr, None), f"_escaped_{attr}"
    if value and getattr(obj, done, None) != value:
        setattr(obj, attr, escape(value))
        setattr(obj, done, getattr(obj, attr))


def _tidy_help(params: list) -> None:
    """Help texts shown as written, and plain words instead of typer's `<int>`/`<bool>` in the type column."""
    for param in params:
        _as_plain_text(param, "help")
        if param.param_type_name == "argument":  # its name says it all; the type column stays empty
            param.metavar = param.metavar or param.name.upper()
            param.display_type_rich = lambda ctx: None
            continue
        if param.metavar is not None:
            continue
        desc = param.type_descriptor
        if param.is_flag or param.bare_type() == "bool":
            param.metavar = ""
        elif desc.is_choice:
            param.metavar = "|".join(map(str, desc.choices or ()))
        else:
            param.metavar = _TYPE_WORDS.get(param.bare_type())


class Command(TyperCommand):
    def format_help(self, ctx, formatter) -> None:
        _tidy_help(self.get_params(ctx))
        for attr in ("help", "epilog"):
            _as_plain_text(self, attr)
        return super().format_help(ctx, formatter)


class Group(TyperGroup):
    def format_help(self, ctx, formatter) -> None:
        _tidy_help(self.get_params(ctx))
        for obj in [self, *self.commands.values()]:
            _as_plain_text(obj, "help")
        return super().format_help(ctx, formatter)


app = typer.Typer(help="Train image-to-image translation GANs and translate images with them.", cls=Group,
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
train_app = typer.Typer(help="Train a model. One sub-command per method; see `img2img train METHOD --help`.",
                        cls=Group, no_args_is_help=True)
app.add_typer(train_app, name="train")

EXIT_BAD_INPUT, EXIT_SOME_FAILED, EXIT_INTERRUPTED = 2, 1, 130


def user_errors(fn: Callable) -> Callable:
    """Print a UserError as one red line and exit 2: the user sees what to fix, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper


class Flag(NamedTuple):
    """One option of `img2img train METHOD`: its declarations, the setting it overrides (if any), its value type."""

    name: str
    decls: tuple[str, ...]
    key: Optional[str] = None  # config key; None for options that are not settings (--out, --resume, ...)
    type: Any = None  # value type; None = an on/off flag
    help: str = ""  # only for options that are not settings (settings carry their help in config.py)
    metavar: str = ""


TRAIN_FLAGS: tuple[Flag, ...] = (
    Flag("a", ("--a",), "data.a", Path, metavar="DIR"),
    Flag("b", ("--b",), "data.b", Path, metavar="DIR"),
    Flag("data", ("--data",), "data.data", Path, metavar="DIR"),
    Flag("images", ("--images",), "data.images", Path, metavar="DIR"),
    Flag("labels", ("--labels",), "data.labels", Path, metavar="CSV"),
    Flag("attrs", ("--attrs",), "data.attrs", str, metavar="A,B,..."),
    Flag("direction", ("--direction",), "data.direction", str),
    Flag("channels_a", ("--channels-a",), "data.channels_a", int),
    Flag("channels_b", ("--channels-b",), "data.channels_b", int),
    Flag("out", ("--out", "-o"), None, Path, "run directory (default: runs/<method>, numbered if taken)", "DIR"),
    Flag("config", ("--config",), None, Path, "TOML file with [data] [net] [train] [loss] tables; flags override it", "FILE"),
    Flag("set_", ("--set",), None, list[str], "override any setting, e.g. --set train.lr=1e-4 (repeatable)", "KEY=VALUE"),
    Flag("resume", ("--resume",), None, None, "continue the run in --out from its checkpoint.pt"),
    Flag("stop_after", ("--stop-after",), None, int, "end this invocation after N steps (checkpoint saved; continue with --resume)", "N"),
    Flag("steps", ("--steps",), "train.steps", int, metavar="N"),
    Flag("minutes", ("--minutes",), None, float, "train for this many minutes of wall-clock time (more, with --resume) "
         "instead of --steps/--epochs: the first steps are timed and the run's length, and so its learning-rate "
         "schedule, is planned to end on time (re-planned from the recent speed until the decay starts)", "M"),
    Flag("epochs", ("--epochs",), "train.epochs", int, metavar="N"),
    Flag("batch_size", ("--batch-size",), "train.batch_size", int, metavar="N"),
    Flag("image_size", ("--image-size",), "data.image_size", int, metavar="PX"),
    Flag("crop_height", ("--crop-height",), "data.crop_height", int, metavar="PX"),
    Flag("load_size", ("--load-size",), "data.load_size", int, metavar="PX"),
    Flag("preprocess", ("--preprocess",), "data.preprocess", str),
    Flag("no_flip", ("--no-flip",), None, None, "no random horizontal flips"),
    Flag("generator", ("--generator",), "net.generator", str, metavar="NAME"),
    Flag("ngf", ("--ngf",), "net.ngf", int, metavar="N"),
    Flag("ndf", ("--ndf",), "net.ndf", int, metavar="N"),
    Flag("norm", ("--norm",), "net.norm", str),
    Flag("gan_loss", ("--gan-loss",), "train.gan_loss", str),
    Flag("lr", ("--lr",), "train.lr", float, metavar="X"),
    Flag("device", ("--device",), "train.device", str, metavar="DEVICE"),
    Flag("precision", ("--precision",), "train.precision", str),
    Flag("ema", ("--ema",), "train.ema", float, metavar="DECAY"),
    Flag("recipe", ("--recipe",), "train.recipe", str, metavar="NAME"),
    Flag("compile", ("--compile/--no-compile",), "train.compile", bool),
    Flag("channels_last", ("--channels-last/--no-channels-last",), "train.channels_last", bool),
    Flag("seed", ("--seed",), "train.seed", int, metavar="N"),
    Flag("workers", ("--workers",), "train.workers", int, metavar="N"),
    Flag("sample_every", ("--sample-every",), "train.sample_every", int, metavar="N"),
    Flag("save_every", ("--save-every",), "train.save_every", int, metavar="N"),
    Flag("log_every", ("--log-every",), "train.log_every", int, metavar="N"),
    Flag("eval_every", ("--eval-every",), "train.eval_every", int, metavar="N"),
    Flag("eval_a", ("--eval-a",), "train.eval_a", Path, metavar="DIR"),
    Flag("eval_b", ("--eval-b",), "train.eval_b", Path, metavar="DIR"),
    Flag("quiet", ("--quiet", "-q"), None, None, "no progress bar"),
)
# CLI flag parameter name -> config key. Only flags the user actually gives become overrides.
FLAG_KEYS = {f.name: f.key for f in TRAIN_FLAGS if f.key}
_DATA_FLAG_NAMES = {"a", "b", "data", "images", "labels", "attrs", "direction", "channels_a", "channels_b"}


def setting_field(key: str) -> dataclasses.Field:
    section, name = key.split(".")
    cls = {"data": config_mod.DataConfig, "net": config_mod.NetConfig, "train": config_mod.TrainConfig}[section]
    return {f.name: f for f in dataclasses.fields(cls)}[name]


def flag_help(flag: Flag) -> tuple[str, Optional[tuple]]:
    """(help text, allowed values or None) of a train option, from the setting it overrides."""
    if flag.key is None:
        return flag.help, None
    f = setting_field(flag.key)
    return f.metadata["help"], f.metadata.get("choices")


def _option(flag: Flag) -> inspect.Parameter:
    help_text, choices = flag_help(flag)
    if flag.type is None:  # on/off flag: no value, no type to show
        default, annotation, metavar = False, bool, ""
    else:
        default, annotation = ([] if flag.type == list[str] else None), flag.type
        metavar = "|".join(map(str, choices)) if choices else flag.metavar
        if choices:
            annotation = Literal[tuple(map(str, choices))]  # click checks the value before anything is imported
        if flag.type is bool:
            metavar = ""
        if flag.type != list[str]:
            annotation = Optional[annotation]
    option = typer.Option(default, *flag.decls, help=help_text, metavar=metavar, show_default=False)
    return inspect.Parameter(flag.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)


def _shown_default(value: Any) -> Optional[str]:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


class MethodCommand(Command):
    """`img2img train METHOD`: its help shows the method's defaults and own options, found when help is asked
    for (importing the method, and so torch, only then: the other commands and errors stay fast)."""

    method_name = ""

    def format_help(self, ctx, formatter) -> None:
        from img2img.methods import get_method

        method_cls = get_method(self.method_name)
        defaults = config_mod.default_config(method_cls)
        flags = {f.name: f for f in TRAIN_FLAGS}
        for param in self.params:
            if param.name in FLAG_KEYS:  # the default this method really uses (paper defaults included)
                section, name = FLAG_KEYS[param.name].split(".")
                shown = _shown_default(getattr(getattr(defaults, section), name))
                param.help = flag_help(flags[param.name])[0] + (f"  [default: {shown}]" if shown is not None else "")
        self.epilog = _method_epilog(method_cls, defaults)
        return super().format_help(ctx, formatter)


def _method_options(method_cls) -> list[dataclasses.Field]:
    return list(dataclasses.fields(method_cls.LossConfig))


def _method_epilog(method_cls, defaults) -> str:
    lines = [f"{method_cls.name} options (defaults are the paper's):"]
    for f in _method_options(method_cls):
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults.loss, f.name)
        kind = f.type if isinstance(f.type, str) else f.type.__name__
        if kind == "bool":
            flag = f"{flag} / --no-{f.name.replace('_', '-')}"
        choices = f.metadata.get("choices")
        allowed = f" ({'|'.join(map(str, choices))})" if choices else ""
        lines.append(f"  {flag} ({kind}{allowed}, default {_shown_default(value)}): {f.metadata['help']}")
    paper = ", ".join(f"{k}={v}" for k, v in method_cls.paper_defaults.items())
    lines.append(f"Paper defaults applied before your flags: {paper}.")
    lines.append("Any setting can also be given as --set section.name=value or in a --config TOML file.")
    return "\n".join(lines)


def parse_method_args(method_cls, args: list[str]) -> dict[str, Any]:
    """Turn the method's own flags (e.g. --lambda-cyc 5, --no-...) into loss.* overrides."""
    fields = {f.name.replace("_", "-"): f for f in _method_options(method_cls)}
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--"):
            raise UserError(f"unexpected argument {token!r}; see `img2img train {method_cls.name} --help`")
        name, eq, value = token[2:].partition("=")
        negated = name.startswith("no-") and name[3:] in fields
        f = fields.get(name[3:] if negated else name)
        if f is None:
            raise UserError(f"unknown option --{name} for {method_cls.name}; see `img2img train {method_cls.name} --help`")
        if f.type in (bool, "bool"):
            out[f"loss.{f.name}"] = not negated if not eq else value
        else:
            if not eq:
                if i + 1 >= len(args):
                    raise UserError(f"--{name} needs a value")
                i += 1
                value = args[i]
            out[f"loss.{f.name}"] = value
        i += 1
    return out


def _make_train_command(method_name: str, dataset_kind: str):
    flags = [f for f in TRAIN_FLAGS
             if f.name not in _DATA_FLAG_NAMES or f.name in DATA_FLAGS.get(dataset_kind, _DATA_FLAG_NAMES)]

    @user_errors
    def command(ctx: typer.Context, **given: Any) -> None:
        from img2img.atomic import next_free_folder
        from img2img.methods import get_method
        from img2img.train import resume_config, train, train_for
        from img2img.train.timed import check_budget

        method_cls = get_method(method_name)
        out, config, resume, quiet = given["out"], given["config"], given["resume"], given["quiet"]
        overrides = {FLAG_KEYS[k]: str(v) if isinstance(v, Path) else v
                     for k, v in given.items() if k in FLAG_KEYS and v is not None}
        if given["no_flip"]:
            overrides["data.flip"] = False
        overrides.update(config_mod.parse_set(given["set_"]))
        overrides.update(parse_method_args(method_cls, ctx.args))
        minutes = given["minutes"]
        if minutes is not None:
            clash = [flag for flag, key in (("--steps", "steps"), ("--epochs", "epochs"), ("--stop-after", "stop_after"))
                     if given[key] is not None]
            if clash:
                raise UserError(f"--minutes sets the run's length: leave out {' and '.join(clash)}")
            check_budget(minutes * 60)
        if resume:
            if out is None:
                raise UserError("--resume needs --out RUN_DIR (the run to continue)")
            if config is not None:
                raise UserError("--config cannot be combined with --resume: the run keeps its stored settings")
            cfg = resume_config(out, overrides)
            if cfg.method != method_cls.name:
                raise UserError(f"{out} is a {cfg.method} run, not {method_cls.name}")
        else:
            cfg = config_mod.build_config(method_cls, config, overrides)
            missing = missing_data_message(method_name, dataclasses.asdict(cfg.data))
            if missing:
                raise UserError(missing)
        from img2img.device import resolve_device

        resolve_device(cfg.train.device)  # a device that is not there is refused before the run is announced
        run_dir = out or next_free_folder(Path("runs") / method_cls.name)
        # Under torchrun every process runs this command; only rank 0 talks.
        console.quiet = int(os.environ.get("RANK", "0")) != 0
        console.print(f"[bold]{cfg.method}[/] → {escape(str(run_dir))}  ({'resuming' if resume else 'new run'})", soft_wrap=True)
        try:
            if minutes is not None:
                result = train_for(cfg, run_dir, minutes * 60, resume=resume, progress=not quiet, console=console)
            else:
                result = train(cfg, run_dir, resume=resume, stop_after=given["stop_after"] or 0, progress=not quiet, console=console)
        except KeyboardInterrupt:  # before the loop took over Ctrl-C (reading the data, building the nets)
            console.print("[yellow]interrupted before training started; nothing was saved[/]")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        if result.interrupted:
            again = escape(f"img2img train {cfg.method} --resume --out {run_dir}")
            if result.saved_step == result.step:
                console.print(f"[yellow]stopped at step {result.step}/{result.total_steps}; checkpoint saved. Continue with: {again}[/]", soft_wrap=True)
            elif result.saved_step is not None:
                console.print(f"[yellow]continue from step {result.saved_step} with: {again}[/]", soft_wrap=True)
            else:
                console.print("[yellow]no checkpoint to continue from; start the run again[/]", soft_wrap=True)
            raise typer.Exit(EXIT_INTERRUPTED)
        if result.out_of_time:
            console.print(f"[yellow]time is up at step {result.step} of the {result.total_steps} planned; saved[/]",
                          soft_wrap=True)
        console.print(f"step {result.step}/{result.total_steps} in {result.seconds:.1f}s; model: {escape(str(run_dir / 'model.pt'))}, "
                      f"samples: {escape(str(run_dir / 'samples'))}", soft_wrap=True)

    ctx_param = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)
    command.__signature__ = inspect.Signature([ctx_param] + [_option(f) for f in flags])
    return command


for _name, _info in CATALOG.items():
    _cls = type(f"{_name}Command", (MethodCommand,), {"method_name": _name})
    train_app.command(_name, help=_info.summary, cls=_cls,
                      context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(
        _make_train_command(_name, _info.dataset_kind))


@app.command(cls=Command)
@user_errors
def translate(
    model: Path = typer.Argument(..., help="model file (RUN/model.pt)"),
    inputs: list[str] = typer.Argument(..., help="images, videos, folders or glob patterns (quote globs: 'photos/*.jpg')"),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="output image (one input) or folder; default ./translated/. Outputs keep the input's name and size"),
    direction: Optional[str] = typer.Option(None, "--direction", help="a2b or b2a for two-way models (default: a2b, or the model's only direction)"),
    to: Optional[str] = typer.Option(None, "--to", help="StarGAN: target domain; 'all' = one output per domain, named <stem>_<domain>. "
                                     "Attribute models: 'Black_Hair=1,Male=0' sets those and keeps the rest as the model's "
                                     "classifier reads them from the input; 'all' = one output per attribute, flipped"),
    batch_size: int = typer.Option(8, "--batch-size", help="images translated together (same-sized images are batched)"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:<i>"),
    precision: str = typer.Option("auto", "--precision", help="auto (bf16 on GPUs and on CPUs with native bf16, else fp32), fp32, bf16 or fp16 (GPU)"),
    compile: bool = typer.Option(False, "--compile", help="torch.compile the generator: worth it on a GPU for many "
                                 "same-sized images or long videos (the first batch waits for compilation); falls back "
                                 "to eager where it cannot compile"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace existing outputs (never inputs); default: skip them"),
    test_dropout: Optional[bool] = typer.Option(None, "--test-dropout/--no-test-dropout", help="pix2pix: dropout at test time "
                                                "as the paper (fixed masks from the run seed: deterministic) or off; default: as trained"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    frames_dir: Optional[Path] = typer.Option(None, "--frames-dir", help="videos: write frames as DIR/000001.png ... "
                                              "instead of a video (DIR/<name>/ each when several videos are given)"),
    size: Optional[int] = typer.Option(None, "--size", help="translate at this short side (pixels) and scale back to the "
                                       "input size: faster, less detail (default: native resolution)"),
    temporal: bool = typer.Option(False, "--temporal", help="videos: reduce frame-to-frame flicker (per-pixel running "
                                  "average of the output where the input did not change; see translate/temporal.py)"),
    temporal_strength: float = typer.Option(0.8, "--temporal-strength", help="with --temporal: 0..0.95, how much of "
                                            "the previous output is kept where the input is unchanged"),
    tile: Optional[int] = typer.Option(None, "--tile", min=0, help="translate big images in overlapping tiles of N "
                                       "pixels, normalised with whole-image statistics (default: only images that would "
                                       "not fit in memory; 0 = never)"),
    crf: Optional[int] = typer.Option(None, "--crf", min=0, max=51, help="videos: quality, 0 (lossless) to 51; lower is "
                                      "better and bigger; 18 looks lossless (default: 20; H.264, VP9 for .webm)"),
    shard: Optional[str] = typer.Option(None, "--shard", help="I/N: take only share I (0-based) of N of the sorted inputs, "
                                        "e.g. --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT; combines with torchrun"),
) -> None:
    """Translate images, videos, folders or globs with a trained model; each output keeps its input's size and name."""
    require_in_range("--batch-size", batch_size, 1, 4096)
    require_in_range("--temporal-strength", temporal_strength, 0.0, 0.95)
    from img2img.translate import TranslateReport, Translator, translate_files
    from img2img.translate.outputs import plan_targets, prepare_targets
    from img2img.translate.batch import frames_dir_jobs, local_device, select_shard, shard_spec
    from img2img.translate.scale import Rescaled, processing_size
    from img2img.translate.video import is_video_path

    processing_size(1, 1, size)  # validates --size
    shard_index, shard_count = shard_spec(shard)
    device = local_device(device)  # under torchrun: this process's own GPU
    if to is not None:
        from img2img.modelfile import load_model
        from img2img.translate.domains import domain_translators

        if direction is not None:
            raise UserError("--to (StarGAN domains) and --direction (two-way models) do not go together")
        targets = domain_translators(load_model(model), to, device=device, precision=precision, compile=compile)
        for _, t in targets:
            t.tile = tile
    else:
        targets = [("", Translator(model, direction=direction, device=device, precision=precision, compile=compile,
                                   test_dropout=test_dropout, tile=tile))]
    unlisted: list = []  # input folders that cannot be read: reported as failed, the rest go on
    plans = list(zip([t for _, t in targets], plan_targets(inputs, output, [s for s, _ in targets], unlisted)))
    # videos go their own way (video.py); --size wraps the image translator; --shard/torchrun take a share
    video_plans = [(t, [j for j in js if is_video_path(j.source)]) for t, js in plans]
    if frames_dir is not None:
        single = len(inputs) == 1 and len(plans) == 1 and is_video_path(inputs[0]) and Path(inputs[0]).is_file()
        video_plans = [(t, frames_dir_jobs(js, frames_dir, single)) for t, js in video_plans]
    plans = [(Rescaled(t, size) if size else t, [j for j in js if not is_video_path(j.source)]) for t, js in plans]
    all_jobs = [j for _, js in plans + video_plans for j in js]
    plans = [(t, select_shard(js, shard_index, shard_count)) for t, js in plans]
    video_plans = [(t, select_shard(js, shard_index, shard_count)) for t, js in video_plans]
    if shard_count > 1:
        console.print(f"shard {shard_index}/{shard_count}: {sum(len(js) for _, js in plans + video_plans)} of "
                      f"{len(all_jobs)} outputs")
    jobs = [job for _, target_jobs in plans for job in target_jobs]
    prepare_targets(jobs)
    label = targets[0][1].direction if len(targets) == 1 else f"to {len(targets)} domains"
    columns = [TextColumn(f"translate {label}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    failed_once: set = set()

    def on_error(path, msg) -> None:  # with several targets, an unreadable input is reported once
        if path not in failed_once:
            failed_once.add(path)
            console.print(f"[red]failed:[/] {escape(msg)}", soft_wrap=True)

    with Progress(*columns, console=console, disable=quiet or not jobs) as bar:
        task = bar.add_task("translate", total=len(jobs))
        report = TranslateReport()
        for path, msg in unlisted:
            on_error(path, msg)
            report.failed.append((path, msg))
        for translator, target_jobs in plans:
            part = translate_files(translator, target_jobs, batch_size=batch_size, overwrite=overwrite,
                                   on_progress=lambda n: bar.advance(task, n), on_error=on_error)
            report.written += part.written
            report.skipped += part.skipped
            report.failed += [f for f in part.failed if f[0] not in {g[0] for g in report.failed}]
    if any(js for _, js in video_plans):
        from img2img.translate.video_progress import run_video_batches

        prepare_targets([j for _, js in video_plans for j in js])
        videos = run_video_batches(video_plans, console=console, quiet=quiet, frames=frames_dir is not None,
                                   batch_size=batch_size, size=size, overwrite=overwrite, crf=crf,
                                   temporal={"strength": temporal_strength} if temporal else None)
        report.written += videos.written
        report.skipped += videos.skipped
        report.failed += videos.failed
        jobs += [j for _, js in video_plans for j in js]
    if not jobs:
        console.print("nothing to do: this shard has no inputs")
        return
    where = jobs[0].target if len(jobs) == 1 else jobs[0].target.parent
    console.print(f"{len(report.written)} written to {escape(str(where))}"
                  + (f", {len(report.skipped)} skipped (exist; --overwrite replaces them)" if report.skipped else "")
                  + (f", [red]{len(report.failed)} failed[/]" if report.failed else ""))
    if report.failed:
        raise typer.Exit(EXIT_SOME_FAILED)


@app.command(cls=Command)
@user_errors
def info(model: Path = typer.Argument(..., help="model file (RUN/model.pt)")) -> None:
    """Show what a model file holds: method, directions or domains, image size, parameters."""
    from img2img.modelfile import load_model
    from img2img.nets import describe_discriminator, describe_generator

    mf = load_model(model)
    d = mf.data
    table = Table(show_header=False, box=None)
    table.add_row("file", escape(str(model)))
    table.add_row("method", mf.method)
    table.add_row("format version", str(d["format_version"]))
    table.add_row("directions", escape(", ".join(mf.directions)))
    if d.get("domains"):
        table.add_row("attributes" if "attributes" in mf.directions else "domains", escape(", ".join(d["domains"])))
    archs = {name: g["arch"] for name, g in d["generators"].items()}
    if all(a["in_channels"] == a["out_channels"] == d["channels"] for a in archs.values()):
        channels = f"{d['channels']} channel(s)"
    else:  # e.g. grayscale to colour
        channels = ", ".join(f"{name} {a['in_channels']} to {a['out_channels']} channels" for name, a in archs.items())
    stored = d.get("config", {})  # the run's settings, as the model file keeps them
    data_cfg = stored.get("data", {})
    crop = (f"{d['image_size']}x{data_cfg['crop_height']} px crops" if data_cfg.get("crop_height") else f"{d['image_size']} px")
    if data_cfg.get("preprocess", "resize_and_crop") != "resize_and_crop":
        crop += f" ({data_cfg['preprocess']})"
    table.add_row("trained at", f"{crop}, {escape(channels)}, {d['step']} steps")
    for name, g in d["generators"].items():
        attention = f", self-attention at 1/{g['arch']['attention']} of the input side" if g["arch"].get("attention") else ""
        table.add_row(f"generator {name}", f"{describe_generator(g['arch'])}{attention}, {mf.parameter_count()[name]:,} parameters")
    if "classifier" in d:
        table.add_row("discriminator", describe_discriminator(d["classifier"]["arch"]))
    recipe = stored.get("train", {}).get("recipe")
    if recipe:
        from img2img.recipes import describe

        table.add_row("recipe", escape(describe(recipe)))
    init = stored.get("net", {}).get("init")
    if init:
        table.add_row("initialisation", "PyTorch default" if init == "default" else init)
    table.add_row("test-time norm", d.get("test_time_norm", "running"))
    if any(g["arch"].get("dropout") for g in d["generators"].values()):
        seed = mf.test_dropout_seed
        table.add_row("test-time dropout", "off" if seed is None else f"on, as in training (fixed masks, seed {seed})")
    out_console.print(table)


@app.command(cls=Command)
@user_errors
def report(run: Path = typer.Argument(..., help="run folder (the --out of img2img train); it may still be training"),
           output: Optional[Path] = typer.Option(None, "--output", "-o", help="HTML file to write (default: RUN/report.html)")) -> None:
    """Write one self-contained HTML page about a run: loss curves, sample grids over time, eval scores, config."""
    from img2img.report import write_report

    out_console.print(f"wrote {write_report(run, output)}", soft_wrap=True)


@app.command(cls=Command)
@user_errors
def demo(
    out: Path = typer.Option(Path("img2img-demo"), "--out", "-o", help="folder for the demo's data, run and results"),
    steps: int = typer.Option(1000, "--steps", help="training steps (about 0.08 s each on a 2-core CPU)"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:<i>"),
) -> None:
    """Make a small synthetic paired dataset, train pix2pix on it briefly, translate held-out images."""
    from img2img.demo import run_demo

    result = run_demo(out, steps=steps, device=device, console=console)
    if result.interrupted:
        console.print(f"[yellow]demo interrupted after {result.steps_done} of {steps} training steps; nothing translated. "
                      f"What there is: {result.run_dir}[/]", soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED)
    console.print(f"\n[bold green]done.[/] Look at:\n  {result.comparison}  (input | translation | ground truth)\n"
                  f"  {result.run_dir / 'samples'}  (previews during training)\n  {result.translated}  (translated images)\n"
                  f"Try: img2img translate {result.run_dir / 'model.pt'} {result.inputs} -o my-output/")


def _progress_factory(bar: Progress):
    """(description, total) -> advance(n): one rich task per stage of a long computation."""

    def make(description: str, total: int):
        task = bar.add_task(description, total=total)
        return lambda n: bar.advance(task, n)

    return make


def _kid_spread(result: dict) -> str:
    """' ± std' over the KID subsets, or why there is none (a 0.0000 would read as a perfect agreement)."""
    subsets, size = result.get("kid_subsets", 0), result.get("kid_subset_size", 0)
    if subsets < 2:
        return " (one subset: no spread; --kid-subsets N for one)"
    if result.get("kid_std", 0.0) == 0.0:
        return f" (no spread: each subset held the same {size} images, all of the smaller set)"
    return f" ± {result['kid_std']:.4f}"


def _fmt(key: str, value) -> str:
    if key == "psnr":
        return f"{value:.2f} dB"
    if key == "fid":
        return f"{value:.2f}"
    return f"{value:.4f}"


@app.command("eval", cls=Command)
@user_errors
def eval_(
    model: Optional[Path] = typer.Argument(None, help="model file (RUN/model.pt) to translate the test data with; leave out with --real/--fake"),
    real: Optional[Path] = typer.Option(None, "--real", help="folder of real images (with --fake: score two folders)"),
    fake: Optional[Path] = typer.Option(None, "--fake", help="folder of generated images"),
    a: Optional[Path] = typer.Option(None, "--a", help="test images of domain A (the model's inputs for a2b)"),
    b: Optional[Path] = typer.Option(None, "--b", help="test images of domain B (the references for a2b)"),
    paired: Optional[bool] = typer.Option(None, "--paired/--unpaired", help="--a/--b are pairs matched by file name (ground truth: L1, PSNR, SSIM too); default: paired for methods trained on pairs (pix2pix)"),
    data: Optional[Path] = typer.Option(None, "--data", help="test folder of A|B side-by-side images (paired)"),
    direction: Optional[str] = typer.Option(None, "--direction", help="a2b, b2a, ... (default: a2b, or the model's only direction)"),
    to: Optional[str] = typer.Option(None, "--to", help="StarGAN: the target domain (--a holds the inputs, --b real images of that domain)"),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="resize inputs and references to N x N first (default: keep their size)"),
    inception: Optional[Path] = typer.Option(None, "--inception", help="Inception-v3 TorchScript file (default: the one the img2img 'metrics' extra installs)"),
    no_fid: bool = typer.Option(False, "--no-fid", help="paired data: skip FID/KID (then no Inception network is needed)"),
    json_path: Optional[Path] = typer.Option(None, "--json", help="also write the scores to this JSON file"),
    save: Optional[Path] = typer.Option(None, "--save", help="also write the translations (PNG) to this folder"),
    limit: int = typer.Option(0, "--limit", help="use only the first N test images (0 = all)"),
    kid_subsets: int = typer.Option(100, "--kid-subsets", help="KID: number of random subsets"),
    kid_subset_size: int = typer.Option(1000, "--kid-subset-size", help="KID: images per subset (capped at the smaller set)"),
    batch_size: int = typer.Option(8, "--batch-size", help="images translated together"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:<i>"),
    precision: str = typer.Option("fp32", "--precision", help="translation precision; fp32 (default) keeps scores comparable across machines"),
    test_dropout: Optional[bool] = typer.Option(None, "--test-dropout/--no-test-dropout", help="pix2pix: dropout at test time "
                                                "as the paper (fixed masks from the run seed: deterministic) or off; default: as trained"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bars"),
) -> None:
    """Score image quality: FID and KID between two folders (--real/--fake), or translate test data with
    MODEL and score it (FID/KID; plus L1, PSNR and SSIM against the ground truth for paired data)."""
    import json

    from img2img.device import resolve_device
    from img2img.metrics.evaluate import evaluate_model, score_folders
    from img2img.metrics.features import load_inception

    for flag, value, low, high in (("--batch-size", batch_size, 1, 4096), ("--kid-subsets", kid_subsets, 1, 100_000),
                                   ("--kid-subset-size", kid_subset_size, 2, 1_000_000), ("--limit", limit, 0, 10**9),
                                   ("--image-size", image_size, 8, 8192)):
        require_in_range(flag, value, low, high)
    folders = real is not None or fake is not None
    if folders and (model is not None or a or b or data):
        raise UserError("give either --real and --fake (two folders) or MODEL with test data, not both")
    if folders and (real is None or fake is None):
        raise UserError("--real and --fake go together")
    if not folders and model is None:
        raise UserError("nothing to score: give --real DIR --fake DIR, or MODEL --a DIR --b DIR (or MODEL --data DIR)")
    if to is not None:
        if direction is not None:
            raise UserError("give --to DOMAIN (StarGAN) or --direction, not both")
        direction = f"to:{to}"
    dev = resolve_device(device)
    extractor = None if (no_fid and not folders) else load_inception(inception, dev)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, disable=quiet) as bar:
        progress = _progress_factory(bar)
        if folders:
            result = score_folders(real, fake, extractor, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size,
                                   progress=progress, other_outputs=[json_path] if json_path is not None else [])
        else:
            result = evaluate_model(model, a=a, b=b, data=data, direction=direction, extractor=extractor,
                                    size=image_size, batch_size=batch_size, device=str(dev), limit=limit,
                                    kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, save_dir=save,
                                    paired=paired, precision=precision, progress=progress, test_dropout=test_dropout,
                                    other_outputs=[json_path] if json_path is not None else [])
    table = Table(title=f"{result.get('method', 'folders')} {result.get('direction', '')}".strip(), show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    labels = {"fid": "FID", "kid": "KID", "l1": "L1 (0-1 scale)", "psnr": "PSNR", "ssim": "SSIM"}
    for key, label in labels.items():
        if key in result:
            value = _fmt(key, result[key]) + (_kid_spread(result) if key == "kid" else "")
            table.add_row(label, value)
    info_line = result.get("data") or f"{result['real_images']} real ({real}) vs {result['fake_images']} generated ({fake})"
    out_console.print(table)
    out_console.print(info_line + (f"; features: {result['features']}" if "features" in result else ""), soft_wrap=True)
    if json_path is not None:
        try:
            json_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot write {json_path}: {exc.strerror or exc}") from None
        from img2img.atomic import atomic_write_text

        atomic_write_text(json_path, json.dumps(result, indent=2) + "\n")
        console.print(f"scores written to {escape(str(json_path))}", soft_wrap=True)


@app.command(cls=Command)
@user_errors
def export(
    model: Path = typer.Argument(..., help="model file (RUN/model.pt)"),
    output: Path = typer.Option(..., "--output", "-o", help="model.onnx (ONNX) or model.pt2 (torch.export program)"),
    direction: Optional[str] = typer.Option(None, "--direction", help="which generator: a2b, b2a, ... (default: a2b, or the model's only direction)"),
    tolerance: float = typer.Option(1e-3, "--tolerance", help="largest allowed difference from PyTorch in the parity check"),
) -> None:
    """Export a generator to ONNX or torch.export (.pt2): eval mode, dynamic batch and image size; a
    conditional generator (StarGAN) takes its label as a second input. Checks parity with PyTorch."""
    from img2img.export import export_model

    require_in_range("--tolerance", tolerance, 0.0, 1e6)

    report = export_model(model, output, direction)
    inputs = "x (N, C, H, W) in [-1, 1]" + (", cond (N, domains)" if report.conditional else "")
    out_console.print(f"wrote {escape(str(report.path))} ({report.format}; generator {report.generator} for {report.direction}; "
                  f"inputs {inputs}; H and W multiples of {report.stride})", soft_wrap=True)
    shape = "x".join(map(str, report.check_shape))
    ok = report.max_abs_diff <= tolerance
    out_console.print(f"parity with PyTorch on a random {shape} input: max abs difference {report.max_abs_diff:.3g} "
                      f"({'ok' if ok else 'FAILED'}, tolerance {tolerance:g})", soft_wrap=True)
    if not ok:
        raise typer.Exit(EXIT_SOME_FAILED)


@app.command("import", cls=Command)
@user_errors
def import_(
    files: list[Path] = typer.Argument(..., help="generator file(s) of the reference code: pix2pix latest_net_G.pth; "
                                       "CycleGAN latest_net_G_A.pth [latest_net_G_B.pth] (A->B, then B->A); StarGAN 200000-G.ckpt"),
    method: Literal["pix2pix", "cyclegan", "stargan"] = typer.Option(..., "--method", help="the method the file was trained with"),
    output: Path = typer.Option(..., "--output", "-o", help="the img2img model file to write (e.g. model.pt)"),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="the size it was trained at, for the record "
                                             "(default: 256; unet_N: N; StarGAN: 128)"),
    test_time_norm: Optional[Literal["running", "per_image"]] = typer.Option(
        None, "--test-time-norm", help="BatchNorm at translate time: per_image (what the reference test script does "
        "without --eval; pix2pix default) or running (its --eval)"),
    dropout: Optional[bool] = typer.Option(None, "--dropout/--no-dropout", help="pix2pix U-Net: whether it was trained "
                                           "with dropout (not in the weights; default: yes, as the reference trains); "
                                           "pix2pix keeps it on at test time with fixed masks"),
    domains: Optional[str] = typer.Option(None, "--domains", help="StarGAN: the names of its labels, comma-separated, in "
                                          "training order (default: domain_0, domain_1, ...)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing output file"),
) -> None:
    """Turn a generator trained with the reference pix2pix/CycleGAN or StarGAN code into an img2img model
    file, for translate, video, export and eval."""
    from img2img.reference_import import import_reference

    if output.exists() and not overwrite:
        raise UserError(f"{output} exists; choose another -o or add --overwrite")
    if any(output.resolve() == f.resolve() for f in files if f.exists()):
        raise UserError("-o must not be one of the input files")
    names = [d.strip() for d in domains.split(",")] if domains else None
    summary = import_reference(files, method, output, image_size=image_size, test_time_norm=test_time_norm, domains=names,
                               dropout=dropout)
    arch = summary["arch"]
    extra = f", {arch['cond_channels']} labels" if arch.get("cond_channels") else ""
    out_console.print(f"wrote {output}: {summary['method']}, {arch['name']}, ngf {arch['ngf']}, norm {arch['norm']}{extra}; "
                      f"directions {', '.join(summary['directions'])}", soft_wrap=True)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
