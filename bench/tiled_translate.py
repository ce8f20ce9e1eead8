"""Tiled vs whole-image translation: difference and peak memory (random-weight generator, synthetic image).

    python bench/tiled_translate.py --size 1024 --tile 512            # difference at 1024x1024
    python bench/tiled_translate.py --size 6000x4000 --tile 0 --no-whole  # automatic tiles; peak memory

The generator has unit-gain random weights, so its output depends strongly on every norm's statistics
(a harder case than a trained net's smooth features). Peak memory is the process's peak RSS (CPU).
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch

from img2img.nets import build_generator, init_weights
from img2img.nets.layers import for_fast_inference, for_inference
from img2img.translate.tiles import (PEAK_ELEMENTS_PER_PIXEL_AND_FILTER, auto_tile, available_bytes, translate_tiled)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1024")
    ap.add_argument("--generator", default="resnet_9")
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--tile", type=int, default=512, help="0 = automatic (memory budget: --budget-gib)")
    ap.add_argument("--budget-gib", type=float, default=0, help="memory budget for the automatic tile (default: half the free RAM)")
    ap.add_argument("--stats-pixels", type=int, default=0, help="cap on the statistics pass (0: whole image)")
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--no-whole", action="store_true", help="skip the whole-image reference (too big)")
    args = ap.parse_args()
    w, h = (int(v) for v in (args.size.split("x") if "x" in args.size else (args.size, args.size)))
    torch.manual_seed(0)
    arch = {"name": args.generator, "in_channels": 3, "out_channels": 3, "ngf": args.ngf, "norm": "instance", "dropout": False}
    net = for_inference(init_weights(build_generator(arch), "normal", 0.02))
    with torch.no_grad():
        for p in net.parameters():
            if p.ndim == 4:
                p.normal_(0, 0.5 / p[0].numel() ** 0.5)
    dtype = torch.bfloat16 if args.bf16 else None
    net = for_fast_inference(net, dtype)
    run = lambda t, i: net(t.to(dtype=dtype or torch.float32, memory_format=torch.channels_last)).float()  # noqa: E731
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    x = (torch.stack([torch.sin(5 * xx + yy), torch.cos(7 * yy) * xx, xx * yy])[None] + 0.2 * torch.randn(1, 3, h, w)).clamp(-1, 1)
    element = 2 if dtype else 4
    budget = int(args.budget_gib * (1 << 30)) or available_bytes(torch.device("cpu")) // 2
    tile = args.tile or auto_tile(h, w, args.ngf, element, budget, 4)
    stats_pixels = args.stats_pixels or budget // (PEAK_ELEMENTS_PER_PIXEL_AND_FILTER * args.ngf * element)
    out = {"size": f"{w}x{h}", "generator": args.generator, "ngf": args.ngf, "dtype": "bf16" if dtype else "fp32",
           "tile": tile, "stats_pixels_cap": stats_pixels, "budget_gib": round(budget / (1 << 30), 2)}
    with torch.no_grad():
        t0 = time.perf_counter()
        tiled = translate_tiled(run, net, x, tile=tile or max(h, w), stride=4, stats_budget_pixels=stats_pixels)
        out["tiled_s"] = round(time.perf_counter() - t0, 1)
        out["peak_rss_gib_after_tiled"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20), 2)
        if not args.no_whole:
            t0 = time.perf_counter()
            whole = run(x, 0)
            out["whole_s"] = round(time.perf_counter() - t0, 1)
            diff = (tiled - whole).abs() * 127.5
            out.update(mean_diff_255=round(diff.mean().item(), 3), max_diff_255=round(diff.max().item(), 2),
                       p999_diff_255=round(diff.flatten().kthvalue(int(0.999 * diff.numel())).values.item(), 2),
                       output_std_255=round(whole.std().item() * 127.5, 1),
                       peak_rss_gib_after_whole=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1 << 20), 2))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
