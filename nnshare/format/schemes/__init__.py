"""Receiver-side quantization schemes: one module per scheme's record body, and the registry.

A new scheme is a subclass of :class:`Scheme` in its own module here plus one line below that
registers an instance (docs/architecture.md, "Add a scheme in five steps").
"""

from .affine import AffineScheme, AffineWire
from .base import Coding, Pending, Scheme
from .channel_codebook import ChannelCodebookScheme, ChannelCodebookWire
from .codebook import CodebookScheme, CodebookWire
from .minifloat import MinifloatScheme, MinifloatWire
from .multipoint import MultipointScheme, MultipointWire
from .registry import all_schemes, get_scheme, register_scheme, scheme_by_id, scheme_of
from .rotated import RotatedScheme

register_scheme(AffineScheme())
register_scheme(CodebookScheme())
register_scheme(RotatedScheme())
register_scheme(MinifloatScheme())
register_scheme(ChannelCodebookScheme())
register_scheme(MultipointScheme())

__all__ = [
    "AffineScheme",
    "AffineWire",
    "ChannelCodebookScheme",
    "ChannelCodebookWire",
    "CodebookScheme",
    "CodebookWire",
    "MinifloatScheme",
    "MinifloatWire",
    "MultipointScheme",
    "MultipointWire",
    "Coding",
    "Pending",
    "RotatedScheme",
    "Scheme",
    "all_schemes",
    "get_scheme",
    "register_scheme",
    "scheme_by_id",
    "scheme_of",
]
