"""Training-time augmentation: resize, random crop and flip, identical on both images of a pair.

torchvision.transforms.v2 draws one set of random parameters per call and applies it to every
tv_tensors.Image passed in that call, which is exactly the joint augmentation a pair needs.
"""

from __future__ import annotations

import functools

import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from img2img.config import DataConfig


def center_square(img: torch.Tensor, side: int) -> torch.Tensor:
    """The centre side x side square of img (the whole shorter side where img is smaller: never padded)."""
    h, w = img.shape[-2:]
    return v2.functional.center_crop(img, [min(side, h, w)] * 2)


def center_crop_steps(side: int) -> list:
    """StarGAN's face preprocessing starts with a centre crop (CelebA: 178 px of the 178x218 image), then
    resizes; data.center_crop = 0 skips it. A partial, not a lambda, so DataLoader workers can pickle it."""
    return [v2.Lambda(functools.partial(center_square, side=side))] if side else []


class PairTransform:
    def __init__(self, cfg: DataConfig):
        load = cfg.resolved_load_size
        steps = [
            *center_crop_steps(cfg.center_crop),
            # Bicubic as the reference (transforms.Resize(..., Image.BICUBIC)); antialiased when shrinking.
            v2.Resize((load, load), interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
            v2.RandomCrop(cfg.image_size),
        ]
        if cfg.flip:
            steps.append(v2.RandomHorizontalFlip())
        steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5] * cfg.channels, [0.5] * cfg.channels)]
        self.augment = v2.Compose(steps)

    @staticmethod
    def _image(img: Image.Image) -> tv_tensors.Image:
        return tv_tensors.Image(v2.functional.pil_to_tensor(img))

    def pair(self, a: Image.Image, b: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        ta, tb = self.augment(self._image(a), self._image(b))
        return ta.as_subclass(torch.Tensor), tb.as_subclass(torch.Tensor)

    def single(self, img: Image.Image) -> torch.Tensor:
        return self.augment(self._image(img)).as_subclass(torch.Tensor)
