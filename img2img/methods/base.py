"""What every method provides to the shared training loop, plus small helpers they all use.

The loop only calls: prepare(dataset), train_step(batch, step) -> {name: detached loss tensor},
sample(batch) -> list of image tensors (the columns of a preview grid), optimizers(),
state_dict()/load_state_dict() for checkpoints and export() for the model file.
A method steps its own optimizers (G and D alternate), so the loop never needs to know how many
nets or updates a method has.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, ClassVar, Iterable

import torch
from torch import nn

from img2img.config import RunConfig, attention_divisor
from img2img.errors import UserError
from img2img.nets import build_discriminator, build_generator, init_weights, resolve_generator_name
from img2img.nets.d_inputs import DiscriminatorInputs
from img2img.nets.layers import for_inference


def set_requires_grad(nets: Iterable[nn.Module], flag: bool) -> None:
    """Freeze D while G is updated: no wasted gradients for D's weights."""
    for net in nets:
        net.requires_grad_(flag)


def generator_arch(cfg: RunConfig, cond_channels: int = 0, direction: str = "a2b") -> dict:
    """The arch dict of the generator a run's settings describe, translating `direction` ('a2b' or 'b2a'):
    it takes the source domain's channels and gives the target's (data.channels_a / channels_b).

    A conditional generator's first conv is always zero-padded (first_pad), whatever net.padding says:
    with reflection the label maps become offsets that the instance norm after it removes (nets.layers).
    """
    n, d = cfg.net, cfg.data
    in_channels, out_channels = d.direction_channels(direction)
    arch = {"name": resolve_generator_name(n.generator, d.net_side), "in_channels": in_channels,
            "out_channels": out_channels, "ngf": n.ngf, "norm": n.norm, "dropout": n.dropout, "cond_channels": cond_channels,
            "padding": n.padding, "first_pad": "zero" if cond_channels else n.padding, "resample_kernel": n.resample_kernel}
    if n.attention_res:  # only when set, so files without the option describe the same nets as before
        arch["attention"] = attention_divisor(cfg)
    if n.input_skip:
        arch["input_skip"] = True
    if n.upsample != "transposed":
        arch["upsample"] = n.upsample
    return arch


# The fp16 loss scale to start from. torch's default, 2**16, overflows the generators' gradients of these
# nets for the first steps (a 12-step CycleGAN, 32 px, ngf 8: G skipped steps 1-5 while the scale halved
# to 2048, so fp16 ended 0.43 x as far as fp32 from the start; tests/test_fp16.py). Starting at 2**10
# leaves a factor 2 of headroom there and is as far from underflow as matters: gradients of 1e-7 scale
# to 1e-4, a normal fp16 number. The scale still grows 2x after every 2000 clean steps (torch's default).
FP16_INIT_SCALE = 2.0**10


class Method:
    name: ClassVar[str]
    summary: ClassVar[str]
    dataset_kind: ClassVar[str]  # "paired", "unpaired" (data layer builds the dataset)
    LossConfig: ClassVar[type]
    paper_defaults: ClassVar[dict[str, Any]] = {}
    test_time_norm: ClassVar[str] = "running"

    def __init_subclass__(cls, **kwargs):
        """Each method's train_step first tells the discriminators' input stage the step (instance noise
        anneals with it), so neither the methods nor the loop need code for the stabilisers."""
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("train_step")
        if own is not None and not getattr(own, "_tells_d_inputs", False):
            @functools.wraps(own)
            def train_step(self, batch: dict, step: int, *args, **kwargs) -> dict[str, torch.Tensor]:
                self.d_inputs.step = step
                return own(self, batch, step, *args, **kwargs)

            train_step._tells_d_inputs = True
            cls.train_step = train_step

    def __init__(self, cfg: RunConfig, device: torch.device, amp_dtype: torch.dtype | None = None):
        self.cfg, self.device, self.amp_dtype = cfg, device, amp_dtype
        t = cfg.train
        # The images a D input may hold: one of either domain, or (pix2pix) source and target side by side.
        source, target = cfg.data.direction_channels(cfg.data.direction)
        self.d_inputs = DiscriminatorInputs(t.diffaugment, t.instance_noise, t.instance_noise_steps or t.steps, (source, target))
        # fp16 needs loss scaling; the loop calls scaler.update() once per step, after all optimizers stepped.
        self.scaler = (torch.amp.GradScaler(device.type, init_scale=FP16_INIT_SCALE)
                       if amp_dtype == torch.float16 else None)
        cfg.net.generator = resolve_generator_name(cfg.net.generator, cfg.data.net_side)

    # ----- helpers for the subclasses
    def amp(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def generator_arch(self, cond_channels: int = 0, direction: str = "a2b") -> dict:
        return generator_arch(self.cfg, cond_channels, direction)

    def channels(self, domain: str) -> int:
        return self.cfg.data.channels_of(domain)

    def require_same_channels(self, why: str) -> None:
        """Refuse domains of different channel counts where the method feeds one domain's images to a net built for the other."""
        a, b = self.channels("a"), self.channels("b")
        if a != b:
            raise UserError(f"{self.name}: domains A and B differ in channels ({a} and {b}: data.channels_a, data.channels_b), "
                            f"but {why}")

    def discriminator_arch(self, in_channels: int, n_classes: int = 0) -> dict:
        n = self.cfg.net
        arch = {"in_channels": in_channels, "ndf": n.ndf, "n_layers": n.d_layers, "norm": n.norm,
                "spectral_norm": n.spectral_norm, "n_classes": n_classes}
        if n.attention_res:
            arch["attention"] = attention_divisor(self.cfg)
        if n.minibatch_std:
            arch["minibatch_std"] = True
        return arch

    def new_generator(self, arch: dict) -> nn.Module:
        return init_weights(build_generator(arch), self.cfg.net.init, self.cfg.net.init_gain).to(self.device)

    def new_discriminator(self, arch: dict) -> nn.Module:
        net = init_weights(build_discriminator(arch), self.cfg.net.init, self.cfg.net.init_gain).to(self.device)
        if self.d_inputs.active:  # DiffAugment / instance noise on everything this D judges in training
            net.input_stage = self.d_inputs
        return net

    def adam(self, params: Iterable[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
        t = self.cfg.train
        return torch.optim.Adam(params, lr=lr, betas=(t.beta1, t.beta2), fused=self.device.type == "cuda")

    def backward(self, loss: torch.Tensor) -> None:
        """loss.backward(), scaled when training in fp16."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """optimizer.step(), through the GradScaler when training in fp16 (it skips steps with inf gradients).

        Under torchrun the gradients are averaged before the scaler looks for infs, so every rank makes
        the same skip decision (see train.distributed.average_gradients_before_step).
        """
        if self.scaler is not None:
            average = getattr(optimizer, "average_gradients", None)
            if average is not None:
                average()
            self.scaler.step(optimizer)
        else:
            optimizer.step()

    @property
    def lr_d(self) -> float:
        return self.cfg.train.lr_d or self.cfg.train.lr

    def test_dropout_seed(self) -> int | None:
        """Seed of the fixed dropout masks kept on at test time (pix2pix), or None: dropout off."""
        return None

    def inference_copy(self, net: nn.Module) -> nn.Module:
        return for_inference(net, self.test_time_norm, self.test_dropout_seed())

    # ----- the interface the loop uses
    def prepare(self, dataset: Any) -> None:
        """Statistics needed before training (none by default)."""

    def train_step(self, batch: dict, step: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def sample(self, batch: dict) -> list[torch.Tensor]:
        raise NotImplementedError

    def sample_titles(self, count: int) -> list[str]:
        """Column titles of the preview grid, one per view sample() returns."""
        return ["input", "output"][:count] + [f"view {k + 1}" for k in range(2, count)]

    def nets(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def exported(self) -> tuple[dict[str, tuple[dict, nn.Module]], dict[str, dict]]:
        """({generator name: (arch, module)}, {direction: {"generator": name, ...}}) for the model file."""
        raise NotImplementedError

    def model_extras(self) -> dict:
        """Entries the model file keeps beside the generators (e.g. StarGAN's domain classifier); plain data only."""
        return {}

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    def state_dict(self) -> dict:
        return {"nets": {k: v.state_dict() for k, v in self.nets().items()},
                "optimizers": {k: v.state_dict() for k, v in self.optimizers().items()},
                "extra": self.extra_state()}

    def load_state_dict(self, state: dict) -> None:
        for k, net in self.nets().items():
            net.load_state_dict(state["nets"][k])
        for k, opt in self.optimizers().items():
            opt.load_state_dict(state["optimizers"][k])
        self.load_extra_state(state["extra"])
