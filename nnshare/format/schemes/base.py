"""The Scheme base: everything the receiver knows about one quantization scheme.

A scheme owns its record body, i.e. every byte between the record's kind byte (its scheme id)
and the record's CRC: its spec bytes, its parameters (side info) and its codes, packed at a
fixed width or entropy-coded. It also owns ``dequantize`` (what the receiver rebuilds), the
exact size of a body for a shape and wire spec (what ``inspect`` and the allocators use, so no
one else re-derives a layout) and a short description.

The shared code-field helpers below (packed or entropy-coded codes, with the entropy padding
rule) are the same for every scheme, so a new scheme writes only its spec bytes and parameters.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .. import bitpack
from ..accounting import Tally
from ..errors import FormatError, SpecError
from ..wire import Reader, Writer, varint, varint_len

CODING_PACKED, CODING_ENTROPY = 0, 1
#: "none": packed codes; "auto": entropy-coded where smaller; "always": entropy-coded (tests, tools)
ENTROPY_MODES = ("none", "auto", "always")
#: An entropy-coded payload is padded with zero bytes to at least n / 4096 bytes, so no record
#: carries more than 4,096 elements per byte (what the reader's allocation bound relies on).
ENTROPY_ELEMENTS_PER_BYTE = 4096
FLOAT_CODES = {"fp32": 0, "fp16": 1, "bf16": 2}
FLOAT_NAMES = {v: k for k, v in FLOAT_CODES.items()}
FLOAT_BITS = {"fp32": 32, "fp16": 16, "bf16": 16}


def entropy_pad(payload_len: int, n: int) -> int:
    """Zero bytes that follow an entropy payload of ``payload_len`` bytes for n elements."""
    return max(0, -(-n // ENTROPY_ELEMENTS_PER_BYTE) - payload_len)


def ceil8(bits: int) -> int:
    """``bits`` rounded up to whole bytes, in bits."""
    return 8 * ((int(bits) + 7) // 8)


@dataclass(frozen=True)
class Coding:
    """How the sender wants codes laid out: ``entropy`` "none" (packed at the exact width),
    "auto" (entropy-coded when that is smaller) or "always"; ``context`` (n ints both sides
    hold, e.g. the previous update's codes) and ``models`` are passed to the entropy coder;
    ``version``: the stream's format version (a body may code its symbols differently in v2)."""

    entropy: str = "none"
    context: np.ndarray | None = None
    models: Any = "auto"
    version: int = 1


@dataclass(frozen=True)
class CodeField:
    """The chosen code layout: coding flag, the bytes, and the padding bits at their end."""

    coding: int
    data: bytes
    pad_bits: int


@dataclass(frozen=True)
class EntropyField:
    """Where an entropy payload sits, for inspect's split: payload bytes, element count, the
    alphabet's largest symbol, the bytes of its length prefix, and its smallest symbol."""

    payload: memoryview
    n: int
    qmax: int
    head_bytes: int
    lo: int = 0


@dataclass(frozen=True)
class Pending:
    """A parsed record body whose codes are decoded only after the record CRC passed.

    ``finish(context)`` builds the tensor; ``entropy`` is set for an entropy-coded body;
    ``packed``: (wire, params, code bytes) of a body whose codes are packed at one width and can
    be read in chunks (:class:`nnshare.format.lazy.PackedCodes`), else None. ``values(context)``:
    the float32 values ``finish(context).dequantize()`` gives, by a faster path (None: no such
    path). ``wire``: the record's wire spec, known before its codes are decoded (what
    ``inspect`` describes without decoding; None: decode to learn it)."""

    finish: Callable[[np.ndarray | None], Any]
    entropy: EntropyField | None = None
    packed: tuple | None = None
    values: Callable[[np.ndarray | None], np.ndarray] | None = None
    wire: Any = None


def choose_codes(
    symbols: Callable[[], np.ndarray],
    qmax: int,
    code_bits: int,
    pack: Callable[[], bytes],
    coding: Coding,
    row_len: int | None,
    n: int,
    lo: int = 0,
) -> CodeField:
    """Packed codes (``code_bits`` bits, built by ``pack()`` only if they win) or an entropy
    payload of ``symbols()`` (n ints in [lo, qmax]) when ``coding.entropy`` is "auto" and it is
    strictly smaller, or is "always" (n > 0). Entropy field: varint(length) + payload +
    :func:`entropy_pad` zero bytes."""
    if coding.entropy not in ENTROPY_MODES:
        raise SpecError(f"entropy must be one of {', '.join(ENTROPY_MODES)}, got {coding.entropy!r}")
    if coding.entropy != "none" and n > 0:
        from .. import entropy as ent

        p = ent.encode_codes(  # int32 codes go in as they are (no 8-byte copy)
            np.asarray(symbols()), int(lo), int(qmax), models=coding.models, row_len=row_len,
            context=coding.context, lanes=coding.version >= 2,
        )
        coded = varint(len(p)) + p + bytes(entropy_pad(len(p), n))
        if coding.entropy == "always" or len(coded) < (code_bits + 7) // 8:
            return CodeField(CODING_ENTROPY, coded, 0)
    packed = pack()
    return CodeField(CODING_PACKED, packed, 8 * len(packed) - code_bits)


def read_code_field(
    r: Reader, tally: Tally, coding: int, n: int, code_bits: int, name: str
) -> tuple[memoryview, int]:
    """Take the code field at the reader's position (books it as "payload" and "pad").

    Returns the bytes (packed codes or the entropy payload) and, for an entropy field, the bytes
    of its length prefix (0 for packed codes)."""
    if coding == CODING_ENTROPY:
        at = r.pos
        length = r.varint(f"entropy payload length of {name!r}", limit=r.remaining)
        head = r.pos - at
        buf = r.take(length, f"entropy payload of {name!r}")
        pad = r.take(entropy_pad(length, n), f"entropy padding of {name!r}")
        if any(pad):
            raise FormatError(f"record {name!r}: nonzero entropy padding")
        tally.close("payload")
        return buf, head
    nbytes = (code_bits + 7) // 8
    buf = r.take(nbytes, f"codes of {name!r}")
    tally.close("payload", 8 * nbytes - code_bits)
    return buf, 0


def decode_entropy(buf, n: int, qmax: int, context, name: str, lo: int = 0,
                   scale=None) -> np.ndarray:
    """int32 symbols in [lo, qmax] of an entropy payload (FormatError if this reader cannot);
    with ``scale``: float32(symbol) * float32(scale) of them, dequantized in the decoder's pass."""
    try:
        from .. import entropy as ent

        decode_codes, decode_values = ent.decode_codes, ent.decode_values
    except (ImportError, AttributeError) as e:
        raise FormatError(
            f"record {name!r} is entropy-coded; this reader cannot decode it ({e})"
        ) from None
    if scale is not None:
        return decode_values(buf, n, int(lo), int(qmax), scale, context=context)
    return np.asarray(decode_codes(buf, n, int(lo), int(qmax), context=context)).astype(
        np.int32, copy=False)


def unpack_code_field(buf, coding: int, n: int, bits: int, qmax: int, context, name: str) -> np.ndarray:
    """int32 codes (n, in stream order) of a field taken by :func:`read_code_field`: the entropy
    payload decoded over [0, qmax], or packed codes of ``bits`` bits checked against ``qmax``."""
    if coding == CODING_ENTROPY:
        return decode_entropy(buf, n, qmax, context, name)
    codes = bitpack.unpack(buf, n, bits).astype(np.int32)
    if codes.size and codes.max() > qmax:
        raise FormatError(f"record {name!r}: a code is larger than {qmax}")
    return codes


def write_floats(w: Writer, values: np.ndarray, dtype: str) -> None:
    """Little-endian fp32 / fp16 / bf16 values (bf16 = top half of fp32, rounded to nearest even)."""
    x = np.asarray(values, np.float32).reshape(-1)
    if dtype == "fp32":
        w.raw(x.astype("<f4").tobytes())
    elif dtype == "fp16":
        w.raw(x.astype("<f2").tobytes())
    else:
        from ..spec import round_float

        w.raw((round_float(x, "bf16").view(np.uint32) >> 16).astype("<u2").tobytes())


def read_floats(r: Reader, n: int, dtype: str, what: str) -> np.ndarray:
    """Inverse of :func:`write_floats`: float32 array of n values."""
    buf = r.take(n * FLOAT_BITS[dtype] // 8, what)
    if dtype == "fp32":
        return np.frombuffer(buf, "<f4", count=n).astype(np.float32)
    if dtype == "fp16":
        return np.frombuffer(buf, "<f2", count=n).astype(np.float32)
    hi = np.frombuffer(buf, "<u2", count=n).astype(np.uint32) << 16
    return hi.view(np.float32)


class Scheme:
    """Receiver-side half of a quantization scheme (subclass it, then ``register`` an instance).

    Class attributes: ``name`` (what specs call it), ``scheme_id`` (its kind byte, see
    docs/format.md "Schemes and their ids") and ``wire_type`` (the frozen dataclass of what the
    receiver reads back; it has a ``scheme`` attribute equal to ``name``).
    """

    name: ClassVar[str]
    scheme_id: ClassVar[int]
    wire_type: ClassVar[type]

    # ------------------------------------------------------------------ specs
    def wire(self, spec, shape: tuple[int, ...]):
        """The wire spec a record of ``shape`` carries for ``spec`` (a wire spec or a sender
        config with ``.wire(shape)``), validated against the shape (SpecError)."""
        if isinstance(spec, self.wire_type):
            return spec.for_shape(tuple(shape))
        if hasattr(spec, "wire"):
            w = spec.wire(tuple(shape))
            if isinstance(w, self.wire_type):
                return w
        raise SpecError(f"{type(spec).__name__} is not a spec of the {self.name!r} scheme")

    def at_bits(self, wire, bits: int):
        """The same wire spec at ``bits`` bits per code (what a bit allocator varies)."""
        raise SpecError(f"scheme {self.name!r} has no bit-width knob")

    def describe(self, wire) -> str:
        """Short text for inspect, e.g. ``affine s8 ch0``."""
        return self.name

    def fields(self, wire) -> dict[str, Any]:
        """The wire spec as plain JSON fields (for ``inspect --json``): every dataclass field,
        a granularity as ``granularity`` / ``axis`` / ``group_size``, empty tuples left out."""
        out: dict[str, Any] = {"scheme": self.name}
        for f in dataclasses.fields(wire):
            v = getattr(wire, f.name)
            if hasattr(v, "kind") and hasattr(v, "on"):  # a granularity object
                out["granularity"] = v.kind
                if v.kind != "tensor":
                    out["axis"] = int(v.axis)
                if v.kind == "group":
                    out["group_size"] = int(v.size)
            elif isinstance(v, tuple | list):
                if len(v):
                    out[f.name] = [x.item() if hasattr(x, "item") else x for x in v]
            else:
                out[f.name] = v.item() if hasattr(v, "item") else v
        return out

    # ------------------------------------------------------------------ record body
    def write(self, w: Writer, tally: Tally, q, wire, coding: Coding) -> None:
        """Append the body of tensor ``q`` (wire spec ``wire``) and book it in ``tally``."""
        raise NotImplementedError

    def read(self, r: Reader, tally: Tally, shape: tuple[int, ...], version: int = 1) -> Pending:
        """Parse a body at the reader's position (a ``version`` stream); raise FormatError on
        anything invalid."""
        raise NotImplementedError

    def body_bits(self, shape: tuple[int, ...], wire) -> int:
        """Exact bits of a body with packed codes (spec bytes + side info + codes + padding)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ meaning
    def dequantize(self, q) -> np.ndarray:
        """float32 array of ``q.shape``: the one definition of what the receiver rebuilds."""
        raise NotImplementedError


def body_varint_bits(v: int) -> int:
    """Bits of a varint field (for ``body_bits``)."""
    return 8 * varint_len(v)
