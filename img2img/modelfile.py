"""The self-contained inference file (model.pt).

Layout (plain dicts, lists, strings, numbers and tensors only, so torch.load(weights_only=True)
reads it and a file that would run code is refused):
    format_version   int, FORMAT_VERSION when written
    method           "pix2pix", "cyclegan", ...
    generators       {name: {"arch": arch dict for nets.build_generator, "state_dict": weights}}
    directions       {"a2b": {"generator": name, ...}, ...} or per-domain entries
    domains          list of domain names (conditional methods) or []
    test_time_norm   "running" or "per_image" (see nets.layers.for_inference)
    test_dropout_seed  pix2pix: dropout stays on at test time with this seed's fixed masks
                     (nets.layers.SeededDropout); absent or None: dropout off
    image_size       the training crop size, channels
    config           the whole run configuration, for the record
    step             training iterations done
    classifier       StarGAN only: D's trunk and class head {"arch", "state_dict", "multi_label", "image_size"},
                     used by translate --to to read an input's attributes
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from img2img.atomic import atomic_torch_save
from img2img.errors import UserError
from img2img.nets import build_generator
from img2img.nets.layers import for_inference

FORMAT_VERSION = 1


def unwrap(net: nn.Module) -> nn.Module:
    """The plain module under torch.compile / DistributedDataParallel wrappers."""
    net = getattr(net, "_orig_mod", net)
    return getattr(net, "module", net)


def save_model(path: str | Path, *, method: str, generators: dict[str, tuple[dict, nn.Module]],
               directions: dict[str, dict], config: dict, step: int, test_time_norm: str = "running",
               domains: list[str] | None = None, extras: dict | None = None) -> None:
    """Write model.pt; extras are method-specific entries (plain data and tensors) added at the top level."""
    payload = {
        "format_version": FORMAT_VERSION,
        "method": method,
        "generators": {name: {"arch": dict(arch), "state_dict": {k: v.detach().cpu() for k, v in unwrap(net).state_dict().items()}}
                       for name, (arch, net) in generators.items()},
        "directions": directions,
        "domains": list(domains or []),
        "test_time_norm": test_time_norm,
        "image_size": config["data"]["image_size"],
        "channels": config["data"]["channels"],
        "config": config,
        "step": step,
    }
    for key, value in (extras or {}).items():
        if key in payload:
            raise ValueError(f"model-file extra {key!r} would replace a standard entry")
        payload[key] = value
    atomic_torch_save(payload, path)


@dataclass
class ModelFile:
    path: Path
    data: dict[str, Any]

    @property
    def method(self) -> str:
        return self.data["method"]

    @property
    def directions(self) -> dict[str, dict]:
        return self.data["directions"]

    @property
    def test_dropout_seed(self) -> int | None:
        return self.data.get("test_dropout_seed")

    def generator(self, name: str, device: torch.device | str = "cpu", test_dropout: bool | None = None) -> nn.Module:
        """The named generator in inference form (eval, no grad, test-time norm applied).

        test_dropout: None follows the file (pix2pix: on, as trained); False turns dropout off; True
        keeps it on (with the file's seed, else 0).
        """
        entry = self.data["generators"][name]
        net = build_generator(entry["arch"])
        net.load_state_dict(entry["state_dict"])
        seed = self.test_dropout_seed
        if test_dropout is not None:
            seed = (seed if seed is not None else 0) if test_dropout else None
        return for_inference(net, self.data.get("test_time_norm", "running"), seed).to(device)

    def parameter_count(self) -> dict[str, int]:
        return {name: sum(t.numel() for k, t in g["state_dict"].items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
                for name, g in self.data["generators"].items()}


def safe_torch_load(path: Path, what: str) -> Any:
    """torch.load(weights_only=True) with every failure turned into one clear line.

    The restricted unpickler refuses any class or function reference ("Unsupported global"), so a
    file that would run code is rejected before anything in it executes.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Unsupported global" in text or "GLOBAL" in text:
            culprit = next((line.strip() for line in text.splitlines() if "Unsupported global" in line), "")
            raise UserError(f"{path}: refused to load: the {what} holds objects other than weights and settings, "
                            f"and loading it could run code ({culprit[:120]})") from None
        raise UserError(f"{path}: not a readable {what} (truncated, or not made by img2img)") from None
    except Exception:  # garbage bytes make torch.load fail in many ways (KeyError, RuntimeError, EOFError...)
        raise UserError(f"{path}: not a readable {what} (truncated, or not made by img2img)") from None


def load_model(path: str | Path) -> ModelFile:
    """Read a model file safely; every way it can be wrong is a one-line UserError."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file not found: {path}")
    data = safe_torch_load(path, "model file")
    if not isinstance(data, dict) or "format_version" not in data or "generators" not in data:
        raise UserError(f"{path}: not an img2img model file (a training checkpoint? use RUN/model.pt)")
    if data["format_version"] > FORMAT_VERSION:
        raise UserError(f"{path}: model format version {data['format_version']} is newer than this img2img understands "
                        f"({FORMAT_VERSION}); upgrade img2img")
    return ModelFile(path, data)
