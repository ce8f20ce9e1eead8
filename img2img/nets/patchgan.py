"""PatchGAN discriminator (pix2pix/CycleGAN): n strided 4x4 convs, then two stride-1 convs.

With n_layers=3 each output logit sees a 70x70 patch. An optional auxiliary head classifies the
whole image into n_classes (StarGAN's domain classifier) from the same trunk.
Options (off by default, so older files build the same net): a SAGAN self-attention block after the
layer whose output is 1/attention of the input's side; ProGAN's minibatch standard-deviation feature as
one extra channel before the real/fake head; and an input stage (DiffAugment, instance noise, see
d_inputs.py) applied to every input in training mode.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as sn

from img2img.nets.attention import SelfAttention
from img2img.nets.layers import conv_bias, norm_layer


def minibatch_std(x: torch.Tensor, group: int = 4) -> torch.Tensor:
    """x with one more channel: the std over groups of samples, averaged over channels and positions (ProGAN).

    Samples are split into groups of the largest size <= group that divides the batch; each sample gets its
    group's value as a constant map. A batch of one has nothing to compare and gets zeros.
    """
    b, c, h, w = x.shape
    g = max(k for k in range(1, min(group, b) + 1) if b % k == 0)
    y = x.float().view(g, b // g, c, h, w)
    std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (b // g,)
    feat = std.repeat(g).view(b, 1, 1, 1).expand(b, 1, h, w).to(x.dtype)
    return torch.cat([x, feat], dim=1)


class PatchDiscriminator(nn.Module):
    def __init__(self, in_channels: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
                 spectral_norm: bool = False, n_classes: int = 0, attention: int = 0, minibatch_std: bool = False):
        super().__init__()
        levels = {2**k for k in range(1, n_layers + 1)}
        if attention and attention not in levels:
            raise ValueError(f"this discriminator's feature maps are 1/{', 1/'.join(map(str, sorted(levels)))} of the input; "
                             f"no attention at 1/{attention}")
        wrap = sn if spectral_norm else (lambda m: m)
        # Spectral norm replaces the normalisation layers (SNGAN / SAGAN discriminators have none).
        norm = "none" if spectral_norm else norm
        bias = conv_bias(norm)
        layers: list[nn.Module] = [wrap(nn.Conv2d(in_channels, ndf, 4, 2, 1)), nn.LeakyReLU(0.2, True)]
        if attention == 2:
            layers.append(SelfAttention(ndf, spectral_norm))
        ch = ndf
        for n in range(1, n_layers + 1):
            out = ndf * min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [wrap(nn.Conv2d(ch, out, 4, stride, 1, bias=bias)), norm_layer(norm, out), nn.LeakyReLU(0.2, True)]
            if stride == 2 and attention == 2 ** (n + 1):
                layers.append(SelfAttention(out, spectral_norm))
            ch = out
        self.trunk = nn.Sequential(*layers)
        self.minibatch_std = minibatch_std
        self.adv_head = wrap(nn.Conv2d(ch + int(minibatch_std), 1, 4, 1, 1))
        self.input_stage = None  # set by the method: a callable applied to inputs in training mode
        self.cls_head = wrap(nn.Conv2d(ch, n_classes, 3, 1, 1)) if n_classes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Real/fake logits, one per patch: (B, 1, h, w)."""
        return self._adv(self.trunk(self._inputs(x)))

    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        return self.input_stage(x) if self.input_stage is not None and self.training else x

    def _adv(self, h: torch.Tensor) -> torch.Tensor:
        return self.adv_head(minibatch_std(h) if self.minibatch_std else h)

    def forward_with_classes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch logits and (B, n_classes) domain logits, sharing one trunk pass."""
        if self.cls_head is None:
            raise RuntimeError("this discriminator was built without a class head (n_classes=0)")
        h = self.trunk(self._inputs(x))
        return self._adv(h), self.cls_head(h).mean(dim=(2, 3))
