"""Progressive delivery: a model sent as a bundle of small nnshare streams ("parts") in an order
chosen so that a receiver whose transfer stops early still holds a working model.

- ``channel_parts``: the 1-D tensors (biases, norms) in one head part, then every weight cut
  into blocks of output channels (rows of axis 0), each block its own stream; ordered by task
  criticality (a per-channel score, e.g. the mixed-precision sensitivity, per byte) or in the
  model's own order. A receiver fills the blocks it holds and zeros the rest (``assemble``).
- ``coarse_to_fine``: the whole model at a low bit width (the base layer), then an update
  stream coding the full model against the decoded base (the refinement), ``assemble_coarse``.

Bundle layout (little-endian): magic ``b"NLB1"``, varint part count, per part varint label
length + UTF-8 label + varint data length, CRC-32 of the index so far (u32), then the parts'
bytes in order. The parts stay opaque nnshare streams.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import FormatError, SpecError
from ..format.wire import Reader, Writer, crc32

BUNDLE_MAGIC = b"NLB1"
MAX_PARTS = 1 << 20


@dataclass(frozen=True)
class Part:
    """One piece of a progressive bundle: a label and an nnshare stream."""

    label: str
    data: bytes


def pack(parts: Sequence[Part]) -> bytes:
    """The bundle bytes of ``parts`` (in delivery order)."""
    w = Writer()
    w.raw(BUNDLE_MAGIC)
    w.varint(len(parts))
    for p in parts:
        lab = p.label.encode("utf-8")
        w.varint(len(lab))
        w.raw(lab)
        w.varint(len(p.data))
    w.u32le(crc32(w.buf))
    for p in parts:
        w.raw(p.data)
    return w.getvalue()


def index(prefix: bytes) -> tuple[list[tuple[str, int, int]], int]:
    """(label, start, end) of every part and the index length, from the bundle's first bytes;
    FormatError if they are too few or damaged."""
    r = Reader(prefix, "bundle index")
    if bytes(r.take(4, "magic")) != BUNDLE_MAGIC:
        raise FormatError("not a progressive bundle (magic)")
    n = r.varint("part count", limit=MAX_PARTS)
    items = []
    for _ in range(n):
        lab = bytes(r.take(r.varint("label length", limit=4096), "label")).decode("utf-8", "replace")
        items.append((lab, r.varint("part length")))
    end = r.pos
    if r.u32le("index CRC") != crc32(bytes(prefix[:end])):
        raise FormatError("bundle index CRC mismatch")
    out, pos = [], r.pos
    for lab, size in items:
        out.append((lab, pos, pos + size))
        pos += size
    return out, r.pos


def unpack(bundle: bytes) -> list[Part]:
    """Every part of a complete bundle."""
    idx, _ = index(bundle)
    if idx and idx[-1][2] != len(bundle) or not idx and len(bundle) != index(bundle)[1]:
        raise FormatError("bundle length does not match its index")
    return [Part(lab, bytes(bundle[a:b])) for lab, a, b in idx]


def part_ready_us(bundle: bytes, fragment_bytes: int, arrival_us: np.ndarray) -> list[float]:
    """When each part became usable: the latest arrival of the fragments holding it and the
    index (``arrival_us`` per fragment, e.g. ``Delivery.arrival_us``; nan = never)."""
    idx, head = index(bundle)
    arr = np.asarray(arrival_us, dtype=np.float64)

    def ready(a: int, b: int) -> float:
        f0, f1 = a // fragment_bytes, max(a, b - 1) // fragment_bytes
        return float(np.max(arr[f0 : f1 + 1])) if b > a else -np.inf

    t_head = ready(0, head)
    return [max(t_head, ready(a, b)) for _, a, b in idx]


# ------------------------------------------------------------------ building and using parts


def _split(rows: int, blocks: int) -> list[tuple[int, int]]:
    edges = np.linspace(0, rows, min(blocks, rows) + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]


def channel_parts(
    arrays: Mapping[str, np.ndarray],
    plan="w8-channel",
    *,
    scores: Mapping[str, np.ndarray] | None = None,
    blocks: int = 4,
    order: str = "criticality",
) -> list[Part]:
    """Head part (every tensor of rank < 2) then row blocks of every weight, as streams coded
    with ``plan`` (self-describing). ``scores[name]``: (rows,) criticality of each output
    channel; ``order``: "criticality" (score per byte, highest first) or "in-order"."""
    from ..share import encode

    if order not in ("criticality", "in-order"):
        raise SpecError(f"order must be 'criticality' or 'in-order', got {order!r}")
    if order == "criticality" and scores is None:
        raise SpecError("criticality order needs per-channel scores")
    head = {k: np.asarray(v) for k, v in arrays.items() if np.ndim(v) < 2}
    parts = [Part("head", encode(head, {k: "fp32" for k in head}))] if head else []
    body = []
    for name, w in arrays.items():
        w = np.asarray(w)
        if w.ndim < 2:
            continue
        for a, b in _split(w.shape[0], blocks):
            label = f"{name}[{a}:{b}]"
            data = encode({label: np.ascontiguousarray(w[a:b])}, plan)
            s = float(np.sum(np.asarray(scores[name])[a:b])) if scores is not None else 0.0
            body.append((s / len(data), Part(label, data)))
    if order == "criticality":
        body.sort(key=lambda t: -t[0])
    return parts + [p for _, p in body]


def assemble(parts: Sequence[Part], shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """The model a receiver holding ``parts`` uses: received blocks, zeros elsewhere."""
    from ..share import decode

    out = {k: np.zeros(s, np.float32) for k, s in shapes.items()}
    for p in parts:
        for label, arr in decode(p.data).items():
            name, _, rng = label.partition("[")
            if not rng:
                out[name] = arr.reshape(shapes[name])
                continue
            a, b = (int(x) for x in rng.rstrip("]").split(":"))
            out[name][a:b] = arr
    return out


def coarse_to_fine(
    arrays: Mapping[str, np.ndarray],
    coarse=None,
    *,
    fine_sqnr_db: float = 40.0,
    scores: Mapping[str, np.ndarray] | None = None,
) -> list[Part]:
    """Base layer: the model at ``coarse`` (a plan or preset; default 2-bit per-channel); then one
    refinement per tensor the base does not hold exactly: an update stream of that tensor against
    its decoded base at ``fine_sqnr_db`` (SQNR of the delta, dB), most critical per byte first
    when ``scores`` (name -> per-channel criticality) are given, else in model order."""
    from ..plan import uniform
    from ..share import decode, encode
    from ..share.delta import encode_update

    base_data = encode(dict(arrays), coarse if coarse is not None else uniform(2, "channel"))
    base = decode(base_data)
    refine = []
    for name, w in arrays.items():
        w = np.asarray(w, np.float32)
        if np.array_equal(base[name].reshape(w.shape), w):
            continue
        upd = encode_update({name: w}, {name: base[name].reshape(w.shape)}, sqnr_db=fine_sqnr_db)
        s = float(np.sum(scores[name])) if scores is not None and name in scores else 0.0
        refine.append((s / len(upd.data), Part(f"refine:{name}", upd.data)))
    if scores is not None:
        refine.sort(key=lambda t: -t[0])
    return [Part("coarse", base_data)] + [p for _, p in refine]


def assemble_coarse(parts: Sequence[Part], shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """The receiver's model from the parts of ``coarse_to_fine`` it holds (zeros before the base)."""
    from ..share import decode
    from ..share.delta import decode_update

    got = {p.label: p.data for p in parts}
    if "coarse" not in got:
        return {k: np.zeros(s, np.float32) for k, s in shapes.items()}
    out = {k: v.reshape(shapes[k]) for k, v in decode(got["coarse"]).items()}
    for label, data in got.items():
        if label.startswith("refine:"):
            name = label[len("refine:"):]
            out[name] = decode_update(data, {name: out[name]})[0][name].reshape(shapes[name])
    return out
