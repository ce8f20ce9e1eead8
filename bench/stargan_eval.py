"""Check a StarGAN model the paper's way: does its classifier see translations in their target domain?

    python bench/stargan_eval.py RUN/model.pt --test DIR [--limit 100] [--grid OUT.png]

DIR holds one sub-folder per domain, named as in training (e.g. utkface_agegroups/test/age_20-39).
Each test image is resized to the model's training size and translated to every other domain; the
model's own classifier (StarGAN's D class head, kept in the model file) then labels the result.
Reported:
- real_accuracy: the classifier on the untranslated test images (how much it knows at all);
- target_rate: share of translations (source != target) it assigns to the target domain;
- untranslated_rate: share of untranslated inputs it already assigns to those same targets (the
  baseline target_rate must beat: a model that changed nothing would score this);
- per source -> target rates, and the same split by target only.
G was trained to satisfy this very classifier, so target_rate is optimistic; a classifier trained
separately on real images (as the paper did for RaFD) is the stricter test.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import save_image

from img2img.data.io import list_images, load_image, pil_to_tensor
from img2img.modelfile import load_model
from img2img.translate.domains import classify, domain_translators, load_classifier


def load_resized(path: Path, size: int) -> torch.Tensor:
    x = pil_to_tensor(load_image(path))[None]
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("--test", required=True, help="folder with one sub-folder of test images per domain")
    p.add_argument("--limit", type=int, default=0, help="test images per domain (0 = all)")
    p.add_argument("--grid", default=None, help="write input | each domain rows for 2 test images per domain")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=16)
    args = p.parse_args()

    mf = load_model(args.model)
    domains = list(mf.data.get("domains") or [])
    if not domains or "attributes" in mf.directions:
        raise SystemExit(f"{args.model}: a single-label StarGAN model (trained on domain sub-folders) is needed")
    size = int(mf.data["classifier"]["image_size"])
    classifier = load_classifier(mf, args.device)
    translators = dict(domain_translators(mf, "all", device=args.device))  # suffix "_<domain>" -> Translator
    n = len(domains)
    hits = torch.zeros(n, n)  # [source, target] translations classified as target
    base = torch.zeros(n, n)  # [source, target] untranslated inputs classified as target
    counts = torch.zeros(n)
    real_correct = 0
    grid: list[torch.Tensor] = []
    for s, name in enumerate(domains):
        files = list_images(Path(args.test) / name, f"test folder for domain {name}")
        files = files[: args.limit] if args.limit else files
        for k in range(0, len(files), args.batch_size):
            x = torch.stack([load_resized(f, size) for f in files[k : k + args.batch_size]]).to(args.device)
            pred_real = classify(classifier, x, size).argmax(1).cpu()
            real_correct += int((pred_real == s).sum())
            counts[s] += len(x)
            outputs = []
            for t, target in enumerate(domains):
                y = translators[f"_{target}"](x)
                outputs.append(y.cpu())
                hits[s, t] += float((classify(classifier, y, size).argmax(1).cpu() == t).sum())
                base[s, t] += float((pred_real == t).sum())
            if k == 0:
                for i in range(min(2, len(x))):
                    grid += [x[i].cpu()] + [o[i] for o in outputs]
    off = ~torch.eye(n, dtype=torch.bool)
    pairs = counts[:, None].expand(n, n)
    result = {
        "model": args.model, "domains": domains, "image_size": size, "test_images": int(counts.sum()),
        "real_accuracy": round(real_correct / float(counts.sum()), 4),
        "target_rate": round(float(hits[off].sum() / pairs[off].sum()), 4),
        "untranslated_rate": round(float(base[off].sum() / pairs[off].sum()), 4),
        "identity_rate": round(float(hits.diagonal().sum() / counts.sum()), 4),
        "target_rate_by_target": {t: round(float(hits[off[:, j], j].sum() / pairs[off[:, j], j].sum()), 4)
                                  for j, t in enumerate(domains)},
        "source_to_target": {f"{a} -> {b}": round(float(hits[i, j] / counts[i]), 4)
                             for i, a in enumerate(domains) for j, b in enumerate(domains) if i != j},
    }
    print(json.dumps(result, indent=2))
    if args.grid:
        save_image(torch.stack(grid), args.grid, nrow=n + 1, normalize=True, value_range=(-1, 1), padding=2)


if __name__ == "__main__":
    main()
