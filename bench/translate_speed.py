"""Translation speed: plain fp32 eager (the reference implementations' way) vs img2img's path.

    python bench/translate_speed.py [--device cpu|cuda] [--size 256] [--hd] [--batch 8] [--compile] [--variants bf16,bf16-cl,...]

Synthetic input and a randomly initialised ResNet-9 generator (ngf 64, as CycleGAN ships it);
--model RUN/model.pt times a trained one instead. The optimized path is what `img2img translate`
does (translate.translator.InferenceGenerator): precision auto (bf16 on GPUs and on CPUs with native
bf16, held in the weights rather than autocast), channels-last, instance norms as per-channel group
norms, plus torch.compile with --compile. Prints images/s, achieved TFLOP/s, peak memory and the speed-up.
"""

from __future__ import annotations

import argparse
import copy

import torch

from speed_common import Variant, device_peak, flops_of, parse_variants, peak_memory_gib, print_comparison, reset_peak, timed, write_json
from img2img.device import compile_in_place, resolve_device, resolve_precision
from img2img.modelfile import load_model
from img2img.nets import build_generator, init_weights
from img2img.translate.translator import InferenceGenerator


def main(argv: list[str] | None = None) -> dict:
    """Run the comparison for argv (default: the command line); returns the figures --json would write."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--size", type=int, default=256, help="square input side")
    p.add_argument("--hd", action="store_true", help="1920x1080 input instead of --size")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--generator", default="resnet_9")
    p.add_argument("--ngf", type=int, default=64, help="filters of the random generator (64 = CycleGAN's)")
    p.add_argument("--model", default=None, help="time this model file's first generator instead")
    p.add_argument("--precision", default="auto", help="of the optimized path (auto = img2img translate's default)")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--variants", default="", help="time these ways instead of img2img's one, each beside the baseline: "
                   "comma-separated PRECISION[-cl][-compile|-graphs] (e.g. bf16,bf16-cl,fp32-cl,bf16-graphs; auto = img2img's precision)")
    p.add_argument("--peak-tflops", type=float, default=0.0, help="the device's peak (default: the GPU table in speed_common)")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    if args.model:
        mf = load_model(args.model)
        name = next(iter(mf.data["generators"]))
        net = mf.generator(name, device)
    else:
        arch = dict(name=args.generator, in_channels=3, out_channels=3, ngf=args.ngf, norm="instance", dropout=False)
        net = init_weights(build_generator(arch)).to(device).eval()
    h, w = (1080, 1920) if args.hd else (args.size, args.size)
    h, w = -(-h // 4) * 4, -(-w // 4) * 4  # the generator's stride (translate pads the same way)
    x = torch.rand(args.batch, 3, h, w, device=device) * 2 - 1
    flops = flops_of(lambda: net(x[:1])) * args.batch

    rows = []
    reset_peak(device)
    with torch.no_grad():
        base = timed(lambda: net(x), device, warmup=1, iters=args.iters)
    rows.append(("fp32 eager (baseline)", base, peak_memory_gib(device)))

    precision = resolve_precision(args.precision, device, inference=True)
    ours = Variant(precision, True, args.compile)  # what `img2img translate` does
    for v in parse_variants(args.variants) or [ours]:
        v = v.resolved(precision)
        fast = InferenceGenerator(copy.deepcopy(net), v.precision, device, channels_last=v.channels_last)
        if v.compile:
            compile_in_place([fast.net], v.compile_mode)
        reset_peak(device)
        opt = timed(lambda: fast(x), device, warmup=3 if v.compile else 2, iters=args.iters)
        rows.append((v.label + (" (img2img)" if v == ours else ""), opt, peak_memory_gib(device)))
        del fast

    peak, peak_source = device_peak(device, args.peak_tflops)
    print(f"device {device}, input {w}x{h}, batch {args.batch}, {flops / args.batch / 1e9:.1f} GFLOP per image"
          + (f"; peak {peak:.0f} TFLOP/s: {peak_source}" if peak else ""))
    figures = print_comparison(rows, args.batch, "images/s", flops, peak)
    record = {"bench": "translate_speed", "generator": args.model or args.generator, "width": w, "height": h,
              "batch": args.batch, "device": str(device), "gflop_per_image": flops / args.batch / 1e9,
              "peak_tflops": peak, "peak_source": peak_source, "rows": figures}
    write_json(args.json, record)
    return record


if __name__ == "__main__":
    main()
