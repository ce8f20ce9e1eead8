"""History of generated images (Shrivastava et al. 2017), used by CycleGAN with 50 entries.

D is trained on a mix of the newest fakes and older ones, which damps oscillation. Once the pool
is full, each new fake is, with probability 1/2, swapped with a random stored one (the stored one is
returned); otherwise it passes straight through. Randomness comes from torch's global generator so
that a checkpointed RNG state makes the pool's choices reproducible on resume.
"""

from __future__ import annotations

import torch


class ImagePool:
    def __init__(self, size: int = 50):
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return fakes.detach()  # like the stored images: D's loss must not reach back into G
        out = []
        for img in fakes.detach():
            img = img.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand(()) < 0.5:
                k = int(torch.randint(len(self.images), ()))
                out.append(self.images[k].clone())
                self.images[k] = img.clone()
            else:
                out.append(img)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        """The stored images as one tensor, or as a list where they differ in size (whole-image preprocessing)."""
        if self.images and any(img.shape != self.images[0].shape for img in self.images):
            return {"size": self.size, "images": [img.cpu() for img in self.images]}
        return {"size": self.size, "images": torch.cat(self.images, 0).cpu() if self.images else torch.empty(0)}

    def load_state_dict(self, state: dict, device: torch.device | str = "cpu") -> None:
        self.size = int(state["size"])
        stored = state["images"]
        if isinstance(stored, list):
            self.images = [img.to(device) for img in stored]
        else:
            self.images = [img.unsqueeze(0).to(device) for img in stored] if stored.numel() else []
