"""PatchGAN discriminator (pix2pix/CycleGAN): n strided 4x4 convs, then two stride-1 convs.

With n_layers=3 each output logit sees a 70x70 patch. An optional auxiliary head classifies the
whole image into n_classes (StarGAN's domain classifier) from the same trunk.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as sn

from img2img.nets.layers import conv_bias, norm_layer


class PatchDiscriminator(nn.Module):
    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
                 spectral_norm: bool = False, n_classes: int = 0):
        super().__init__()
        wrap = sn if spectral_norm else (lambda m: m)
        # Spectral norm replaces the normalisation layers (SNGAN / SAGAN discriminators have none).
        norm = "none" if spectral_norm else norm
        bias = conv_bias(norm)
        layers: list[nn.Module] = [wrap(nn.Conv2d(in_channels, ndf, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        ch = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [wrap(nn.Conv2d(ch, out, 4, stride, 1, bias=bias)), norm_layer(norm, out), nn.LeakyReLU(0.2, True)]
            ch = out
        self.trunk = nn.Sequential(*layers)
        self.adv_head = wrap(nn.Conv2d(ch, 1, 4, 1, 1))
        self.cls_head = wrap(nn.Conv2d(ch, n_classes, 3, 1, 1)) if n_classes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Real/fake logits, one per patch: (B, 1, h, w)."""
        return self.adv_head(self.trunk(x))

    def forward_with_classes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch logits and (B, n_classes) domain logits, sharing one trunk pass."""
        if self.cls_head is None:
            raise RuntimeError("this discriminator was built without a class head (n_classes=0)")
        h = self.trunk(x)
        return self.adv_head(h), self.cls_head(h).mean(dim=(2, 3))
