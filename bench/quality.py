"""The quality protocols: FID/KID (and pixel metrics for paired data) of a trained model on a
standard test split, the way the published comparisons measure it.

    python bench/quality.py horse2zebra RUN/model.pt [--root ../shared/data/horse2zebra] [--both]
    python bench/quality.py facades RUN/model.pt [--root ../shared/data/facades]

horse2zebra (CycleGAN, CUT ...): all of testA translated to B at 256x256, FID/KID against all of
    testB (--both also scores testB -> A against testA, for two-way models).
facades (pix2pix): the label maps (right halves of test/) translated to photos at 256x256, FID/KID
    against the test photos (left halves), plus L1, PSNR and SSIM against each ground-truth photo.
    The model must translate labels -> photo (trained with --direction b2a).

FID/KID use the Inception-v3 2015-12-05 network (pip install "img2img[metrics]", or --inception PATH);
KID is the mean and std over 100 subsets of min(1000, n) images. On sets this small FID is noisy:
it is reported with the number of images. --limit N scores only the first N images (a smoke check,
not a result). The scores are printed as JSON and, with --json, written to a file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from img2img.device import resolve_device
from img2img.errors import UserError
from img2img.metrics.evaluate import evaluate_model
from img2img.metrics.features import load_inception

PROTOCOLS = {
    "horse2zebra": {"root": "../shared/data/horse2zebra", "size": 256},
    "facades": {"root": "../shared/data/facades", "size": 256},
}


def run(protocol: str, model: str, root: Path, *, size: int, device: str, inception: str | None, limit: int,
        both: bool) -> list[dict]:
    dev = resolve_device(device)
    extractor = load_inception(inception, dev)
    common = dict(extractor=extractor, size=size, device=str(dev), limit=limit)
    jobs = []
    if protocol == "horse2zebra":
        jobs.append(dict(a=root / "testA", b=root / "testB", direction="a2b", paired=False))
        if both:
            jobs.append(dict(a=root / "testA", b=root / "testB", direction="b2a", paired=False))
    else:
        jobs.append(dict(data=root / "test", direction="b2a"))
    results = []
    for job in jobs:
        began = time.perf_counter()
        result = evaluate_model(model, **job, **common)
        result.update(protocol=protocol, root=str(root), seconds=round(time.perf_counter() - began, 1))
        results.append(result)
        summary = f"FID {result['fid']:.2f}  KID {result['kid']:.4f} ± {result['kid_std']:.4f}"
        if "psnr" in result:
            summary += f"  L1 {result['l1']:.4f}  PSNR {result['psnr']:.2f} dB  SSIM {result['ssim']:.4f}"
        print(f"{protocol} {result['direction']}: {summary}  ({result['images']} images vs "
              f"{result['reference_images']} references at {size} px)", file=sys.stderr)
    return results


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("protocol", choices=sorted(PROTOCOLS))
    p.add_argument("model", help="model file (RUN/model.pt)")
    p.add_argument("--root", default=None, help="dataset folder (default: the protocol's folder under ../shared/data)")
    p.add_argument("--size", type=int, default=None, help="test resolution (default 256, the protocols' size)")
    p.add_argument("--device", default="auto")
    p.add_argument("--inception", default=None, help="Inception TorchScript file (default: the metrics extra's)")
    p.add_argument("--limit", type=int, default=0, help="only the first N test images (smoke check; 0 = all)")
    p.add_argument("--both", action="store_true", help="horse2zebra: also testB -> A against testA")
    p.add_argument("--json", default=None, help="also write the results to this file")
    args = p.parse_args()
    spec = PROTOCOLS[args.protocol]
    try:
        results = run(args.protocol, args.model, Path(args.root or spec["root"]), size=args.size or spec["size"],
                      device=args.device, inception=args.inception, limit=args.limit, both=args.both)
    except UserError as exc:
        sys.exit(f"error: {exc}")
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
