"""The training data path: the streaming DataLoader (decode + resize + crop per step, the path before the
cache) beside the decoded-image cache (decode once, crop/flip/normalise on the device), on real folders.

    python bench/data_speed.py --a DIR --b DIR [--size 256] [--batch 1] [--batches 200] [--device cpu] [--workers 0]
                               [--train-steps N [--ngf 16]]

Prints ms per batch for the streaming path, for the cache's first pass (which decodes every image
it meets) and for the cache once warm, and the speed-up of the warm cache. Also called by
train_speed.py --data-a/--data-b. Both paths yield bit-identical batches (tests/test_trainer.py).
--train-steps N also runs the whole trainer (img2img.train.train, CycleGAN with --ngf/--ndf) for N steps
each way, streaming (--workers 0: the loop before the cache) and cached, and prints seconds per step.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader

from img2img.config import build_config
from img2img.data.cache import CachedBatches, cache_bytes
from img2img.data.datasets import StepBatchSampler, build_dataset
from img2img.device import resolve_device
from img2img.methods import get_method
from img2img.train.loop import _to_device


def _per_batch(it, n: int, device: torch.device) -> float:
    start = time.perf_counter()
    for _ in range(n):
        batch = next(it)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    del batch
    return (time.perf_counter() - start) / n


def compare_data_paths(a: str, b: str, size: int, batch: int, batches: int, device: torch.device, workers: int = 0) -> None:
    cfg = build_config(get_method("cyclegan"), overrides={"data.a": a, "data.b": b, "data.image_size": size, "train.steps": 1})
    ds = build_dataset("unpaired", cfg.data, "cyclegan")
    n = min(batches, len(ds) // batch)

    def sampler():
        return StepBatchSampler(len(ds), batch, 0, 0, ds.n_b)

    loader = DataLoader(ds, batch_sampler=sampler(), num_workers=workers, pin_memory=device.type == "cuda")
    streaming = _per_batch((_to_device(x, device) for x in loader), n, device)
    cached = CachedBatches(ds, sampler(), device, prefetch=False)  # no decode-ahead thread: the first pass pays in full
    it = iter(cached)
    cold = _per_batch(it, n, device)
    warm = _per_batch(iter(cached), n, device)  # the same batches again, every image now decoded
    print(f"data path, {len(ds)}+{ds.n_b} images at {size} px (load {cfg.data.resolved_load_size}), batch {batch}, device {device}, "
          f"{n} batches; cache {cache_bytes(ds) / 2**20:,.1f} MiB")
    print(f"  {'streaming DataLoader, ' + str(workers) + ' workers (before)':44s} {1000 * streaming:8.2f} ms/batch")
    print(f"  {'decoded cache, first pass (decodes)':44s} {1000 * cold:8.2f} ms/batch")
    print(f"  {'decoded cache, warm (after)':44s} {1000 * warm:8.2f} ms/batch")
    print(f"  speed-up (warm cache over streaming): {streaming / warm:.1f}x")
    cached.close()


def compare_training(a: str, b: str, size: int, batch: int, steps: int, ngf: int, device: torch.device, repeats: int = 3) -> None:
    import tempfile

    from rich.console import Console

    from img2img.train import train

    paths = {"streaming, 0 workers (before)": 0, "decoded cache (after)": -1}
    best = {label: float("inf") for label in paths}
    for r in range(repeats):  # interleaved in ABBA order, best of each: a shared machine's load drifts between runs
        for label, workers in (list(paths.items()) if r % 2 == 0 else list(paths.items())[::-1]):
            cfg = build_config(get_method("cyclegan"), overrides={
                "data.a": a, "data.b": b, "data.image_size": size, "train.batch_size": batch, "train.steps": steps,
                "net.ngf": ngf, "net.ndf": ngf, "train.device": str(device), "train.workers": workers, "train.log_every": steps})
            with tempfile.TemporaryDirectory() as out:
                result = train(cfg, f"{out}/run", progress=False, console=Console(quiet=True))
            best[label] = min(best[label], result.seconds / steps)
    rows = list(best.items())
    print(f"whole trainer, CycleGAN ngf {ngf} at {size} px, batch {batch}, {steps} steps each, best of {repeats} "
          f"(previews and the final save included):")
    for label, sec in rows:
        print(f"  {label:44s} {sec:8.3f} s/step")
    print(f"  speed-up: {rows[0][1] / rows[1][1]:.2f}x")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--device", default="cpu")
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--train-steps", type=int, default=0)
    p.add_argument("--ngf", type=int, default=16)
    args = p.parse_args()
    device = resolve_device(args.device)
    compare_data_paths(args.a, args.b, args.size, args.batch, args.batches, device, args.workers)
    if args.train_steps:
        compare_training(args.a, args.b, args.size, args.batch, args.train_steps, args.ngf, device)


if __name__ == "__main__":
    main()
