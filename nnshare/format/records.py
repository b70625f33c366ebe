"""Tensor records: the kind byte, the framing, the record CRC and the bit accounting.

A record is ``kind (u8) | body | CRC-32 of kind and body``. Kind 0 is a float record, 200 a raw
record; every other kind is a scheme id and the body belongs to that scheme
(:mod:`nnshare.format.schemes`). The CRC is big-endian in format v1 and little-endian in v2; the
bodies are the same in both. See docs/format.md for the byte-level layout.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from . import budget, grain
from .accounting import Section, Tally
from .errors import FormatError, SpecError
from .schemes import Coding, scheme_by_id, scheme_of
from .schemes.base import (  # noqa: F401  (re-exported)
    ENTROPY_ELEMENTS_PER_BYTE,
    FLOAT_BITS,
    FLOAT_CODES,
    FLOAT_NAMES,
    entropy_pad,
    read_floats,
    write_floats,
)
from .spec import RAW_DTYPES, DecodedTensor, FloatTensor, QuantizedTensor, RawTensor
from .wire import Reader, Writer, crc32

KIND_FLOAT = 0
KIND_RAW = 200
FLOAT_BYTES = {k: v // 8 for k, v in FLOAT_BITS.items()}
RAW_CODES = {name: i for i, name in enumerate(RAW_DTYPES)}
CRC_BITS = 32
VERSIONS = (1, 2)

Tensor = QuantizedTensor | FloatTensor | RawTensor

# kept for callers of the former module layout
stream_order = grain.stream_order
from_stream_order = grain.from_stream_order


def float_bytes(values: np.ndarray, dtype: str) -> bytes:
    """Little-endian bytes of float values in fp32 / fp16 / bf16 (bf16 = top half of fp32, RNE)."""
    w = Writer()
    write_floats(w, values, dtype)
    return w.getvalue()


def _check_version(version: int) -> None:
    if version not in VERSIONS:
        raise FormatError(f"unsupported record version {version!r} (known: 1, 2)")


def wire_spec(t: QuantizedTensor):
    """The wire spec record ``t`` carries (its spec projected for its shape)."""
    return scheme_of(t.spec).wire(t.spec, tuple(t.shape))


def record_bits(shape: tuple[int, ...], spec) -> int:
    """Exact bits of a quantized record with packed codes: kind byte, the scheme's body, CRC."""
    scheme = scheme_of(spec)
    return 8 + scheme.body_bits(tuple(shape), scheme.wire(spec, tuple(shape))) + CRC_BITS


def float_record_bits(numel: int, dtype: str = "fp32") -> int:
    """Exact bits of a float record."""
    return 16 + numel * FLOAT_BITS[dtype] + CRC_BITS


def raw_record_bits(numel: int, itemsize: int) -> int:
    """Exact bits of a raw integer record."""
    return 16 + 8 * numel * itemsize + CRC_BITS


@functools.cache
def _takes_version(read) -> bool:
    """Whether a scheme's ``read`` function has a ``version`` parameter (inspected once)."""
    import inspect

    return "version" in inspect.signature(read).parameters


def _read_body(scheme, r: Reader, tally: Tally, shape: tuple[int, ...], version: int):
    """``scheme.read`` with the stream version when the scheme's reader takes it (a body whose
    layout does not depend on the version may leave it out)."""
    if _takes_version(getattr(scheme.read, "__func__", scheme.read)):
        return scheme.read(r, tally, shape, version)
    return scheme.read(r, tally, shape)


def encode_record(
    name: str,
    t: Tensor,
    entropy: str = "none",
    *,
    context: np.ndarray | None = None,
    version: int = 1,
    models="auto",
    copy: bool = True,
) -> tuple[bytes, list[Section]]:
    """Bytes of one record (ending in its CRC-32) and its bit accounting.

    ``entropy``: "none" packs codes at their exact width; "auto" also tries the entropy coder and
    keeps whichever is smaller; "always" entropy-codes every non-empty quantized record.
    ``context``: n ints both sides hold (temporal context of an update record), passed to the
    entropy coder; ``models``: the entropy models to try.
    ``version``: 1 writes the CRC big-endian, 2 little-endian. ``copy=False`` returns the
    writer's bytearray itself (no copy; for a caller that joins records).
    """
    _check_version(version)
    w = Writer()
    tally = Tally(name, lambda: len(w.buf))
    if isinstance(t, FloatTensor):
        w.u8(KIND_FLOAT)
        w.u8(FLOAT_CODES[t.dtype])
        tally.close("record")
        write_floats(w, t.values, t.dtype)
        tally.close("payload")
    elif isinstance(t, RawTensor):
        w.u8(KIND_RAW)
        w.u8(RAW_CODES[str(t.values.dtype)])
        tally.close("record")
        w.raw(np.ascontiguousarray(t.values).astype(t.values.dtype.newbyteorder("<")).tobytes())
        tally.close("payload")
    elif isinstance(t, QuantizedTensor):
        scheme = scheme_of(t.spec)
        wire = scheme.wire(t.spec, tuple(t.shape))
        if context is not None:
            context = np.asarray(context).reshape(-1)
            if context.size != t.numel:
                raise SpecError(f"tensor {name!r}: context has {context.size} entries, not {t.numel}")
        w.u8(scheme.scheme_id)
        scheme.write(w, tally, t, wire, Coding(entropy, context, models, version))
        if entropy != "none":  # split an entropy payload as the reader does (parse, no decode)
            r = Reader(w.getvalue())
            r.u8()
            pending = _read_body(scheme, r, Tally(name, lambda: r.pos), tuple(t.shape), version)
            if pending.entropy is not None:
                info: dict = {}
                tally.sections[:] = _split_entropy(tally.sections, name, pending.entropy, info)
                b = budget.active()  # write_stream tallies the tables the reader will charge
                if b is not None:
                    b.table_entries += info["table_entries"]
    else:
        raise SpecError(f"tensor {name!r}: cannot encode a {type(t).__name__}")
    crc = crc32(w.buf)
    w.u32be(crc) if version == 1 else w.u32le(crc)
    tally.sections.append(Section(name, "record", CRC_BITS))
    return (w.getvalue() if copy else w.buf), tally.sections


def decode_record(
    r: Reader,
    name: str,
    shape: tuple[int, ...],
    *,
    context: np.ndarray | None = None,
    version: int = 1,
    lazy: bool = False,
    dequantized: bool = False,
) -> tuple[Tensor, list[Section]]:
    """Read one record at the reader's position; verify its CRC; return the tensor and accounting.

    ``context``: the temporal context the sender used (n ints), needed by temporal entropy models.
    ``lazy``: return a scheme record as a :class:`nnshare.format.lazy.LazyTensor` (codes decoded
    by its ``finish()``); ``dequantized``: return a scheme record as a
    :class:`nnshare.format.spec.DecodedTensor` of its float32 values (by the scheme's fused path
    when it has one), its entropy payload booked as one "payload" section (not split into
    model side info and coded words: that split parses the payload header once more).
    """
    _check_version(version)
    start = r.pos
    tally = Tally(name, lambda: r.pos)
    n = math.prod(int(d) for d in shape)
    kind = r.u8(f"record kind of {name!r}")
    t: Tensor
    pending = None
    if kind == KIND_FLOAT:
        code = r.u8(f"float dtype of {name!r}")
        if code not in FLOAT_NAMES:
            raise FormatError(f"record {name!r}: unknown float dtype code {code}")
        dtype = FLOAT_NAMES[code]
        tally.close("record")
        t = FloatTensor(read_floats(r, n, dtype, f"float values of {name!r}").reshape(shape), dtype)
        tally.close("payload")
    elif kind == KIND_RAW:
        code = r.u8(f"raw dtype of {name!r}")
        if code >= len(RAW_DTYPES):
            raise FormatError(f"record {name!r}: unknown raw dtype code {code}")
        dt = np.dtype(RAW_DTYPES[code]).newbyteorder("<")
        if dt.itemsize > 4:  # the header's check counted 4 bytes per element
            budget.current(0).charge_output(n * (dt.itemsize - 4), f"record {name!r}")
        tally.close("record")
        buf = r.take(n * dt.itemsize, f"values of {name!r}")
        if RAW_DTYPES[code] == "bool" and n and np.frombuffer(buf, np.uint8, count=n).max() > 1:
            raise FormatError(f"record {name!r}: a bool value is not 0 or 1")
        t = RawTensor(np.frombuffer(buf, dt, count=n).astype(RAW_DTYPES[code]).reshape(shape))
        tally.close("payload")
    else:
        pending = _read_body(scheme_by_id(kind), r, tally, tuple(shape), version)
    body_end = r.pos
    crc = r.u32be(f"CRC of record {name!r}") if version == 1 else r.u32le(f"CRC of record {name!r}")
    if crc32(r.buf[start:body_end]) != crc:
        raise FormatError(f"CRC mismatch in record {name!r}")
    secs = tally.sections
    if pending is not None:
        if context is not None:
            context = np.asarray(context).reshape(-1)
            if context.size != n:
                raise FormatError(f"record {name!r}: the context has {context.size} entries, not {n}")
        if lazy:
            from .lazy import LazyTensor

            t = LazyTensor(name, tuple(shape), pending, context, budget.active())
        elif dequantized:
            t = DecodedTensor(pending.values(context) if pending.values is not None
                              else pending.finish(context).dequantize())
        else:
            t = pending.finish(context)  # codes are unpacked / entropy-decoded only after the CRC passed
        if pending.entropy is not None and not dequantized:  # values only: no accounting split
            secs = _split_entropy(secs, name, pending.entropy)
    secs.append(Section(name, "record", CRC_BITS))
    return t, secs


def _split_entropy(secs: list[Section], name: str, e, info: dict | None = None) -> list[Section]:
    """Replace an entropy-coded payload section by model side info, coded words and its CRC
    (``info``, when given, receives the payload's :func:`..entropy.describe`)."""
    from . import entropy as ent

    d = ent.describe(e.payload, e.n, e.lo, e.qmax)
    if info is not None:
        info.update(d)
    out = [s for s in secs if s.kind != "payload"]
    total = next(s.bits for s in secs if s.kind == "payload")
    side = 8 * (e.head_bytes + d["side_info_bytes"])
    coded, crc = 8 * d["coded_bytes"], 8 * d["crc_bytes"]
    out.append(Section(name, "side", side))
    out.append(Section(name, "payload", coded, note=f"ec:{d['model']}"))
    out.append(Section(name, "record", crc))
    if total - side - coded - crc:  # zero padding after a very short payload
        out.append(Section(name, "pad", total - side - coded - crc))
    return out
