"""Records parsed but not yet decoded: a stream read one record at a time.

``read_stream(data, lazy=True)`` checks the header and every record's framing and CRC as usual but
keeps each quantized record as a :class:`LazyTensor`: its codes stay packed in the stream's bytes
until ``finish()`` decodes them (code-level checks such as a restricted range or an entropy
payload's validity are made then, with the same FormatError). A runtime that stores codes in its
own layout reads an affine record with packed codes through :class:`PackedCodes` in bounded
chunks, so loading a model never holds more than one chunk of int32 codes at a time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import bitpack, grain
from . import budget as bud
from .errors import FormatError

#: Codes decoded per chunk by :meth:`PackedCodes.rows` unless told otherwise (1 MiB of int32).
CHUNK_ELEMENTS = 1 << 18


def stream_row_len(shape: tuple[int, ...], spec) -> int:
    """Elements per row of a tensor's codes in stream order: all of them per tensor, N / C per
    channel, the group axis's length per group (such a row holds ceil(length / g) groups)."""
    n = math.prod(int(d) for d in shape)
    g = grain.grain_of(spec)
    if g.kind == "tensor" or n == 0:
        return n
    length = int(shape[g.axis % len(shape)])
    return n // length if g.kind == "channel" else length


@dataclass(frozen=True)
class PackedCodes:
    """An affine record's codes as they lie on the wire: ``bits``-bit values ``x_int - qmin``,
    MSB first, in stream order (see :func:`nnshare.format.grain.stream_order`), in ``buf`` (a view
    into the stream). ``wire``: the record's AffineWire (one width for every row); ``params``:
    its decoded scales (and zero points)."""

    wire: Any
    params: dict
    shape: tuple[int, ...]
    buf: memoryview
    name: str = ""

    @property
    def row_len(self) -> int:
        """Elements per stream row (:func:`stream_row_len`)."""
        return stream_row_len(self.shape, self.wire)

    def rows(self, chunk: int = CHUNK_ELEMENTS) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first row, codes)``: int32 codes x_int of consecutive stream rows, shape
        (k, row_len), about ``chunk`` elements at a time (at least the whole rows needed to start
        the next chunk on a byte boundary). FormatError when a restricted record holds -2**(b-1)."""
        w, length = self.wire, self.row_len
        n = math.prod(self.shape)
        if n == 0:
            return
        rows = n // length
        align = 8 // math.gcd(length, 8)  # rows whose codes end on a byte boundary
        step = max(align, chunk // length // align * align)
        lo = np.int32(w.qmin)
        for r0 in range(0, rows, step):
            k = min(step, rows - r0)
            start = r0 * length * w.bits // 8  # exact: r0 * length is a multiple of 8
            vals = bitpack.unpack(self.buf[start:start + bitpack.packed_nbytes(k * length, w.bits)],
                                  k * length, w.bits)
            codes = np.add(vals, lo, dtype=np.int32)
            del vals
            if w.restricted and codes.size and codes.max() > w.qmax:
                raise FormatError(f"record {self.name!r}: a code lies outside the restricted range")
            yield r0, codes.reshape(k, length)


@dataclass(frozen=True)
class LazyTensor:
    """A record whose framing and CRC were checked and whose codes are not decoded yet.

    ``finish()`` returns the tensor :func:`read_stream` would have returned (decoding now);
    ``packed``: the codes still packed, for an affine record with packed codes at one width
    (None otherwise: entropy-coded or per-channel widths, other schemes)."""

    name: str
    shape: tuple[int, ...]
    pending: Any
    context: np.ndarray | None = None
    budget: Any = None  # the stream's decoding budget (shared by its records), charged by finish

    @property
    def packed(self) -> PackedCodes | None:
        p = getattr(self.pending, "packed", None)
        return None if p is None else PackedCodes(p[0], p[1], self.shape, p[2], self.name)

    def finish(self):
        """The decoded tensor (a QuantizedTensor for a scheme record). Charged against the
        whole stream's budget (tables of all records read so far, its caps and version), as
        ``read_stream`` without ``lazy`` would."""
        return self._run(self.pending.finish, self.budget)

    def values(self, budget=None) -> np.ndarray:
        """The record's float32 values, as ``read_stream(..., dequantized=True)`` gives them (the
        scheme's fused path when it has one), charged against ``budget`` (default: the stream's;
        :mod:`.forked_decode` gives each process a copy)."""
        p = self.pending

        def run(context):
            return p.values(context) if p.values is not None else p.finish(context).dequantize()

        return self._run(run, self.budget if budget is None else budget)

    def _run(self, fn, budget):
        try:
            if budget is None:
                return fn(self.context)
            with bud.scope(budget):
                return fn(self.context)
        except FormatError:
            raise
        except (ValueError, IndexError, OverflowError, TypeError) as e:  # safety net
            raise FormatError(f"malformed record {self.name!r}: {e}") from None
