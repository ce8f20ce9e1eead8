"""Helpers shared by the speed benchmarks: timing, FLOP counting, peak memory."""

from __future__ import annotations

import resource
import time
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, warmup: int, iters: int) -> float:
    """Seconds per call after warm-up (compilation and autotuning happen there)."""
    for _ in range(warmup):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    sync(device)
    return (time.perf_counter() - start) / iters


def flops_of(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gib(device: torch.device) -> float:
    """GPU: peak allocated by torch. CPU: the process's peak resident size (monotonic over the run)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def print_comparison(rows: list[tuple[str, float, float]], items: int, unit: str, flops: float, peak_tflops: float) -> None:
    """rows: (label, seconds per call, peak memory GiB), the baseline first; items per call in `unit`;
    flops per call. Prints throughput, achieved TFLOP/s (and the fraction of peak_tflops when given),
    memory, and the last row's speed-up over the first."""
    for label, sec, mem in rows:
        tflops = flops / sec / 1e12
        frac = f", {100 * tflops / peak_tflops:.1f}% of peak" if peak_tflops else ""
        print(f"  {label:40s} {items / sec:9.3f} {unit}  {tflops:7.3f} TFLOP/s{frac}  peak mem {mem:.2f} GiB")
    print(f"  speed-up: {rows[0][1] / rows[-1][1]:.2f}x")
