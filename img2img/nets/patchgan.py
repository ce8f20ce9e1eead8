"""PatchGAN discriminator (pix2pix/CycleGAN): n strided 4x4 convs, then two stride-1 convs.

With n_layers=3 each output logit sees a 70x70 patch. An optional auxiliary head classifies the
whole image into n_classes (StarGAN's domain classifier) from the same trunk.

Options give StarGAN's discriminator on the same trunk (form "strided"): n_layers stride-2 4x4 convs
and nothing else (6 at 128 px: a 2x2 map), widths ndf * 2^i up to ndf * max_mult (64 -> 2048 with
max_mult 32), LeakyReLU slope 0.01, a 3x3 real/fake head (adv_kernel 3) and a class head whose kernel
covers the whole final map (cls_kernel = its side), both without bias.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as sn

from img2img.nets.layers import conv_bias, norm_layer

D_FORMS = ("patch", "strided")


class PatchDiscriminator(nn.Module):
    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
                 spectral_norm: bool = False, n_classes: int = 0, form: str = "patch", max_mult: int = 8,
                 slope: float = 0.2, adv_kernel: int = 4, cls_kernel: int = 0, head_bias: bool = True):
        super().__init__()
        if form not in D_FORMS:
            raise ValueError(f"unknown discriminator form {form!r}; choose from {', '.join(D_FORMS)}")
        wrap = sn if spectral_norm else (lambda m: m)
        # Spectral norm replaces the normalisation layers (SNGAN / SAGAN discriminators have none).
        norm = "none" if spectral_norm else norm
        bias = conv_bias(norm)
        layers: list[nn.Module] = [wrap(nn.Conv2d(in_channels, ndf, 4, 2, 1)), nn.LeakyReLU(slope, True)]
        ch = ndf
        # patch: n_layers more convs, the last one stride 1; strided: n_layers convs in all, every one stride 2.
        n_more = n_layers if form == "patch" else n_layers - 1
        for n in range(1, n_more + 1):
            out = ndf * min(2**n, max_mult)
            stride = 1 if form == "patch" and n == n_layers else 2
            layers += [wrap(nn.Conv2d(ch, out, 4, stride, 1, bias=bias)), norm_layer(norm, out), nn.LeakyReLU(slope, True)]
            ch = out
        self.trunk = nn.Sequential(*layers)
        self.adv_head = wrap(nn.Conv2d(ch, 1, adv_kernel, 1, 1, bias=head_bias))
        if not n_classes:
            self.cls_head = None
        elif cls_kernel:  # one logit per class from the whole final map (StarGAN)
            self.cls_head = wrap(nn.Conv2d(ch, n_classes, cls_kernel, 1, 0, bias=head_bias))
        else:  # per-position logits, averaged in forward_with_classes
            self.cls_head = wrap(nn.Conv2d(ch, n_classes, 3, 1, 1, bias=head_bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Real/fake logits, one per patch: (B, 1, h, w)."""
        return self.adv_head(self.trunk(x))

    def forward_with_classes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch logits and (B, n_classes) domain logits, sharing one trunk pass."""
        if self.cls_head is None:
            raise RuntimeError("this discriminator was built without a class head (n_classes=0)")
        h = self.trunk(x)
        return self.adv_head(h), self.cls_head(h).mean(dim=(2, 3))
