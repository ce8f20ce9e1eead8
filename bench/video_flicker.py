"""Flicker of a per-frame model with and without --temporal.

Flicker = mean absolute difference between consecutive output frames (0..255 levels). Two
synthetic clips with per-frame sensor-like noise: a static scene, and a slow pan (0.5 px/frame)
with a moving box. `clean` is the same clip without noise through the plain model: the part of
the frame-to-frame change that is real motion, which no filter should remove. `error` is the mean
absolute difference from the translation of that clean clip: the plain model's error is the noise
it amplifies; a filter lowers it by averaging and raises it where it lags behind motion.

    python bench/video_flicker.py [--model RUN/model.pt] [--frames 24] [--size 128]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from img2img.translate import Translator
from img2img.translate.temporal import TemporalFilter, flicker
from img2img.translate.video import translate_frames


class ListSink:
    def __init__(self):
        self.frames = []

    def write(self, frame, index):
        self.frames.append(frame.astype(np.float32))

    def close(self):
        pass


def make_clip(path: Path, size: int, frames: int, pan: float, noise: float, seed: int = 0) -> Path:
    """Lossless (FFV1) so the noise is exactly what we put in."""
    rng = np.random.default_rng(seed)
    big = size * 2
    xs, ys = np.meshgrid(np.arange(big, dtype=np.float32), np.arange(size, dtype=np.float32))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 25, (size, size))
    for i in range(frames):
        x = xs + pan * i
        scene = np.stack([128 + 80 * np.sin(x / 9.0), 128 + 60 * np.cos(ys / 7.0 + x / 23.0), 100 + 0.3 * x], -1)[:, :size]
        b = int(size / 4 + 2 * pan * i)
        scene[size // 3 : size // 3 + size // 5, b : b + size // 5] = (40, 220, 240)
        noisy = scene + (rng.normal(0, noise, scene.shape) if noise else 0)
        writer.write(np.clip(noisy, 0, 255).astype(np.uint8))
    writer.release()
    return path


def translate(translator, clip, temporal=None) -> np.ndarray:
    sink = ListSink()
    translate_frames(translator, clip, lambda info: sink, batch_size=4, temporal=temporal)
    return np.stack(sink.frames)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="a model.pt (default: a random-weight ResNet-6 built here)")
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--noise", type=float, default=4.0, help="per-frame noise, std in 0..255 levels")
    p.add_argument("--strength", type=float, default=0.8)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.model:
            model = args.model
        else:
            from video_speed import random_model

            model = random_model(tmp / "model.pt", ngf=16)
        translator = Translator(model, device="cpu")
        print(f"model: {args.model or 'random resnet_6 ngf 16'}; {args.size}px, {args.frames} frames, noise σ={args.noise}")
        print(f"{'clip':8} {'mode':24} {'flicker':>8} {'vs plain':>9} {'error':>7}")
        for name, pan in (("static", 0.0), ("pan", 0.5)):
            noisy = make_clip(tmp / f"{name}.avi", args.size, args.frames, pan, args.noise)
            clean = make_clip(tmp / f"{name}_clean.avi", args.size, args.frames, pan, 0.0)
            plain = translate(translator, noisy)
            ideal = translate(translator, clean)
            rows = [("plain (per frame)", plain),
                    ("--temporal", translate(translator, noisy, TemporalFilter(args.strength))),
                    ("--temporal + flow (API)", translate(translator, noisy, TemporalFilter(args.strength, use_flow=True)))]
            base = flicker(plain)
            for mode, out in rows:
                f = flicker(out)
                print(f"{name:8} {mode:24} {f:8.2f} {f / base:9.0%} {np.abs(out - ideal).mean():7.2f}")
            print(f"{name:8} {'clean input, plain':24} {flicker(ideal):8.2f}")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
