"""Training checkpoints (checkpoint.pt): everything needed to continue a run exactly."""

from __future__ import annotations

from pathlib import Path

import torch

from img2img.atomic import atomic_torch_save
from img2img.errors import UserError
from img2img.modelfile import safe_torch_load

CHECKPOINT_VERSION = 1


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, *, config: dict, step: int, method_state: dict, schedulers: dict,
                    extra: dict | None = None) -> None:
    """extra: further loop state (EMA weights, the fp16 loss scaler)."""
    atomic_torch_save({"checkpoint_version": CHECKPOINT_VERSION, "config": config, "step": step,
                       "method": method_state, "schedulers": schedulers, "rng": rng_state(), **(extra or {})}, path)


def load_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"nothing to resume: {path} does not exist")
    ckpt = safe_torch_load(path, "checkpoint")
    if not isinstance(ckpt, dict) or "checkpoint_version" not in ckpt:
        raise UserError(f"{path}: not an img2img training checkpoint")
    if ckpt["checkpoint_version"] > CHECKPOINT_VERSION:
        raise UserError(f"{path}: checkpoint version {ckpt['checkpoint_version']} is newer than this img2img; upgrade img2img")
    return ckpt
