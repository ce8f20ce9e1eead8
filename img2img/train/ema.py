"""Exponential moving average of generator weights (--ema 0.999), the weights translate uses.

Built on torch.optim.swa_utils.AveragedModel with its EMA averaging function; buffers (BatchNorm
statistics) are averaged too, so the EMA generator is self-consistent.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


class GeneratorEMA:
    def __init__(self, generators: dict[str, nn.Module], decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError("EMA decay must be between 0 and 1")
        self.decay = decay
        self.averaged = {name: AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
                         for name, net in generators.items()}

    @torch.no_grad()
    def update(self, generators: dict[str, nn.Module]) -> None:
        for name, net in generators.items():
            self.averaged[name].update_parameters(net)

    def module(self, name: str) -> nn.Module:
        return self.averaged[name].module

    def state_dict(self) -> dict:
        return {name: avg.state_dict() for name, avg in self.averaged.items()}

    def load_state_dict(self, state: dict) -> None:
        for name, avg in self.averaged.items():
            avg.load_state_dict(state[name])
