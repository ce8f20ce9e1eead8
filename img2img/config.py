"""Typed run configuration: data, nets, training, and the method's own loss weights.

Precedence, lowest first: dataclass defaults < the method's paper defaults < a TOML config file
< explicit overrides (CLI flags, ``--set section.key=value``). Every value is type-checked and
unknown keys are refused, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from img2img.errors import UserError


def option(default: Any, help: str, choices: tuple | None = None, *, ge: float | None = None, gt: float | None = None,
           le: float | None = None, lt: float | None = None) -> Any:
    """A dataclass field carrying its help text, allowed values and numeric range for the CLI and errors.

    ge/gt/le/lt bound a number (>=, >, <=, <); every value set from a flag, --set or a TOML file is
    checked against them, so no setting reaches the nets or the loop out of range.
    """
    bounds = {k: v for k, v in (("ge", ge), ("gt", gt), ("le", le), ("lt", lt)) if v is not None}
    return field(default=default, metadata={"help": help, "choices": choices, "bounds": bounds})


_BOUND_WORDS = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}
_BOUND_TESTS = {"ge": lambda v, b: v >= b, "gt": lambda v, b: v > b, "le": lambda v, b: v <= b, "lt": lambda v, b: v < b}


def check_range(key: str, value: Any, metadata: Any) -> None:
    """Refuse a number outside the field's bounds, naming the setting and the allowed range."""
    bounds = metadata.get("bounds") or {}
    if not bounds or value is None or isinstance(value, bool):
        return
    if all(_BOUND_TESTS[k](value, b) for k, b in bounds.items()):
        return
    allowed = " and ".join(f"{_BOUND_WORDS[k]} {_number(b)}" for k, b in bounds.items())
    name = key.partition(".")[2].replace("_", " ")
    raise UserError(f"{name} ({key}) must be {allowed}, got {_number(value)}")


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


@dataclass
class DataConfig:
    a: str | None = option(None, "folder of domain A images (or inputs paired with --b by file stem)")
    b: str | None = option(None, "folder of domain B images")
    data: str | None = option(None, "folder of A|B side-by-side images (pix2pix) or of domain sub-folders")
    images: str | None = option(None, "folder of images whose attributes --labels lists (multi-label StarGAN)")
    labels: str | None = option(None, "CSV with a file column and 0/1 or -1/1 attribute columns (multi-label StarGAN)")
    attrs: str | None = option(None, "comma-separated attribute columns of --labels to train on (default: all)")
    direction: str = option("a2b", "which side is the input for paired data", ("a2b", "b2a"))
    image_size: int = option(256, "training crop size in pixels (its width when --crop-height is set)", ge=16, le=8192)
    crop_height: int = option(0, "height of the training crop in pixels; 0 = image_size (square). E.g. --image-size 256 "
                                 "--crop-height 144 trains a 16:9 video model on undistorted 16:9 crops", ge=0, le=8192)
    load_size: int = option(0, "resize (the width, for --preprocess scale_width*) to this before the random crop; "
                               "0 = image_size*286/256 (the papers' ratio)", ge=0, le=16384)
    preprocess: str = option("resize_and_crop", "how images are sized, as the reference code: resize_and_crop (to load "
                             "size, the crop's aspect), scale_width (width to load size, keeping the aspect unless the height "
                             "would fall below the crop's; whole images), "
                             "scale_width_and_crop, crop (no resize) or none (whole images, sides rounded to the "
                             "generator's stride); whole images of different shapes need --batch-size 1",
                             ("resize_and_crop", "scale_width", "scale_width_and_crop", "crop", "none"))
    center_crop: int = option(0, "first cut the centre square of this side (pixels) from each image, then resize (StarGAN's "
                                 "CelebA: 178); 0 = off", ge=0, le=16384)
    flip: bool = option(True, "random horizontal flips (the same flip for both images of a pair)")
    channels: int = option(3, "image channels: 3 (RGB) or 1 (grayscale)", (1, 3))
    channels_a: int = option(0, "channels of domain A images (e.g. 1 for grayscale inputs to colourise): 1 or 3; 0 = data.channels", (0, 1, 3))
    channels_b: int = option(0, "channels of domain B images: 1 or 3; 0 = data.channels", (0, 1, 3))

    def channels_of(self, domain: str) -> int:
        """Channels of domain 'a' or 'b': its own count, or data.channels where that is 0 (files before the split)."""
        own = {"a": self.channels_a, "b": self.channels_b}[domain]
        return own or self.channels

    def direction_channels(self, direction: str = "a2b") -> tuple[int, int]:
        """(input, output) channels of a translation 'a2b' or 'b2a'."""
        source, target = ("a", "b") if direction == "a2b" else ("b", "a")
        return self.channels_of(source), self.channels_of(target)

    @property
    def resolved_load_size(self) -> int:
        return self.load_size or round(self.image_size * 286 / 256)

    @property
    def crop_hw(self) -> tuple[int, int]:
        """(height, width) of the training crop."""
        return self.crop_height or self.image_size, self.image_size

    @property
    def net_side(self) -> int:
        """The side the 'unet' generator is sized for: the largest both crop sides are multiples of (square: image_size)."""
        return math.gcd(*self.crop_hw)

    @property
    def load_hw(self) -> tuple[int, int]:
        """(height, width) resize_and_crop resizes to: load_size wide, as high as the crop's aspect makes it."""
        w = self.resolved_load_size
        h, cw = self.crop_hw
        return (w if h == cw else round(w * h / cw)), w


@dataclass
class NetConfig:
    generator: str = option("resnet_9", "generator: resnet_<blocks> (resnet_6, resnet_9) or unet_<size> (unet_128, unet_256); 'unet' = U-Net as deep as --image-size allows")
    ngf: int = option(64, "generator filters in the first layer", ge=1, le=1024)
    ndf: int = option(64, "discriminator filters in the first layer", ge=1, le=1024)
    d_layers: int = option(3, "PatchGAN strided layers (3 = the 70x70 PatchGAN)", ge=1, le=10)
    norm: str = option("instance", "normalisation layer (instance_affine: with a learned scale and shift, as StarGAN)",
                       ("instance", "instance_affine", "batch", "none"))
    padding: str = option("reflect", "padding of the ResNet generator's convolutions (StarGAN: zero)", ("reflect", "zero"))
    resample_kernel: int = option(3, "kernel of the ResNet generator's stride-2 down/up convolutions: 3 (CycleGAN) or 4 (StarGAN)", (3, 4))
    dropout: bool = option(False, "dropout 0.5 in the generator (U-Net decoder / ResNet blocks)")
    init: str = option("normal", "weight initialisation (default: PyTorch's own per layer, as StarGAN)",
                       ("normal", "xavier", "kaiming", "orthogonal", "default"))
    init_gain: float = option(0.02, "scale of the initial weights", gt=0, le=10)
    spectral_norm: bool = option(False, "spectral normalisation on every discriminator layer")
    attention_res: int = option(0, "SAGAN self-attention block in the generator and the discriminator where their feature maps are this many pixels on a side at --image-size (image_size/2 or /4 fit every net; e.g. 16 at 64 px); 0 = none", ge=0)
    upsample: str = option("transposed", "how ResNet generators double their maps: transposed convs (the papers) or resize (nearest 2x, then a 3x3 conv: no checkerboard artifacts)", ("transposed", "resize"))
    input_skip: bool = option(False, "ResNet generators learn a change of their input, tanh(atanh(x) + f(x)), starting as the identity (f's last conv zero): short trainings edit the photo instead of redrawing it")
    minibatch_std: bool = option(False, "minibatch standard-deviation feature (ProGAN) as an extra channel before the discriminator's last layer (needs batch size 2 or more to see anything)")


@dataclass
class TrainConfig:
    steps: int = option(0, "training iterations (exclusive with epochs)", ge=0, le=10**10)
    epochs: int = option(0, "passes over the training data; unpaired: over the larger folder, max(|A|, |B|) images (exclusive with steps)", ge=0, le=10**7)
    batch_size: int = option(1, "images per step", ge=1, le=65536)
    lr: float = option(2e-4, "Adam learning rate of the generator(s)", gt=0, le=1)
    lr_d: float = option(0.0, "Adam learning rate of the discriminator(s); 0 = same as lr (set both for two-timescale updates)", ge=0, le=1)
    beta1: float = option(0.5, "Adam beta1", ge=0, lt=1)
    beta2: float = option(0.999, "Adam beta2", ge=0, lt=1)
    gan_loss: str = option("lsgan", "adversarial loss", ("vanilla", "lsgan", "hinge", "wgan-gp"))
    gp_weight: float = option(10.0, "gradient-penalty weight for wgan-gp", ge=0, le=1e6)
    lr_policy: str = option("linear", "linear: constant, then linear decay to 0; constant: never decays", ("linear", "constant"))
    decay_start: float = option(0.5, "fraction of the run after which the linear decay starts", ge=0, le=1)
    seed: int = option(0, "random seed (weights, data order, augmentation)", ge=0, le=2**32 - 1)
    device: str = option("auto", "auto, cpu, cuda or cuda:<i>")
    precision: str = option("auto", "autocast precision: auto = bf16 on GPUs that support it, else fp16 with loss scaling; on CPUs with native bf16 (AMX/AVX512-BF16) bf16 for big enough nets and images (where it is faster), else fp32", ("auto", "fp32", "bf16", "fp16"))
    channels_last: bool = option(False, "channels-last memory layout for nets and batches (meant for bf16/fp16 convolutions on GPUs; off by default: it made CPU training slower)")
    compile: bool = option(False, "torch.compile the networks (falls back to eager where compilation fails)")
    instance_noise: float = option(0.0, "instance noise: std of Gaussian noise added to every discriminator input (real and generated, images in [-1, 1]) at step 0, falling linearly to 0 at train.instance_noise_steps; 0 = off", ge=0, le=100)
    instance_noise_steps: int = option(0, "step at which the instance noise has fallen to 0; 0 = the end of the run (train.steps; needed when training by epochs)", ge=0)
    diffaugment: str = option("", "DiffAugment: comma-separated transforms applied to real and generated images alike before the discriminator, with gradients to the generator: color, translation, cutout (e.g. color,translation,cutout); empty = off")
    recipe: str = option("", "named settings measured to beat the paper defaults at a budget (README section Recipes; img2img/recipes.py), applied over the paper defaults and under your own flags; empty = the paper defaults")
    ema: float = option(0.0, "keep an exponential moving average of the generator weights with this decay (e.g. 0.999) and ship it in model.pt; 0 = off", ge=0, lt=1)
    workers: int = option(-1, "data-loading worker processes; -1 = auto (0 on CPU)", ge=-1, le=256)
    sample_every: int = option(0, "also write a preview grid every N steps (0 = by time only: see sample_minutes)", ge=0)
    sample_minutes: float = option(5.0, "write a preview grid every this many minutes, the first after one minute (0 = off), and at the end", ge=0, le=10**6)
    save_every: int = option(0, "also write model.pt and checkpoint.pt every N steps (0 = by time only: see save_minutes)", ge=0)
    save_minutes: float = option(10.0, "write model.pt and checkpoint.pt every this many minutes, the first after two minutes (0 = off), and at the end", ge=0, le=10**6)
    log_every: int = option(50, "log losses every N steps", ge=1)
    eval_every: int = option(0, "score FID/KID on held-out folders every N steps and keep model_best.pt (0 = never; needs the metrics extra)", ge=0)
    eval_a: str | None = option(None, "held-out domain A folder for --eval-every")
    eval_b: str | None = option(None, "held-out domain B folder for --eval-every")
    eval_data: str | None = option(None, "held-out folder of A|B side-by-side images for --eval-every (instead of eval_a/eval_b)")
    eval_max: int = option(0, "score at most this many held-out images (0 = all)", ge=0)
    eval_inception: str | None = option(None, "Inception network file for --eval-every (default: the one the metrics extra installs)")


SECTIONS = ("data", "net", "train", "loss")


@dataclass
class RunConfig:
    method: str
    data: DataConfig
    net: NetConfig
    train: TrainConfig
    loss: Any  # the method's own dataclass of loss weights

    def to_dict(self) -> dict:
        return {"method": self.method, **{s: dataclasses.asdict(getattr(self, s)) for s in SECTIONS}}


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert a value (from TOML or a --set string) to the field's type, or raise a UserError."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "")):
            return None
        return _coerce(value, args[0], key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        raise UserError(f"{key} must be true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise UserError(f"{key} must be a whole number, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise UserError(f"{key} must be a whole number, got {value!r}")
    if tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise UserError(f"{key} must be a number, got {value!r}")
        if not math.isfinite(number):
            raise UserError(f"{key} must be a finite number, got {value!r}")
        return number
    if tp is str:
        if isinstance(value, (str, Path)):
            return str(value)
        raise UserError(f"{key} must be text, got {value!r}")
    return value


def set_value(cfg: RunConfig, key: str, value: Any) -> None:
    """Set ``section.name`` on cfg after checking the key exists and the value has the right type."""
    section, _, name = key.partition(".")
    if section not in SECTIONS or not name:
        raise UserError(f"unknown setting {key!r}: settings look like section.name with section one of {', '.join(SECTIONS)}")
    target = getattr(cfg, section)
    known = {f.name: f for f in dataclasses.fields(target)}
    if name not in known:
        raise UserError(f"unknown setting {key!r}; {section} has: {', '.join(known)}")
    converted = _coerce(value, _field_types(type(target))[name], key)
    choices = known[name].metadata.get("choices")
    if choices and converted not in choices:
        raise UserError(f"{key} must be one of {', '.join(map(str, choices))}, got {converted!r}")
    check_range(key, converted, known[name].metadata)
    setattr(target, name, converted)


def apply(cfg: RunConfig, values: dict[str, Any]) -> None:
    for key, value in values.items():
        set_value(cfg, key, value)


def flatten(nested: dict, where: str = "") -> dict[str, Any]:
    """{'train': {'lr': 1}} -> {'train.lr': 1}; a non-table at the top level is refused."""
    flat = {}
    for section, table in nested.items():
        if not isinstance(table, dict):
            raise UserError(f"{where}: '{section}' must be a table like [train]; sections are {', '.join(SECTIONS)}")
        for name, value in table.items():
            flat[f"{section}.{name}"] = value
    return flat


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        nested = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid TOML: {exc}") from None
    nested.pop("method", None)
    return flatten(nested, str(path))


def parse_set(items: list[str]) -> dict[str, str]:
    """Parse repeated ``--set key=value`` arguments."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UserError(f"--set expects key=value, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def default_config(method_cls: type) -> RunConfig:
    cfg = RunConfig(method_cls.name, DataConfig(), NetConfig(), TrainConfig(), method_cls.LossConfig())
    apply(cfg, method_cls.paper_defaults)
    return cfg


def with_run_length_settled(explicit: dict[str, Any]) -> dict[str, Any]:
    """Steps and epochs are two ways to say one thing: the one given explicitly replaces the other's default."""
    settled = dict(explicit)
    for given, other in (("train.steps", "train.epochs"), ("train.epochs", "train.steps")):
        if given in settled and other not in settled:
            settled[other] = 0
    return settled


def build_config(method_cls: type, config_file: str | Path | None = None, overrides: dict[str, Any] | None = None) -> RunConfig:
    cfg = default_config(method_cls)
    explicit = read_toml(config_file) if config_file else {}
    explicit.update(overrides or {})
    recipe = explicit.get("train.recipe")
    if recipe:  # over the paper defaults, under what the user set
        from img2img.recipes import recipe_settings

        apply(cfg, recipe_settings(str(recipe), method_cls.name))
    apply(cfg, with_run_length_settled(explicit))
    validate(cfg)
    return cfg


def from_dict(d: dict, method_cls: type) -> RunConfig:
    """Rebuild a RunConfig saved by to_dict (checkpoint or model file)."""
    cfg = RunConfig(method_cls.name, DataConfig(), NetConfig(), TrainConfig(), method_cls.LossConfig())
    apply(cfg, flatten({s: d.get(s, {}) for s in SECTIONS}))
    return cfg


def _check_fields(cfg: RunConfig) -> None:
    """Every field of every section within its choices and bounds (values may come from any source)."""
    for section in SECTIONS:
        target = getattr(cfg, section)
        for f in dataclasses.fields(target):
            key, value = f"{section}.{f.name}", getattr(target, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise UserError(f"{key} must be a finite number, got {value!r}")
            choices = f.metadata.get("choices")
            if choices and value not in choices:
                raise UserError(f"{key} must be one of {', '.join(map(str, choices))}, got {value!r}")
            check_range(key, value, f.metadata)


def _check_nets_fit_the_images(cfg: RunConfig) -> None:
    """The generator's depth and the PatchGAN's halvings must fit the training crop."""
    from img2img.nets import generator_stride, resolve_generator_name

    n, d, size = cfg.net, cfg.data, cfg.data.image_size
    name = resolve_generator_name(n.generator, d.net_side)
    stride = generator_stride(name)  # a UserError for unknown or out-of-range names
    fit = "a multiple of 4" if name.startswith("resnet") else f"a multiple of {stride}, or --generator unet"
    for flag, value in (("--image-size", size), ("--crop-height", d.crop_height),
                        ("--load-size", d.resolved_load_size if d.preprocess == "scale_width" else 0)):
        if value % stride:
            raise UserError(f"{flag} {value} does not fit the {name} generator, which halves the image "
                            f"{stride.bit_length() - 1} times; use {fit}")
    size = min(d.crop_hw)
    if size // 2**n.d_layers < 3 and not getattr(cfg.loss, "sizes_discriminator", False):
        fit = max(k for k in range(1, 11) if size // 2**k >= 3)
        raise UserError(f"the discriminator with net.d_layers={n.d_layers} halves the image {n.d_layers} times, too often "
                        f"for {size} px images (needs {3 * 2**n.d_layers} px); use --set net.d_layers={fit} or a larger --image-size")


def validate(cfg: RunConfig) -> None:
    """Each setting in range (see option()), then the rules that tie settings together."""
    _check_fields(cfg)
    t, d = cfg.train, cfg.data
    if t.eval_every and not (t.eval_data or (t.eval_a and t.eval_b)):
        raise UserError("--eval-every needs held-out data: --eval-a DIR --eval-b DIR, or --set train.eval_data=DIR (A|B images)")
    if t.steps and t.epochs:
        raise UserError("give either --steps or --epochs, not both")
    if d.load_size and d.load_size < d.image_size:
        raise UserError(f"--load-size ({d.load_size}) must be at least --image-size ({d.image_size})")
    if d.crop_height and d.crop_height < 16:
        raise UserError(f"--crop-height must be at least 16 pixels (or 0: square crops), got {d.crop_height}")
    _check_nets_fit_the_images(cfg)
    validate_stabilisers(cfg)


def validate_stabilisers(cfg: RunConfig) -> None:
    t, n, size = cfg.train, cfg.net, cfg.data.image_size
    if t.instance_noise > 0 and not (t.instance_noise_steps or t.steps):
        raise UserError("instance noise needs a horizon when training by epochs: set train.instance_noise_steps")
    from img2img.nets.d_inputs import parse_policy

    try:
        parse_policy(t.diffaugment)
    except ValueError as exc:
        raise UserError(f"train.diffaugment: {exc}") from None
    if n.attention_res:
        ratio = size // n.attention_res
        if size % n.attention_res or ratio & (ratio - 1):
            raise UserError(f"net.attention_res ({n.attention_res}) must be --image-size ({size}) divided by a power of 2, "
                            f"e.g. {size // 2} or {size // 4}")


def attention_divisor(cfg: RunConfig) -> int:
    """net.attention_res as the fraction of the input side the nets store (so translate works at any size)."""
    return cfg.data.image_size // cfg.net.attention_res if cfg.net.attention_res else 0
