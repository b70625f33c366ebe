"""The sender's scheme registry: scheme name -> typed config class and quantizer.

Each scheme has one receiver-side entry (:mod:`nnshare.format.schemes`) and one sender-side
entry here: its frozen config dataclass (what the user asks for; ``.wire(shape)`` projects it
onto the scheme's wire spec) and the function that turns an array into a QuantizedTensor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..format.errors import SpecError
from ..format.schemes import get_scheme
from ..format.spec import QuantizedTensor


@dataclass(frozen=True)
class SenderScheme:
    """A registered sender side: ``config`` (frozen dataclass with a ``scheme`` attribute,
    ``wire(shape)``, ``to_dict``/``from_dict`` and ``config_space()``) and
    ``quantize(x, config, **options) -> QuantizedTensor``."""

    name: str
    config: type
    quantize: Callable[..., QuantizedTensor]


_BY_NAME: dict[str, SenderScheme] = {}


def register_quantizer(name: str, config: type, quantize: Callable[..., QuantizedTensor]) -> SenderScheme:
    """Register the sender side of scheme ``name`` (whose receiver side must be registered)."""
    get_scheme(name)  # SpecError unless the receiver knows the scheme
    if name in _BY_NAME:
        raise SpecError(f"a quantizer for scheme {name!r} is already registered")
    entry = SenderScheme(name, config, quantize)
    _BY_NAME[name] = entry
    return entry


def sender_schemes() -> tuple[SenderScheme, ...]:
    """Every registered sender side, in registration order."""
    return tuple(_BY_NAME.values())


def sender_scheme(name: str) -> SenderScheme:
    """The sender side of scheme ``name`` (SpecError if none)."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise SpecError(f"no quantizer for scheme {name!r}; known: {', '.join(_BY_NAME)}") from None


def entry_for(config) -> SenderScheme:
    """The registered entry whose config class ``config`` is an instance of."""
    entry = sender_scheme(getattr(config, "scheme", None))
    if not isinstance(config, entry.config):
        raise SpecError(f"{type(config).__name__} is not a {entry.config.__name__}")
    return entry


def quantize(x, config, **options) -> QuantizedTensor:
    """Quantize ``x`` (numpy array or torch tensor) with any registered scheme's config."""
    return entry_for(config).quantize(x, config, **options)


def config_from_dict(d: dict[str, Any]):
    """A config from its JSON form; ``d["scheme"]`` (default "affine") picks the class."""
    if not isinstance(d, dict):
        raise SpecError(f"a quantization config must be a JSON object, got {type(d).__name__}")
    return sender_scheme(d.get("scheme", "affine")).config.from_dict(d)
