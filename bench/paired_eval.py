"""Score a paired model on a folder of A|B test images: L1 and PSNR against the ground truth,
beside two baselines (output = input; output = the mean training target).

    python bench/paired_eval.py RUN/model.pt --test DIR --train DIR [--size 128]

Pixel metrics reward blur (the mean photo scores well on facades): look at the samples too.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from img2img.data.io import list_images, load_image, pil_to_tensor
from img2img.metrics import l1_01, psnr_01
from img2img.translate import Translator
from torchvision.utils import save_image


def halves(path: Path, size: int, direction: str) -> tuple[torch.Tensor, torch.Tensor]:
    ab = pil_to_tensor(load_image(path))
    w = ab.shape[-1] // 2
    a, b = ab[..., :w], ab[..., w : 2 * w]
    a, b = (F.interpolate(t[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0] for t in (a, b))
    return (a, b) if direction == "a2b" else (b, a)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--test", required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--grid", default=None, help="write input | output | truth rows for the first 8 test images")
    args = p.parse_args()
    tr = Translator(args.model, device="cpu")
    direction = tr.direction
    mean_target = torch.stack([halves(f, args.size, direction)[1] for f in list_images(args.train)]).mean(0)
    scores = {"model": [], "input": [], "mean_train_target": []}
    grid = []
    for f in list_images(args.test):
        x, y = halves(f, args.size, direction)
        out = tr(x[None])[0].cpu()
        for name, pred in (("model", out), ("input", x), ("mean_train_target", mean_target)):
            scores[name].append((l1_01(pred, y), psnr_01(pred, y)))
        if len(grid) < 24:
            grid += [x, out, y]
    result = {name: {"L1": sum(s[0] for s in v) / len(v), "PSNR_dB": sum(s[1] for s in v) / len(v), "images": len(v)}
              for name, v in scores.items()}
    print(json.dumps(result, indent=2))
    if args.grid:
        save_image(torch.stack(grid), args.grid, nrow=3, normalize=True, value_range=(-1, 1))


if __name__ == "__main__":
    main()
