"""Building blocks shared by every network: normalisation choice, weight initialisation, label maps."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

NORMS = ("instance", "batch", "none")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """InstanceNorm without affine/running stats and BatchNorm with both, as in the CycleGAN/pix2pix code."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose from {', '.join(NORMS)}")


def conv_bias(norm: str) -> bool:
    """A conv followed by BatchNorm needs no bias (BN's shift replaces it)."""
    return norm != "batch"


def init_weights(net: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise conv/linear weights (and BatchNorm scales around 1) the way the reference code does."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            w = m.parametrizations.weight.original if parametrize.is_parametrized(m, "weight") else m.weight
            if kind == "normal":
                nn.init.normal_(w, 0.0, gain)
            elif kind == "xavier":
                nn.init.xavier_normal_(w, gain=gain)
            elif kind == "kaiming":
                nn.init.kaiming_normal_(w, a=0, mode="fan_in")
            elif kind == "orthogonal":
                nn.init.orthogonal_(w, gain=gain)
            else:
                raise ValueError(f"unknown init {kind!r}")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


def append_label_maps(x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    """Concatenate a (B, C) condition vector to x as C constant maps (StarGAN's conditional input)."""
    if cond is None:
        return x
    maps = cond.to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
    return torch.cat([x, maps], dim=1)


class PerImageNorm(nn.Module):
    """A trained BatchNorm evaluated with each image's own statistics.

    pix2pix runs its generator at test time "in exactly the same manner as during the training
    phase", normalising with the test batch's statistics; at its batch size of 1 that is instance
    normalisation with BN's learned scale and shift. Doing it per image keeps outputs independent of
    how many images translate happens to batch together.
    """

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        self.weight, self.bias, self.eps = bn.weight, bn.bias, bn.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)


TEST_TIME_NORMS = ("running", "per_image")


def for_inference(net: nn.Module, test_time_norm: str = "running") -> nn.Module:
    """An eval-mode copy of net without gradients; BatchNorm per image when test_time_norm says so."""
    net = copy.deepcopy(net).eval().requires_grad_(False)
    if test_time_norm == "per_image":
        for parent in list(net.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.BatchNorm2d):
                    setattr(parent, name, PerImageNorm(child))
    elif test_time_norm != "running":
        raise ValueError(f"unknown test-time norm {test_time_norm!r}")
    return net
