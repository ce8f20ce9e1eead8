"""Compare unpaired A->B models on the same test images: a side-by-side grid and distance statistics.

    python bench/unpaired_compare.py --test DIR --size 128 --grid OUT.png RUN1/model.pt RUN2/model.pt ...

For each model, over the first --limit test images (resized to --size):
- change: mean |G(x) - x| on the [0, 1] scale (0 = the model copies its input);
- distance_correlation: Pearson correlation between d(x_i, x_j) and d(G(x_i), G(x_j)) over all
  pairs, d = mean absolute pixel difference. DistanceGAN's premise is that good mappings keep it
  high (its paper, Fig. 1); a model that maps everything to one image scores near 0;
- output_spread: mean pairwise distance of the outputs over that of the inputs (collapse check).
The grid's rows are test images; its columns the input, then each model's output, in the order given.
FID/KID need the Inception network: use `img2img eval MODEL --a testA --b testB` for those.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import save_image

from img2img.data.io import list_images, load_image, pil_to_tensor
from img2img.translate import Translator


def load_resized(path: Path, size: int) -> torch.Tensor:
    x = pil_to_tensor(load_image(path))[None]
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]


def pair_distances(x: torch.Tensor) -> torch.Tensor:
    """d(x_i, x_j) for all i < j (mean absolute difference), via cdist so no pairs x pixels tensor is built."""
    flat = x.flatten(1)
    d = torch.cdist(flat, flat, p=1) / flat.shape[1]
    i, j = torch.triu_indices(len(x), len(x), 1)
    return d[i, j]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+")
    p.add_argument("--test", required=True, help="folder of domain-A test images")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--limit", type=int, default=120, help="test images used for the statistics")
    p.add_argument("--rows", type=int, default=8, help="test images shown in the grid")
    p.add_argument("--grid", default=None)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()

    files = list_images(args.test, "--test folder")[: args.limit]
    x = torch.stack([load_resized(f, args.size) for f in files])
    d_in = pair_distances(x)
    columns, results = [x[: args.rows]], {}
    for model in args.models:
        tr = Translator(model, direction="a2b", device=args.device)
        began = time.perf_counter()
        y = torch.cat([tr(x[k : k + 8]).cpu() for k in range(0, len(x), 8)])
        seconds = time.perf_counter() - began
        d_out = pair_distances(y)
        corr = float(torch.corrcoef(torch.stack([d_in, d_out]))[0, 1])
        results[model] = {"method": tr.model.method, "steps": tr.model.data["step"], "images": len(x),
                          "change_01": float((y - x).abs().mean() / 2), "distance_correlation": round(corr, 4),
                          "output_spread": round(float(d_out.mean() / d_in.mean()), 4),
                          "seconds_per_image": round(seconds / len(x), 4)}
        columns.append(y[: args.rows])
    print(json.dumps(results, indent=2))
    if args.grid:
        rows = torch.stack([torch.stack([c[i] for c in columns]) for i in range(len(columns[0]))])
        save_image(rows.flatten(0, 1), args.grid, nrow=len(columns), normalize=True, value_range=(-1, 1), padding=2)


if __name__ == "__main__":
    main()
