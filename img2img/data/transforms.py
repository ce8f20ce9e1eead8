"""Training-time augmentation: resize, random crop and flip, identical on both images of a pair.

torchvision.transforms.v2 draws one set of random parameters per call and applies it to every
tv_tensors.Image passed in that call, which is exactly the joint augmentation a pair needs.

The same augmentation also exists split in two, for the decoded-image cache (data/cache.py):
``resize`` runs once per image when it is decoded, and ``draw``/``finish`` crop, flip and
normalise a batch later, on the training device. ``draw`` makes the random draws of the v2
pipeline in the same order (RandomCrop: top then left, each only when there is room to move;
RandomHorizontalFlip: one uniform number), so both paths give bit-identical batches for a key.
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
        self.load_size, self.crop_size, self.flip = cfg.resolved_load_size, cfg.image_size, cfg.flip
        # The deterministic first stage: the optional centre crop, then a resize, bicubic as the reference
        # (transforms.Resize(..., Image.BICUBIC)); antialiased when shrinking.
        self.resize = v2.Compose([
            *center_crop_steps(cfg.center_crop),
            v2.Resize((self.load_size, self.load_size), interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
        ])
        self._flip_p = 0.5
        steps = [self.resize, v2.RandomCrop(cfg.image_size)]
        if cfg.flip:
            steps.append(v2.RandomHorizontalFlip(self._flip_p))
        # One mean/std for every channel, so the images of a pair may differ in channels (grayscale A, RGB B).
        steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5], [0.5])]
        self.augment = v2.Compose(steps)

    @staticmethod
    def _image(img: Image.Image) -> tv_tensors.Image:
        return tv_tensors.Image(v2.functional.pil_to_tensor(img))

    def pair(self, a: Image.Image, b: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        ta, tb = self.augment(self._image(a), self._image(b))
        return ta.as_subclass(torch.Tensor), tb.as_subclass(torch.Tensor)

    def single(self, img: Image.Image) -> torch.Tensor:
        return self.augment(self._image(img)).as_subclass(torch.Tensor)

    # ----- the split pipeline of the decoded-image cache
    def resized(self, img: Image.Image) -> torch.Tensor:
        """uint8 (C, load, load): the deterministic first stage, done once per image."""
        return self.resize(self._image(img)).as_subclass(torch.Tensor)

    def draw(self, generator: torch.Generator) -> tuple[int, int, bool]:
        """(top, left, flip) for one call of the v2 pipeline seeded like ``generator``."""
        room = self.load_size - self.crop_size
        top = int(torch.randint(0, room + 1, size=(), generator=generator)) if room > 0 else 0
        left = int(torch.randint(0, room + 1, size=(), generator=generator)) if room > 0 else 0
        flip = self.flip and not bool(torch.rand(1, generator=generator) >= self._flip_p)
        return top, left, flip

    def finish(self, images: torch.Tensor, params: list[tuple[int, int, bool]]) -> torch.Tensor:
        """Crop, flip and normalise a stack of resized uint8 images (N, C, load, load) on their device."""
        s = self.crop_size
        crops = []
        for n, (top, left, flip) in enumerate(params):
            crop = images[n, :, top:top + s, left:left + s]
            crops.append(crop.flip(-1) if flip else crop)
        batch = torch.stack(crops).to(torch.float32).mul_(1.0 / 255)  # as v2.ToDtype(scale=True)
        return batch.sub_(0.5).div_(0.5)  # as v2.Normalize(0.5, 0.5)
