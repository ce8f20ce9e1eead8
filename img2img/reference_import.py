"""Turn generators trained with the reference code into img2img model files.

Reads the state dicts that junyanz/pytorch-CycleGAN-and-pix2pix saves (`latest_net_G.pth`,
`latest_net_G_A.pth`: networks.py ResnetGenerator and UnetGenerator) and works out the layout from
the keys and shapes alone:

  ResnetGenerator   model.{i}.*, residual blocks model.{i}.conv_block.{j}.*  ->  our model.{i}.*, model.{i}.body.{j}.*
                    (the same layer order: c7s1-ngf, two stride-2 convs, n blocks, two transposed convs, c7s1-out)
  UnetGenerator     nested UnetSkipConnectionBlocks, each a `model` Sequential holding the next one (at index 1 in
                    the outermost block, 3 in the others), so depth k is model.model, model.model.1.model, then
                    .3.model for each further level; a block holds
                    [downconv 0] + [submodule] + [uprelu, upconv 3, tanh] (outermost),
                    [downrelu, downconv 1, downnorm 2, submodule, uprelu, upconv 5, upnorm 6, (dropout)] (middle),
                    [downrelu, downconv 1, uprelu, upconv 3, upnorm 4] (innermost)  ->  our down[k] / up[k]

Norms are read from what the file holds: BatchNorm has a weight and running stats and convs without
bias; InstanceNorm (affine=False) has nothing but biased convs; no norm has neither. Files written
by PyTorch < 0.4 carry InstanceNorm running statistics: they are dropped, as the reference's own
loader does (`__patch_instance_norm_state_dict`). Dropout leaves no weights, but it shifts the
indices inside a ResNet block, so it is read from there; a U-Net's dropout is not in the file and
does not matter at translate time (the model runs in eval mode).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from img2img import config as config_mod
from img2img.errors import UserError
from img2img.modelfile import safe_torch_load, save_model
from img2img.nets import build_generator

IMPORTABLE = ("pix2pix", "cyclegan", "stargan")


def _plain_state_dict(obj, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path}: not a generator state dict (expected the file the reference code saves, "
                        "e.g. latest_net_G.pth or 200000-G.ckpt)")
    # DataParallel / torch.compile wrappers prefix every key
    return {re.sub(r"^(module\.|_orig_mod\.)+", "", k): v for k, v in obj.items()}


def _norm_kind(sd: dict, conv_prefix: str, norm_prefix: str) -> str:
    if f"{norm_prefix}.weight" in sd and f"{norm_prefix}.running_mean" in sd:
        return "batch"
    if f"{conv_prefix}.bias" in sd:
        return "instance"
    return "none"


def _drop_instance_running_stats(sd: dict, norm: str) -> dict:
    if norm != "instance":
        return sd
    return {k: v for k, v in sd.items() if not k.endswith((".running_mean", ".running_var", ".num_batches_tracked"))}


def _resnet(sd: dict, path: Path) -> tuple[dict, dict]:
    blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"model\.(\d+)\.conv_block\.", k))})
    if "model.1.weight" not in sd or not blocks:
        raise UserError(f"{path}: not a reference ResNet generator (no model.1 / conv_block weights)")
    first = sd["model.1.weight"]
    norm = _norm_kind(sd, "model.1", "model.2")
    dropout = any(k.endswith(".conv_block.6.weight") and v.ndim == 4 for k, v in sd.items())  # 2nd conv moved by one
    last = max(int(m.group(1)) for k in sd if (m := re.match(r"model\.(\d+)\.weight", k)))
    arch = {"name": f"resnet_{len(blocks)}", "in_channels": first.shape[1], "out_channels": sd[f"model.{last}.weight"].shape[0],
            "ngf": first.shape[0], "norm": norm, "dropout": dropout, "cond_channels": 0}
    sd = _drop_instance_running_stats(sd, norm)
    return arch, {k.replace(".conv_block.", ".body."): v for k, v in sd.items()}


def _unet_block(depth: int) -> str:
    """Key prefix of the Sequential of the U-Net block at this depth (0 = outermost)."""
    return "model.model" + (".1.model" if depth else "") + ".3.model" * max(depth - 1, 0)


def _unet(sd: dict, path: Path) -> tuple[dict, dict]:
    depth = 0
    while any(k.startswith(_unet_block(depth + 1) + ".") for k in sd):
        depth += 1
    n_down = depth + 1
    if "model.model.0.weight" not in sd or n_down < 5:
        raise UserError(f"{path}: not a reference U-Net generator (nested model.model.1.model... weights)")
    first = sd["model.model.0.weight"]
    inner = _unet_block(depth)
    norm = _norm_kind(sd, "model.model.1.model.1", "model.model.1.model.2")
    arch = {"name": f"unet_{2 ** n_down}", "in_channels": first.shape[1], "out_channels": sd["model.model.3.weight"].shape[1],
            "ngf": first.shape[0], "norm": norm, "dropout": False, "cond_channels": 0}
    sd = _drop_instance_running_stats(sd, norm)
    out = {}
    for key, value in sd.items():
        for k in range(n_down - 1, -1, -1):  # deepest prefix first: shallower ones are its prefixes
            prefix = _unet_block(k) + "."
            if not key.startswith(prefix):
                continue
            index, _, rest = key[len(prefix):].partition(".")
            if k == 0:
                where = {"0": "down.0", "3": "up.0.1"}
            elif prefix == inner + ".":
                where = {"1": f"down.{k}.1", "3": f"up.{k}.1", "4": f"up.{k}.2"}
            else:
                where = {"1": f"down.{k}.1", "2": f"down.{k}.2", "5": f"up.{k}.1", "6": f"up.{k}.2"}
            if index in where:
                out[f"{where[index]}.{rest}"] = value
            break
    return arch, out


def reference_generator(path: str | Path) -> tuple[dict, dict]:
    """(img2img arch dict, state dict for it) of a reference pix2pix/CycleGAN generator file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    sd = _plain_state_dict(safe_torch_load(path, "generator file"), path)
    arch, mapped = _unet(sd, path) if "model.model.0.weight" in sd else _resnet(sd, path)
    net = build_generator(arch)
    expected = net.state_dict()
    for key, value in expected.items():  # the reference has no conv bias without a norm; ours does: zeros are the same
        if key not in mapped and key.endswith(".bias") and arch["norm"] == "none":
            mapped[key] = torch.zeros_like(value)
    missing = sorted(set(expected) - set(mapped))
    unexpected = sorted(set(mapped) - set(expected))
    if missing or unexpected:
        raise UserError(f"{path}: layout not understood ({len(missing)} weights missing, e.g. {missing[:2]}; "
                        f"{len(unexpected)} unexpected, e.g. {unexpected[:2]})")
    for key, value in mapped.items():
        if value.shape != expected[key].shape:
            raise UserError(f"{path}: weight {key} has shape {tuple(value.shape)}, expected {tuple(expected[key].shape)}")
    net.load_state_dict(mapped)
    return arch, net


def import_reference(files: list[Path], method: str, output: Path, *, image_size: int | None = None,
                     test_time_norm: str | None = None, domains: list[str] | None = None,
                     dropout: bool | None = None) -> dict:
    """Write an img2img model file holding the reference generators in `files`; returns a summary."""
    from img2img.methods import get_method

    if method not in IMPORTABLE:
        raise UserError(f"--method must be one of {', '.join(IMPORTABLE)}")
    if method == "stargan":
        from img2img.reference_stargan import import_stargan

        return import_stargan(files, output, image_size=image_size, domains=domains)
    if domains:
        raise UserError("--domains is for StarGAN generators")
    if method == "pix2pix" and len(files) != 1:
        raise UserError("pix2pix: give one generator file (latest_net_G.pth)")
    if method == "cyclegan" and len(files) not in (1, 2):
        raise UserError("cyclegan: give G_A (A->B) and optionally G_B (B->A): latest_net_G_A.pth [latest_net_G_B.pth]")
    nets = [reference_generator(f) for f in files]
    if dropout is not None or (method == "pix2pix" and nets[0][0]["name"].startswith("unet")):
        # not in a U-Net's weights: as given, else the reference's default (dropout on unless --no_dropout)
        want = True if dropout is None else dropout
        if nets[0][0]["name"].startswith("resnet") and want != nets[0][0]["dropout"]:
            raise UserError(f"this ResNet generator was trained {'with' if nets[0][0]['dropout'] else 'without'} dropout "
                            "(its block layout says so); leave --dropout/--no-dropout out")
        nets = [({**a, "dropout": want}, _with_dropout(n, a, want)) for a, n in nets]
    arch = nets[0][0]
    if any(a["in_channels"] != a["out_channels"] for a, _ in nets) or any(a != arch for a, _ in nets[1:]):
        if any(a["in_channels"] != a["out_channels"] for a, _ in nets):
            raise UserError("generators with different input and output channel counts are not supported yet")
        raise UserError("the two generators have different architectures")
    method_cls = get_method(method)
    cfg = config_mod.default_config(method_cls)
    size = image_size or (int(arch["name"].split("_")[1]) if arch["name"].startswith("unet") else 256)
    overrides = {"net.generator": arch["name"], "net.ngf": arch["ngf"], "net.norm": arch["norm"],
                 "net.dropout": arch["dropout"], "data.channels": arch["in_channels"], "data.image_size": size}
    config_mod.apply(cfg, overrides)
    if method == "pix2pix":
        generators = {"G": nets[0]}
        directions = {"a2b": {"generator": "G"}}
    else:
        generators = {"G_AB": nets[0]} | ({"G_BA": nets[1]} if len(nets) == 2 else {})
        directions = {"a2b": {"generator": "G_AB"}} | ({"b2a": {"generator": "G_BA"}} if len(nets) == 2 else {})
    norm_at_test = test_time_norm or method_cls.test_time_norm
    # pix2pix keeps dropout on at test time (the reference's test script does too); fixed masks, seed 0
    extras = {"test_dropout_seed": 0 if arch["dropout"] else None} if method == "pix2pix" else {}
    output.parent.mkdir(parents=True, exist_ok=True)
    save_model(output, method=method, generators=generators, directions=directions, config=cfg.to_dict(), step=0,
               test_time_norm=norm_at_test, extras=extras)
    return {"method": method, "arch": arch, "directions": list(directions), "test_time_norm": norm_at_test}


def _with_dropout(net, arch: dict, dropout: bool):
    """The same weights in a generator built with or without dropout layers (they hold no weights)."""
    if arch["dropout"] == dropout:
        return net
    rebuilt = build_generator({**arch, "dropout": dropout})
    rebuilt.load_state_dict(net.state_dict())
    return rebuilt
