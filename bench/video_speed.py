"""Video translation speed: frames/s for a 256x256 and a 1280x720 synthetic clip, with the share of
wall time each stage of the pipeline was busy (decode and encode run on their own threads, so the
shares overlap; `model waiting` is the time the model thread sat idle on I/O).

    python bench/video_speed.py                       # small random-weight model, CPU (and GPU if any)
    python bench/video_speed.py --model RUN/model.pt  # a real model
    python bench/video_speed.py --frames 48 --hd-frames 24 --precision bf16 --device cpu

The built-in model is a ResNet-6 generator with --ngf filters and random weights: speed does not
depend on what the weights are. Clips are written with OpenCV (mp4v) into a temporary folder.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from img2img.modelfile import save_model
from img2img.nets import build_generator, init_weights
from img2img.translate import Translator
from img2img.translate.temporal import TemporalFilter
from img2img.translate.video import convert_video


def random_model(path: Path, generator: str = "resnet_6", ngf: int = 16, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    arch = {"name": generator, "in_channels": 3, "out_channels": 3, "ngf": ngf, "norm": "instance",
            "dropout": False, "cond_channels": 0}
    net = init_weights(build_generator(arch), "normal", 0.02)
    save_model(path, method="cyclegan", generators={"G": (arch, net)}, directions={"a2b": {"generator": "G"}},
               config={"data": {"image_size": 256, "channels": 3}}, step=0)
    return path


def synthetic_clip(path: Path, width: int, height: int, frames: int, fps: float = 25.0) -> Path:
    """A drifting colour gradient with a moving box and mild noise, so codecs do real work."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    rng = np.random.default_rng(0)
    xs, ys = np.meshgrid(np.linspace(0, 1, width, dtype=np.float32), np.linspace(0, 1, height, dtype=np.float32))
    for i in range(frames):
        t = i / max(frames, 1)
        img = np.stack([255 * xs, 255 * ys, 255 * (0.5 + 0.5 * np.sin(6 * xs + 4 * ys + 6 * t))], -1)
        x0 = int((0.1 + 0.6 * t) * width)
        img[height // 3 : height // 2, x0 : x0 + width // 8] = (240, 240, 30)
        img += rng.normal(0, 3, img.shape).astype(np.float32)
        writer.write(np.clip(img, 0, 255).astype(np.uint8))
    writer.release()
    return path


def run(translator: Translator, clip: Path, out: Path, batch_size: int, size: int | None, temporal: bool) -> dict:
    # warm-up: first calls build kernels / cudnn plans; not part of the figure
    cap = cv2.VideoCapture(str(clip))
    ok, frame = cap.read()
    cap.release()
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].float().div(127.5).sub(1).repeat(batch_size, 1, 1, 1)
    translator(x)
    if translator.device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    result = convert_video(translator, clip, out, batch_size=batch_size, size=size, audio=False,
                           temporal=TemporalFilter() if temporal else None)
    wall = time.perf_counter() - t0
    s = result.stats
    return {"frames": s.frames, "fps": s.frames / wall, "shares": s.shares(), "size": s.size}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="a model.pt (default: a random-weight ResNet-6 built here)")
    p.add_argument("--ngf", type=int, default=16, help="filters of the built-in model")
    p.add_argument("--generator", default="resnet_6", help="generator of the built-in model")
    p.add_argument("--device", default="all", help="cpu, cuda, or all (cpu and, when present, cuda)")
    p.add_argument("--precision", default="fp32", help="fp32 or bf16")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--frames", type=int, default=24, help="frames of the 256x256 clip")
    p.add_argument("--hd-frames", type=int, default=8, help="frames of the 1280x720 clip")
    p.add_argument("--size", type=int, default=None, help="--size (short side) to translate at; default native")
    p.add_argument("--temporal", action="store_true", help="with the flicker filter on")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = Path(args.model) if args.model else random_model(tmp / "model.pt", args.generator, args.ngf)
        clips = [synthetic_clip(tmp / "clip256.mp4", 256, 256, args.frames),
                 synthetic_clip(tmp / "clip720.mp4", 1280, 720, args.hd_frames)]
        what = args.model or f"random {args.generator} ngf {args.ngf}"
        print(f"model: {what}; precision {args.precision}; batch {args.batch_size}; torch threads {torch.get_num_threads()}"
              + (f"; --size {args.size}" if args.size else "") + ("; --temporal" if args.temporal else ""))
        print(f"{'device':8} {'clip':>10} {'frames':>6} {'frames/s':>9} {'decode':>7} {'model':>7} {'encode':>7} {'model waiting':>14}")
        for device in devices:
            translator = Translator(model, device=device, precision=args.precision)
            for clip in clips:
                r = run(translator, clip, tmp / f"out_{clip.name}", args.batch_size, args.size, args.temporal)
                sh = r["shares"]
                print(f"{device:8} {r['size'][0]:>5}x{r['size'][1]:<4} {r['frames']:>6} {r['fps']:>9.2f} "
                      f"{sh['decode']:>7.1%} {sh['model']:>7.1%} {sh['encode']:>7.1%} {sh['model_waiting']:>14.1%}")


if __name__ == "__main__":
    main()
