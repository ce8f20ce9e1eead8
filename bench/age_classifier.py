"""Judge a StarGAN age model with a separate age classifier trained on the real training faces.

    python bench/age_classifier.py train --data ../shared/data/utkface_agegroups -o runs/age_classifier.pt
    python bench/age_classifier.py judge RUN/model.pt --classifier runs/age_classifier.pt \
        --test ../shared/data/utkface_agegroups/test [-o result.json]

train: a small CNN (four stride-2 conv blocks, global pooling, a linear layer) learns the domain of
each real training face at the model's size (64 px by default), with flips and small shifts, for a
fixed number of epochs; it reports its accuracy on the real test faces and saves itself.
judge: every test face is translated to every other domain by the StarGAN model, and this
classifier (which StarGAN never saw, unlike its own D) labels the translations. Reported:
- target_rate: share of translations (source != target) assigned to their target domain;
- untranslated_rate: share of the untranslated inputs assigned to those same targets (what a
  model that changed nothing would score); the gap between the two is what the model did;
- target_prob / untranslated_prob: the classifier's mean probability of the target, same split;
- label_effect: mean |G(x, c1) - G(x, c2)| / mean |G(x, c1)| over pairs of targets (how far the label
  moves the output, relative to its scale);
- per-target rates and the source -> target table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from img2img.data.io import list_images, load_image, pil_to_tensor
from img2img.modelfile import load_model
from img2img.translate.domains import domain_translators


def load_resized(path: Path, size: int) -> torch.Tensor:
    """The same resize as bench/stargan_eval.py, so translations and real faces reach the classifier alike."""
    x = pil_to_tensor(load_image(path))[None]
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]


def load_domains(root: Path, size: int, domains: list[str] | None = None) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    domains = domains or sorted(p.name for p in root.iterdir() if p.is_dir())
    xs, ys = [], []
    for k, name in enumerate(domains):
        files = list_images(root / name, f"folder of domain {name}")
        xs += [load_resized(f, size) for f in files]
        ys += [k] * len(files)
    return domains, torch.stack(xs), torch.tensor(ys)


def small_cnn(n_classes: int, width: int = 32) -> nn.Module:
    layers: list[nn.Module] = []
    ch = 3
    for out in (width, 2 * width, 4 * width, 4 * width):
        layers += [nn.Conv2d(ch, out, 3, 2, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(True)]
        ch = out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(ch, n_classes))


def augment(x: torch.Tensor, shift: int = 4) -> torch.Tensor:
    """Random horizontal flips and shifts of up to `shift` pixels (reflect padding, then a random crop)."""
    flip = torch.rand(x.shape[0]) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    h, w = x.shape[-2:]
    padded = F.pad(x, [shift] * 4, mode="reflect")
    i, j = torch.randint(0, 2 * shift + 1, (2,)).tolist()
    return padded[:, :, i : i + h, j : j + w]


@torch.no_grad()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net.eval()
    pred = torch.cat([net(x[k : k + 256]).argmax(1) for k in range(0, len(x), 256)])
    return float((pred == y).float().mean())


def train(args: argparse.Namespace) -> None:
    torch.manual_seed(args.seed)
    root = Path(args.data)
    domains, x, y = load_domains(root / "train", args.size)
    _, xt, yt = load_domains(root / "test", args.size, domains)
    net = small_cnn(len(domains))
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=args.epochs * ((len(x) + args.batch - 1) // args.batch))
    start = time.time()
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(len(x))
        for k in range(0, len(x), args.batch):
            idx = order[k : k + args.batch]
            loss = F.cross_entropy(net(augment(x[idx])), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}/{args.epochs}: loss {float(loss.detach()):.3f}, test accuracy {accuracy(net, xt, yt):.3f}", flush=True)
    result = {"domains": domains, "image_size": args.size, "epochs": args.epochs, "train_images": len(x),
              "test_images": len(xt), "test_accuracy": round(accuracy(net, xt, yt), 4),
              "train_accuracy": round(accuracy(net, x, y), 4), "seconds": round(time.time() - start, 1)}
    torch.save({"state_dict": net.state_dict(), **result}, args.out)
    print(json.dumps(result, indent=2))


def load_classifier(path: str) -> tuple[nn.Module, dict]:
    saved = torch.load(path, map_location="cpu", weights_only=True)
    net = small_cnn(len(saved["domains"]))
    net.load_state_dict(saved["state_dict"])
    return net.eval(), saved


@torch.no_grad()
def judge(args: argparse.Namespace) -> None:
    net, saved = load_classifier(args.classifier)
    mf = load_model(args.model)
    domains = list(mf.data.get("domains") or [])
    if domains != saved["domains"]:
        raise SystemExit(f"the model's domains {domains} are not the classifier's {saved['domains']}")
    size = int(saved["image_size"])
    translators = dict(domain_translators(mf, "all", device="cpu"))
    n = len(domains)
    hits, base = torch.zeros(n, n), torch.zeros(n, n)  # [source, target] counts assigned to target
    prob, base_prob = torch.zeros(n, n), torch.zeros(n, n)  # [source, target] summed target probabilities
    counts = torch.zeros(n)
    real_correct = 0
    moved, scale = 0.0, 0.0  # sums of mean |G(x, c_t1) - G(x, c_t2)| and of mean |G(x, c_t1)|, over target pairs
    for s, name in enumerate(domains):
        files = list_images(Path(args.test) / name, f"test folder for domain {name}")
        files = files[: args.limit] if args.limit else files
        for k in range(0, len(files), 32):
            x = torch.stack([load_resized(f, int(mf.data["image_size"])) for f in files[k : k + 32]])
            p_real = net(F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)).softmax(1)
            real_correct += int((p_real.argmax(1) == s).sum())
            counts[s] += len(x)
            ys = []
            for t, target in enumerate(domains):
                y = translators[f"_{target}"](x)
                ys.append(y)
                p = net(F.interpolate(y, size=(size, size), mode="bilinear", antialias=True)).softmax(1)
                hits[s, t] += float((p.argmax(1) == t).sum())
                base[s, t] += float((p_real.argmax(1) == t).sum())
                prob[s, t] += float(p[:, t].sum())
                base_prob[s, t] += float(p_real[:, t].sum())
            for t1 in range(n):
                for t2 in range(t1 + 1, n):
                    moved += float((ys[t1] - ys[t2]).abs().mean()) * len(x)
                    scale += float(ys[t1].abs().mean()) * len(x)
    off = ~torch.eye(n, dtype=torch.bool)
    pairs = counts[:, None].expand(n, n)

    def share(m: torch.Tensor) -> float:
        return round(float(m[off].sum() / pairs[off].sum()), 4)

    result = {
        "model": args.model, "step": mf.data.get("step"), "classifier": args.classifier,
        "classifier_test_accuracy": saved["test_accuracy"], "domains": domains, "test_images": int(counts.sum()),
        "real_accuracy": round(real_correct / float(counts.sum()), 4),
        "target_rate": share(hits), "untranslated_rate": share(base),
        "target_prob": share(prob), "untranslated_prob": share(base_prob),
        "identity_rate": round(float(hits.diagonal().sum() / counts.sum()), 4),
        "label_effect": round(moved / scale, 4),
        "target_rate_by_target": {t: round(float(hits[off[:, j], j].sum() / pairs[off[:, j], j].sum()), 4)
                                  for j, t in enumerate(domains)},
        "untranslated_rate_by_target": {t: round(float(base[off[:, j], j].sum() / pairs[off[:, j], j].sum()), 4)
                                        for j, t in enumerate(domains)},
        "source_to_target": {f"{a} -> {b}": round(float(hits[i, j] / counts[i]), 4)
                             for i, a in enumerate(domains) for j, b in enumerate(domains) if i != j},
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the age classifier on the real training faces")
    t.add_argument("--data", default="../shared/data/utkface_agegroups", help="folder with train/ and test/ domain sub-folders")
    t.add_argument("-o", "--out", default="runs/age_classifier.pt")
    t.add_argument("--size", type=int, default=64)
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--seed", type=int, default=0)
    j = sub.add_parser("judge", help="score a StarGAN model's translations with the classifier")
    j.add_argument("model")
    j.add_argument("--classifier", default="runs/age_classifier.pt")
    j.add_argument("--test", default="../shared/data/utkface_agegroups/test")
    j.add_argument("--limit", type=int, default=0, help="test images per domain (0 = all)")
    j.add_argument("-o", "--out", default=None, help="also write the JSON here")
    args = p.parse_args()
    train(args) if args.command == "train" else judge(args)


if __name__ == "__main__":
    main()
