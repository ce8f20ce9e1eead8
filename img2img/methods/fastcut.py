"""FastCUT (Park et al. 2020): CUT without the identity PatchNCE term, with lambda_NCE 10 and flip-equivariance.

The reference's FastCUT mode: nce_idt off, lambda_NCE 10, flip_equivariance on, 150 constant + 50 decaying
epochs. Everything else is CUT's (methods/cut.py); only the defaults differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from img2img.config import option
from img2img.methods import register_method
from img2img.methods.cut import CUT, CUTLoss


@dataclass
class FastCUTLoss(CUTLoss):
    lambda_nce: float = option(10.0, "weight of the PatchNCE loss", ge=0, le=1e4)
    nce_idt: bool = option(False, "identity PatchNCE term: G(y) against y (off in FastCUT)")
    flip_equivariance: bool = option(True, "flip the input batch half the time and ask G's features to flip with it")


@register_method("fastcut")
class FastCUT(CUT):
    summary = "CUT's faster variant: no identity term, lambda_NCE 10, flip-equivariance (Park et al. 2020)"
    LossConfig = FastCUTLoss
    paper_defaults = {**CUT.paper_defaults, "train.epochs": 200, "train.decay_start": 0.75}
