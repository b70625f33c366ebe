"""Sigma-delta scheme (id 7): noise-shaped codes on a midrise alphabet, plus the condensation.

The sender runs r-th order sigma-delta or distributed noise shaping along the last axis
(``nnshare.quant.sigma_delta``); each element is one of K = 2^b midrise levels
``delta * (k - (K - 1) / 2)``. The receiver rebuilds those levels (:meth:`dequantize`) and, for
random Fourier features, condenses them with the filter the record names (:func:`condense`):
``V q`` = sqrt(2 / p) / |v| times block sums weighted by v (p = m / block blocks per row).
Body (see docs/format.md):

- byte 1: ``(bits - 1) << 4 | mode << 3 | per_row << 2`` (mode 0 sigma-delta, 1 noise shaping);
- byte 2: ``scale dtype << 6 | coding << 4 | (order - 1)`` (order 1..8; 0 for noise shaping);
- block length (varint, >= 1; sigma-delta: ``order * (lt - 1) + 1`` for an integer lt >= 1);
- beta (fp32 > 0, noise shaping only);
- side info: one delta per tensor, or per row (every index of the leading axes), in the scale
  dtype (finite, > 0);
- codes: n level indices in C order at b bits (byte-padded), or an entropy field over [0, K - 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .. import bitpack
from ..errors import FormatError, SpecError
from ..wire import Reader, varint
from .base import (
    CODING_ENTROPY,
    FLOAT_BITS,
    FLOAT_CODES,
    FLOAT_NAMES,
    Coding,
    EntropyField,
    Pending,
    Scheme,
    body_varint_bits,
    ceil8,
    choose_codes,
    read_code_field,
    read_floats,
    unpack_code_field,
    write_floats,
)

MODES = ("sigma_delta", "noise_shaping")
MAX_ORDER = 8


def sd_filter(order: int, lt: int) -> np.ndarray:
    """Condensation vector of order-r sigma-delta: coefficients of (1 + t + ... + t^(lt-1))^r,
    length r (lt - 1) + 1."""
    if order < 1 or lt < 1:
        raise SpecError("sigma-delta condensation needs order >= 1 and lt >= 1")
    v = np.ones(1)
    for _ in range(order):
        v = np.convolve(v, np.ones(lt))
    return v


def ns_filter(beta: float, lam: int) -> np.ndarray:
    """Condensation vector of noise shaping: (beta^-1, beta^-2, ..., beta^-lam)."""
    return float(beta) ** -np.arange(1, lam + 1, dtype=np.float64)


def condense_with(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``V q`` for features q (..., m): m / len(v) block sums weighted by v, scaled by
    sqrt(2 / p) / |v| (p the number of blocks). Returns float64 (..., p)."""
    q = np.asarray(q, np.float64)
    lam, m = v.size, q.shape[-1]
    if m % lam:
        raise SpecError(f"the condensation length {lam} must divide the feature count {m}")
    p = m // lam
    blocks = q.reshape(q.shape[:-1] + (p, lam))
    return np.sqrt(2.0 / p) / np.linalg.norm(v) * (blocks @ v)


@dataclass(frozen=True)
class SigmaDeltaWire:
    """What a sigma-delta record tells the receiver: code width, mode, order, condensation block
    length, beta (noise shaping), one delta per tensor or per row, and the delta dtype."""

    bits: int = 2
    mode: str = "sigma_delta"
    order: int = 1
    block: int = 8
    beta: float = 0.0
    per_row: bool = False
    scale_dtype: str = "fp16"
    scheme: ClassVar[str] = "sigma_delta"

    def __post_init__(self) -> None:
        for name in ("bits", "order", "block"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise SpecError(f"{name} must be an integer, got {v!r}")
        if not 1 <= self.bits <= 8:
            raise SpecError(f"sigma-delta codes have 1..8 bits, got {self.bits}")
        if self.mode not in MODES:
            raise SpecError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not isinstance(self.per_row, bool | np.bool_):
            raise SpecError(f"per_row must be true or false, got {self.per_row!r}")
        if self.scale_dtype not in FLOAT_CODES:
            raise SpecError(f"scale_dtype must be one of {', '.join(FLOAT_CODES)}, got {self.scale_dtype!r}")
        if self.block < 1:
            raise SpecError(f"block must be >= 1, got {self.block}")
        if self.mode == "sigma_delta":
            if not 1 <= self.order <= MAX_ORDER:
                raise SpecError(f"sigma-delta order must be in 1..{MAX_ORDER}, got {self.order}")
            if (self.block - 1) % self.order or self.beta != 0:
                raise SpecError("a sigma-delta block is order x (lt - 1) + 1 long, and beta is 0")
        else:
            b = float(self.beta)
            if self.order != 1 or not (np.isfinite(b) and b > 0 and float(np.float32(b)) == b):
                raise SpecError("noise shaping needs order 1 and a beta > 0 exact in float32")

    @property
    def levels(self) -> int:
        return 2**self.bits

    @property
    def qmin(self) -> int:
        return 0

    @property
    def qmax(self) -> int:
        return self.levels - 1

    def filter(self) -> np.ndarray:
        """The condensation vector v (float64, ``block`` long)."""
        if self.mode == "sigma_delta":
            return sd_filter(self.order, (self.block - 1) // self.order + 1)
        return ns_filter(self.beta, self.block)

    def for_shape(self, shape: tuple[int, ...]) -> SigmaDeltaWire:
        if len(shape) < 1:
            raise SpecError("sigma-delta runs along the last axis; a 0-d tensor has none")
        return self

    def wire(self, shape: tuple[int, ...] | None = None) -> SigmaDeltaWire:
        return self if shape is None else self.for_shape(shape)


def n_deltas(shape: tuple[int, ...], w: SigmaDeltaWire) -> int:
    """Number of deltas: 1, or one per row (product of the leading dimensions)."""
    return int(np.prod(shape[:-1], dtype=np.int64)) if w.per_row else 1


def condense(q) -> np.ndarray:
    """The condensed features ``V q_hat`` of a decoded sigma-delta tensor (float64, (..., m / block))."""
    return condense_with(SigmaDeltaScheme().dequantize(q), q.spec.filter())


class SigmaDeltaScheme(Scheme):
    name = "sigma_delta"
    scheme_id = 7
    wire_type = SigmaDeltaWire

    def at_bits(self, w: SigmaDeltaWire, bits: int) -> SigmaDeltaWire:
        return SigmaDeltaWire(int(bits), w.mode, w.order, w.block, w.beta, w.per_row, w.scale_dtype)

    def describe(self, w: SigmaDeltaWire) -> str:
        kind = f"sd{w.order}" if w.mode == "sigma_delta" else f"ns b{w.beta:g}"
        return f"sigma-delta {kind} {w.bits}b /{w.block}" + (" rows" if w.per_row else "")

    def head_bits(self, w: SigmaDeltaWire) -> int:
        return 16 + body_varint_bits(w.block) + (32 if w.mode == "noise_shaping" else 0)

    def body_bits(self, shape, w: SigmaDeltaWire) -> int:
        n = int(np.prod(shape, dtype=np.int64))
        return self.head_bits(w) + n_deltas(shape, w) * FLOAT_BITS[w.scale_dtype] + ceil8(n * w.bits)

    def write(self, out, tally, q, w: SigmaDeltaWire, coding: Coding) -> None:
        shape = tuple(q.shape)
        n = int(np.prod(shape, dtype=np.int64))
        k = n_deltas(shape, w)
        delta = np.asarray(q.params["delta"], np.float32).reshape(-1)
        if delta.size != k or not np.all(np.isfinite(delta) & (delta > 0)):
            raise SpecError(f"tensor {tally.name!r}: deltas must be {k} finite positive numbers")
        codes = np.asarray(q.codes).reshape(-1).astype(np.int64)
        if codes.size and (codes.min() < 0 or codes.max() > w.qmax):
            raise SpecError(f"tensor {tally.name!r}: a code is not one of {w.levels} levels")
        row = int(shape[-1]) if len(shape) >= 2 and shape[-1] else None
        field = choose_codes(
            lambda: codes, w.qmax, n * w.bits, lambda: bitpack.pack(codes, w.bits), coding, row, n
        )
        out.u8((w.bits - 1) << 4 | MODES.index(w.mode) << 3 | int(w.per_row) << 2)
        out.u8(FLOAT_CODES[w.scale_dtype] << 6 | field.coding << 4 | (w.order - 1))
        out.raw(varint(w.block))
        if w.mode == "noise_shaping":
            write_floats(out, np.float32(w.beta), "fp32")
        tally.close("record")
        write_floats(out, delta, w.scale_dtype)
        tally.close("side")
        out.raw(field.data)
        tally.close("payload", field.pad_bits)

    def read(self, r: Reader, tally, shape) -> Pending:
        name = tally.name
        n = int(np.prod(shape, dtype=np.int64))
        b1 = r.u8(f"spec of {name!r}")
        b2 = r.u8(f"spec of {name!r}")
        bits, mode, per_row = (b1 >> 4) + 1, b1 >> 3 & 1, bool(b1 >> 2 & 1)
        sdt, coding, order = b2 >> 6, b2 >> 4 & 3, (b2 & 15) + 1
        if bits > 8 or b1 & 3 or sdt not in FLOAT_NAMES or coding > 1 or len(shape) < 1:
            raise FormatError(f"record {name!r}: invalid sigma-delta spec bytes {b1:#04x} {b2:#04x}")
        block = r.varint(f"block length of {name!r}", limit=2**31)
        beta = 0.0
        if mode == 1:
            beta = float(read_floats(r, 1, "fp32", f"beta of {name!r}")[0])
        try:
            w = SigmaDeltaWire(bits, MODES[mode], order, block, beta, per_row, FLOAT_NAMES[sdt])
        except SpecError as e:
            raise FormatError(f"record {name!r}: {e}") from None
        tally.close("record")
        delta = read_floats(r, n_deltas(shape, w), w.scale_dtype, f"deltas of {name!r}")
        with np.errstate(all="ignore"):
            ok = np.isfinite(delta) & (delta > 0) & np.isfinite(delta * np.float32(w.levels))
        if not np.all(ok):
            raise FormatError(f"record {name!r}: a delta is not a finite positive number (or too large)")
        tally.close("side")
        buf, head = read_code_field(r, tally, coding, n, n * bits, name)

        def finish(context=None):
            from ..spec import QuantizedTensor

            codes = unpack_code_field(buf, coding, n, bits, w.qmax, context, name).reshape(shape)
            return QuantizedTensor(codes=codes, params={"delta": delta}, spec=w, shape=tuple(shape))

        return Pending(finish, EntropyField(buf, n, w.qmax, head) if coding == CODING_ENTROPY else None,
                       wire=w)

    def dequantize(self, q) -> np.ndarray:
        """float32 ``delta * (code - (K - 1) / 2)`` (the half-integer offset is exact in float32)."""
        w = q.spec.wire(tuple(q.shape))
        shape = tuple(q.shape)
        if int(np.prod(shape, dtype=np.int64)) == 0:
            return np.zeros(shape, np.float32)
        codes = np.asarray(q.codes).reshape(-1, shape[-1])
        centred = np.subtract(codes, np.float32((w.levels - 1) / 2), dtype=np.float32, casting="unsafe")
        delta = np.asarray(q.params["delta"], np.float32).reshape(-1, 1)
        return np.asarray((centred * delta).reshape(shape), dtype=np.float32, order="C")
