"""Method registry: name -> class. A new method is one file here plus one import line below."""

from __future__ import annotations

from img2img.errors import UserError
from img2img.methods.base import Method

METHODS: dict[str, type[Method]] = {}


def register_method(name: str):
    def add(cls: type[Method]) -> type[Method]:
        if name in METHODS:
            raise ValueError(f"method {name!r} is registered twice")
        cls.name = name
        METHODS[name] = cls
        return cls

    return add


def get_method(name: str) -> type[Method]:
    try:
        return METHODS[name]
    except KeyError:
        raise UserError(f"unknown method {name!r}; known methods: {', '.join(sorted(METHODS))}") from None


# Registration happens on import; one line per method.
from img2img.methods import pix2pix  # noqa: E402,F401
from img2img.methods import cyclegan  # noqa: E402,F401
from img2img.methods import distancegan  # noqa: E402,F401
from img2img.methods import stargan  # noqa: E402,F401
from img2img.methods import cut  # noqa: E402,F401
from img2img.methods import fastcut  # noqa: E402,F401
