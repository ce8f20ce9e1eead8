"""The one training loop every method shares.

It owns the device and precision, the data stream, learning-rate schedules, logging, sample grids,
checkpoints and resume, the progress bar, and clean stops on Ctrl-C / SIGTERM. What a training
step does is the method's business (methods/).

`train()` is the public entry point; `Trainer` holds the parts, named as the steps they are:
set up, resume, one step, log, save, evaluate. Nothing in a step waits for the device: losses are
read as numbers only when they are logged, and under data parallelism the ranks agree on stopping
every STOP_CHECK_EVERY steps instead of every step.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
import warnings
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column
from torch.utils.data import DataLoader, default_collate

from img2img import config as config_mod
from img2img.config import RunConfig
from img2img.data.cache import CachedBatches, cache_bytes, cache_fits
from img2img.data.datasets import StepBatchSampler, build_dataset
from img2img.device import amp_dtype, compile_in_place, resolve_device, resolve_precision
from img2img.errors import UserError
from img2img.methods import get_method
from img2img.methods.base import generator_arch
from img2img.modelfile import save_model
from img2img.nets import generator_gflop, generator_stride, resolve_generator_name
from img2img.train.checkpoint import load_checkpoint, save_checkpoint, set_rng_state
from img2img.train.distributed import any_rank, average_gradients_before_step, broadcast_parameters, init_distributed
from img2img.train.ema import GeneratorEMA
from img2img.train.evaluator import FIDEvaluator, build_evaluator
from img2img.train.preview import save_preview
from img2img.train.rundir import (CHECKPOINT_FILE, CONFIG_FILE, LOG_FILE, MODEL_FILE, SAMPLES_DIR, check_new_run_dir,
                                  remove_stale_temporaries, run_lock, write_config)
from img2img.train.schedule import lr_factor
from img2img.train.timing import WAYS_OUT, ElapsedSchedule, EtaColumn, StepTimer, projection_message

__all__ = ["CHECKPOINT_FILE", "CONFIG_FILE", "LOG_FILE", "MODEL_FILE", "SAMPLES_DIR", "TrainResult", "Trainer",
           "resume_config", "train"]

STOP_CHECK_EVERY = 10  # steps between the ranks' agreement on a stop request (an all-reduce that waits for the device)
LOG_AT_LEAST_EVERY_S = 60.0  # slow steps: log losses at least this often, whatever log_every says


@dataclass
class TrainResult:
    out_dir: Path
    step: int
    total_steps: int
    interrupted: bool
    seconds: float
    saved_step: int | None = None  # the step checkpoint.pt holds at the end (None: no checkpoint)
    out_of_time: bool = False  # stopped (and saved) at its deadline rather than at its last step


class StopFlag:
    """Ctrl-C or SIGTERM asks the loop to stop after the current step; a second Ctrl-C stops at once.

    The first request is acknowledged at once through on_request (the step and the save may take a while).
    """

    def __init__(self, on_request: Callable[[str], None] | None = None) -> None:
        self.requested = False
        self.signal_name = ""
        self.on_request = on_request

    def _handler(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested, self.signal_name = True, signal.Signals(signum).name
        if self.on_request is not None:
            self.on_request(self.signal_name)

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
                  "train.save_every", "train.log_every", "train.sample_minutes", "train.save_minutes",
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
    return generator_gflop(generator_arch(cfg), *cfg.data.crop_hw) * max(1, cfg.train.batch_size // world)


def _to_device(batch: dict, device: torch.device, channels_last: bool = False) -> dict:
    def move(v):
        v = v.to(device, non_blocking=True)
        return v.contiguous(memory_format=torch.channels_last) if channels_last and v.dim() == 4 else v

    return {k: move(v) if torch.is_tensor(v) else v for k, v in batch.items()}


def _disk_error(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


class Trainer:
    """One training invocation: set up, resume, then steps with logging, previews, saves and evaluation."""

    def __init__(self, cfg: RunConfig, out_dir: str | Path, *, resume: bool = False, stop_after: int = 0,
                 progress: bool = True, console: Console | None = None, evaluator: FIDEvaluator | None = None,
                 deadline: float | None = None, announce: bool = True, planner=None):
        if stop_after < 0:
            raise UserError(f"--stop-after must be 0 (train to the end) or a positive number of steps, got {stop_after}")
        self.cfg, self.out, self.resume, self.stop_after = cfg, Path(out_dir), resume, stop_after
        self.deadline = deadline  # time.monotonic() at which to stop and save, as on SIGTERM
        self.announce = announce  # the projected-time line (off when a caller plans the run length itself)
        self.planner = planner  # sets the run's total on the way (img2img.train.timed.DeadlinePlanner)
        if planner is not None and stop_after:
            raise UserError("a run planned to a deadline cannot also stop after N steps")
        self.console = console or Console(stderr=True)
        self.show_progress = progress
        self.evaluator = evaluator
        self.ckpt_path = self.out / CHECKPOINT_FILE
        self.saved_step: int | None = None
        self.plans_made = 0
        if not resume:
            check_new_run_dir(self.out)

    # ----- set up
    def setup(self) -> None:
        cfg = self.cfg
        device = resolve_device(cfg.train.device)
        self.dist = init_distributed(device.type)
        if self.dist.enabled and device.type == "cuda":
            device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(device)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.device, self.main = device, self.dist.is_main
        if self.dist.enabled and self.planner is not None:
            raise UserError("a run planned to a deadline cannot run under torchrun (each process would plan its own length)")
        self.precision = resolve_precision(cfg.train.precision, device, step_gflop=generator_step_gflop(cfg, self.dist.world))
        if cfg.net.minibatch_std and cfg.train.batch_size // self.dist.world < 2 and self.main:
            self.console.print("[yellow]warning:[/] net.minibatch_std compares the images of a batch; with one image per "
                               "batch (per process) it adds a constant channel and changes nothing: use --batch-size 2 or more",
                               soft_wrap=True)
        method_cls = get_method(cfg.method)
        self.dataset = build_dataset(method_cls.dataset_kind, cfg.data, cfg.method, stride=generator_stride(
            resolve_generator_name(cfg.net.generator, cfg.data.net_side)))
        sizes_d = getattr(cfg.loss, "sizes_discriminator", False)  # StarGAN's D fits itself to the size
        self.dataset.check_shapes(cfg.train.batch_size, 1 if sizes_d else 3 * 2**cfg.net.d_layers)
        self.n_b = getattr(self.dataset, "n_b", 0)

        torch.manual_seed(cfg.train.seed)
        self.method = method_cls(cfg, device, amp_dtype(self.precision))
        probe = StepBatchSampler(len(self.dataset), cfg.train.batch_size, cfg.train.seed, 0, self.n_b, world=self.dist.world)
        self.steps_per_epoch = probe.steps_per_epoch
        self.total = cfg.train.steps or cfg.train.epochs * probe.steps_per_epoch
        if self.total <= 0:
            raise UserError("nothing to train: give --steps N or --epochs N")
        if self.dist.enabled:  # before the schedulers, which wrap optimizer.step themselves
            for opt in self.method.optimizers().values():
                average_gradients_before_step(opt, self.dist.world)
        self.factor = lr_factor(cfg.train.lr_policy, self.total, cfg.train.decay_start)
        self.schedulers = {k: torch.optim.lr_scheduler.LambdaLR(opt, self.factor) for k, opt in self.method.optimizers().items()}
        if cfg.train.channels_last:
            for net in self.method.nets().values():
                net.to(memory_format=torch.channels_last)
        self.ema = GeneratorEMA(self._generators(), cfg.train.ema) if cfg.train.ema else None

    def _generators(self) -> dict:
        return {name: net for name, (_, net) in self.method.exported()[0].items()}

    # ----- resume
    def restore(self) -> int:
        """Load the checkpoint (resume) or prepare the method's statistics (new run); the step to start at."""
        start = 0
        if self.resume:
            ckpt = load_checkpoint(self.ckpt_path)
            self.method.load_state_dict(ckpt["method"])
            if self.ema is not None:
                self.ema.load_state_dict(ckpt["ema"])
            if self.method.scaler is not None and "scaler" in ckpt:
                self.method.scaler.load_state_dict(ckpt["scaler"])
            for k, sched in self.schedulers.items():
                sched.load_state_dict(ckpt["schedulers"][k])
                sched.lr_lambdas = [self.factor]  # the schedule follows the (possibly extended) total
                for group, base in zip(sched.optimizer.param_groups, sched.base_lrs):
                    group["lr"] = base * self.factor(ckpt["step"])
            set_rng_state(ckpt["rng"])
            start = self.saved_step = ckpt["step"]
        else:
            self.method.prepare(self.dataset)
        if self.dist.enabled:
            broadcast_parameters(self.method.nets())
            if not self.resume:  # different dropout / pool draws per replica, like independent workers
                torch.manual_seed(self.cfg.train.seed + 1_000 * self.dist.rank)
        if self.cfg.train.compile:
            compile_in_place(self.method.nets().values())
        return start

    def batches(self, start: int) -> tuple[Iterator[dict], str]:
        """The data stream from `start` on, and a few words on how it is fed.

        workers -1 (auto): the decoded-image cache when it fits in half the available memory, else
        decoding worker processes (none on a CPU, where they would take cores from the step).
        workers >= 0: the streaming DataLoader with that many workers, as asked.
        """
        t, ds = self.cfg.train, self.dataset
        sampler = StepBatchSampler(len(ds), t.batch_size, t.seed, start, self.n_b, rank=self.dist.rank, world=self.dist.world)
        if t.workers < 0 and cache_fits(ds):
            # Decoding ahead in threads pays where the step runs elsewhere (a GPU); on a CPU those threads would take
            # cores from the step (measured: 0.96 -> 1.47 s/step for a 30-step run), so images are decoded when first needed.
            self.cached = CachedBatches(ds, sampler, self.device, t.channels_last, prefetch=self.device.type != "cpu")
            size = cache_bytes(ds)
            shown = f"{size / 2**20:,.0f} MiB" if size >= 2**20 else f"{size / 2**10:,.0f} kiB"
            return iter(self.cached), f"images decoded once into a {shown} cache"
        workers = t.workers if t.workers >= 0 else (0 if self.device.type == "cpu" else min(8, os.cpu_count() or 1))
        loader = DataLoader(ds, batch_sampler=sampler, num_workers=workers, pin_memory=self.device.type == "cuda",
                            persistent_workers=workers > 0, generator=torch.Generator().manual_seed(t.seed))
        stream = (_to_device(b, self.device, t.channels_last) for b in loader)
        return stream, f"images decoded every step by {workers or 'no'} worker process{'es' if workers != 1 else ''}"

    # ----- one step
    def train_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        losses = self.method.train_step(batch, step)
        if self.method.scaler is not None:
            self.method.scaler.update()
        if self.ema is not None:
            self.ema.update(self._generators())
        with warnings.catch_warnings():
            # A method may leave an optimizer out of some steps (StarGAN's n_critic); the schedule still
            # follows the loop's step count, so torch's "scheduler before optimizer" warning does not apply.
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before `optimizer\.step\(\)`")
            for sched in self.schedulers.values():
                sched.step()
        return losses

    # ----- log
    def log_event(self, event: str, step: int, **fields) -> None:
        self.log.write(json.dumps({"event": event, "step": step, **fields, "time": time.time()}) + "\n")
        self.log.flush()

    def log_losses(self, step: int, losses: dict[str, torch.Tensor], rate: float) -> dict[str, float]:
        values = {k: float(v) for k, v in losses.items()}  # the one place a step's results are waited for
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            kept = (f"{self.ckpt_path} still holds step {self.saved_step}" if self.saved_step is not None
                    else "no checkpoint was saved yet")
            raise UserError(f"loss {', '.join(bad)} became {values[bad[0]]} at step {step}; stopped without saving ({kept}); "
                            f"try a lower --lr or --precision fp32")
        lr = next(iter(self.method.optimizers().values())).param_groups[0]["lr"]
        # fp16: the loss scale after this step (it halves on each step an optimizer skipped for inf gradients)
        scale = {"loss_scale": self.method.scaler.get_scale()} if self.method.scaler is not None else {}
        self.log.write(json.dumps({"step": step, "epoch": step / self.steps_per_epoch, "lr": lr, "it_s": round(rate, 3),
                                   **{k: round(v, 6) for k, v in values.items()}, **scale, "time": time.time()}) + "\n")
        self.log.flush()
        return values

    # ----- save
    def write_model(self, path: Path, step: int) -> None:
        gens, directions = self.method.exported()
        if self.ema is not None:  # ship the averaged weights
            gens = {name: (arch, self.ema.module(name)) for name, (arch, _) in gens.items()}
        save_model(path, method=self.cfg.method, generators=gens, directions=directions, config=self.cfg.to_dict(),
                   step=step, test_time_norm=self.method.test_time_norm, domains=getattr(self.method, "domains", None),
                   extras=self.method.model_extras())

    def save(self, step: int) -> None:
        """checkpoint.pt, then model.pt, each replaced atomically; a failed write leaves the previous files whole."""
        extra = {"ema": self.ema.state_dict()} if self.ema is not None else {}
        if self.method.scaler is not None:
            extra["scaler"] = self.method.scaler.state_dict()
        try:
            save_checkpoint(self.ckpt_path, config=self.cfg.to_dict(), step=step, method_state=self.method.state_dict(),
                            schedulers={k: s.state_dict() for k, s in self.schedulers.items()}, extra=extra)
        except OSError as exc:
            kept = (f"{self.ckpt_path} still holds step {self.saved_step}" if self.saved_step is not None
                    else "no checkpoint has been saved")
            raise UserError(f"cannot save the checkpoint at step {step} ({_disk_error(exc)}); {kept}. "
                            f"Free some space and continue with --resume") from None
        self.saved_step = step
        self.log_event("saved", step)
        try:
            self.write_model(self.out / MODEL_FILE, step)
        except OSError as exc:
            raise UserError(f"cannot write {self.out / MODEL_FILE} at step {step} ({_disk_error(exc)}); "
                            f"{self.ckpt_path} holds step {step}: free some space and continue with --resume") from None

    def write_preview(self, step: int) -> None:
        """A labelled grid of the method's views on fixed inputs; a preview that cannot be written is only a warning."""
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            columns = self.method.sample(self.preview)
        titles = self.method.sample_titles(len(columns))
        try:
            save_preview(columns, titles, self.out / SAMPLES_DIR / f"step_{step:07d}.jpg")
        except OSError as exc:
            self.console.print(f"[yellow]warning:[/] could not write the preview of step {step}: {_disk_error(exc)}")

    # ----- evaluate
    def evaluate(self, step: int) -> None:
        scores = self.evaluator(step, lambda path: self.write_model(path, step))
        self.log_event("eval", step, **scores)

    # ----- the run
    def run(self) -> TrainResult:
        with ExitStack() as stack:
            self.setup()
            start = self.restore()
            if start >= self.total:
                self.console.print(f"[yellow]{self.out} has already trained {start} of {self.total} steps; nothing to do[/]")
                return TrainResult(self.out, start, self.total, False, 0.0, self.saved_step)
            self.evaluator = self.evaluator or build_evaluator(self.cfg, self.out, self.device)  # before any file is written
            if self.main:
                try:
                    self.out.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise UserError(f"cannot create the run directory {self.out}: {exc.strerror or exc}") from None
                stack.enter_context(run_lock(self.out))
                if not self.resume:
                    check_new_run_dir(self.out)  # again, now that no other training can be writing here
                for stale in remove_stale_temporaries(self.out):
                    self.console.print(f"[dim]removed {stale.name}, left by a save that was cut short[/]")
                write_config(self.out, self.cfg.to_dict())
                try:
                    (self.out / SAMPLES_DIR).mkdir(exist_ok=True)
                except OSError as exc:
                    raise UserError(f"cannot create {self.out / SAMPLES_DIR}: {exc.strerror or exc}") from None
            return self._loop(start, stack)

    def _loop(self, start: int, stack: ExitStack) -> TrainResult:
        cfg, t, main, console = self.cfg, self.cfg.train, self.main, self.console
        end = min(self.total, start + self.stop_after) if self.stop_after else self.total
        data, feeding = self.batches(start)
        stack.callback(lambda: getattr(self, "cached", None) and self.cached.close())
        items = [self.dataset[k] for k in self.dataset.preview_keys(4)]
        items = [x for x in items if x["a"].shape == items[0]["a"].shape and x.get("b", x["a"]).shape == items[0].get("b", items[0]["a"]).shape]
        self.preview = _to_device(default_collate(items), self.device, t.channels_last)  # whole images of one shape
        self.log = stack.enter_context(open(self.out / LOG_FILE if main else os.devnull, "a", encoding="utf-8"))
        show = self.show_progress and main

        def acknowledge(signal_name: str) -> None:
            if main:
                console.print(f"[yellow]{'Ctrl-C' if signal_name == 'SIGINT' else signal_name}: stopping after this step; "
                              f"saving... (press Ctrl-C again to stop at once without saving)[/]")

        stop = StopFlag(acknowledge)
        timer = StepTimer(start)
        saves = ElapsedSchedule(t.save_minutes * 60, first_s=120)
        previews = ElapsedSchedule(t.sample_minutes * 60, first_s=60)
        # The losses come last: on a narrow terminal they are what gets cut, never the ETA.
        fixed = lambda: Column(no_wrap=True)  # noqa: E731
        columns = [TextColumn(f"[bold]{cfg.method}[/]", table_column=fixed()), BarColumn(bar_width=20, table_column=fixed()),
                   MofNCompleteColumn(table_column=fixed()), TimeElapsedColumn(table_column=fixed()), EtaColumn(table_column=fixed()),
                   TextColumn("{task.fields[info]}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis", min_width=0))]
        bar = stack.enter_context(Progress(*columns, console=console, disable=not show, expand=True))
        stack.enter_context(stop.installed())
        task = bar.add_task("train", total=None if self.planner else self.total, completed=start, info="", eta=None)
        if show:
            console.print(f"[dim]device {self.device}, precision {self.precision}; {feeding}[/]")
        self.log_event("resume" if self.resume else "start", start, total_steps=self.total, device=str(self.device),
                       precision=self.precision)
        step, interrupted, projected = start, False, False
        window_start, window_steps, last_log = time.perf_counter(), 0, time.perf_counter()
        if self.planner is not None:
            self.planner.begin(start, time.monotonic())
        try:
            while step < end:
                losses = self.train_step(next(data), step)
                step += 1
                window_steps += 1
                timer.tick(step)
                if self.planner is not None:
                    planned = self.planner.update(step, time.monotonic())
                    if planned is not None:
                        self.replan(step, planned)
                        end = self.total
                        bar.update(task, total=self.total)
                unplanned = self.planner is not None and not self.plans_made
                bar.update(task, advance=1, eta=None if unplanned else timer.eta(step, self.total))
                if self.deadline is not None and not stop.requested and time.monotonic() >= self.deadline:
                    stop.requested, stop.signal_name = True, "deadline"
                if self.dist.enabled:
                    if step % STOP_CHECK_EVERY == 0 or step == end:
                        stop.requested = any_rank(stop.requested, self.dist, self.device)
                boundary = step == end
                saving = boundary or bool(t.save_every and step % t.save_every == 0) or (main and saves.due())
                now = time.perf_counter()
                if (step % t.log_every == 0 or step == start + 1 or now - last_log >= LOG_AT_LEAST_EVERY_S
                        or saving or boundary or stop.requested):
                    rate = window_steps / max(now - window_start, 1e-9)
                    values = self.log_losses(step, losses, rate)
                    window_start, window_steps, last_log = now, 0, now
                    speed = f"{rate:.2f} it/s" if rate >= 0.5 else f"{1 / rate:.1f} s/it"
                    bar.update(task, info=speed + " " + " ".join(f"{k} {v:.3f}" for k, v in values.items()))
                if main and self.announce and not projected and timer.projection_due(step):
                    projected = True
                    self._announce_projection(timer.seconds_per_step(step), step, show)
                if main and (boundary or bool(t.sample_every and step % t.sample_every == 0) or previews.due()):
                    self.write_preview(step)
                    previews.done()
                if main and saving:
                    self.save(step)
                    saves.done()
                if main and self.evaluator is not None and self.evaluator.due(step, end):
                    self.evaluate(step)
                if stop.requested:
                    interrupted = True
                    break
            out_of_time = interrupted and stop.signal_name == "deadline"
            if interrupted and main:
                self.write_preview(step)
                self.save(step)
                self.log_event("out_of_time" if out_of_time else "interrupted", step, signal=stop.signal_name)
            else:
                self.log_event("stop" if step < self.total else "done", step)
        except KeyboardInterrupt:  # the second Ctrl-C: out at once, saying what is on disk
            kept = (f"{self.ckpt_path} holds step {self.saved_step}" if self.saved_step is not None
                    else "no checkpoint was saved")
            lost = step - (self.saved_step or 0)
            if main:
                console.print(f"[red]stopped at once at step {step}: not saved: {lost} step{'s' if lost != 1 else ''} since the last "
                              f"save; {kept}[/]", soft_wrap=True)
                self.log_event("killed", step, saved_step=self.saved_step)
            return TrainResult(self.out, step, self.total, True, time.perf_counter() - timer.began, self.saved_step)
        return TrainResult(self.out, step, self.total, interrupted and not out_of_time, time.perf_counter() - timer.began,
                           self.saved_step, out_of_time)

    def replan(self, step: int, total: int) -> None:
        """Make `total` the run's length from here: its schedule, instance-noise horizon and stored config."""
        t = self.cfg.train
        first = self.plans_made == 0
        t.steps, t.epochs = total, 0
        self.total = total
        self.factor = lr_factor(t.lr_policy, total, t.decay_start)
        for sched in self.schedulers.values():
            sched.lr_lambdas = [self.factor] * len(sched.optimizer.param_groups)
            for group, base in zip(sched.optimizer.param_groups, sched.base_lrs):
                group["lr"] = base * self.factor(sched.last_epoch)  # the next step's, under the new plan
        d_inputs = getattr(self.method, "d_inputs", None)
        if d_inputs is not None and not t.instance_noise_steps:
            d_inputs.noise_steps = total
        self.plans_made += 1
        if not self.main:
            return
        write_config(self.out, self.cfg.to_dict())
        final = bool(getattr(self.planner, "final", False))
        self.log_event("plan", step, total_steps=total, final=final)
        if first or final:  # one line each, with or without the progress bar
            rate = getattr(self.planner, "rate", 0.0)
            what = "planned" if first else "final plan:"
            self.console.print(f"[dim]{rate:.2f} steps/s: {what} {total:,} steps in all"
                               f"{' (re-planned until the decay starts)' if first and not final else ''}[/]")

    def _announce_projection(self, sec_per_step: float, step: int, show: bool) -> None:
        line, long = projection_message(sec_per_step, self.total - step, self.total, str(self.device), self.precision)
        self.log_event("projection", step, seconds_per_step=round(sec_per_step, 4),
                       projected_s=round(sec_per_step * (self.total - step), 1))
        if show or long:
            self.console.print(line, soft_wrap=True)
        if long:
            self.console.print(f"[yellow]{WAYS_OUT}[/]", soft_wrap=True)


def train(cfg: RunConfig, out_dir: str | Path, *, resume: bool = False, stop_after: int = 0,
          progress: bool = True, console: Console | None = None, evaluator: FIDEvaluator | None = None,
          deadline: float | None = None, announce: bool = True, planner=None) -> TrainResult:
    """Train (or continue) a run in out_dir. stop_after > 0 ends this invocation after that many steps.

    evaluator: scores held-out data every train.eval_every steps (default: built from train.eval_*).
    deadline: a time.monotonic() value; the first step that ends after it ends the invocation, saved
    (result.out_of_time). announce=False leaves out the projected-time line. planner: sets the total on
    the way (planner.begin(step, now), then planner.update(step, now) -> new total or None after each step;
    img2img.train.timed.DeadlinePlanner, which train_for uses).
    """
    return Trainer(cfg, out_dir, resume=resume, stop_after=stop_after, progress=progress, console=console,
                   evaluator=evaluator, deadline=deadline, announce=announce, planner=planner).run()

