"""Data-parallel training under torchrun (nccl on GPUs, gloo on CPUs).

Each process trains on its own slice of every global batch. Just before any optimizer step, the
gradients of that optimizer's parameters are averaged across processes (one flattened all-reduce),
so every replica takes the identical step: the arithmetic of DistributedDataParallel, applied at the
optimizer rather than through module wrappers. GAN steps freeze D while G learns, run nets several
times per backward and skip G on critic-only steps (StarGAN's n_critic); gradient hooks installed by
the DDP wrapper assume none of that, while an all-reduce at the step needs no assumption, so methods
stay unaware of distribution. Only rank 0 logs and writes files.
"""

from __future__ import annotations

import atexit
import os
import types
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group torchrun set up; a single process needs nothing."""
    if not launched_by_torchrun():
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
        # Left to the interpreter's exit, gloo's worker threads are destroyed while still joinable and
        # the process aborts ("terminate called without an active exception", seen under load).
        atexit.register(_destroy_process_group)
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def _destroy_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def average_gradients_before_step(optimizer: torch.optim.Optimizer, world: int) -> None:
    """Wrap optimizer.step so it first averages the gradients of its parameters over all ranks.

    The optimizer also gets average_gradients(): fp16 training calls it before GradScaler.step, which
    skips the step when it finds an inf. Averaged first, an inf on any rank is an inf on every rank,
    so all ranks skip (or all step) together; checked per rank, one rank would skip the step and the
    all-reduce inside it while the others wait in theirs, and the replicas would hang or drift apart.
    The step then does not average a second time.
    """
    original_step = optimizer.step

    def average() -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if grads:
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat)
            flat.div_(world)
            offset = 0
            for g in grads:
                g.copy_(flat[offset : offset + g.numel()].view_as(g))
                offset += g.numel()
        optimizer.gradients_averaged = True

    def step(self, *args, **kwargs):
        if not getattr(self, "gradients_averaged", False):
            average()
        self.gradients_averaged = False
        return original_step(*args, **kwargs)

    optimizer.step = types.MethodType(step, optimizer)  # bound, as LR schedulers expect to re-wrap it
    optimizer.average_gradients = average


def broadcast_parameters(nets: dict[str, nn.Module]) -> None:
    """Start every replica from rank 0's weights and buffers."""
    for net in nets.values():
        for tensor in list(net.parameters()) + list(net.buffers()):
            dist.broadcast(tensor.data, src=0)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def any_rank(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True on every rank if it is True on any: a stop request must end all replicas at the same step."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())
