"""Self-attention block of SAGAN (Zhang, Goodfellow, Metaxas, Odena 2019).

    f = W_f x, g = W_g x (1x1 convs to C/8 channels), h = W_h x (1x1 conv, C channels)
    beta_{j,i} = softmax_i(f_i^T g_j)        attention of output position j over all N input positions i
    o_j = sum_i beta_{j,i} h_i,   y = x + gamma * o,   gamma initialised to 0
so the block starts as the identity and the net learns how much non-local evidence to mix in.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as sn


class SelfAttention(nn.Module):
    def __init__(self, channels: int, spectral_norm: bool = False):
        super().__init__()
        wrap = sn if spectral_norm else (lambda m: m)
        inner = max(1, channels // 8)
        self.query = wrap(nn.Conv2d(channels, inner, 1))
        self.key = wrap(nn.Conv2d(channels, inner, 1))
        self.value = wrap(nn.Conv2d(channels, channels, 1))
        self.gamma = nn.Parameter(torch.zeros(1))

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, N), N = H*W: row j is output position j's distribution over the input positions (sums to 1)."""
        q = self.query(x).flatten(2)  # (B, C', N)
        k = self.key(x).flatten(2)
        return torch.softmax(torch.bmm(q.transpose(1, 2), k), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attn = self.attention_map(x)
        v = self.value(x).flatten(2)  # (B, C, N)
        o = torch.bmm(v, attn.transpose(1, 2)).view_as(x)
        return x + self.gamma.to(o.dtype) * o
