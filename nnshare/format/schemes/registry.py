"""The receiver's scheme registry: scheme name and one-byte id -> :class:`Scheme` instance.

Ids 1..127 are nnshare's own schemes, given out in order (affine 1, codebook 2, then the next
free id); 128..199 are for experiments and out-of-tree schemes; 0 is the float record, 200 the
raw record, 201..255 are reserved for other record kinds. See docs/format.md.
"""

from __future__ import annotations

from ..errors import FormatError, SpecError
from .base import Scheme

FIRST_ID, LAST_ID = 1, 199

_BY_NAME: dict[str, Scheme] = {}
_BY_ID: dict[int, Scheme] = {}


def register_scheme(scheme: Scheme) -> Scheme:
    """Add a scheme instance to the registry; names and ids must be unique."""
    if not isinstance(scheme, Scheme):
        raise SpecError(f"register a Scheme instance, got {type(scheme).__name__}")
    if scheme.name in _BY_NAME or scheme.scheme_id in _BY_ID:
        raise SpecError(f"scheme {scheme.name!r} / id {scheme.scheme_id} already registered")
    if not FIRST_ID <= scheme.scheme_id <= LAST_ID:
        raise SpecError(f"scheme ids are {FIRST_ID}..{LAST_ID} (0 is a float record, 200 a raw record)")
    _BY_NAME[scheme.name] = scheme
    _BY_ID[scheme.scheme_id] = scheme
    return scheme


def get_scheme(name: str) -> Scheme:
    """Look a scheme up by name (SpecError if unknown)."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise SpecError(f"unknown scheme {name!r}; known: {', '.join(_BY_NAME)}") from None


def scheme_by_id(scheme_id: int) -> Scheme:
    """Look a scheme up by its stream id; an unknown id is a bad stream (FormatError)."""
    try:
        return _BY_ID[scheme_id]
    except KeyError:
        raise FormatError(f"unknown scheme id {scheme_id}") from None


def scheme_of(spec) -> Scheme:
    """The scheme of a wire spec or sender config (its ``scheme`` attribute)."""
    return get_scheme(getattr(spec, "scheme", None))


def all_schemes() -> tuple[Scheme, ...]:
    """Every registered scheme, by id."""
    return tuple(_BY_ID[i] for i in sorted(_BY_ID))
