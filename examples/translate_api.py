"""Translate an image and a video from Python.

    python examples/translate_api.py RUN/model.pt photo.jpg clip.mp4

Writes photo_translated.png and clip_translated.mp4 next to the inputs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

from img2img.translate import TemporalFilter, Translator, convert_video


def main(model: str, image: str, video: str) -> None:
    translator = Translator(model, device="auto")  # direction: a2b unless given; precision="bf16" for speed

    # An image: PIL in, PIL out, same size.
    out = translator.translate_image(Image.open(image))
    out.save(Path(image).with_name(Path(image).stem + "_translated.png"))

    # Tensors: translator(x) takes (N, C, H, W) in [-1, 1] and returns the same shape.

    # A video: same frame count, fps and size; audio copied when an ffmpeg is available.
    target = Path(video).with_name(Path(video).stem + "_translated.mp4")
    result = convert_video(translator, video, target, batch_size=8, size=None,  # size=512: faster, less detail
                           temporal=TemporalFilter(strength=0.8),  # or None: plain per-frame translation
                           on_frames=lambda n: print(".", end="", flush=True))
    s = result.stats
    print(f"\n{target}: {s.frames} frames at {s.fps:.1f} frames/s, audio {result.audio}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
