"""Training-time augmentation: resize, random crop and flip, identical on both images of a pair.

torchvision.transforms.v2 draws one set of random parameters per call and applies it to every
tv_tensors.Image passed in that call, which is exactly the joint augmentation a pair needs.

The same augmentation also exists split in two, for the decoded-image cache (data/cache.py):
``resized`` runs once per image when it is decoded, and ``draw``/``finish`` crop, flip and
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
    resizes (PairTransform, data.center_crop; 0 skips it). As v2 steps for other pipelines; a partial, not
    a lambda, so DataLoader workers can pickle it."""
    return [v2.Lambda(functools.partial(center_square, side=side))] if side else []


# How each image is sized before the random crop (the reference's --preprocess; data.preprocess):
#   resize_and_crop       resize to load_size (x load height, the crop's aspect), random crop   (default)
#   scale_width_and_crop  scale the width to load_size keeping the aspect (the height at least the crop's), random crop
#   scale_width           the same scaling, no crop: the whole image, height rounded to the generator's stride
#   crop                  no resize, random crop (an image smaller than the crop is first enlarged, keeping its aspect)
#   none                  no resize, no crop: each side rounded to a multiple of the generator's stride
# (the choices live in config.DataConfig.preprocess)


class PairTransform:
    """The training augmentation of one image or of a pair (A and B of a pair get the same crop and flip).

    Two stages: ``resized`` is deterministic and per image (centre crop, then the preprocess's resize);
    the random crop, flip and normalisation follow, as one v2 call (``pair``/``single``) or split for
    the decoded-image cache (``draw``/``finish``). stride: the generator's; whole-image modes round to it.
    """

    def __init__(self, cfg: DataConfig, stride: int = 4):
        self.mode = cfg.preprocess
        self.crop_h, self.crop_w = cfg.crop_hw
        self.load_h, self.load_w = cfg.load_hw
        self.flip, self.stride = cfg.flip, stride
        self.crops = "crop" in self.mode
        self.center_side = cfg.center_crop
        # resize_and_crop resizes every image to one size, bicubic as the reference (transforms.Resize(...,
        # Image.BICUBIC)), antialiased when shrinking; the other modes size each image from its own shape.
        self._resize = v2.Resize((self.load_h, self.load_w), interpolation=v2.InterpolationMode.BICUBIC, antialias=True)
        self._flip_p = 0.5
        steps = [v2.RandomCrop((self.crop_h, self.crop_w))] if self.crops else []
        if cfg.flip:
            steps.append(v2.RandomHorizontalFlip(self._flip_p))
        # One mean/std for every channel, so the images of a pair may differ in channels (grayscale A, RGB B).
        steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5], [0.5])]
        self.random = v2.Compose(steps)

    @property
    def uniform(self) -> bool:
        """Whether every resized image has the same size, whatever the inputs' sizes."""
        return self.mode == "resize_and_crop"

    def resized_hw(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of ``resized`` for an image of this size (after the optional centre crop)."""
        if self.mode == "resize_and_crop":
            return self.load_h, self.load_w
        if self.mode in ("scale_width", "scale_width_and_crop"):
            h = max(int(self.load_w * height / width), self.crop_h)  # as the reference's __scale_width
            return (self._to_stride(h), self.load_w) if self.mode == "scale_width" else (h, self.load_w)
        if self.mode == "crop":
            scale = max(1.0, self.crop_h / height, self.crop_w / width)
            return (height, width) if scale == 1.0 else (max(self.crop_h, round(height * scale)), max(self.crop_w, round(width * scale)))
        return self._to_stride(height), self._to_stride(width)  # none

    def _to_stride(self, side: int) -> int:
        return max(self.stride, round(side / self.stride) * self.stride)

    def output_hw(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of the training tensor made from an image of this size (before any centre crop)."""
        if self.center_side:
            height = width = min(self.center_side, height, width)
        return (self.crop_h, self.crop_w) if self.crops else self.resized_hw(height, width)

    @staticmethod
    def _image(img: Image.Image) -> tv_tensors.Image:
        return tv_tensors.Image(v2.functional.pil_to_tensor(img))

    def pair(self, a: Image.Image, b: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        ta, tb = self.random(tv_tensors.Image(self.resized(a)), tv_tensors.Image(self.resized(b)))
        return ta.as_subclass(torch.Tensor), tb.as_subclass(torch.Tensor)

    def single(self, img: Image.Image) -> torch.Tensor:
        return self.random(tv_tensors.Image(self.resized(img))).as_subclass(torch.Tensor)

    # ----- the split pipeline of the decoded-image cache
    def resized(self, img: Image.Image) -> torch.Tensor:
        """uint8 (C, H, W): the deterministic first stage, done once per image."""
        t = self._image(img)
        if self.center_side:
            t = center_square(t, self.center_side)
        if self.mode == "resize_and_crop":
            return self._resize(t).as_subclass(torch.Tensor)
        size = self.resized_hw(*t.shape[-2:])
        if size != tuple(t.shape[-2:]):
            t = v2.functional.resize(t, list(size), interpolation=v2.InterpolationMode.BICUBIC, antialias=True)
        return t.as_subclass(torch.Tensor)

    def draw(self, generator: torch.Generator, size: tuple[int, int] | None = None) -> tuple[int, int, bool]:
        """(top, left, flip) for one call of the v2 pipeline seeded like ``generator``, on a resized image of
        this (height, width) (default: the uniform load size): RandomCrop draws top, then left, each only
        when there is room to move; RandomHorizontalFlip draws one uniform number."""
        top = left = 0
        if self.crops:
            h, w = size or (self.load_h, self.load_w)
            if h > self.crop_h:
                top = int(torch.randint(0, h - self.crop_h + 1, size=(), generator=generator))
            if w > self.crop_w:
                left = int(torch.randint(0, w - self.crop_w + 1, size=(), generator=generator))
        flip = self.flip and not bool(torch.rand(1, generator=generator) >= self._flip_p)
        return top, left, flip

    def finish(self, images: torch.Tensor | list[torch.Tensor], params: list[tuple[int, int, bool]]) -> torch.Tensor:
        """Crop, flip and normalise resized uint8 images (a stack (N, C, H, W) or a list of (C, H, W)) on their device."""
        crops = []
        for n, (top, left, flip) in enumerate(params):
            image = images[n]
            crop = image[:, top:top + self.crop_h, left:left + self.crop_w] if self.crops else image
            crops.append(crop.flip(-1) if flip else crop)
        if any(c.shape != crops[0].shape for c in crops):
            raise ValueError(f"images of different sizes in one batch: {', '.join(sorted({'x'.join(map(str, c.shape[:0:-1])) for c in crops}))}")
        batch = torch.stack(crops).to(torch.float32).mul_(1.0 / 255)  # as v2.ToDtype(scale=True)
        return batch.sub_(0.5).div_(0.5)  # as v2.Normalize(0.5, 0.5)
