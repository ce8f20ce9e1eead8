"""The one training loop every method shares.

It owns the device and precision, the data stream, learning-rate schedules, logging, sample grids,
checkpoints and resume, the progress bar, and clean stops on Ctrl-C / SIGTERM. What a training
step does is the method's business (methods/).
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch.utils.data import DataLoader, default_collate
from torchvision.utils import save_image

from img2img import config as config_mod
from img2img.config import RunConfig
from img2img.data.datasets import StepBatchSampler, build_dataset
from img2img.device import amp_dtype, compile_in_place, resolve_device, resolve_precision
from img2img.errors import UserError
from img2img.methods import get_method
from img2img.methods.base import generator_arch
from img2img.modelfile import save_model
from img2img.nets import generator_gflop
from img2img.train.checkpoint import load_checkpoint, save_checkpoint, set_rng_state
from img2img.train.distributed import DistInfo, any_rank, average_gradients_before_step, broadcast_parameters, init_distributed
from img2img.train.ema import GeneratorEMA
from img2img.train.evaluator import FIDEvaluator, build_evaluator
from img2img.train.schedule import lr_factor

MODEL_FILE, CHECKPOINT_FILE, LOG_FILE, SAMPLES_DIR, CONFIG_FILE = "model.pt", "checkpoint.pt", "log.jsonl", "samples", "config.json"


@dataclass
class TrainResult:
    out_dir: Path
    step: int
    total_steps: int
    interrupted: bool
    seconds: float


class StopFlag:
    """Ctrl-C or SIGTERM asks the loop to stop after the current step; a second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""

    def _handler(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested, self.signal_name = True, signal.Signals(signum).name

    @contextmanager
    def installed(self) -> Iterator["StopFlag"]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for s, h in previous.items():
                signal.signal(s, h)


def resume_config(out_dir: str | Path, overrides: dict) -> RunConfig:
    """The stored configuration of a run, with the few settings that may change on resume."""
    ckpt_cfg = load_checkpoint(Path(out_dir) / CHECKPOINT_FILE)["config"]
    cfg = config_mod.from_dict(ckpt_cfg, get_method(ckpt_cfg["method"]))
    changeable = {"train.steps", "train.epochs", "train.device", "train.workers", "train.sample_every",
                  "train.save_every", "train.log_every",
                  "train.eval_every", "train.eval_a", "train.eval_b", "train.eval_data", "train.eval_max", "train.eval_inception"}
    for key, value in overrides.items():
        current = config_mod.flatten({s: ckpt_cfg[s] for s in config_mod.SECTIONS}).get(key)
        if key not in changeable and value != current:
            raise UserError(f"cannot change {key} when resuming (the run used {current!r}); start a new run with another --out instead")
    config_mod.apply(cfg, config_mod.with_run_length_settled(overrides))
    config_mod.validate(cfg)
    return cfg


def generator_step_gflop(cfg: RunConfig, world: int = 1) -> float:
    """Generator GFLOP per training step in one process: the work that decides whether CPU bf16 pays."""
    return generator_gflop(generator_arch(cfg), cfg.data.image_size) * max(1, cfg.train.batch_size // world)


def _preview_grid(columns: list[torch.Tensor], path: Path) -> None:
    """Rows are images, columns are the method's views (input, output, target/reconstruction...)."""
    rows = torch.stack([torch.stack([c[i].float().cpu() for c in columns]) for i in range(columns[0].shape[0])])
    save_image(rows.flatten(0, 1), path, nrow=len(columns), normalize=True, value_range=(-1, 1), padding=2)


def _to_device(batch: dict, device: torch.device, channels_last: bool = False) -> dict:
    def move(v):
        v = v.to(device, non_blocking=True)
        return v.contiguous(memory_format=torch.channels_last) if channels_last and v.dim() == 4 else v

    return {k: move(v) if torch.is_tensor(v) else v for k, v in batch.items()}


def train(cfg: RunConfig, out_dir: str | Path, *, resume: bool = False, stop_after: int = 0,
          progress: bool = True, console: Console | None = None, evaluator: FIDEvaluator | None = None) -> TrainResult:
    """Train (or continue) a run in out_dir. stop_after > 0 ends this invocation after that many steps.

    evaluator: scores held-out data every train.eval_every steps (default: built from train.eval_*).
    """
    console = console or Console(stderr=True)
    out = Path(out_dir)
    ckpt_path = out / CHECKPOINT_FILE
    if not resume and ckpt_path.exists():
        raise UserError(f"{out} already holds a run; continue it with --resume or choose another --out")

    device = resolve_device(cfg.train.device)
    dist_info = init_distributed(device.type)
    if dist_info.enabled and device.type == "cuda":
        device = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    precision = resolve_precision(cfg.train.precision, device, step_gflop=generator_step_gflop(cfg, dist_info.world))
    method_cls = get_method(cfg.method)
    dataset = build_dataset(method_cls.dataset_kind, cfg.data, cfg.method)
    n_b = getattr(dataset, "n_b", 0)

    torch.manual_seed(cfg.train.seed)
    method = method_cls(cfg, device, amp_dtype(precision))
    sampler_probe = StepBatchSampler(len(dataset), cfg.train.batch_size, cfg.train.seed, 0, n_b, world=dist_info.world)
    total = cfg.train.steps or cfg.train.epochs * sampler_probe.steps_per_epoch
    if total <= 0:
        raise UserError("nothing to train: give --steps N or --epochs N")
    if dist_info.enabled:  # before the schedulers, which wrap optimizer.step themselves
        for opt in method.optimizers().values():
            average_gradients_before_step(opt, dist_info.world)
    factor = lr_factor(cfg.train.lr_policy, total, cfg.train.decay_start)
    schedulers = {k: torch.optim.lr_scheduler.LambdaLR(opt, factor) for k, opt in method.optimizers().items()}

    if cfg.train.channels_last:
        for net in method.nets().values():
            net.to(memory_format=torch.channels_last)
    ema = GeneratorEMA({name: net for name, (_, net) in method.exported()[0].items()}, cfg.train.ema) if cfg.train.ema else None

    start = 0
    if resume:
        ckpt = load_checkpoint(ckpt_path)
        method.load_state_dict(ckpt["method"])
        if ema is not None:
            ema.load_state_dict(ckpt["ema"])
        if method.scaler is not None and "scaler" in ckpt:
            method.scaler.load_state_dict(ckpt["scaler"])
        for k, sched in schedulers.items():
            sched.load_state_dict(ckpt["schedulers"][k])
            sched.lr_lambdas = [factor]  # the schedule follows the (possibly extended) total
            for group, base in zip(sched.optimizer.param_groups, sched.base_lrs):
                group["lr"] = base * factor(ckpt["step"])
        set_rng_state(ckpt["rng"])
        start = ckpt["step"]
    else:
        method.prepare(dataset)
    if dist_info.enabled:
        broadcast_parameters(method.nets())
        if not resume:  # different dropout / pool draws per replica, like independent workers
            torch.manual_seed(cfg.train.seed + 1_000 * dist_info.rank)
    if cfg.train.compile:
        compile_in_place(method.nets().values())
    if start >= total:
        console.print(f"[yellow]{out} has already trained {start} of {total} steps; nothing to do[/]")
        return TrainResult(out, start, total, False, 0.0)
    end = min(total, start + stop_after) if stop_after else total
    evaluator = evaluator or build_evaluator(cfg, out, device)  # before any file is written: a bad eval setting fails cleanly
    main = dist_info.is_main
    if main:
        try:
            (out / SAMPLES_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the run directory {out}: {exc.strerror or exc}") from None
        (out / CONFIG_FILE).write_text(json.dumps(cfg.to_dict(), indent=2))

    workers = cfg.train.workers if cfg.train.workers >= 0 else (0 if device.type == "cpu" else min(8, torch.get_num_threads()))
    loader = DataLoader(dataset, batch_sampler=StepBatchSampler(len(dataset), cfg.train.batch_size, cfg.train.seed, start, n_b,
                                                                rank=dist_info.rank, world=dist_info.world),
                        num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                        generator=torch.Generator().manual_seed(cfg.train.seed))
    preview = _to_device(default_collate([dataset[k] for k in dataset.preview_keys(4)]), device, cfg.train.channels_last)
    t = cfg.train

    def write_model(path: Path, step: int) -> None:
        gens, directions = method.exported()
        if ema is not None:  # ship the averaged weights
            gens = {name: (arch, ema.module(name)) for name, (arch, _) in gens.items()}
        save_model(path, method=cfg.method, generators=gens, directions=directions, config=cfg.to_dict(),
                   step=step, test_time_norm=method.test_time_norm, domains=getattr(method, "domains", None),
                   extras=method.model_extras())

    def save(step: int) -> None:
        extra = {"ema": ema.state_dict()} if ema is not None else {}
        if method.scaler is not None:
            extra["scaler"] = method.scaler.state_dict()
        save_checkpoint(ckpt_path, config=cfg.to_dict(), step=step, method_state=method.state_dict(),
                        schedulers={k: s.state_dict() for k, s in schedulers.items()}, extra=extra)
        write_model(out / MODEL_FILE, step)

    def write_samples(step: int) -> None:
        _preview_grid(method.sample(preview), out / SAMPLES_DIR / f"step_{step:07d}.png")

    stop = StopFlag()
    began = time.perf_counter()
    step = start
    interrupted = False
    last_losses: dict[str, float] = {}
    window_start, window_steps = time.perf_counter(), 0
    columns = [TextColumn(f"[bold]{cfg.method}[/]"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn()]
    # Only rank 0 logs, previews, saves and shows progress; the other replicas just train.
    with stop.installed(), open(out / LOG_FILE if main else os.devnull, "a", encoding="utf-8") as log, \
            Progress(*columns, console=console, disable=not (progress and main)) as bar:
        task = bar.add_task("train", total=total, completed=start, info="")
        if progress and main:
            console.print(f"[dim]device {device}, precision {precision}[/]")
        log.write(json.dumps({"event": "resume" if resume else "start", "step": start, "total_steps": total,
                              "device": str(device), "precision": precision, "time": time.time()}) + "\n")
        data_iter = iter(loader)
        while step < end:
            batch = _to_device(next(data_iter), device, cfg.train.channels_last)
            losses = method.train_step(batch, step)
            if method.scaler is not None:
                method.scaler.update()
            if ema is not None:
                ema.update({name: net for name, (_, net) in method.exported()[0].items()})
            with warnings.catch_warnings():
                # A method may leave an optimizer out of some steps (StarGAN's n_critic); the schedule still
                # follows the loop's step count, so torch's "scheduler before optimizer" warning does not apply.
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before `optimizer\.step\(\)`")
                for sched in schedulers.values():
                    sched.step()
            step += 1
            window_steps += 1
            bar.advance(task)
            stop.requested = any_rank(stop.requested, dist_info, device)
            boundary = step == end
            saving = boundary or (t.save_every and step % t.save_every == 0)
            if step % t.log_every == 0 or saving or boundary or stop.requested:
                last_losses = {k: float(v) for k, v in losses.items()}
                bad = [k for k, v in last_losses.items() if not math.isfinite(v)]
                if bad:
                    raise UserError(f"loss {', '.join(bad)} became {last_losses[bad[0]]} at step {step}; stopped without saving, "
                                    f"so {ckpt_path} still holds the last good state (try a lower --lr or --precision fp32)")
                now = time.perf_counter()
                rate = window_steps / max(now - window_start, 1e-9)
                window_start, window_steps = now, 0
                lr = next(iter(method.optimizers().values())).param_groups[0]["lr"]
                log.write(json.dumps({"step": step, "epoch": step / sampler_probe.steps_per_epoch, "lr": lr,
                                      "it_s": round(rate, 3), **{k: round(v, 6) for k, v in last_losses.items()},
                                      "time": time.time()}) + "\n")
                log.flush()
                bar.update(task, info=f"{rate:.2f} it/s " + " ".join(f"{k} {v:.3f}" for k, v in last_losses.items()))
            if main and ((t.sample_every and step % t.sample_every == 0) or boundary):
                write_samples(step)
            if main and saving:
                save(step)
            if main and evaluator is not None and evaluator.due(step, end):
                scores = evaluator(step, lambda path: write_model(path, step))
                log.write(json.dumps({"event": "eval", "step": step, **scores, "time": time.time()}) + "\n")
                log.flush()
            if stop.requested:
                interrupted = True
                break
        if interrupted and main:
            write_samples(step)
            save(step)
            log.write(json.dumps({"event": "interrupted", "signal": stop.signal_name, "step": step, "time": time.time()}) + "\n")
        else:
            log.write(json.dumps({"event": "stop" if step < total else "done", "step": step, "time": time.time()}) + "\n")
    return TrainResult(out, step, total, interrupted, time.perf_counter() - began)
