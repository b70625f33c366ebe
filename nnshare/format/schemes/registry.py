"""The receiver's scheme registry: scheme name and one-byte id -> :class:`Scheme` instance.

Ids 1..127 are nnshare's own schemes, given out in order (affine 1, codebook 2, then the next
free id); 128..199 are for experiments and out-of-tree schemes; 0 is the float record, 200 the
raw record, 201..255 are reserved for other record kinds. See docs/format.md.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import FormatError, SpecError
from .base import Scheme

FIRST_ID, LAST_ID = 1, 199

_BY_NAME: dict[str, Scheme] = {}
_BY_ID: dict[int, Scheme] = {}
# Schemes registered by name and id whose module is imported on first use (a receiver that
# reads only affine records never pays for the other schemes' imports).
_LAZY: dict[str, tuple[int, Callable[[], Scheme]]] = {}


def _check_new(name: str, scheme_id: int) -> None:
    if name in _BY_NAME or name in _LAZY or scheme_id in _BY_ID or \
            any(i == scheme_id for i, _ in _LAZY.values()):
        raise SpecError(f"scheme {name!r} / id {scheme_id} already registered")
    if not FIRST_ID <= scheme_id <= LAST_ID:
        raise SpecError(f"scheme ids are {FIRST_ID}..{LAST_ID} (0 is a float record, 200 a raw record)")


def register_scheme(scheme: Scheme) -> Scheme:
    """Add a scheme instance to the registry; names and ids must be unique."""
    if not isinstance(scheme, Scheme):
        raise SpecError(f"register a Scheme instance, got {type(scheme).__name__}")
    _check_new(scheme.name, scheme.scheme_id)
    _BY_NAME[scheme.name] = scheme
    _BY_ID[scheme.scheme_id] = scheme
    return scheme


def register_lazy(name: str, scheme_id: int, load: Callable[[], Scheme]) -> None:
    """Reserve ``name`` and ``scheme_id`` for a scheme that ``load()`` builds on first use."""
    _check_new(name, scheme_id)
    _LAZY[name] = (scheme_id, load)


def _load(name: str) -> Scheme:
    scheme_id, load = _LAZY.pop(name)
    scheme = load()
    if (scheme.name, scheme.scheme_id) != (name, scheme_id):
        raise SpecError(f"lazy scheme {name!r} / id {scheme_id} loaded as "
                        f"{scheme.name!r} / id {scheme.scheme_id}")
    return register_scheme(scheme)


def get_scheme(name: str) -> Scheme:
    """Look a scheme up by name (SpecError if unknown)."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        if isinstance(name, str) and name in _LAZY:
            return _load(name)
        raise SpecError(f"unknown scheme {name!r}; known: {', '.join([*_BY_NAME, *_LAZY])}") from None


def scheme_by_id(scheme_id: int) -> Scheme:
    """Look a scheme up by its stream id; an unknown id is a bad stream (FormatError)."""
    try:
        return _BY_ID[scheme_id]
    except KeyError:
        for name, (i, _) in list(_LAZY.items()):
            if i == scheme_id:
                return _load(name)
        raise FormatError(f"unknown scheme id {scheme_id}") from None


def scheme_of(spec) -> Scheme:
    """The scheme of a wire spec or sender config (its ``scheme`` attribute)."""
    return get_scheme(getattr(spec, "scheme", None))


def all_schemes() -> tuple[Scheme, ...]:
    """Every registered scheme, by id (lazy ones are loaded)."""
    for name in list(_LAZY):
        _load(name)
    return tuple(_BY_ID[i] for i in sorted(_BY_ID))
