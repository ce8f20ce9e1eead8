"""U-Net generator of pix2pix: encoder C64-C128-C256-C512-C512..., decoder mirrored, skips between.

unet_<size> has log2(size) downsamplings, so a size x size input reaches 1x1 at the bottleneck
(unet_256: 8, unet_128: 7), as in the pix2pix paper and its reference code. Dropout 0.5 sits in
the decoder blocks between the bottleneck and the first 512->256 channel drop, as there.
"""

from __future__ import annotations

import torch
from torch import nn

from img2img.nets.attention import SelfAttention
from img2img.nets.layers import append_label_maps, conv_bias, norm_layer


class UnetGenerator(nn.Module):
    def __init__(self, in_channels: int = 3, out_channels: int = 3, n_down: int = 8, ngf: int = 64,
                 norm: str = "batch", dropout: bool = True, cond_channels: int = 0, attention: int = 0):
        super().__init__()
        if n_down < 2:
            raise ValueError("a U-Net needs at least 2 downsamplings")
        levels = [2**k for k in range(1, n_down)]
        if attention and attention not in levels:
            raise ValueError(f"this U-Net's encoder maps are 1/{', 1/'.join(map(str, levels))} of the input; no attention at 1/{attention}")
        bias = conv_bias(norm)
        enc = [ngf * min(2**i, 8) for i in range(n_down)]
        self.down = nn.ModuleList()
        self.down.append(nn.Conv2d(in_channels + cond_channels, enc[0], 4, 2, 1, bias=bias))
        for i in range(1, n_down):
            innermost = i == n_down - 1
            layers = [nn.LeakyReLU(0.2, True), nn.Conv2d(enc[i - 1], enc[i], 4, 2, 1, bias=bias)]
            if not innermost:
                layers.append(norm_layer(norm, enc[i]))
            self.down.append(nn.Sequential(*layers))
        # up[i] undoes down[i]; it takes the concatenated skip except at the bottleneck.
        self.up = nn.ModuleList()
        for i in range(n_down):
            c_in = enc[i] if i == n_down - 1 else 2 * enc[i]
            if i == 0:
                self.up.append(nn.Sequential(nn.ReLU(True), nn.ConvTranspose2d(c_in, out_channels, 4, 2, 1), nn.Tanh()))
                continue
            layers = [nn.ReLU(True), nn.ConvTranspose2d(c_in, enc[i - 1], 4, 2, 1, bias=bias), norm_layer(norm, enc[i - 1])]
            if dropout and 4 <= i < n_down - 1:
                layers.append(nn.Dropout(0.5))
            self.up.append(nn.Sequential(*layers))
        self.n_down = n_down
        self.cond_channels = cond_channels
        # Optional SAGAN block on the encoder output at 1/attention of the input side (before its skip is taken).
        self.attention_after = attention.bit_length() - 2 if attention else -1
        if attention:
            self.attention = SelfAttention(enc[self.attention_after])

    @property
    def stride(self) -> int:
        return 2**self.n_down

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = append_label_maps(x, cond)
        skips = []
        for i, layer in enumerate(self.down):
            h = layer(h)
            if i == self.attention_after:
                h = self.attention(h)
            skips.append(h)
        h = self.up[-1](skips[-1])
        for i in range(self.n_down - 2, -1, -1):
            h = self.up[i](torch.cat([skips[i], h], dim=1))
        return h
