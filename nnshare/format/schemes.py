"""The scheme registry: one entry per quantization scheme, keyed by name and by its one-byte id.

A scheme knows how to dequantize (numpy only, this is the receiver) and how its parameters are
laid out in a record. Quantizers (``nnshare.quant``) register the sender side separately.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import FormatError, SpecError
from .spec import SCHEMES, QuantizedTensor, from_blocks, to_blocks


@dataclass(frozen=True)
class Scheme:
    """A registered scheme: its name, its stream id (0..255) and its receiver-side dequantizer."""

    name: str
    scheme_id: int
    dequantize: Callable[[QuantizedTensor], np.ndarray]


_BY_NAME: dict[str, Scheme] = {}
_BY_ID: dict[int, Scheme] = {}


def register_scheme(scheme: Scheme) -> Scheme:
    """Add a scheme to the registry; names and ids must be unique."""
    if scheme.name in _BY_NAME or scheme.scheme_id in _BY_ID:
        raise SpecError(f"scheme {scheme.name!r} / id {scheme.scheme_id} already registered")
    if not 1 <= scheme.scheme_id <= 199:
        raise SpecError("scheme ids are 1..199 (0 is a float record, 200 a raw record)")
    _BY_NAME[scheme.name] = scheme
    _BY_ID[scheme.scheme_id] = scheme
    SCHEMES.add(scheme.name)
    return scheme


def get_scheme(name: str) -> Scheme:
    """Look a scheme up by name."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise SpecError(f"unknown scheme {name!r}; known: {', '.join(_BY_NAME)}") from None


def scheme_by_id(scheme_id: int) -> Scheme:
    """Look a scheme up by its stream id; an unknown id is a bad stream."""
    try:
        return _BY_ID[scheme_id]
    except KeyError:
        raise FormatError(f"unknown scheme id {scheme_id}") from None


def dequantize_affine(q: QuantizedTensor) -> np.ndarray:
    """float32 ``s * (x_int - z)``: x_int - z is an exact integer in float32 (|x_int - z| < 2**17),
    then one float32 multiply by its block's scale."""
    spec = q.spec
    codes = np.asarray(q.codes).reshape(q.shape)
    blocks = to_blocks(codes, spec)
    scale = np.asarray(q.params["scale"], dtype=np.float32).reshape(-1, 1)
    if spec.symmetric:  # one pass: float32(code) * scale
        out = np.multiply(blocks, scale, dtype=np.float32, casting="unsafe")
    else:
        z = np.asarray(q.params["zero_point"], dtype=np.float32).reshape(-1, 1)
        out = np.subtract(blocks, z, dtype=np.float32, casting="unsafe")
        out *= scale
    return np.asarray(from_blocks(out, q.shape, spec), dtype=np.float32, order="C")


register_scheme(Scheme("affine", 1, dequantize_affine))
