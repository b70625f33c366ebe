"""Crafted hostile streams with valid CRCs (shared by tests/format/test_budget.py and
bench/hostile.py): each is a stream an honest encoder never writes but whose every CRC and
length is right, so the decoder's budget, not a checksum, has to refuse it."""

from __future__ import annotations

import struct
import zlib

import numpy as np

from nnshare.format.entropy import rans
from nnshare.format.entropy.dists import GEOMETRIC, TABLE, UNIFORM, Dist
from nnshare.format.entropy.encode import write_payload
from nnshare.format.entropy.header import ROWCOL, PayloadHeader
from nnshare.format.schemes.base import entropy_pad
from nnshare.format.wire import Writer, crc32, varint


def header(layout, kind: int = 0, base: int | None = None) -> bytes:
    """A v2 self-describing header (CRC included) for (name, shape) pairs."""
    w = Writer()
    w.raw(b"NNSH")
    w.u8(2)
    w.u8(kind)
    w.u8(0x02 if base is not None else 0)
    w.varint(len(layout))
    for name, shape in layout:
        nb = name.encode()
        w.varint(len(nb))
        w.raw(nb)
        w.u8(len(shape))
        for d in shape:
            w.varint(d)
    if base is not None:
        w.u64le(base)
    w.u32le(crc32(w.buf))
    return bytes(w.buf)


def affine_entropy_record(payload: bytes, n: int, bits: int = 8, scale: float = 0.01) -> bytes:
    """An affine record (symmetric, per tensor, fp32 scale) whose codes are ``payload``."""
    body = bytes([1, (bits - 1) << 4 | 8, 1 << 4]) + struct.pack("<f", scale)
    body += varint(len(payload)) + payload + bytes(entropy_pad(len(payload), n))
    return body + crc32(body).to_bytes(4, "little")


def stream_of(payloads, n: int, bits: int = 8) -> bytes:
    """A model stream of one flat tensor of n codes per payload."""
    layout = [(f"t{i}", (n,)) for i in range(len(payloads))]
    return header(layout) + b"".join(affine_entropy_record(p, n, bits) for p in payloads)


def _finish(w: Writer) -> bytes:
    w.raw(zlib.crc32(w.buf).to_bytes(4, "little"))
    return bytes(w.buf)


def _lanes(n: int, interleaved: bool) -> int:
    return rans.lanes(n) if interleaved and hasattr(rans, "lanes") else 1


def zero_bit_payload(n: int, interleaved: bool = True) -> bytes:
    """rANS payload whose only context is a table of ONE symbol (not a constant record): 0 bits
    per code, so n codes come from ~8 x lanes bytes. ``interleaved=False``: one state (the
    layout before lanes; a v2 reader now refuses it for n >= 32,768)."""
    lanes = _lanes(n, interleaved)
    kw = {"lanes": True} if lanes > 1 else {}
    h = PayloadHeader(0, rans_prec=12, int_tables=True,
                      dists=(Dist(TABLE, 0, 1, levels=np.array([1], np.uint8)),), **kw)
    w = Writer()
    h.write(w)
    for _ in range(lanes):
        w.u32le(0)
        w.u32le(rans.RANS_L)
    return _finish(w)


def zero_bit_stream(stream_bytes: int, interleaved: bool = True) -> tuple[bytes, int]:
    """(stream, n): a model stream of about ``stream_bytes`` bytes carrying 4,096 codes per
    byte (the most the container allows), all of them zero-bit."""
    n = 4096 * (stream_bytes - 40)
    return stream_of([zero_bit_payload(n, interleaved)], n), n


def slot_table_payload(n: int = 64) -> bytes:
    """A valid rANS payload of n 16-bit codes at precision 22 with one uniform context of
    65,536 symbols: contexts x 2**prec = 2**22 slot entries (16 MiB of int32) if built."""
    h = PayloadHeader(0, rans_prec=22, int_tables=True,
                      dists=(Dist(UNIFORM, -32768, 65536),))
    sym = np.random.default_rng(0).integers(-32768, 32768, n)
    return write_payload(h, sym, np.zeros(n, np.int16))


def slot_table_stream(records: int = 300, n: int = 64) -> bytes:
    """``records`` such records in one model stream (296 bytes each)."""
    return stream_of([slot_table_payload(n)] * records, n, bits=16)


def range_tables_payload(n: int, k: int = 16) -> bytes:
    """A range-coded (no rANS flag) payload with k x k row/column contexts, each a geometric
    table over the whole 16-bit alphabet: 65,536 x k**2 cumulative entries from ~3 KB (the
    words are never reached: the tables are refused first, or built and then decoded)."""
    row_len = 256
    dists = tuple(Dist(GEOMETRIC, -32768, 65536, a=0.0, b=3.0) for _ in range(k * k))
    h = PayloadHeader(ROWCOL, rans_prec=0, int_tables=True, row_len=row_len, k_row=k, k_col=k,
                      rows=np.arange(n // row_len) % k, cols=np.arange(row_len) % k, dists=dists)
    w = Writer()
    h.write(w)
    w.raw(bytes(4 * 64))
    return _finish(w)


def range_payload_variants(n: int = 2000):
    """(clean, trailing word, no words) range-coded payloads of n 8-bit codes (needs
    constriction on the sender); the last two differ from the first only in their words."""
    from nnshare.format.entropy import encode_codes

    x = np.rint(np.random.default_rng(5).laplace(size=n) * 4).clip(-128, 127).astype(np.int64)
    clean = encode_codes(x, -128, 127, models="iid", coder="range")
    body = clean[:-4]
    from nnshare.format.entropy.header import PayloadHeader as PH

    h, words = PH.parse(clean, n, -128, 127)
    head_len = len(body) - 4 * words.size
    extra = body + b"\x01\x00\x00\x00"
    none = body[:head_len]
    fix = [b + zlib.crc32(b).to_bytes(4, "little") for b in (extra, none)]
    return x, clean, fix[0], fix[1]


def nnsu_stream(base: dict, bits: int, payload: bytes, step: float = 0.01) -> bytes:
    """A version-1 update (NNSU) of one tensor with a forged code width."""
    from nnshare.share.legacy_update import MAGIC, crc_arrays

    (name,) = base
    b = MAGIC + bytes([1, 0]) + struct.pack(">II", crc_arrays(base), 0) + varint(1)
    b += struct.pack("<f", step) + bytes([bits]) + varint(len(payload)) + payload
    return b + struct.pack(">I", zlib.crc32(b))


def nnss_state(entries) -> bytes:
    """A version-1 state file (NNSS) of (name, int32 codes) entries, duplicates allowed."""
    from nnshare.share.legacy_update import STATE_MAGIC

    b = STATE_MAGIC + varint(len(entries))
    for name, codes in entries:
        nb = name.encode()
        b += varint(len(nb)) + nb + varint(len(codes)) + np.asarray(codes, "<i4").tobytes()
    return b + struct.pack(">I", zlib.crc32(b))
