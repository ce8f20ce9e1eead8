"""Command line: `img2img train|translate|info|demo`. Parses, prints, calls the library; nothing more."""

from __future__ import annotations

import dataclasses
import functools
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from img2img import config as config_mod
from img2img.errors import UserError
from img2img.methods import METHODS, get_method

console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)

app = typer.Typer(help="Train image-to-image translation GANs and translate images with them.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
train_app = typer.Typer(help="Train a model. One sub-command per method; see `img2img train METHOD --help`.",
                        no_args_is_help=True)
app.add_typer(train_app, name="train")

EXIT_BAD_INPUT, EXIT_SOME_FAILED, EXIT_INTERRUPTED = 2, 1, 130


def user_errors(fn: Callable) -> Callable:
    """Print a UserError as one red line and exit 2: the user sees what to fix, not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            console.print(f"[red]error:[/] {exc}", soft_wrap=True)
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper


def _help(key: str) -> str:
    section, name = key.split(".")
    cls = {"data": config_mod.DataConfig, "net": config_mod.NetConfig, "train": config_mod.TrainConfig}[section]
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    choices = f.metadata.get("choices")
    return f.metadata["help"] + (f" [{'|'.join(map(str, choices))}]" if choices else "")


# CLI flag parameter name -> config key. Only flags the user actually gives become overrides.
FLAG_KEYS = {
    "a": "data.a", "b": "data.b", "data": "data.data", "direction": "data.direction",
    "image_size": "data.image_size", "load_size": "data.load_size",
    "generator": "net.generator", "ngf": "net.ngf", "ndf": "net.ndf", "norm": "net.norm",
    "steps": "train.steps", "epochs": "train.epochs", "batch_size": "train.batch_size", "lr": "train.lr",
    "gan_loss": "train.gan_loss", "device": "train.device", "precision": "train.precision", "seed": "train.seed",
    "workers": "train.workers", "sample_every": "train.sample_every", "save_every": "train.save_every",
    "log_every": "train.log_every",
}


def _method_options(method_cls) -> list[dataclasses.Field]:
    return list(dataclasses.fields(method_cls.LossConfig))


def _method_epilog(method_cls) -> str:
    lines = [f"{method_cls.name} options (defaults are the paper's):"]
    defaults = config_mod.default_config(method_cls)
    for f in _method_options(method_cls):
        flag = "--" + f.name.replace("_", "-")
        lines.append(f"  {flag} ({f.type if isinstance(f.type, str) else f.type.__name__}, default {getattr(defaults.loss, f.name)}): {f.metadata['help']}")
    paper = ", ".join(f"{k}={v}" for k, v in method_cls.paper_defaults.items())
    lines.append(f"Paper defaults applied before your flags: {paper}.")
    lines.append("Any setting can also be given as --set section.name=value or in a --config TOML file.")
    return "\n\n".join(lines)


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


def _free_run_dir(method: str) -> Path:
    base = Path("runs") / method
    candidate, n = base, 2
    while candidate.exists():
        candidate, n = Path(f"{base}-{n}"), n + 1
    return candidate


def _make_train_command(method_cls):
    @user_errors
    def command(
        ctx: typer.Context,
        a: Optional[Path] = typer.Option(None, "--a", help=_help("data.a")),
        b: Optional[Path] = typer.Option(None, "--b", help=_help("data.b")),
        data: Optional[Path] = typer.Option(None, "--data", help=_help("data.data")),
        out: Optional[Path] = typer.Option(None, "--out", "-o", help="run directory (default: runs/<method>, numbered if taken)"),
        config: Optional[Path] = typer.Option(None, "--config", help="TOML file with [data] [net] [train] [loss] tables; flags override it"),
        set_: list[str] = typer.Option([], "--set", help="override any setting, e.g. --set train.lr=1e-4 (repeatable)"),
        resume: bool = typer.Option(False, "--resume", help="continue the run in --out from its checkpoint.pt"),
        stop_after: int = typer.Option(0, "--stop-after", help="end this invocation after N steps (checkpoint saved; continue with --resume)"),
        steps: Optional[int] = typer.Option(None, "--steps", help=_help("train.steps")),
        epochs: Optional[int] = typer.Option(None, "--epochs", help=_help("train.epochs")),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", help=_help("train.batch_size")),
        image_size: Optional[int] = typer.Option(None, "--image-size", help=_help("data.image_size")),
        load_size: Optional[int] = typer.Option(None, "--load-size", help=_help("data.load_size")),
        no_flip: bool = typer.Option(False, "--no-flip", help="no random horizontal flips"),
        direction: Optional[str] = typer.Option(None, "--direction", help=_help("data.direction")),
        generator: Optional[str] = typer.Option(None, "--generator", help=_help("net.generator")),
        ngf: Optional[int] = typer.Option(None, "--ngf", help=_help("net.ngf")),
        ndf: Optional[int] = typer.Option(None, "--ndf", help=_help("net.ndf")),
        norm: Optional[str] = typer.Option(None, "--norm", help=_help("net.norm")),
        gan_loss: Optional[str] = typer.Option(None, "--gan-loss", help=_help("train.gan_loss")),
        lr: Optional[float] = typer.Option(None, "--lr", help=_help("train.lr")),
        device: Optional[str] = typer.Option(None, "--device", help=_help("train.device")),
        precision: Optional[str] = typer.Option(None, "--precision", help=_help("train.precision")),
        seed: Optional[int] = typer.Option(None, "--seed", help=_help("train.seed")),
        workers: Optional[int] = typer.Option(None, "--workers", help=_help("train.workers")),
        sample_every: Optional[int] = typer.Option(None, "--sample-every", help=_help("train.sample_every")),
        save_every: Optional[int] = typer.Option(None, "--save-every", help=_help("train.save_every")),
        log_every: Optional[int] = typer.Option(None, "--log-every", help=_help("train.log_every")),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    ) -> None:
        from img2img.train import resume_config, train

        given = {k: v for k, v in locals().items() if k in FLAG_KEYS and v is not None}
        overrides = {FLAG_KEYS[k]: str(v) if isinstance(v, Path) else v for k, v in given.items()}
        if no_flip:
            overrides["data.flip"] = False
        overrides.update(config_mod.parse_set(set_))
        overrides.update(parse_method_args(method_cls, ctx.args))
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
        run_dir = out or _free_run_dir(method_cls.name)
        console.print(f"[bold]{cfg.method}[/] → {run_dir}  ({'resuming' if resume else 'new run'})")
        result = train(cfg, run_dir, resume=resume, stop_after=stop_after, progress=not quiet, console=console)
        if result.interrupted:
            console.print(f"[yellow]stopped at step {result.step}/{result.total_steps}; checkpoint saved. "
                          f"Continue with: img2img train {cfg.method} --resume --out {run_dir}[/]")
            raise typer.Exit(EXIT_INTERRUPTED)
        console.print(f"step {result.step}/{result.total_steps} in {result.seconds:.1f}s; model: {run_dir / 'model.pt'}, "
                      f"samples: {run_dir / 'samples'}")

    return command


for _name, _cls in METHODS.items():
    train_app.command(_name, help=_cls.summary, epilog=_method_epilog(_cls),
                      context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(_make_train_command(_cls))


@app.command()
@user_errors
def translate(
    model: Path = typer.Argument(..., help="model file (RUN/model.pt)"),
    inputs: list[str] = typer.Argument(..., help="images, folders or glob patterns (quote globs: 'photos/*.jpg')"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="output image (one input) or folder; default ./translated/. Outputs keep the input's name and size"),
    direction: Optional[str] = typer.Option(None, "--direction", help="a2b or b2a for two-way models (default: a2b, or the model's only direction)"),
    batch_size: int = typer.Option(8, "--batch-size", help="images translated together (same-sized images are batched)"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:<i>"),
    precision: str = typer.Option("fp32", "--precision", help="fp32 or bf16 autocast"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace existing outputs (never inputs); default: skip them"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
) -> None:
    """Translate images, folders or globs with a trained model; each output keeps its input's size and name."""
    from img2img.translate import Translator, translate_files
    from img2img.translate.outputs import plan_jobs

    if batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    translator = Translator(model, direction=direction, device=device, precision=precision)
    jobs = plan_jobs(inputs, output)
    columns = [TextColumn(f"translate {translator.direction}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, disable=quiet) as bar:
        task = bar.add_task("translate", total=len(jobs))
        report = translate_files(translator, jobs, batch_size=batch_size, overwrite=overwrite,
                                 on_progress=lambda n: bar.advance(task, n),
                                 on_error=lambda p, msg: console.print(f"[red]failed:[/] {msg}", soft_wrap=True))
    where = jobs[0].target if len(jobs) == 1 else jobs[0].target.parent
    console.print(f"{len(report.written)} written to {where}"
                  + (f", {len(report.skipped)} skipped (exist; --overwrite replaces them)" if report.skipped else "")
                  + (f", [red]{len(report.failed)} failed[/]" if report.failed else ""))
    if report.failed:
        raise typer.Exit(EXIT_SOME_FAILED)


@app.command()
@user_errors
def info(model: Path = typer.Argument(..., help="model file (RUN/model.pt)")) -> None:
    """Show what a model file holds: method, directions or domains, image size, parameters."""
    from img2img.modelfile import load_model

    mf = load_model(model)
    d = mf.data
    table = Table(show_header=False, box=None)
    table.add_row("file", str(model))
    table.add_row("method", mf.method)
    table.add_row("format version", str(d["format_version"]))
    table.add_row("directions", ", ".join(mf.directions))
    if d.get("domains"):
        table.add_row("domains", ", ".join(d["domains"]))
    table.add_row("trained at", f"{d['image_size']} px, {d['channels']} channel(s), {d['step']} steps")
    for name, g in d["generators"].items():
        arch = g["arch"]
        table.add_row(f"generator {name}", f"{arch['name']}, ngf {arch['ngf']}, norm {arch['norm']}, "
                      f"{mf.parameter_count()[name]:,} parameters")
    table.add_row("test-time norm", d.get("test_time_norm", "running"))
    out_console.print(table)


@app.command()
@user_errors
def demo(
    out: Path = typer.Option(Path("img2img-demo"), "--out", "-o", help="folder for the demo's data, run and results"),
    steps: int = typer.Option(1000, "--steps", help="training steps (about 0.08 s each on a 2-core CPU)"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:<i>"),
) -> None:
    """Make a small synthetic paired dataset, train pix2pix on it briefly, translate held-out images."""
    from img2img.demo import run_demo

    result = run_demo(out, steps=steps, device=device, console=console)
    console.print(f"\n[bold green]done.[/] Look at:\n  {result.comparison}  (input | translation | ground truth)\n"
                  f"  {result.run_dir / 'samples'}  (previews during training)\n  {result.translated}  (translated images)\n"
                  f"Try: img2img translate {result.run_dir / 'model.pt'} {result.inputs} -o my-output/")


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
