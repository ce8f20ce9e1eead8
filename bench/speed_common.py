"""Helpers shared by the speed benchmarks: timing, FLOP counting, peak memory."""

from __future__ import annotations

import datetime
import json
import platform
import resource
import time
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry


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


class _CountFlops(TorchDispatchMode):
    """FlopCounterMode's arithmetic (its per-op formulas) without its module tracker, whose hooks break
    autograd.grad (StarGAN's gradient penalty: "A leaf node was passed to _will_engine_execute_node")."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        count = flop_registry.get(func._overloadpacket)
        if count is not None:
            self.total += count(*args, **kwargs, out_val=out)
        return out


def flops_of(fn: Callable[[], object]) -> int:
    """Floating-point operations of fn() (matmuls and convolutions, forward and backward), counted per op."""
    with _CountFlops() as counter:
        fn()
    return counter.total


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gib(device: torch.device) -> float:
    """GPU: peak allocated by torch. CPU: the process's peak resident size (monotonic over the run)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from the vendors' data sheets, matched as substrings
# of torch.cuda.get_device_name(), most specific first. The fraction of the compute limit is reported
# against this table's entry for the GPU the bench ran on, so figures from different cards compare.
GPU_BF16_PEAK_TFLOPS: list[tuple[str, float]] = [
    ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0), ("H20", 148.0),
    ("GH200", 989.0), ("B200", 2250.0), ("A100", 312.0), ("A10G", 70.0), ("A10", 125.0),
    ("L40S", 362.0), ("L40", 181.0), ("L4", 121.0), ("RTX 4090", 165.0), ("RTX 3090", 71.0), ("V100", 125.0),
]


def device_peak(device: torch.device, given: float = 0.0) -> tuple[float, str]:
    """(peak TFLOP/s, where it came from): `given` if > 0, else the table entry for this GPU, else 0 (unknown/CPU)."""
    if given > 0:
        return given, "given on the command line"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, tflops in GPU_BF16_PEAK_TFLOPS:
            if key in name:
                return tflops, f"dense bf16 peak of {key} (table in bench/speed_common.py) for {name!r}"
        return 0.0, f"{name!r} is not in the peak table"
    return 0.0, "no compute limit for CPUs in the table"


def machine() -> dict:
    """What a result was measured on: device name, torch version, CPU model, date (UTC)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"torch": torch.__version__, "cpu": cpu, "cpu_threads": torch.get_num_threads(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


@dataclass(frozen=True)
class Variant:
    """One way to run a net, as the benches' --variants name it: PRECISION[-cl][-compile|-graphs], e.g. bf16-cl.
    graphs = torch.compile with mode reduce-overhead (CUDA graphs: no launch cost per kernel)."""
    precision: str
    channels_last: bool = False
    compile: bool = False
    compile_mode: str | None = None

    def resolved(self, auto: str) -> "Variant":
        """This way with precision "auto" replaced by what img2img resolves it to on the device."""
        return dataclasses.replace(self, precision=auto) if self.precision == "auto" else self

    @property
    def label(self) -> str:
        compiled = " CUDA graphs" if self.compile_mode == "reduce-overhead" else " compiled" if self.compile else ""
        return self.precision + (" channels-last" if self.channels_last else "") + compiled


def parse_variants(text: str) -> list[Variant]:
    """'bf16,bf16-cl,fp32-cl-compile,bf16-graphs' -> Variants; an unknown part is an error naming the known ones."""
    out = []
    for spec in filter(None, (s.strip() for s in text.split(","))):
        precision, *flags = spec.split("-")
        if precision not in ("fp32", "bf16", "fp16", "auto") or set(flags) - {"cl", "compile", "graphs"}:
            raise SystemExit(f"variant {spec!r}: want PRECISION[-cl][-compile|-graphs], PRECISION one of fp32, bf16, fp16, auto")
        graphs = "graphs" in flags
        out.append(Variant(precision, "cl" in flags, "compile" in flags or graphs, "reduce-overhead" if graphs else None))
    return out


def print_comparison(rows: list[tuple[str, float, float]], items: int, unit: str, flops: float, peak_tflops: float) -> list[dict]:
    """rows: (label, seconds per call, peak memory GiB), the baseline first; items per call in `unit`;
    flops per call. Prints throughput, achieved TFLOP/s (and the fraction of peak_tflops when given),
    memory and each row's speed-up over the first; returns the same figures as dicts."""
    out = []
    for label, sec, mem in rows:
        tflops = flops / sec / 1e12
        frac = f", {100 * tflops / peak_tflops:.1f}% of peak" if peak_tflops else ""
        print(f"  {label:40s} {items / sec:9.3f} {unit}  {tflops:7.3f} TFLOP/s{frac}  peak mem {mem:.2f} GiB"
              f"  {rows[0][1] / sec:.2f}x")
        out.append({"label": label, "per_s": items / sec, "unit": unit, "tflops": tflops,
                    "fraction_of_peak": tflops / peak_tflops if peak_tflops else None, "peak_mem_gib": mem,
                    "speedup_vs_baseline": rows[0][1] / sec})
    return out


def write_json(path: str | None, record: dict) -> None:
    """Write one bench's figures (plus machine()) as JSON when --json was given."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps({**record, "machine": machine()}, indent=2) + "\n")


def log_rate(log: str | Path, skip_windows: int) -> float:
    """Steps/s of a training run from its log.jsonl: the steps logged after the end of the first
    `skip_windows` loss records (start-up, autotuning, compilation), over the wall time they took."""
    records = [r for r in map(json.loads, Path(log).read_text().splitlines()) if "it_s" in r]
    if len(records) < 2:
        return records[-1]["it_s"]
    first, last = records[min(max(skip_windows, 1), len(records) - 1) - 1], records[-1]
    if "time" not in first or last["time"] <= first["time"]:
        return last["it_s"]
    return (last["step"] - first["step"]) / (last["time"] - first["time"])
