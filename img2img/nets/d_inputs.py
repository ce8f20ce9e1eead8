"""What happens to every image on its way into a discriminator during training, for every method.

- DiffAugment (Zhao et al., NeurIPS 2020): the same differentiable random transforms (colour, translation,
  cutout) on real and generated images, in D's step and in G's step alike, so D cannot memorise a small
  training set and G still gets gradients through the transforms. Each call draws its own parameters per
  image, as in the reference (real and fake batches are augmented independently, from the same family).
- Instance noise (Sonderby et al. 2017; Arjovsky & Bottou 2017): Gaussian noise of std sigma_0 * (1 - t / T)
  added to D's inputs, annealed linearly to zero at step T, which makes the real and fake distributions
  overlap early in training.
The method tells the stage the training step (Method does it before every train_step), so the loop needs
no changes; randomness comes from torch's global generator, which checkpoints carry, so resume stays exact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DIFFAUGMENT_OPS = ("color", "translation", "cutout")


def parse_policy(policy: str) -> tuple[str, ...]:
    ops = tuple(p.strip() for p in policy.split(",") if p.strip())
    bad = [p for p in ops if p not in DIFFAUGMENT_OPS]
    if bad:
        raise ValueError(f"unknown DiffAugment op {bad[0]!r}; use a comma-separated list of {', '.join(DIFFAUGMENT_OPS)}")
    return ops


def color(x: torch.Tensor, image_channels: int | tuple[int, ...]) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5) per sample, on images in [-1, 1].
    A D input holding several images side by side in channels (pix2pix's input|output) gets the same
    factors for each, and each image's saturation is taken over its own channels. image_channels: the
    channels of each image (all alike when one number; a tuple for, e.g., a grayscale input and an RGB output)."""
    b, c, h, w = x.shape
    r = lambda: torch.rand(b, 1, 1, 1, 1, device=x.device, dtype=x.dtype)  # noqa: E731
    if isinstance(image_channels, tuple) and len(set(image_channels)) > 1:
        brightness, saturation, contrast = r()[:, 0], r()[:, 0], r()[:, 0]  # drawn in the order of the path below
        out = []
        for y in x.split(list(image_channels), dim=1):
            y = y + (brightness - 0.5)
            mean = y.mean(dim=1, keepdim=True)
            y = (y - mean) * (saturation * 2) + mean
            mean = y.mean(dim=(1, 2, 3), keepdim=True)
            out.append((y - mean) * (contrast + 0.5) + mean)
        return torch.cat(out, 1)
    per_image = image_channels[0] if isinstance(image_channels, tuple) else image_channels
    y = x.view(b, c // per_image, per_image, h, w)
    y = y + (r() - 0.5)
    mean = y.mean(dim=2, keepdim=True)
    y = (y - mean) * (r() * 2) + mean
    mean = y.mean(dim=(2, 3, 4), keepdim=True)
    y = (y - mean) * (r() + 0.5) + mean
    return y.view(b, c, h, w)


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each sample by a random whole number of pixels up to ratio of its size, filling with zeros."""
    b, c, h, w = x.shape
    dy, dx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    sy = torch.randint(-dy, dy + 1, (b, 1, 1), device=x.device)
    sx = torch.randint(-dx, dx + 1, (b, 1, 1), device=x.device)
    gy = (torch.arange(h, device=x.device).view(1, h, 1) + sy + 1).clamp(0, h + 1)
    gx = (torch.arange(w, device=x.device).view(1, 1, w) + sx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # a zero border that out-of-range pixels read from
    return padded[torch.arange(b, device=x.device).view(b, 1, 1), gy, gx].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one random square of ratio x the image side per sample (it may hang over the border)."""
    b, c, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
    ox = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    gy = (torch.arange(ch, device=x.device).view(1, ch, 1) + oy - ch // 2).clamp(0, h - 1)
    gx = (torch.arange(cw, device=x.device).view(1, 1, cw) + ox - cw // 2).clamp(0, w - 1)
    mask = torch.ones(b, h, w, device=x.device, dtype=x.dtype)
    mask[torch.arange(b, device=x.device).view(b, 1, 1), gy, gx] = 0
    return x * mask.unsqueeze(1)


def diff_augment(x: torch.Tensor, ops: tuple[str, ...], image_channels: int | tuple[int, ...] = 3) -> torch.Tensor:
    for op in ops:
        x = color(x, image_channels) if op == "color" else translation(x) if op == "translation" else cutout(x)
    return x


class DiscriminatorInputs:
    """DiffAugment, then instance noise, on a D input; the identity when both are off."""

    def __init__(self, policy: str = "", noise_std: float = 0.0, noise_steps: int = 0,
                 image_channels: int | tuple[int, int] = 3):
        """image_channels: channels of every image, or (source, target) when a method's domains differ:
        a D input then holds one image of either, or (pix2pix) both side by side, source first."""
        self.ops = parse_policy(policy)
        self.noise_std, self.noise_steps, self.image_channels = noise_std, noise_steps, image_channels
        self.step = 0

    def layout(self, channels: int) -> int | tuple[int, ...]:
        """The channels of each image in a D input of this many channels."""
        if not isinstance(self.image_channels, tuple):
            return self.image_channels
        source, target = self.image_channels
        if source == target:
            return source
        if channels in (source, target):
            return channels
        if channels == source + target:
            return (source, target)
        raise ValueError(f"a discriminator input of {channels} channels holds neither a {source}- nor a {target}-channel "
                         f"image nor both")

    @property
    def active(self) -> bool:
        return bool(self.ops) or self.noise_std > 0

    def noise_std_at(self, step: int) -> float:
        if self.noise_std <= 0 or self.noise_steps <= 0:
            return 0.0
        return self.noise_std * max(0.0, 1.0 - step / self.noise_steps)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.ops:
            x = diff_augment(x, self.ops, self.layout(x.shape[1]))
        sigma = self.noise_std_at(self.step)
        if sigma > 0:
            x = x + sigma * torch.randn_like(x)
        return x
