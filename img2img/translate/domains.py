"""`translate --to` for StarGAN models: one domain, every domain, or attribute edits.

Single-label models (trained on domain sub-folders): ``--to DOMAIN`` writes each output under its
input's name; ``--to all`` writes one output per domain, named <stem>_<domain><ext>.

Multi-label models (trained on an attribute CSV): ``--to "Black_Hair=1,Male=0"`` sets the named
attributes and keeps the others as the input has them. What the input "has" is read by the model's
own classifier (StarGAN's D, stored in the model file): attribute k is on when sigmoid(logit_k) > 0.5,
with the input resized to the training size for that reading. ``--to Black_Hair`` means
Black_Hair=1; ``--to all`` writes one output per attribute with that attribute flipped
(<stem>_<attr><ext>), as in the paper's figures.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from img2img.errors import UserError
from img2img.modelfile import ModelFile
from img2img.nets import build_discriminator
from img2img.nets.layers import for_inference
from img2img.translate.translator import Translator

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "-1", "false", "no", "off")


def load_classifier(model: ModelFile, device: torch.device | str = "cpu") -> torch.nn.Module:
    """The model file's domain classifier (StarGAN's D) in inference form."""
    entry = model.data.get("classifier")
    if entry is None:
        raise UserError(f"{model.path} holds no domain classifier (made by an older img2img?); retrain to edit attributes")
    net = build_discriminator(entry["arch"])
    net.load_state_dict(entry["state_dict"])
    return for_inference(net).to(device)


@torch.no_grad()
def classify(classifier: torch.nn.Module, x: torch.Tensor, image_size: int) -> torch.Tensor:
    """Class logits (B, n) for images x in [-1, 1] of any size, read at the training size."""
    if tuple(x.shape[-2:]) != (image_size, image_size):
        x = F.interpolate(x.float(), size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
    return classifier.forward_with_classes(x)[1].float()


class AttributeTranslator(Translator):
    """Sets some attributes (settings: {index: 0/1}) or flips one (toggle), keeping the rest as classified."""

    def __init__(self, model: ModelFile, settings: dict[int, float] | None = None, toggle: int | None = None,
                 device: str = "auto", precision: str = "auto", compile: bool = False):
        super().__init__(model, direction="attributes", device=device, precision=precision, compile=compile)
        self.classifier = load_classifier(self.model, self.device)
        self.classifier_size = int(self.model.data["classifier"]["image_size"])
        self.settings, self.toggle = dict(settings or {}), toggle

    def current_attributes(self, x: torch.Tensor) -> torch.Tensor:
        return (classify(self.classifier, x.to(self.device), self.classifier_size) > 0).float()

    def condition(self, x: torch.Tensor) -> torch.Tensor:
        c = self.current_attributes(x)
        for k, v in self.settings.items():
            c[:, k] = v
        if self.toggle is not None:
            c[:, self.toggle] = 1 - c[:, self.toggle]
        return c


def _attribute_settings(text: str, attrs: list[str]) -> dict[int, float]:
    settings: dict[int, float] = {}
    for part in text.split(","):
        name, eq, value = (s.strip() for s in part.partition("="))
        if name not in attrs:
            raise UserError(f"--to: unknown attribute {name!r}; this model's attributes: {', '.join(attrs)} "
                            f"(or --to all)")
        if not eq:
            value = "1"
        if value.lower() not in TRUE + FALSE:
            raise UserError(f"--to {name}={value}: use 1 or 0 (also -1, true, false)")
        settings[attrs.index(name)] = 1.0 if value.lower() in TRUE else 0.0
    return settings


def domain_translators(model: ModelFile, to: str, device: str = "auto", precision: str = "auto",
                       compile: bool = False) -> list[tuple[str, Translator]]:
    """[(output name suffix, translator)] for a --to value; one generator is shared by all of them."""
    domains = list(model.data.get("domains") or [])
    if not domains:
        raise UserError(f"--to picks a domain of a StarGAN model; this {model.method} model has directions "
                        f"{', '.join(model.directions)}: use --direction instead")
    to = to.strip()
    if "attributes" in model.directions:  # multi-label
        if to == "all":
            base = AttributeTranslator(model, device=device, precision=precision, compile=compile)
            out = []
            for k, name in enumerate(domains):
                t = copy.copy(base)
                t.settings, t.toggle, t.direction = {}, k, f"flip {name}"
                out.append((f"_{name}", t))
            return out
        t = AttributeTranslator(model, settings=_attribute_settings(to, domains), device=device, precision=precision, compile=compile)
        t.direction = f"set {to}"
        return [("", t)]
    if to == "all":
        base = Translator(model, direction=f"to:{domains[0]}", device=device, precision=precision, compile=compile)
        out = []
        for name in domains:
            t = copy.copy(base)
            t.direction = f"to:{name}"
            t.cond = torch.tensor(model.directions[t.direction]["cond"], dtype=torch.float32, device=base.device)[None]
            out.append((f"_{name}", t))
        return out
    if to not in domains:
        raise UserError(f"--to: unknown domain {to!r}; this model's domains: {', '.join(domains)} (or --to all)")
    return [("", Translator(model, direction=f"to:{to}", device=device, precision=precision, compile=compile))]
