"""Structure-aware fuzzing of format v2 (shared by tests/format/test_fuzz_v2.py and bench/fuzz.py).

A corpus holds one small v2 stream of every kind (models packed and entropy-coded, with every
record kind including per-channel widths and a codebook; an update; a chained update; features;
a chain state), each with the decoder a receiver would run on it. Mutations: single-byte changes,
truncations, random byte edits, and edits inside one header or record with its CRC recomputed (so
the parser behind the CRC is reached). A decoder may only succeed or raise FormatError.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nnshare.format import FloatTensor, RawTensor, read_stream, write_stream
from nnshare.format.wire import crc32
from nnshare.quant import QuantSpec, quantize
from nnshare.quant.codebook import CodebookConfig
from nnshare.share.delta import decode_update, encode_update
from nnshare.share.features import decode_features, encode_features


@dataclass(frozen=True)
class Sample:
    """One stream, its segments ((start, end) byte ranges of header and records, each ending in
    its 4-byte CRC) and the decode a receiver runs on it."""

    name: str
    data: bytes
    segments: tuple[tuple[int, int], ...]
    decode: Callable[[bytes], object]


def _segments(sections, n: int) -> tuple[tuple[int, int], ...]:
    """Byte ranges of the header and of each record from a stream's accounting sections."""
    out, pos, cur, bits = [], 0, None, 0
    for s in sections:
        key = "" if s.kind == "header" else s.name
        if cur is not None and key != cur:
            out.append((pos, pos + bits // 8))
            pos += bits // 8
            bits = 0
        cur = key
        bits += s.bits
    out.append((pos, pos + bits // 8))
    assert out[-1][1] == n
    return tuple(out)


def corpus(lanes: bool = False) -> list[Sample]:
    """The v2 samples, one per stream kind (small, so every byte can be tried); ``lanes`` adds
    a model whose entropy payload interleaves 512 rANS lanes (2**19 sparse codes, ~40 KB: too
    big to try every byte, it takes part in the random mutations)."""
    rng = np.random.default_rng(11)
    w = rng.laplace(0, 0.05, (8, 12)).astype(np.float32)
    tensors = {
        "a": quantize(w, QuantSpec(bits=3, symmetric=False, granularity="channel")),
        "b": quantize(w, QuantSpec(bits=5, granularity="group", group_size=5, axis=1,
                                   scale_dtype="fp16")),
        "c": quantize(w, QuantSpec(bits=6, granularity="channel",
                                   channel_bits=(6, 2, 3, 4, 5, 6, 3, 2))),
        "d": quantize(w[:2], CodebookConfig(levels=5, level_dtype="bf16")),
        "e": FloatTensor(w[0, :3].copy(), "fp16"),
        "f": RawTensor(np.array([5, -2], np.int64)),
        "g": quantize(w[:3], QuantSpec(bits=4, restricted=True)),
    }
    layout = [(k, t.shape) for k, t in tensors.items()]
    ent = {k: tensors[k] for k in ("a", "d")}
    lap = np.random.default_rng(11).laplace(0, 1, (4, 128)).astype(np.float32)
    ent["c"] = quantize(lap, QuantSpec(bits=7, granularity="channel", channel_bits=(7, 5, 6, 4)))
    ent["h"] = quantize(lap, QuantSpec(bits=6))
    ent_layout = [(k, t.shape) for k, t in ent.items()]

    def model(layout_):
        def run(data):
            st = read_stream(data, layout_)
            return [t.dequantize() for t in st.tensors.values()]

        return run

    out = []
    for mode in ("self", "agreed"):
        data, secs = write_stream(tensors, mode)
        out.append(Sample(f"model-{mode}", data, _segments(secs, len(data)),
                          model(layout if mode == "agreed" else None)))
    data, secs = write_stream(ent, "self", entropy="auto")
    out.append(Sample("model-entropy", data, _segments(secs, len(data)), model(None)))
    data, secs = write_stream(ent, "agreed", entropy="auto")
    out.append(Sample("model-entropy-agreed", data, _segments(secs, len(data)), model(ent_layout)))

    base = {"u.weight": (rng.standard_normal((6, 16)) * 0.1).astype(np.float32),
            "u.bias": (rng.standard_normal(6) * 0.1).astype(np.float32)}
    d = {k: rng.standard_normal(v.shape) * 0.01 for k, v in base.items()}
    m1 = {k: (base[k] + d[k]).astype(np.float32) for k in base}
    m2 = {k: (m1[k] + d[k] + rng.standard_normal(v.shape) * 0.002).astype(np.float32)
          for k, v in base.items()}
    e1 = encode_update(m1, base, sqnr_db=16.0)
    e2 = encode_update(m2, m1, state=e1.state, step=max(e1.steps.values()))
    out.append(Sample("update", e1.data, _segments(e1.sections, len(e1.data)),
                      lambda data: decode_update(data, base)))
    state = e1.state
    out.append(Sample("update-chained", e2.data, _segments(e2.sections, len(e2.data)),
                      lambda data: decode_update(data, m1, state=state)))
    st_bytes = state.to_bytes()
    st_secs = read_stream(st_bytes).sections
    from nnshare.format.chain import ChainState

    out.append(Sample("chain-state", st_bytes, _segments(st_secs, len(st_bytes)),
                      lambda data: ChainState.from_bytes(data).codes))
    feats = encode_features({"act": np.maximum(rng.standard_normal((2, 40)), 0)}, bits=5)
    out.append(Sample("features", feats, _segments(read_stream(feats).sections, len(feats)),
                      decode_features))
    if lanes:
        big = {"w": quantize(rng.laplace(0, 1, (128, 256)).astype(np.float32), QuantSpec(bits=4)),
               "t": quantize((rng.standard_normal(2**19) * (rng.random(2**19) < 0.05))
                             .astype(np.float32), QuantSpec(bits=4))}
        data, secs = write_stream(big, "self", entropy="always")
        out.append(Sample("model-entropy-lanes", data, _segments(secs, len(data)), model(None)))
    return out


def output_bytes(result) -> int:
    """Bytes of the arrays a decode returned (nested lists, tuples and dicts)."""
    if isinstance(result, np.ndarray):
        return result.nbytes
    if isinstance(result, dict):
        return sum(output_bytes(v) for v in result.values())
    if isinstance(result, list | tuple):
        return sum(output_bytes(v) for v in result)
    return 0


def single_byte_changes(data: bytes):
    """Every position x three changes (+1, +0x80, +0xff mod 256)."""
    for i in range(len(data)):
        for delta in (1, 0x80, 0xFF):
            bad = bytearray(data)
            bad[i] = (bad[i] + delta) & 0xFF
            yield bytes(bad)


def mutate(sample: Sample, rng: np.random.Generator) -> tuple[bytes, bool]:
    """One random mutation; returns the bytes and whether a CRC was recomputed."""
    data = bytearray(sample.data)
    if rng.random() < 0.35:  # raw edits anywhere
        for _ in range(int(rng.integers(1, 5))):
            op, pos = int(rng.integers(0, 3)), int(rng.integers(0, max(1, len(data))))
            if op == 0 and data:
                data[pos] = int(rng.integers(0, 256))
            elif op == 1 and data:
                del data[pos]
            else:
                data.insert(pos, int(rng.integers(0, 256)))
        return bytes(data), False
    start, end = sample.segments[int(rng.integers(0, len(sample.segments)))]
    body = bytearray(data[start : end - 4])
    for _ in range(int(rng.integers(1, 4))):
        op = int(rng.integers(0, 6))
        pos = int(rng.integers(0, max(1, len(body))))
        if op <= 2 and body:  # overwrite: random byte, bit flip, or an extreme value
            body[pos] = [int(rng.integers(0, 256)), body[pos] ^ (1 << int(rng.integers(0, 8))),
                         int(rng.choice([0, 0x7F, 0x80, 0xFF]))][op]
        elif op == 3 and body:
            del body[pos : pos + int(rng.integers(1, 4))]
        elif op == 4:
            body[pos:pos] = bytes(rng.integers(0, 256, int(rng.integers(1, 4))).astype(np.uint8))
        elif body:  # varint-sized field blown up
            body[pos : pos + 1] = b"\xff\xff\xff\xff\x0f"
    fixed = bytes(body) + crc32(bytes(body)).to_bytes(4, "little")
    return bytes(data[:start]) + fixed + bytes(data[end:]), True
