"""Command line: `img2img train|translate|info|demo`. Parses, prints, calls the library; nothing more."""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from img2img import config as config_mod
from img2img.atomic import next_free_folder
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
            console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
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
    "images": "data.images", "labels": "data.labels", "attrs": "data.attrs",
    "image_size": "data.image_size", "load_size": "data.load_size",
    "generator": "net.generator", "ngf": "net.ngf", "ndf": "net.ndf", "norm": "net.norm",
    "steps": "train.steps", "epochs": "train.epochs", "batch_size": "train.batch_size", "lr": "train.lr",
    "gan_loss": "train.gan_loss", "device": "train.device", "precision": "train.precision", "seed": "train.seed",
    "workers": "train.workers", "sample_every": "train.sample_every", "save_every": "train.save_every",
    "log_every": "train.log_every", "ema": "train.ema", "compile": "train.compile", "channels_last": "train.channels_last",
    "eval_every": "train.eval_every", "eval_a": "train.eval_a", "eval_b": "train.eval_b",
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


def _make_train_command(method_cls):
    @user_errors
    def command(
        ctx: typer.Context,
        a: Optional[Path] = typer.Option(None, "--a", help=_help("data.a")),
        b: Optional[Path] = typer.Option(None, "--b", help=_help("data.b")),
        data: Optional[Path] = typer.Option(None, "--data", help=_help("data.data")),
        images: Optional[Path] = typer.Option(None, "--images", help=_help("data.images")),
        labels: Optional[Path] = typer.Option(None, "--labels", help=_help("data.labels")),
        attrs: Optional[str] = typer.Option(None, "--attrs", help=_help("data.attrs")),
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
        ema: Optional[float] = typer.Option(None, "--ema", help=_help("train.ema")),
        compile: Optional[bool] = typer.Option(None, "--compile/--no-compile", help=_help("train.compile")),
        channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last", help=_help("train.channels_last")),
        seed: Optional[int] = typer.Option(None, "--seed", help=_help("train.seed")),
        workers: Optional[int] = typer.Option(None, "--workers", help=_help("train.workers")),
        sample_every: Optional[int] = typer.Option(None, "--sample-every", help=_help("train.sample_every")),
        save_every: Optional[int] = typer.Option(None, "--save-every", help=_help("train.save_every")),
        log_every: Optional[int] = typer.Option(None, "--log-every", help=_help("train.log_every")),
        eval_every: Optional[int] = typer.Option(None, "--eval-every", help=_help("train.eval_every")),
        eval_a: Optional[Path] = typer.Option(None, "--eval-a", help=_help("train.eval_a")),
        eval_b: Optional[Path] = typer.Option(None, "--eval-b", help=_help("train.eval_b")),
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
        run_dir = out or next_free_folder(Path("runs") / method_cls.name)
        # Under torchrun every process runs this command; only rank 0 talks.
        console.quiet = int(os.environ.get("RANK", "0")) != 0
        console.print(f"[bold]{cfg.method}[/] → {run_dir}  ({'resuming' if resume else 'new run'})", soft_wrap=True)
        result = train(cfg, run_dir, resume=resume, stop_after=stop_after, progress=not quiet, console=console)
        if result.interrupted:
            console.print(f"[yellow]stopped at step {result.step}/{result.total_steps}; checkpoint saved. "
                          f"Continue with: img2img train {cfg.method} --resume --out {run_dir}[/]", soft_wrap=True)
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
    inputs: list[str] = typer.Argument(..., help="images, videos, folders or glob patterns (quote globs: 'photos/*.jpg')"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="output image (one input) or folder; default ./translated/. Outputs keep the input's name and size"),
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
    shard: Optional[str] = typer.Option(None, "--shard", help="I/N: take only share I (0-based) of N of the sorted inputs, "
                                        "e.g. --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT; combines with torchrun"),
) -> None:
    """Translate images, videos, folders or globs with a trained model; each output keeps its input's size and name."""
    from img2img.translate import TranslateReport, Translator, translate_files
    from img2img.translate.outputs import plan_jobs, prepare_targets

    if batch_size < 1:
        raise UserError("--batch-size must be at least 1")
    if temporal and not 0.0 <= temporal_strength <= 0.95:
        raise UserError("--temporal-strength must be between 0 and 0.95")
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
    else:
        targets = [("", Translator(model, direction=direction, device=device, precision=precision, compile=compile,
                                   test_dropout=test_dropout))]
    plans = [(translator, plan_jobs(inputs, output, name_suffix=suffix)) for suffix, translator in targets]
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
            console.print(f"[red]failed:[/] {msg}", soft_wrap=True)

    with Progress(*columns, console=console, disable=quiet or not jobs) as bar:
        task = bar.add_task("translate", total=len(jobs))
        report = TranslateReport()
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
                                   batch_size=batch_size, size=size, overwrite=overwrite,
                                   temporal={"strength": temporal_strength} if temporal else None)
        report.written += videos.written
        report.skipped += videos.skipped
        report.failed += videos.failed
        jobs += [j for _, js in video_plans for j in js]
    if not jobs:
        console.print("nothing to do: this shard has no inputs")
        return
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
    from img2img.nets import describe_discriminator, describe_generator

    mf = load_model(model)
    d = mf.data
    table = Table(show_header=False, box=None)
    table.add_row("file", str(model))
    table.add_row("method", mf.method)
    table.add_row("format version", str(d["format_version"]))
    table.add_row("directions", ", ".join(mf.directions))
    if d.get("domains"):
        table.add_row("attributes" if "attributes" in mf.directions else "domains", ", ".join(d["domains"]))
    table.add_row("trained at", f"{d['image_size']} px, {d['channels']} channel(s), {d['step']} steps")
    for name, g in d["generators"].items():
        table.add_row(f"generator {name}", f"{describe_generator(g['arch'])}, {mf.parameter_count()[name]:,} parameters")
    if "classifier" in d:
        table.add_row("discriminator", describe_discriminator(d["classifier"]["arch"]))
    init = d.get("config", {}).get("net", {}).get("init")
    if init:
        table.add_row("initialisation", "PyTorch default" if init == "default" else init)
    table.add_row("test-time norm", d.get("test_time_norm", "running"))
    if any(g["arch"].get("dropout") for g in d["generators"].values()):
        seed = mf.test_dropout_seed
        table.add_row("test-time dropout", "off" if seed is None else f"on, as in training (fixed masks, seed {seed})")
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


def _progress_factory(bar: Progress):
    """(description, total) -> advance(n): one rich task per stage of a long computation."""

    def make(description: str, total: int):
        task = bar.add_task(description, total=total)
        return lambda n: bar.advance(task, n)

    return make


def _fmt(key: str, value) -> str:
    if key == "psnr":
        return f"{value:.2f} dB"
    if key == "fid":
        return f"{value:.2f}"
    return f"{value:.4f}"


@app.command("eval")
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

    if batch_size < 1 or kid_subsets < 1 or kid_subset_size < 2 or limit < 0:
        raise UserError("--batch-size and --kid-subsets must be at least 1, --kid-subset-size at least 2, --limit 0 or more")
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
                                   progress=progress)
        else:
            result = evaluate_model(model, a=a, b=b, data=data, direction=direction, extractor=extractor,
                                    size=image_size, batch_size=batch_size, device=str(dev), limit=limit,
                                    kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, save_dir=save,
                                    paired=paired, precision=precision, progress=progress, test_dropout=test_dropout)
    table = Table(title=f"{result.get('method', 'folders')} {result.get('direction', '')}".strip(), show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    labels = {"fid": "FID", "kid": "KID", "l1": "L1 (0-1 scale)", "psnr": "PSNR", "ssim": "SSIM"}
    for key, label in labels.items():
        if key in result:
            value = _fmt(key, result[key]) + (f" ± {result['kid_std']:.4f}" if key == "kid" else "")
            table.add_row(label, value)
    info_line = result.get("data") or f"{result['real_images']} real ({real}) vs {result['fake_images']} generated ({fake})"
    out_console.print(table)
    out_console.print(info_line + (f"; features: {result['features']}" if "features" in result else ""), soft_wrap=True)
    if json_path is not None:
        try:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot write {json_path}: {exc.strerror or exc}") from None
        console.print(f"scores written to {json_path}", soft_wrap=True)


@app.command()
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

    report = export_model(model, output, direction)
    inputs = "x (N, C, H, W) in [-1, 1]" + (", cond (N, domains)" if report.conditional else "")
    out_console.print(f"wrote {report.path} ({report.format}; generator {report.generator} for {report.direction}; "
                  f"inputs {inputs}; H and W multiples of {report.stride})", soft_wrap=True)
    shape = "x".join(map(str, report.check_shape))
    ok = report.max_abs_diff <= tolerance
    out_console.print(f"parity with PyTorch on a random {shape} input: max abs difference {report.max_abs_diff:.3g} "
                      f"({'ok' if ok else 'FAILED'}, tolerance {tolerance:g})", soft_wrap=True)
    if not ok:
        raise typer.Exit(EXIT_SOME_FAILED)


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
