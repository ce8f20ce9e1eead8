"""What the CLI needs to know about each method without importing it (and so torch): its name, its
one-line summary and the kind of data it trains on. `img2img --help` and argument errors stay fast.

The real registry (img2img.methods.METHODS) is the source of truth; tests/test_help.py checks that
this table agrees with it, so a new method is one more line here.
"""

from __future__ import annotations

from typing import NamedTuple


class MethodInfo(NamedTuple):
    dataset_kind: str  # "paired", "unpaired" or "domains"
    summary: str


CATALOG: dict[str, MethodInfo] = {
    "pix2pix": MethodInfo("paired", "paired translation: conditional GAN + L1 (Isola et al. 2017)"),
    "cyclegan": MethodInfo("unpaired", "unpaired translation: two GANs + cycle consistency (Zhu et al. 2017)"),
    "distancegan": MethodInfo("unpaired", "unpaired, one-sided: GAN + distance preservation (Benaim & Wolf 2017)"),
    "stargan": MethodInfo("domains", "many domains with one conditional generator (Choi et al. 2018)"),
    "cut": MethodInfo("unpaired", "unpaired one-way translation: GAN + patchwise contrastive loss (Park et al. 2020)"),
    "fastcut": MethodInfo("unpaired", "CUT's faster variant: no identity term, lambda_NCE 10, flip-equivariance (Park et al. 2020)"),
}

# The data flags each kind of dataset reads (the others would be ignored, so they are not offered).
DATA_FLAGS: dict[str, tuple[str, ...]] = {
    "paired": ("a", "b", "data", "direction", "channels_a", "channels_b"),
    "unpaired": ("a", "b", "channels_a", "channels_b"),
    "domains": ("data", "images", "labels", "attrs"),
}

# What each kind needs at the least; said before a run starts, so a run without data never begins.
NEEDS_DATA: dict[str, tuple[tuple[tuple[str, ...], ...], str]] = {
    "paired": ((("data",), ("a", "b")),
               "{method} needs --data DIR (A|B side-by-side images) or --a DIR --b DIR (pairs matched by file stem)"),
    "unpaired": ((("a", "b"),), "{method} needs --a DIR and --b DIR (one folder of images per domain)"),
    "domains": ((("data",), ("images", "labels")),
                "{method} needs --data DIR (one sub-folder of images per domain) or --images DIR --labels CSV"),
}


def missing_data_message(method: str, given: dict) -> str | None:
    """The one-line error when none of the flag sets the method's data kind needs is given, else None."""
    kind = CATALOG[method].dataset_kind
    if kind not in NEEDS_DATA:
        return None
    alternatives, message = NEEDS_DATA[kind]
    if any(all(given.get(flag) for flag in flags) for flags in alternatives):
        return None
    return message.format(method=method)
