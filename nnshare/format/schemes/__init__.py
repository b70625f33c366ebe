"""Receiver-side quantization schemes: one module per scheme's record body, and the registry.

A new scheme is a subclass of :class:`Scheme` in its own module here plus one line below that
registers it (docs/architecture.md, "Add a scheme in five steps"). Affine, every stream's
common case, is imported here; the others are registered by name and id and imported on first
use (their names below load their module when asked for).
"""

from importlib import import_module

from .affine import AffineScheme, AffineWire
from .base import Coding, Pending, Scheme
from .registry import all_schemes, get_scheme, register_lazy, register_scheme, scheme_by_id, scheme_of

register_scheme(AffineScheme())

# name -> (id, module, the module's exported names; the first is the Scheme class)
_LAZY_SCHEMES = {
    "codebook": (2, "codebook", ("CodebookScheme", "CodebookWire")),
    "rotated": (3, "rotated", ("RotatedScheme",)),
    "minifloat": (4, "minifloat", ("MinifloatScheme", "MinifloatWire")),
    "channel_codebook": (5, "channel_codebook", ("ChannelCodebookScheme", "ChannelCodebookWire")),
    "multipoint": (6, "multipoint", ("MultipointScheme", "MultipointWire")),
    "sigma_delta": (7, "sigma_delta", ("SigmaDeltaScheme", "SigmaDeltaWire")),
    "lplr": (8, "lplr", ("LPLRScheme", "LPLRWire")),
}
_HOME = {n: mod for _, mod, names in _LAZY_SCHEMES.values() for n in names}


def _loader(module: str, cls: str):
    return lambda: getattr(import_module(f".{module}", __name__), cls)()


for _name, (_id, _mod, _names) in _LAZY_SCHEMES.items():
    register_lazy(_name, _id, _loader(_mod, _names[0]))


def __getattr__(name: str):
    """The lazily imported schemes' classes (``from nnshare.format.schemes import LPLRWire``)."""
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{_HOME[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "AffineScheme",
    "AffineWire",
    "ChannelCodebookScheme",
    "ChannelCodebookWire",
    "CodebookScheme",
    "CodebookWire",
    "LPLRScheme",
    "LPLRWire",
    "MinifloatScheme",
    "MinifloatWire",
    "MultipointScheme",
    "MultipointWire",
    "Coding",
    "Pending",
    "RotatedScheme",
    "Scheme",
    "SigmaDeltaScheme",
    "SigmaDeltaWire",
    "all_schemes",
    "get_scheme",
    "register_lazy",
    "register_scheme",
    "scheme_by_id",
    "scheme_of",
]
