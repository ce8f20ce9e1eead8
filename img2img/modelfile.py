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

import math
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from img2img.atomic import atomic_torch_save
from img2img.errors import UserError
from img2img.nets import build_discriminator, build_generator
from img2img.nets.layers import NORMS, TEST_TIME_NORMS, for_inference

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
    if path.is_dir():
        hint = f"; did you mean {path / 'model.pt'}?" if (path / "model.pt").is_file() else ""
        raise UserError(f"{path} is a folder, not a model file (a run's model file is RUN/model.pt){hint}")
    if not path.is_file():
        raise UserError(f"model file not found: {path}")
    data = safe_torch_load(path, "model file")
    if not isinstance(data, dict) or "format_version" not in data or "generators" not in data:
        raise UserError(f"{path}: not an img2img model file (a training checkpoint? use RUN/model.pt)")
    version = data["format_version"]
    if type(version) is not int or version < 1:
        raise UserError(f"{path}: damaged model file: format_version is {version!r}, not a version number")
    if version > FORMAT_VERSION:
        raise UserError(f"{path}: model format version {version} is newer than this img2img understands "
                        f"({FORMAT_VERSION}); upgrade img2img")
    try:
        check_model_data(data)
    except _Damaged as exc:
        raise UserError(f"{path}: damaged model file: {exc}") from None
    return ModelFile(path, data)


# ----------------------------------------------------------------------------------------------
# Deep checks: every entry the readers use has the right type, the architectures are within sane
# bounds, the weights match them exactly and are finite. Networks are built on the meta device, so
# checking costs no memory and no time, whatever the file claims.

MAX_CHANNELS = 1024  # filters in the first layer (the papers use 64) and label channels


class _Damaged(Exception):
    """One thing wrong with a model file's contents; load_model prefixes the path."""


def _need(entry: Any, key: str, kind: type | tuple, where: str) -> Any:
    if not isinstance(entry, dict) or key not in entry:
        raise _Damaged(f"{where} has no {key!r}")
    value = entry[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise _Damaged(f"{where}.{key} should be {names}, not {type(value).__name__}")
    return value


def _whole(entry: dict, key: str, where: str, lo: int, hi: int, optional: bool = False) -> int:
    if optional and key not in entry:
        return lo
    value = _need(entry, key, int, where)
    if not lo <= value <= hi:
        raise _Damaged(f"{where}.{key} is {value}, outside {lo}..{hi}")
    return value


def _check_state(state: Any, expected: nn.Module, where: str) -> None:
    """The stored weights are tensors with exactly the names and shapes the architecture has, and finite."""
    if not isinstance(state, dict) or not state:
        raise _Damaged(f"{where} holds no weights (empty or missing state_dict)")
    want = {k: tuple(v.shape) for k, v in expected.state_dict().items()}
    missing, extra = sorted(want.keys() - state.keys()), sorted(state.keys() - want.keys())
    if missing or extra:
        parts = ([f"missing {', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}"] if missing else []) + \
                ([f"unexpected {', '.join(map(str, extra[:3]))}{', ...' if len(extra) > 3 else ''}"] if extra else [])
        raise _Damaged(f"{where}: the weights do not match the architecture ({'; '.join(parts)})")
    bad_values = 0
    floating = {k: v.is_floating_point() for k, v in expected.state_dict().items()}
    for key, shape in want.items():
        t = state[key]
        if not isinstance(t, torch.Tensor):
            raise _Damaged(f"{where}: weight {key} is a {type(t).__name__}, not a tensor")
        if t.is_floating_point() != floating[key] or t.is_complex() or t.layout != torch.strided:
            raise _Damaged(f"{where}: weight {key} holds {t.dtype} values, not the {'floating-point' if floating[key] else 'integer'} numbers it needs")
        if tuple(t.shape) != shape:
            raise _Damaged(f"{where}: weight {key} has shape {tuple(t.shape)}, the architecture needs {shape}")
        if t.is_floating_point():
            bad_values += int((~torch.isfinite(t)).sum())
    if bad_values:
        raise _Damaged(f"{where} holds {bad_values} NaN or infinite weight value(s), so every output would be "
                       f"meaningless (the training diverged); use an earlier model file")


def _meta_net(build, arch: dict, where: str) -> nn.Module:
    try:
        with torch.device("meta"):
            return build(arch)
    except UserError as exc:
        raise _Damaged(f"{where}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any arch the builders reject is a damaged file
        raise _Damaged(f"{where}: cannot build this architecture ({type(exc).__name__}: {str(exc)[:120]})") from None


def _check_generator(name: str, entry: Any) -> int:
    """Returns the generator's number of label channels."""
    where = f"generator {name!r}"
    arch = _need(entry, "arch", dict, where)
    _need(arch, "name", str, f"{where} arch")
    for key in ("in_channels", "out_channels"):
        if _need(arch, key, int, f"{where} arch") not in (1, 3):
            raise _Damaged(f"{where} arch.{key} is {arch[key]}, not 1 or 3")
    _whole(arch, "ngf", f"{where} arch", 1, MAX_CHANNELS)
    cond = _whole(arch, "cond_channels", f"{where} arch", 0, MAX_CHANNELS, optional=True)
    if _need(arch, "norm", str, f"{where} arch") not in NORMS:
        raise _Damaged(f"{where} arch.norm is {arch['norm']!r}, not one of {', '.join(NORMS)}")
    _need(arch, "dropout", bool, f"{where} arch")
    _check_state(entry.get("state_dict"), _meta_net(build_generator, arch, where), where)
    return cond


def _check_classifier(entry: Any, domains: list) -> None:
    where = "classifier"
    arch = _need(entry, "arch", dict, where)
    if _need(arch, "in_channels", int, f"{where} arch") not in (1, 3):
        raise _Damaged(f"{where} arch.in_channels is {arch['in_channels']}, not 1 or 3")
    _whole(arch, "ndf", f"{where} arch", 1, MAX_CHANNELS)
    _whole(arch, "n_layers", f"{where} arch", 1, 12)
    if _whole(arch, "n_classes", f"{where} arch", 1, MAX_CHANNELS) != len(domains):
        raise _Damaged(f"{where} has {arch['n_classes']} classes but the file names {len(domains)} domains")
    if _need(arch, "norm", str, f"{where} arch") not in NORMS:
        raise _Damaged(f"{where} arch.norm is {arch['norm']!r}, not one of {', '.join(NORMS)}")
    _whole(entry, "image_size", where, 1, 65536)
    _need(entry, "multi_label", bool, where)
    _check_state(entry.get("state_dict"), _meta_net(build_discriminator, arch, where), where)


def _check_direction(name: str, entry: Any, cond_channels: dict[str, int]) -> None:
    where = f"direction {name!r}"
    if not isinstance(name, str) or not name:
        raise _Damaged(f"a direction name is {name!r}, not text")
    gen = _need(entry, "generator", str, where)
    if gen not in cond_channels:
        raise _Damaged(f"{where} uses generator {gen!r}, which the file does not hold")
    n = cond_channels[gen]
    if "cond" in entry:
        cond = _need(entry, "cond", list, where)
        if len(cond) != n or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in cond):
            raise _Damaged(f"{where}.cond should be {n} finite numbers (the generator's label channels)")
    elif "attributes" in entry:
        if len(_need(entry, "attributes", list, where)) != n:
            raise _Damaged(f"{where} lists {len(entry['attributes'])} attributes but its generator takes {n} label channels")
    elif n:
        raise _Damaged(f"{where} gives no label for its conditional generator {gen!r}")


def check_model_data(data: dict) -> None:
    """Raise _Damaged naming the first entry of a model file's payload that readers could not use."""
    _need(data, "method", str, "the file")
    generators = _need(data, "generators", dict, "the file")
    if not generators:
        raise _Damaged("it holds no generators")
    cond_channels = {}
    for name, entry in generators.items():
        if not isinstance(name, str):
            raise _Damaged(f"a generator name is {name!r}, not text")
        cond_channels[name] = _check_generator(name, entry)
    directions = _need(data, "directions", dict, "the file")
    if not directions:
        raise _Damaged("it holds no directions (nothing to translate)")
    for name, entry in directions.items():
        _check_direction(name, entry, cond_channels)
    domains = data.get("domains", [])
    if not isinstance(domains, list) or not all(isinstance(d, str) and d for d in domains):
        raise _Damaged("domains should be a list of names")
    if data.get("test_time_norm", "running") not in TEST_TIME_NORMS:
        raise _Damaged(f"test_time_norm is {data['test_time_norm']!r}, not one of {', '.join(TEST_TIME_NORMS)}")
    _whole(data, "image_size", "the file", 1, 65536)
    if _need(data, "channels", int, "the file") not in (1, 3):
        raise _Damaged(f"channels is {data['channels']}, not 1 or 3")
    _whole(data, "step", "the file", 0, 2**62)
    if data.get("test_dropout_seed") is not None:
        _whole(data, "test_dropout_seed", "the file", -2**63, 2**64 - 1)
    if "classifier" in data:
        _check_classifier(data["classifier"], domains)
