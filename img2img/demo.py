"""`img2img demo`: the whole product in about a minute on a laptop CPU, on built-in synthetic data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid

from img2img.atomic import next_free_folder
from img2img.config import build_config
from img2img.data.io import list_images, load_image, pil_to_tensor, save_image_atomic
from img2img.data.synthetic import make_paired
from img2img.errors import require_in_range
from img2img.methods import get_method
from img2img.train import train
from img2img.translate import Translator, translate_files
from img2img.translate.outputs import plan_jobs


def save_titled_grid(images: torch.Tensor, titles: list[str], path: Path, min_tile: int = 160) -> None:
    """Images (N, C, H, W) in [-1, 1] in len(titles) columns under a title row, tiles enlarged (nearest)
    to at least min_tile pixels so the small demo images can be looked at."""
    scale = max(1, -(-min_tile // images.shape[-1]))
    big = images.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)
    grid = make_grid(big.clamp(-1, 1).add(1).div(2), nrow=len(titles), padding=4, pad_value=1.0)
    body = Image.fromarray(grid.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy())
    title_h = 18
    canvas = Image.new("RGB", (body.width, body.height + title_h), (255, 255, 255))
    canvas.paste(body, (0, title_h))
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default()
    column = (body.width - 4) / len(titles)
    for k, title in enumerate(titles):
        draw.text((4 + k * column + 2, 3), title, fill=(0, 0, 0), font=font)
    save_image_atomic(canvas, path)


@dataclass
class DemoResult:
    run_dir: Path
    inputs: Path
    translated: Path
    comparison: Path | None
    interrupted: bool = False
    steps_done: int = 0


def run_demo(out: str | Path, steps: int = 1000, device: str = "auto", size: int = 64,
             console: Console | None = None) -> DemoResult:
    console = console or Console(stderr=True)
    require_in_range("--steps", steps, 1, 10**7)  # before any folder is made
    root = next_free_folder(out, empty_counts_as_free=True)
    train_dir = make_paired(root / "data" / "train", count=32, size=size, seed=0)
    test_dir = make_paired(root / "data" / "test", count=6, size=size, seed=1)
    inputs = root / "data" / "test_inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    truths = []
    for path in list_images(test_dir):
        ab = load_image(path)
        ab.crop((0, 0, size, size)).save(inputs / path.name)
        truths.append(pil_to_tensor(ab.crop((size, 0, 2 * size, size))))
    console.print(f"synthetic data: {train_dir} (label maps | textured 'photos'), {len(truths)} held-out inputs in {inputs}")

    cfg = build_config(get_method("pix2pix"), overrides={
        "data.data": str(train_dir), "data.image_size": size, "net.ngf": 32, "net.ndf": 32,
        "train.steps": steps, "train.device": device, "train.sample_every": max(steps // 4, 1),
        "train.save_every": steps, "train.log_every": 20})
    run_dir = root / "run"
    try:
        trained = train(cfg, run_dir, console=console)
    except KeyboardInterrupt:  # before training began
        return DemoResult(run_dir, inputs, root / "translated", None, interrupted=True)
    if trained.interrupted:
        return DemoResult(run_dir, inputs, root / "translated", None, interrupted=True, steps_done=trained.step)

    translated = root / "translated"
    translator = Translator(run_dir / "model.pt", device=device)
    jobs = plan_jobs([str(inputs)], translated)
    translate_files(translator, jobs)
    rows = []
    for job, truth in zip(jobs, truths):
        rows += [pil_to_tensor(load_image(job.source)), pil_to_tensor(load_image(job.target)), truth]
    comparison = root / "comparison.png"
    save_titled_grid(torch.stack(rows), ["input", "translation", "ground truth"], comparison)
    return DemoResult(run_dir, inputs, translated, comparison, steps_done=trained.step)
