"""Building blocks shared by every network: normalisation choice, weight initialisation, label maps."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

NORMS = ("instance", "instance_affine", "batch", "none")
PADDINGS = ("reflect", "zero")


def instance_norm(x: torch.Tensor, weight: torch.Tensor | None = None, bias: torch.Tensor | None = None,
                  eps: float = 1e-5) -> torch.Tensor:
    """Per-image, per-channel normalisation, computed as GroupNorm with one group per channel.

    The same arithmetic as F.instance_norm, which reshapes to (1, B*C, H, W): that copies a
    channels-last tensor twice per layer (40% of a bf16 ResNet-9 forward on a 2-core AMX CPU), and
    on CPU torch 2.15 its backward returns wrong input gradients for channels-last tensors at batch
    1. group_norm works on channels-last and bf16 tensors directly, with correct gradients.
    """
    return F.group_norm(x, x.shape[1], weight, bias, eps)


class InstanceNorm2d(nn.InstanceNorm2d):
    """nn.InstanceNorm2d (same settings, state dict and repr) computed by instance_norm above."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.track_running_stats:
            return super().forward(x)
        return instance_norm(x, self.weight, self.bias, self.eps)


def norm_layer(kind: str, channels: int) -> nn.Module:
    """InstanceNorm without affine/running stats and BatchNorm with both, as in the CycleGAN/pix2pix code.

    instance_affine is StarGAN's InstanceNorm2d(affine=True, track_running_stats=True) as the authors'
    test code runs it: their solver never calls G.eval(), so the running statistics are gathered but
    never used, and every image is normalised by its own statistics at test time as in training. Keeping
    no running statistics here is that same arithmetic, with a batch-independent translate.
    """
    if kind == "instance":
        return InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "instance_affine":
        return InstanceNorm2d(channels, affine=True, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose from {', '.join(NORMS)}")


def conv_bias(norm: str) -> bool:
    """A conv followed by BatchNorm or affine InstanceNorm needs no bias (the norm's shift replaces it)."""
    return norm not in ("batch", "instance_affine")


def pad_layer(kind: str, width: int) -> nn.Module:
    """Explicit padding before a conv: reflection (CycleGAN/pix2pix) or zeros (StarGAN)."""
    if kind == "reflect":
        return nn.ReflectionPad2d(width)
    if kind == "zero":
        return nn.ZeroPad2d(width)
    raise ValueError(f"unknown padding {kind!r}; choose from {', '.join(PADDINGS)}")


INITS = ("normal", "xavier", "kaiming", "orthogonal", "default")


def init_weights(net: nn.Module, kind: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise conv/linear weights (and BatchNorm scales around 1) the way the reference code does.

    "default" keeps PyTorch's own initialisation of each layer, as StarGAN's code does (it calls no init).
    """
    if kind != "default":
        _init_layers(net, kind, gain)
    for m in net.modules():  # a net whose design fixes some starting values (ResnetGenerator's input skip)
        if hasattr(m, "after_init"):
            m.after_init()
    return net


def _init_layers(net: nn.Module, kind: str, gain: float) -> None:
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


def append_label_maps(x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    """Concatenate a (B, C) condition vector to x as C constant maps (StarGAN's conditional input).

    The first conv after this must zero-pad when instance norm follows it: a reflection-padded conv of
    a constant map is a constant, a per-channel offset that instance norm subtracts exactly, so the
    label would never reach the output. With zero padding the label's contribution varies near the
    borders, and that pattern survives the norm (see the generators' first_pad).
    """
    if cond is None:
        return x
    maps = cond.to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
    return torch.cat([x, maps], dim=1)


class PerImageNorm(nn.Module):
    """A trained BatchNorm evaluated with each image's own statistics.

    pix2pix runs its generator at test time "in exactly the same manner as during the training
    phase", normalising with the test batch's statistics; at its batch size of 1 that is instance
    normalisation with BN's learned scale and shift. Doing it per image keeps outputs independent of
    how many images translate happens to batch together. (Its dropout: SeededDropout below.)
    """

    def __init__(self, bn: nn.BatchNorm2d):
        super().__init__()
        self.weight, self.bias, self.eps = bn.weight, bn.bias, bn.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return instance_norm(x, self.weight, self.bias, self.eps)


_HASH_PRIME = 2_147_483_647  # 2^31 - 1: squares of residues fit in int64


class SeededDropout(nn.Module):
    """Training-mode dropout whose mask is a fixed function of (seed, layer, channel, row, column).

    pix2pix keeps dropout on at test time: it is the generator's only noise source. A mask drawn
    from an RNG would make an image's output depend on what else shares its batch and on the order
    of a folder; this mask depends on the position in the feature map only, so the same image gives
    the same output for a given seed anywhere. Each position is kept with probability 1 - p (a
    hash: three rounds of h -> h^2 + k mod 2^31 - 1) and scaled by 1 / (1 - p), as nn.Dropout does in
    training. Integer tensor arithmetic only, so torch.export / ONNX reproduce it exactly.
    """

    def __init__(self, p: float, seed: int, layer: int):
        super().__init__()
        self.p, self.seed, self.layer = p, int(seed), int(layer)

    def keep_mask(self, channels: int, height: int, width: int, device: torch.device) -> torch.Tensor:
        ar = lambda n: torch.arange(n, device=device, dtype=torch.int64)  # noqa: E731
        position = (ar(channels)[:, None, None] * 8192 + ar(height)[None, :, None]) * 8192 + ar(width)[None, None, :]
        h = (position + (self.seed * 1_000_003 + self.layer * 7_919 + 12_345) % _HASH_PRIME) % _HASH_PRIME
        for k in (1_234_567, 7_654_321, 1_111_111):
            h = (h * h + k) % _HASH_PRIME
        return (h % 65_536) >= round(self.p * 65_536)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        keep = self.keep_mask(x.shape[1], x.shape[2], x.shape[3], x.device)
        return x * (keep.to(x.dtype) * (1.0 / (1.0 - self.p)))

    def extra_repr(self) -> str:
        return f"p={self.p}, seed={self.seed}, layer={self.layer}"


def for_fast_inference(net: nn.Module, dtype: torch.dtype | None = None, channels_last: bool = True) -> nn.Module:
    """An inference net (from for_inference) moved in place to channels-last (unless told not to) and,
    given dtype, every parameter and buffer to that dtype (no autocast casts of the weights at each
    call). Outputs equal the original's up to the dtype's rounding."""
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net.to(dtype) if dtype is not None else net


TEST_TIME_NORMS = ("running", "per_image")


def for_inference(net: nn.Module, test_time_norm: str = "running", dropout_seed: int | None = None) -> nn.Module:
    """An eval-mode copy of net without gradients; BatchNorm per image when test_time_norm says so.

    dropout_seed: None turns dropout off (eval mode); a number keeps it on as SeededDropout masks.
    """
    net = copy.deepcopy(net).eval().requires_grad_(False)
    if dropout_seed is not None:
        layer = 0
        for parent in list(net.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.Dropout):
                    setattr(parent, name, SeededDropout(child.p, dropout_seed, layer))
                    layer += 1
    if test_time_norm == "per_image":
        for parent in list(net.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.BatchNorm2d):
                    setattr(parent, name, PerImageNorm(child))
    elif test_time_norm != "running":
        raise ValueError(f"unknown test-time norm {test_time_norm!r}")
    return net
