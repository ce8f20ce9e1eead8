"""PatchGAN discriminator (pix2pix/CycleGAN): n strided 4x4 convs, then two stride-1 convs.

With n_layers=3 each output logit sees a 70x70 patch. An optional auxiliary head classifies the
whole image into n_classes (StarGAN's domain classifier) from the same trunk.
Options (off by default, so older files build the same net): a SAGAN self-attention block after the
layer whose output is 1/attention of the input's side; ProGAN's minibatch standard-deviation feature as
one extra channel before the real/fake head; and an input stage (DiffAugment, instance noise, see
d_inputs.py) applied to every input in training mode.

Options give StarGAN's discriminator on the same trunk (form "strided"): n_layers stride-2 4x4 convs
and nothing else (6 at 128 px: a 2x2 map), widths ndf * 2^i up to ndf * max_mult (64 -> 2048 with
max_mult 32), LeakyReLU slope 0.01, a 3x3 real/fake head (adv_kernel 3) and a class head whose kernel
covers the whole final map (cls_kernel = its side), both without bias.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as sn

from img2img.nets.attention import SelfAttention
from img2img.nets.layers import conv_bias, norm_layer

D_FORMS = ("patch", "strided")


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
                 spectral_norm: bool = False, n_classes: int = 0, form: str = "patch", max_mult: int = 8,
                 slope: float = 0.2, adv_kernel: int = 4, cls_kernel: int = 0, head_bias: bool = True,
                 attention: int = 0, minibatch_std: bool = False):
        super().__init__()
        if form not in D_FORMS:
            raise ValueError(f"unknown discriminator form {form!r}; choose from {', '.join(D_FORMS)}")
        levels = {2**k for k in range(1, n_layers + 1)}
        if attention and attention not in levels:
            raise ValueError(f"this discriminator's feature maps are 1/{', 1/'.join(map(str, sorted(levels)))} of the input; "
                             f"no attention at 1/{attention}")
        wrap = sn if spectral_norm else (lambda m: m)
        # Spectral norm replaces the normalisation layers (SNGAN / SAGAN discriminators have none).
        norm = "none" if spectral_norm else norm
        bias = conv_bias(norm)
        layers: list[nn.Module] = [wrap(nn.Conv2d(in_channels, ndf, 4, 2, 1)), nn.LeakyReLU(slope, True)]
        if attention == 2:
            layers.append(SelfAttention(ndf, spectral_norm))
        ch = ndf
        # patch: n_layers more convs, the last one stride 1; strided: n_layers convs in all, every one stride 2.
        n_more = n_layers if form == "patch" else n_layers - 1
        for n in range(1, n_more + 1):
            out = ndf * min(2**n, max_mult)
            stride = 1 if form == "patch" and n == n_layers else 2
            layers += [wrap(nn.Conv2d(ch, out, 4, stride, 1, bias=bias)), norm_layer(norm, out), nn.LeakyReLU(slope, True)]
            if stride == 2 and attention == 2 ** (n + 1):
                layers.append(SelfAttention(out, spectral_norm))
            ch = out
        self.trunk = nn.Sequential(*layers)
        self.minibatch_std = minibatch_std
        self.input_stage = None  # set by the method: a callable applied to inputs in training mode
        self.adv_head = wrap(nn.Conv2d(ch + int(minibatch_std), 1, adv_kernel, 1, 1, bias=head_bias))
        if not n_classes:
            self.cls_head = None
        elif cls_kernel:  # one logit per class from the whole final map (StarGAN)
            self.cls_head = wrap(nn.Conv2d(ch, n_classes, cls_kernel, 1, 0, bias=head_bias))
        else:  # per-position logits, averaged in forward_with_classes
            self.cls_head = wrap(nn.Conv2d(ch, n_classes, 3, 1, 1, bias=head_bias))

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
