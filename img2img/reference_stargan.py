"""Turn a generator trained with the StarGAN authors' code (yunjey/stargan, `{step}-G.ckpt`) into a model file.

Their Generator (model.py) is one Sequential `main`: a 7x7 conv (zero padding 3, no bias) on the image
plus the label maps, InstanceNorm2d(affine, track_running_stats), ReLU; two 4x4 stride-2 convs with norm and
ReLU; `repeat_num` ResidualBlocks (`main.{i}.main`: conv 0, norm 1, ReLU, conv 3, norm 4); two 4x4
stride-2 transposed convs with norm and ReLU; a 7x7 conv without bias and tanh. The shared ResNet generator
has the same layers with the StarGAN options (zero padding, 4x4 resampling, norm "instance_affine"), each
padding being its own module, so every top-level index is one more than theirs (two for the last conv,
which has a padding module of its own too), and inside a block 0, 1, 3, 4 become 1, 2, 5, 6. Their test code never puts G in eval mode, so its norms use each image's
own statistics: the running statistics in the file are dropped. Our last conv has a bias: zero.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from img2img import config as config_mod
from img2img.errors import UserError
from img2img.modelfile import safe_torch_load, save_model
from img2img.nets import build_generator
from img2img.nets.layers import NORMS

STARGAN_ARCH = {"norm": "instance_affine", "padding": "zero", "first_pad": "zero", "resample_kernel": 4}


def stargan_generator(path: Path) -> tuple[dict, torch.nn.Module]:
    """(arch dict, loaded generator) of an authors' StarGAN G checkpoint."""
    from img2img.reference_import import _plain_state_dict

    if "instance_affine" not in NORMS:
        raise UserError("importing StarGAN needs the StarGAN generator options of the shared backbone, "
                        "which this img2img does not have yet")
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    sd = _plain_state_dict(safe_torch_load(path, "generator file"), path)
    blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"main\.(\d+)\.main\.", k))})
    if "main.0.weight" not in sd or not blocks:
        raise UserError(f"{path}: not a StarGAN generator (expected main.0 and main.N.main.* weights, as in 200000-G.ckpt)")
    first = sd["main.0.weight"]
    last = max(int(m.group(1)) for k in sd if (m := re.match(r"main\.(\d+)\.weight", k)))
    out_channels = sd[f"main.{last}.weight"].shape[0]
    in_channels = 1 if out_channels == 1 else 3
    arch = {"name": f"resnet_{len(blocks)}", "in_channels": in_channels, "out_channels": out_channels,
            "ngf": first.shape[0], "dropout": False, "cond_channels": first.shape[1] - in_channels, **STARGAN_ARCH}
    if arch["cond_channels"] < 1:
        raise UserError(f"{path}: the first conv has {first.shape[1]} input channels: no label channels")
    mapped = {}
    for key, value in sd.items():
        if key.endswith((".running_mean", ".running_var", ".num_batches_tracked")):
            continue  # never used by the authors' test code (G stays in training mode)
        m = re.match(r"main\.(\d+)\.(main\.(\d+)\.)?(.+)", key)
        if not m:
            raise UserError(f"{path}: unexpected weight {key}")
        index = int(m.group(1)) + (2 if int(m.group(1)) == last else 1)
        if m.group(2):
            inner = {"0": 1, "1": 2, "3": 5, "4": 6}.get(m.group(3))
            if inner is None:
                raise UserError(f"{path}: unexpected weight {key}")
            mapped[f"model.{index}.body.{inner}.{m.group(4)}"] = value
        else:
            mapped[f"model.{index}.{m.group(4)}"] = value
    net = build_generator(arch)
    expected = net.state_dict()
    for key, value in expected.items():
        if key not in mapped and key.endswith(".bias"):
            mapped[key] = torch.zeros_like(value)  # their convs have no bias
    missing, unexpected = sorted(set(expected) - set(mapped)), sorted(set(mapped) - set(expected))
    if missing or unexpected or any(mapped[k].shape != v.shape for k, v in expected.items()):
        raise UserError(f"{path}: layout not understood ({len(missing)} weights missing, {len(unexpected)} unexpected)")
    net.load_state_dict(mapped)
    return arch, net


def import_stargan(files: list[Path], output: Path, *, image_size: int | None = None,
                   domains: list[str] | None = None) -> dict:
    from img2img.methods import get_method

    if len(files) != 1:
        raise UserError("stargan: give one generator file (e.g. 200000-G.ckpt)")
    arch, net = stargan_generator(Path(files[0]))
    n = arch["cond_channels"]
    names = domains or [f"domain_{i}" for i in range(n)]
    if len(names) != n or len(set(names)) != n or any(not d or "=" in d or "," in d for d in names):
        raise UserError(f"--domains must name the {n} labels the generator was trained with, once each, in the "
                        f"training order (e.g. --domains Black_Hair,Blond_Hair,Brown_Hair,Male,Young)")
    method_cls = get_method("stargan")
    cfg = config_mod.default_config(method_cls)
    config_mod.apply(cfg, {"net.generator": arch["name"], "net.ngf": arch["ngf"], "data.channels": arch["in_channels"],
                           "data.image_size": image_size or 128})
    directions = {f"to:{d}": {"generator": "G", "cond": [1.0 if j == k else 0.0 for j in range(n)]}
                  for k, d in enumerate(names)}
    output.parent.mkdir(parents=True, exist_ok=True)
    save_model(output, method="stargan", generators={"G": (arch, net)}, directions=directions, config=cfg.to_dict(),
               step=0, domains=names)
    return {"method": "stargan", "arch": arch, "directions": list(directions), "test_time_norm": "running"}
