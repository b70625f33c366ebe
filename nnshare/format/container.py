"""The one stream container: header (magic, version, stream kind, mode, layout or fingerprint,
base and chain fingerprints), records, CRCs.

Every stream nnshare writes is an ``NNSH`` stream of one of four kinds: a whole model, a model
update (records are deltas against a base both sides hold, optionally chained to the previous
update, whose codes are the temporal context of this one), feature tensors, or the chain state
both sides keep between update rounds. Self-describing mode sends every tensor's name and shape;
agreed-architecture mode sends only a fingerprint of the (name, shape) list sorted by name, which
the receiver recomputes from its own copy of the architecture; records then follow in sorted-name
order. Format v2 (written by default) writes every fixed-width field little-endian and a 64-bit
fingerprint; version 1 streams (big-endian CRCs, CRC-32 fingerprint, models only) stay readable.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import budget as bud
from .errors import FormatError, SpecError
from .forked import check_processes, forked_map
from .records import Section, Tensor, decode_record, encode_record
from .wire import Reader, Writer, crc32, varint_len

MAGIC = b"NNSH"
VERSION = 2
VERSIONS = (1, 2)
FLAG_AGREED = 0x01
FLAG_BASE = 0x02
FLAG_CHAIN = 0x04  # v2 only
MAX_NDIM = 16
#: Stream kinds of format v2 (one byte after the version). v1 streams are models.
KINDS = {"model": 0, "update": 1, "features": 2, "state": 3}
KIND_NAMES = {v: k for k, v in KINDS.items()}
#: A stream may describe at most this many elements per byte of its own length (0.002 bits per
#: element): bounds what a forged header can make the receiver allocate. Packed records need
#: at most 8 elements per byte; entropy-coded sparse updates can go far below 1 bit per element.
MAX_ELEMENTS_PER_BYTE = 4096

Layout = Sequence[tuple[str, tuple[int, ...]]]


def _layout_text(layout: Layout) -> str:
    return "".join(f"{n}:{','.join(str(int(d)) for d in s)};" for n, s in layout)


def fingerprint(layout: Layout) -> int:
    """Format v1's architecture fingerprint: CRC-32 of the names and shapes, as UTF-8 text
    ``name:d0,d1;`` per tensor, in the given order (agreed mode sorts by name first)."""
    return crc32(_layout_text(layout).encode("utf-8"))


def fingerprint64(layout: Layout) -> int:
    """Format v2's architecture fingerprint (u64): the first 8 bytes, little-endian, of
    BLAKE2b-64 of ``"nnsh-layout:" + <total elements> + ";" + <the v1 text>``, so the element
    count is bound in and a second layout with the same fingerprint takes ~2**64 tries."""
    total = sum(int(np.prod([int(d) for d in s], dtype=object)) for _, s in layout)
    text = f"nnsh-layout:{total};{_layout_text(layout)}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def header_bytes(layout: Layout, mode: str = "self", *, version: int = VERSION,
                 base: bool = False, chain: bool = False) -> int:
    """Exact bytes of a stream header (CRC included) for ``layout`` in ``mode``."""
    n = 4 + 1 + (1 if version == 2 else 0) + 1 + varint_len(len(layout))
    fp = 8 if version == 2 else 4
    if mode == "agreed":
        n += fp
    else:
        for name, shape in layout:
            nb = len(name.encode("utf-8"))
            n += varint_len(nb) + nb + 1 + sum(varint_len(int(d)) for d in shape)
    return n + fp * (int(base) + int(chain)) + 4


def peek_kind(data: bytes | bytearray | memoryview) -> str | None:
    """The stream kind its first bytes name ("model" for v1), or None when they do not look like
    an NNSH stream (the full check is :func:`read_stream`'s)."""
    head = bytes(data[:6])
    if len(head) < 5 or head[:4] != MAGIC:
        return None
    if head[4] == 1:
        return "model"
    return KIND_NAMES.get(head[5]) if head[4] == 2 and len(head) == 6 else None


@dataclass(frozen=True)
class Stream:
    """A parsed stream: the layout, the tensors by name, and the bit accounting.

    ``kind``: "model", "update", "features" or "state"; ``base_fingerprint`` /
    ``chain_fingerprint``: what an update was coded against (None when absent)."""

    mode: str
    layout: tuple[tuple[str, tuple[int, ...]], ...]
    tensors: dict[str, Tensor]
    sections: tuple[Section, ...]
    base_fingerprint: int | None = None
    version: int = VERSION
    total_bits: int = field(default=0)
    kind: str = "model"
    chain_fingerprint: int | None = None


def write_stream(
    tensors: dict[str, Tensor],
    mode: str = "self",
    *,
    entropy: str = "none",
    base_fingerprint: int | None = None,
    chain_fingerprint: int | None = None,
    kind: str = "model",
    contexts: Mapping[str, np.ndarray] | None = None,
    version: int = VERSION,
    processes: int = 1,
    prepare: Callable[[str, Any], Tensor] | None = None,
) -> tuple[bytes, list[Section]]:
    """Serialise named tensors (in dict order). Returns the bytes and their exact accounting.

    ``processes``: encode the records in up to this many forked processes (:mod:`.forked`; one
    thread each), split by size; the bytes are the same for any count. ``prepare(name, value)``:
    makes each tensor from the value given (e.g. quantizes an array of the same shape) where its
    record is encoded, so that work is split too.

    ``kind``: the stream kind (v2). ``contexts``: per tensor the temporal context its record is
    entropy-coded with (n integers in stream order; a chained update's previous codes), which
    needs ``chain_fingerprint`` (of what the receiver must hold). ``version``: 2, or 1 to write
    the old layout (models only, 32-bit fingerprints).
    """
    if mode not in ("self", "agreed"):
        raise FormatError(f"mode must be 'self' or 'agreed', got {mode!r}")
    if version not in VERSIONS:
        raise SpecError(f"format version must be 1 or 2, got {version!r}")
    if kind not in KINDS:
        raise SpecError(f"stream kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if version == 1 and (kind != "model" or chain_fingerprint is not None or contexts):
        raise SpecError("format v1 streams are models only (no kinds, chains or contexts)")
    if contexts and chain_fingerprint is None:
        raise SpecError("records coded with a temporal context need the chain fingerprint")
    check_processes(processes)
    if mode == "agreed":  # canonical order: the receiver's dict order need not match ours
        tensors = {k: tensors[k] for k in sorted(tensors)}
    layout = [(name, tuple(int(d) for d in t.shape)) for name, t in tensors.items()]
    flags = (FLAG_AGREED if mode == "agreed" else 0) | (
        FLAG_BASE if base_fingerprint is not None else 0
    ) | (FLAG_CHAIN if chain_fingerprint is not None else 0)
    w = Writer()
    w.raw(MAGIC)
    w.u8(version)
    if version == 2:
        w.u8(KINDS[kind])
    w.u8(flags)
    w.varint(len(layout))
    fixed = w.u32be if version == 1 else w.u64le
    if mode == "agreed":
        fixed(fingerprint(layout) if version == 1 else fingerprint64(layout))
    else:
        for name, shape in layout:
            nb = name.encode("utf-8")
            if len(shape) > MAX_NDIM:
                raise FormatError(f"tensor {name!r} has {len(shape)} dimensions (max {MAX_NDIM})")
            w.varint(len(nb))
            w.raw(nb)
            w.u8(len(shape))
            for d in shape:
                w.varint(d)
    if base_fingerprint is not None:
        fixed(base_fingerprint)
    if chain_fingerprint is not None:
        w.u64le(chain_fingerprint)
    (w.u32be if version == 1 else w.u32le)(crc32(w.buf))
    out = [w.getvalue()]
    sections = [Section("", "header", 8 * len(w))]
    contexts = contexts or {}
    unknown = set(contexts) - set(tensors)
    if unknown:
        raise SpecError(f"contexts name tensors the stream does not hold: {sorted(unknown)[:5]}")
    # the reader charges every probability table against the stream's length: a record whose
    # tables would exceed that allowance is packed instead (refused under entropy="always")
    names = list(tensors)

    def parts(i: int) -> tuple:
        t = tensors[names[i]] if prepare is None else prepare(names[i], tensors[names[i]])
        return _record_parts(names[i], t, entropy, contexts.get(names[i]), version)

    if processes <= 1 or len(names) < 2:  # in process: the records as written, no blob copies
        results = [parts(i) for i in range(len(names))]
    else:
        blobs = forked_map(lambda i: _job_blob(*parts(i)), [float(np.prod(sh, dtype=np.float64))
                                                            for _, sh in layout], processes)
        results = [_from_job(b) for b in blobs]
    size, entries = len(out[0]), 0
    for name, (rec, secs, more) in zip(names, results, strict=True):
        if entries + more > bud.table_allowance(size + len(rec)):
            if entropy == "always":
                raise SpecError(f"tensor {name!r}: entropy tables of {entries + more} "
                                f"entries exceed what a {size + len(rec)}-byte stream may "
                                "declare (the receiver refuses it); use entropy='auto'")
            t = tensors[name] if prepare is None else prepare(name, tensors[name])
            rec, secs = encode_record(name, t, entropy="none", context=contexts.get(name),
                                      version=version, copy=False)
        else:
            entries += more
        out.append(rec)
        size += len(rec)
        sections.extend(secs)
    return b"".join(out), sections


def _record_parts(name: str, t: Tensor, entropy: str, context, version: int):
    """(record, its sections, its probability-table entries) of one tensor."""
    tables = bud.Budget(stream_bytes=1 << 62)
    with bud.scope(tables):
        rec, secs = encode_record(name, t, entropy=entropy, context=context, version=version,
                                  copy=False)
    return rec, secs, tables.table_entries


def _job_blob(rec, secs, entries: int) -> bytes:
    """One record as bytes for :func:`forked_map`: u64 length, the record, then JSON of its
    probability-table entries and sections."""
    meta = json.dumps([entries, [[x.name, x.kind, x.bits, x.note] for x in secs]])
    return struct.pack("<Q", len(rec)) + bytes(rec) + meta.encode()


def _record_job(name: str, t: Tensor, entropy: str, context, version: int) -> bytes:
    """:func:`_job_blob` of :func:`_record_parts`."""
    return _job_blob(*_record_parts(name, t, entropy, context, version))


def _from_job(blob: bytes) -> tuple[bytes, list[Section], int]:
    (n,) = struct.unpack_from("<Q", blob)
    entries, secs = json.loads(blob[8 + n :])
    return blob[8 : 8 + n], [Section(*x) for x in secs], int(entries)


def read_stream(
    data: bytes | bytearray | memoryview,
    layout: Layout | None = None,
    *,
    chain=None,
    base_fingerprint: int | None = None,
    lazy: bool = False,
    max_elements: int | None = None,
    max_output_bytes: int | None = None,
    dequantized: bool = False,
) -> Stream:
    """Parse and verify a stream. ``layout`` (ordered names and shapes) is required for a stream
    in agreed-architecture mode and must match the fingerprint it carries.

    ``chain``: the chain state the receiver holds (an object with ``fingerprint`` and ``codes``,
    e.g. :class:`nnshare.format.chain.ChainState`), required by a chained update and checked
    against its chain fingerprint. ``base_fingerprint``: when given, an update's base fingerprint
    must equal it (FormatError otherwise) before any record is decoded. ``lazy``: keep scheme
    records as :class:`nnshare.format.lazy.LazyTensor` (framing and CRC checked, codes decoded
    by ``finish()``), so a caller can decode one record at a time. ``dequantized``: keep only
    the float32 values of scheme records (:class:`.spec.DecodedTensor`; faster where a scheme
    fuses unpacking and dequantizing); entropy payloads are then booked unsplit in ``sections``.

    ``max_elements`` / ``max_output_bytes``: the receiver's caps on the elements the stream
    describes and the bytes it decodes to (defaults :data:`.budget.MAX_ELEMENTS`, 2**28, and
    :data:`.budget.MAX_OUTPUT_BYTES`, 1 GiB), checked from the header before any record is
    decoded; entropy tables are charged against the stream's length (:mod:`.budget`).
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise FormatError(f"expected bytes, got {type(data).__name__}")
    r = Reader(data)
    total = len(r.buf)
    budget = bud.Budget.make(total, max_elements, max_output_bytes)
    magic = bytes(r.take(4, "magic"))
    if magic != MAGIC:
        raise FormatError(f"wrong magic {magic!r}: not an nnshare stream")
    version = r.u8("version")
    if version not in VERSIONS:
        raise FormatError(f"unsupported version {version} (this reader knows 1 and 2)")
    kind = "model"
    if version == 2:
        code = r.u8("stream kind")
        if code not in KIND_NAMES:
            raise FormatError(f"unknown stream kind {code}")
        kind = KIND_NAMES[code]
    flags = r.u8("flags")
    known = FLAG_AGREED | FLAG_BASE | (FLAG_CHAIN if version == 2 else 0)
    if flags & ~known:
        raise FormatError(f"reserved flag bits set: {flags:#04x}")
    fixed = r.u32be if version == 1 else r.u64le
    count = r.varint("tensor count", limit=total)
    names_shapes: list[tuple[str, tuple[int, ...]]] = []
    if flags & FLAG_AGREED:
        fp = fixed("fingerprint")
    else:
        for i in range(count):
            ln = r.varint(f"name length of tensor {i}", limit=r.remaining)
            try:
                name = bytes(r.take(ln, f"name of tensor {i}")).decode("utf-8")
            except UnicodeDecodeError:
                raise FormatError(f"name of tensor {i} is not UTF-8") from None
            nd = r.u8(f"rank of {name!r}")
            if nd > MAX_NDIM:
                raise FormatError(f"tensor {name!r} claims {nd} dimensions (max {MAX_NDIM})")
            shape = tuple(
                r.varint(f"dimension of {name!r}", limit=8 * total * MAX_ELEMENTS_PER_BYTE)
                for _ in range(nd)
            )
            names_shapes.append((name, shape))
    base = fixed("base fingerprint") if flags & FLAG_BASE else None
    chain_fp = r.u64le("chain fingerprint") if flags & FLAG_CHAIN else None
    head_end = r.pos
    crc = r.u32be("header CRC") if version == 1 else r.u32le("header CRC")
    if crc32(r.buf[:head_end]) != crc:
        raise FormatError("CRC mismatch in the stream header")
    if kind == "update" and base is None:
        raise FormatError("update stream without a base fingerprint")
    if flags & FLAG_AGREED:
        if layout is None:
            raise FormatError(
                f"{kind} stream is in agreed-architecture mode: the receiver must supply the "
                "architecture (decode(data, into=model), layout=... or the base of an update)"
            )
        names_shapes = sorted((str(n), tuple(int(d) for d in s)) for n, s in layout)
        mine = fingerprint(names_shapes) if version == 1 else fingerprint64(names_shapes)
        if len(names_shapes) != count or mine != fp:
            width = 8 if version == 1 else 16
            raise FormatError(
                f"architecture fingerprint mismatch: stream {fp:#0{width + 2}x} for {count} "
                f"tensors, receiver {mine:#0{width + 2}x} for {len(names_shapes)} tensors"
            )
    if len({n for n, _ in names_shapes}) != len(names_shapes):
        raise FormatError("duplicate tensor names in the stream header")
    elements = sum(math.prod(s) for _, s in names_shapes)  # Python ints: exact, no overflow
    if elements > MAX_ELEMENTS_PER_BYTE * total + 1024:
        raise FormatError(
            f"header describes {elements} elements, more than a {total}-byte stream can carry"
        )
    budget.check_elements(elements)
    budget.version = version
    if base_fingerprint is not None and base is not None and base != base_fingerprint:
        raise FormatError(
            f"base fingerprint mismatch: update made against {base:#018x}, receiver holds "
            f"{base_fingerprint:#018x} (wrong or modified base)"
        )
    contexts: Mapping[str, np.ndarray] = {}
    if chain_fp is not None and kind == "update":  # a state stream carries its own fingerprint
        if chain is None:
            raise FormatError(
                "update continues a chain: the receiver needs the previous update's chain state"
            )
        if chain.fingerprint != chain_fp:
            raise FormatError(
                f"previous-update mismatch: the stream continues chain {chain_fp:#018x}, the "
                f"receiver holds {chain.fingerprint:#018x}"
            )
        contexts = chain.codes
    sections = [Section("", "header", 8 * r.pos)]
    tensors: dict[str, Tensor] = {}
    with bud.scope(budget):
        for name, shape in names_shapes:
            try:
                t, secs = decode_record(r, name, shape, context=contexts.get(name),
                                        version=version, lazy=lazy, dequantized=dequantized)
            except FormatError:
                raise
            except (ValueError, IndexError, OverflowError, TypeError) as e:  # safety net
                raise FormatError(f"malformed record {name!r}: {e}") from None
            tensors[name] = t
            sections.extend(secs)
    if r.remaining:
        raise FormatError(f"{r.remaining} unexpected bytes after the last record")
    mode = "agreed" if flags & FLAG_AGREED else "self"
    return Stream(mode, tuple(names_shapes), tensors, tuple(sections), base, version, 8 * total,
                  kind, chain_fp)
