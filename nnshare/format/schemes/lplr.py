"""LPLR scheme (id 8): a matrix as the product of two low-precision low-rank factors, ``L R``.

The tensor is viewed as an (n, d) matrix (d = numel / shape[0]). L (n x m) and R (m x d) are
each min-max quantized: ``L = lo_L + step_L * A``, ``R = lo_R + step_R * B`` with A, B integer
codes of b_L and b_R bits (LPLR, Saha, Srivastava, Pilanci, NeurIPS 2023;
``nnshare.quant.lplr``). Body (see docs/format.md):

- byte 1: ``(b_L - 1) << 4 | (b_R - 1)`` (1..16 bits each);
- byte 2: ``coding << 4`` (other bits zero);
- rank m (varint, 1..min(n, d));
- side info: lo_L, step_L, lo_R, step_R as fp32 (finite, steps >= 0);
- codes: the n m codes of A (C order) at b_L bits, then the m d codes of B at b_R bits, one
  bit string, byte-padded once; or an entropy field of both over [0, 2^max(b_L, b_R) - 1].

``QuantizedTensor.codes`` holds A then B as one int32 vector; params ``lo`` and ``step`` (2,).
The receiver's product is exact and order-free: A B is formed in float64 from integers (every
partial sum < 2^53), then ``x_hat = float32(((lo_L lo_R m + lo_L step_R colsum B)
+ step_L lo_R rowsum A) + step_L step_R A B)`` elementwise in float64.
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


def matrix_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    """(n, d): the tensor as a matrix of shape[0] rows."""
    n = int(shape[0])
    return n, int(np.prod(shape, dtype=np.int64)) // n if n else 0


@dataclass(frozen=True)
class LPLRWire:
    """What an LPLR record tells the receiver: the rank and the code widths of both factors."""

    rank: int = 8
    bits_left: int = 4
    bits_right: int = 4
    scheme: ClassVar[str] = "lplr"

    def __post_init__(self) -> None:
        for name in ("rank", "bits_left", "bits_right"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                raise SpecError(f"{name} must be an integer, got {v!r}")
        if self.rank < 1:
            raise SpecError(f"rank must be >= 1, got {self.rank}")
        if not (1 <= self.bits_left <= 16 and 1 <= self.bits_right <= 16):
            raise SpecError("LPLR factors have 1..16 bits per code")

    @property
    def qmin(self) -> int:
        return 0

    @property
    def qmax(self) -> int:
        return 2 ** max(self.bits_left, self.bits_right) - 1

    def for_shape(self, shape: tuple[int, ...]) -> LPLRWire:
        if len(shape) < 2:
            raise SpecError("LPLR factors a matrix: the tensor needs >= 2 dimensions")
        n, d = matrix_shape(shape)
        if self.rank > min(n, d):
            raise SpecError(f"rank {self.rank} exceeds min(n, d) = {min(n, d)} of shape {tuple(shape)}")
        return self

    def wire(self, shape: tuple[int, ...] | None = None) -> LPLRWire:
        return self if shape is None else self.for_shape(shape)

    def counts(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """Codes of L and of R."""
        n, d = matrix_shape(shape)
        return n * self.rank, self.rank * d


def _pack(codes: np.ndarray, w: LPLRWire, nl: int) -> bytes:
    if w.bits_left == w.bits_right:
        return bitpack.pack(codes, w.bits_left)
    widths = np.concatenate([np.full(nl, w.bits_left), np.full(codes.size - nl, w.bits_right)])
    return bitpack.pack_varwidth(codes, widths)


def _unpack(buf, w: LPLRWire, nl: int, nr: int) -> np.ndarray:
    if w.bits_left == w.bits_right:
        return bitpack.unpack(buf, nl + nr, w.bits_left).astype(np.int32)
    widths = np.concatenate([np.full(nl, w.bits_left), np.full(nr, w.bits_right)])
    return bitpack.unpack_varwidth(buf, widths).astype(np.int32)


def product(codes: np.ndarray, lo: np.ndarray, step: np.ndarray, shape, rank: int) -> np.ndarray:
    """float32 ``L R`` of the tensor's shape (the receiver's definition, see the module doc)."""
    n, d = matrix_shape(shape)
    nl = n * rank
    a = np.asarray(codes[:nl], np.float64).reshape(n, rank)
    b = np.asarray(codes[nl:], np.float64).reshape(rank, d)
    lo_l, lo_r = (float(v) for v in np.asarray(lo, np.float32))
    st_l, st_r = (float(v) for v in np.asarray(step, np.float32))
    ab = a @ b  # exact: integers below 2^53
    out = lo_l * lo_r * rank + lo_l * st_r * b.sum(0)[None, :]
    out = out + st_l * lo_r * a.sum(1)[:, None]
    out = out + st_l * st_r * ab
    with np.errstate(over="ignore"):
        return np.asarray(out.astype(np.float32).reshape(shape), order="C")


class LPLRScheme(Scheme):
    name = "lplr"
    scheme_id = 8
    wire_type = LPLRWire

    def at_bits(self, w: LPLRWire, bits: int) -> LPLRWire:
        return LPLRWire(w.rank, int(bits), int(bits))

    def describe(self, w: LPLRWire) -> str:
        return f"lplr r{w.rank} {w.bits_left}/{w.bits_right}b"

    def body_bits(self, shape, w: LPLRWire) -> int:
        nl, nr = w.counts(shape)
        return 16 + body_varint_bits(w.rank) + 4 * 32 + ceil8(nl * w.bits_left + nr * w.bits_right)

    def write(self, out, tally, q, w: LPLRWire, coding: Coding) -> None:
        name = tally.name
        if coding.context is not None:
            raise SpecError(f"tensor {name!r}: an LPLR record takes no temporal context")
        nl, nr = w.counts(tuple(q.shape))
        lo = np.asarray(q.params["lo"], np.float32).reshape(-1)
        step = np.asarray(q.params["step"], np.float32).reshape(-1)
        if lo.size != 2 or step.size != 2 or not np.all(np.isfinite(lo) & np.isfinite(step) & (step >= 0)):
            raise SpecError(f"tensor {name!r}: lo and step must be 2 finite numbers each (steps >= 0)")
        codes = np.asarray(q.codes).reshape(-1).astype(np.int64)
        if codes.size != nl + nr:
            raise SpecError(f"tensor {name!r}: LPLR codes must be {nl} + {nr} integers")
        if nl and (codes[:nl].min() < 0 or codes[:nl].max() >= 2**w.bits_left):
            raise SpecError(f"tensor {name!r}: a code of L does not fit {w.bits_left} bits")
        if nr and (codes[nl:].min() < 0 or codes[nl:].max() >= 2**w.bits_right):
            raise SpecError(f"tensor {name!r}: a code of R does not fit {w.bits_right} bits")
        field = choose_codes(
            lambda: codes,
            w.qmax,
            nl * w.bits_left + nr * w.bits_right,
            lambda: _pack(codes, w, nl),
            coding,
            None,
            nl + nr,
        )
        out.u8((w.bits_left - 1) << 4 | (w.bits_right - 1))
        out.u8(field.coding << 4)
        out.raw(varint(w.rank))
        tally.close("record")
        write_floats(out, np.array([lo[0], step[0], lo[1], step[1]], np.float32), "fp32")
        tally.close("side")
        out.raw(field.data)
        tally.close("payload", field.pad_bits)

    def read(self, r: Reader, tally, shape) -> Pending:
        name = tally.name
        b1 = r.u8(f"spec of {name!r}")
        b2 = r.u8(f"spec of {name!r}")
        coding = b2 >> 4
        if coding > 1 or b2 & 15 or len(shape) < 2:
            raise FormatError(f"record {name!r}: invalid LPLR spec bytes {b1:#04x} {b2:#04x}")
        rank = r.varint(f"rank of {name!r}", limit=2**31)
        try:
            w = LPLRWire(rank, (b1 >> 4) + 1, (b1 & 15) + 1).for_shape(tuple(shape))
        except SpecError as e:
            raise FormatError(f"record {name!r}: {e}") from None
        tally.close("record")
        side = read_floats(r, 4, "fp32", f"factor ranges of {name!r}")
        lo, step = side[[0, 2]], side[[1, 3]]
        if not (np.all(np.isfinite(side)) and np.all(step >= 0)):
            raise FormatError(f"record {name!r}: factor ranges are not finite (or a step is negative)")
        tally.close("side")
        nl, nr = w.counts(tuple(shape))
        bits = nl * w.bits_left + nr * w.bits_right
        buf, head = read_code_field(r, tally, coding, nl + nr, bits, name)

        def finish(context=None):
            from ..spec import QuantizedTensor

            if context is not None:
                raise FormatError(f"record {name!r}: an LPLR record takes no temporal context")
            if coding == CODING_ENTROPY:
                codes = unpack_code_field(buf, coding, nl + nr, 0, w.qmax, None, name)
                if (nl and codes[:nl].max() >= 2**w.bits_left) or (
                    nr and codes[nl:].max() >= 2**w.bits_right
                ):
                    raise FormatError(f"record {name!r}: a factor code does not fit its width")
            else:
                codes = _unpack(buf, w, nl, nr)
            params = {"lo": lo.astype(np.float32), "step": step.astype(np.float32)}
            return QuantizedTensor(codes=codes, params=params, spec=w, shape=tuple(shape))

        ent = EntropyField(buf, nl + nr, w.qmax, head) if coding == CODING_ENTROPY else None
        return Pending(finish, ent, wire=w)

    def dequantize(self, q) -> np.ndarray:
        w = q.spec.wire(tuple(q.shape))
        return product(
            np.asarray(q.codes).reshape(-1), q.params["lo"], q.params["step"], tuple(q.shape), w.rank
        )
