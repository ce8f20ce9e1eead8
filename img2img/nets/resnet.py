"""ResNet generator (Johnson et al. 2016 as used by CycleGAN): c7s1-64, d128, d256, R256 x n, u128, u64, c7s1-3.

Options cover StarGAN's generator on the same layout: zero padding instead of reflection, 4x4 stride-2
down/up convolutions instead of 3x3 (resample_kernel), and affine instance norm (norm "instance_affine").
"""

from __future__ import annotations

import torch
from torch import nn

from img2img.nets.attention import SelfAttention
from img2img.nets.layers import append_label_maps, conv_bias, norm_layer, pad_layer


SKIP_LIMIT = 0.999


class ResnetBlock(nn.Module):
    def __init__(self, channels: int, norm: str, dropout: bool, padding: str = "reflect"):
        super().__init__()
        bias = conv_bias(norm)
        layers = [pad_layer(padding, 1), nn.Conv2d(channels, channels, 3, bias=bias), norm_layer(norm, channels), nn.ReLU(True)]
        if dropout:
            layers.append(nn.Dropout(0.5))
        layers += [pad_layer(padding, 1), nn.Conv2d(channels, channels, 3, bias=bias), norm_layer(norm, channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """Two stride-2 downsamplings, n residual blocks, two upsamplings; output in [-1, 1] (tanh).

    cond_channels > 0 makes it conditional (StarGAN): a label vector is appended as constant maps.
    attention = 1, 2 or 4 adds a SAGAN self-attention block where the encoder's maps are 1/attention of the
    input's side (after the first block, or after the first or second downsampling); 0 = none.
    first_pad is the padding of the first 7x7 conv (default: padding). A conditional generator needs
    "zero" there: reflection turns the constant label maps into per-channel offsets that the instance
    norm right after subtracts (see layers.append_label_maps); StarGAN's code zero-pads it for this reason.
    input_skip: the net learns a change of its input instead of the whole image, tanh(atanh(x) + f(x)),
    with f's last conv zero-initialised (after_init), so it starts as the identity: translation as an edit
    of the photo, which a short training cannot blur into a worse copy (tests/test_input_skip.py).
    """

    n_down = 2

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, n_blocks: int = 9,
                 norm: str = "instance", dropout: bool = False, cond_channels: int = 0, padding: str = "reflect",
                 first_pad: str | None = None, resample_kernel: int = 3, attention: int = 0, input_skip: bool = False):
        super().__init__()
        if input_skip and in_channels != out_channels:
            raise ValueError(f"an input skip needs as many output channels as input ones ({in_channels} in, {out_channels} out)")
        if resample_kernel not in (3, 4):
            raise ValueError(f"resample_kernel must be 3 or 4, got {resample_kernel}")
        if attention and attention not in (1, 2, 4):
            raise ValueError(f"a ResNet generator's feature maps are 1, 1/2 or 1/4 of the input; no attention at 1/{attention}")
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            pad_layer(first_pad or padding, 3), nn.Conv2d(in_channels + cond_channels, ngf, 7, bias=bias),
            norm_layer(norm, ngf), nn.ReLU(True),
        ]
        # 3x3: padding 1 (+ output_padding 1 going up); 4x4: padding 1 halves/doubles exactly (StarGAN).
        k, extra = resample_kernel, 1 if resample_kernel == 3 else 0
        ch = ngf
        if attention == 1:
            layers.append(SelfAttention(ch))
        for level in range(self.n_down):
            layers += [nn.Conv2d(ch, ch * 2, k, stride=2, padding=1, bias=bias), norm_layer(norm, ch * 2), nn.ReLU(True)]
            ch *= 2
            if attention == 2 ** (level + 1):
                layers.append(SelfAttention(ch))
        layers += [ResnetBlock(ch, norm, dropout, padding) for _ in range(n_blocks)]
        for _ in range(self.n_down):
            layers += [nn.ConvTranspose2d(ch, ch // 2, k, stride=2, padding=1, output_padding=extra, bias=bias),
                       norm_layer(norm, ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [pad_layer(padding, 3), nn.Conv2d(ch, out_channels, 7)]
        if not input_skip:
            layers.append(nn.Tanh())  # with the skip, the tanh comes after adding the input back (forward)
        self.model = nn.Sequential(*layers)
        self.cond_channels, self.input_skip = cond_channels, input_skip

    @property
    def stride(self) -> int:
        """Input sides must be multiples of this (translate pads to it)."""
        return 2 ** self.n_down

    def after_init(self) -> None:
        """Called by layers.init_weights: with the input skip, the last conv starts at zero (identity net)."""
        if self.input_skip:
            nn.init.zeros_(self.model[-1].weight)
            nn.init.zeros_(self.model[-1].bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        y = self.model(append_label_maps(x, cond))
        if self.input_skip:
            # atanh of inputs clamped just inside (-1, 1): saturated pixels come back within 1e-3 (0.13 of a level)
            return torch.tanh(y + torch.atanh(x.clamp(-SKIP_LIMIT, SKIP_LIMIT)))
        return y
