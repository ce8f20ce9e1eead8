"""Training speed of CycleGAN: plain fp32 eager (the reference way) vs an optimized configuration.

    python bench/train_speed.py [--device cpu|cuda] [--size 256] [--batch 1] [--precision auto] [--compile] [--json F]
                                [--variants bf16,bf16-cl,...] [--data-a DIR --data-b DIR]

Synthetic batches (no data loading) through the real CycleGAN method: two ResNet-9 generators, two
PatchGANs, LSGAN + cycle + identity losses, Adam. Prints image pairs/s, achieved TFLOP/s (counted on
one step), peak memory and the speed-up of the optimized path over the baseline; on a GPU the fraction
of its dense bf16 peak (speed_common.GPU_BF16_PEAK_TFLOPS). --json writes the same figures to a file.
With --data-a/--data-b it also times the data path on those folders: the streaming DataLoader beside
the decoded-image cache (bench/data_speed.py), so the share of a step that feeding it takes can be read
beside the step time.
"""

from __future__ import annotations

import argparse

import torch

from speed_common import Variant, device_peak, flops_of, parse_variants, peak_memory_gib, print_comparison, reset_peak, timed, write_json
from img2img.config import build_config
from img2img.device import amp_dtype, compile_in_place, resolve_device, resolve_precision
from img2img.methods import get_method
from img2img.train.loop import generator_step_gflop


def cyclegan_config(size: int, batch: int, ngf: int = 64, ndf: int = 64):
    return build_config(get_method("cyclegan"), overrides={"data.a": "-", "data.b": "-", "data.image_size": size,
                                                           "train.batch_size": batch, "train.steps": 1,
                                                           "net.ngf": ngf, "net.ndf": ndf})


def make(device: torch.device, size: int, batch: int, way: Variant, ngf: int = 64, ndf: int = 64):
    cfg = cyclegan_config(size, batch, ngf, ndf)
    torch.manual_seed(0)
    method = get_method("cyclegan")(cfg, device, amp_dtype(way.precision))
    fmt = torch.channels_last if way.channels_last else torch.contiguous_format
    for net in method.nets().values():
        net.to(memory_format=fmt)
    if way.compile:
        compile_in_place(method.nets().values(), way.compile_mode)
    batch_data = {k: (torch.rand(batch, 3, size, size, device=device) * 2 - 1).contiguous(memory_format=fmt) for k in ("a", "b")}
    return method, batch_data


def main(argv: list[str] | None = None) -> dict:
    """Run the comparison for argv (default: the command line); returns the figures --json would write."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--precision", default="auto", help="precision of the optimized path (auto = img2img's default)")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--variants", default="", help="time these ways instead of the one optimized path, each beside the "
                   "baseline: comma-separated PRECISION[-cl][-compile|-graphs] (e.g. bf16,bf16-cl,fp32-compile,bf16-graphs; auto = img2img's)")
    p.add_argument("--ngf", type=int, default=64, help="generator filters (64 = CycleGAN's)")
    p.add_argument("--ndf", type=int, default=64, help="discriminator filters (64 = CycleGAN's)")
    p.add_argument("--peak-tflops", type=float, default=0.0, help="the device's peak (default: the GPU table in speed_common)")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    p.add_argument("--data-a", help="real folder A: also time the data path (streaming vs decoded cache)")
    p.add_argument("--data-b", help="real folder B for --data-a")
    p.add_argument("--data-batches", type=int, default=100)
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    precision = resolve_precision(args.precision, device,
                                  step_gflop=generator_step_gflop(cyclegan_config(args.size, args.batch, args.ngf, args.ndf)))
    variants = parse_variants(args.variants) or [Variant(precision, args.channels_last, args.compile)]
    variants = [v.resolved(precision) for v in variants]
    results, base_flops = [], 0
    default = Variant(precision)  # what `img2img train` does unless told otherwise
    for label, v in [("fp32 eager (baseline)", Variant("fp32"))] + [(v.label + (" (img2img default)" if v == default else ""), v)
                                                                     for v in variants]:
        method, batch = make(device, args.size, args.batch, v, args.ngf, args.ndf)
        step = [0]

        def one():
            method.train_step(batch, step[0])
            if method.scaler is not None:
                method.scaler.update()
            step[0] += 1

        flops = flops_of(one) if not v.compile else None
        reset_peak(device)
        sec = timed(one, device, warmup=3 if v.compile else 1, iters=args.iters)  # CUDA graphs record on the 3rd call
        results.append((label, sec, peak_memory_gib(device)))
        base_flops = base_flops or flops
    peak, peak_source = device_peak(device, args.peak_tflops)
    print(f"device {device}, CycleGAN {args.size}x{args.size}, batch {args.batch}, {base_flops / 1e12:.2f} TFLOP per step"
          + (f"; peak {peak:.0f} TFLOP/s: {peak_source}" if peak else ""))
    rows = print_comparison(results, args.batch, "image pairs/s", base_flops, peak)
    record = {"bench": "train_speed", "method": "cyclegan", "size": args.size, "batch": args.batch,
              "ngf": args.ngf, "ndf": args.ndf, "device": str(device), "tflop_per_step": base_flops / 1e12,
              "peak_tflops": peak, "peak_source": peak_source, "rows": rows}
    write_json(args.json, record)
    if args.data_a and args.data_b:
        from data_speed import compare_data_paths

        compare_data_paths(args.data_a, args.data_b, args.size, args.batch, args.data_batches, device)
    return record


if __name__ == "__main__":
    main()
