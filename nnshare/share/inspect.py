"""Exact accounting of a stream: bits per tensor and per kind, adding up to 8 x its length."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..format import container
from ..format.lazy import LazyTensor
from ..format.meta import META_NAME
from ..format.schemes import scheme_of
from ..format.spec import FloatTensor, RawTensor


@dataclass(frozen=True)
class TensorRow:
    """One tensor's share of a stream (all sizes in bits)."""

    name: str
    shape: tuple[int, ...]
    elements: int
    scheme: str
    bits_per_element: float
    payload_bits: int
    side_bits: int
    record_bits: int
    pad_bits: int
    fields: dict = field(default_factory=dict, compare=False)

    @property
    def total_bits(self) -> int:
        return self.payload_bits + self.side_bits + self.record_bits + self.pad_bits


@dataclass(frozen=True)
class Inspection:
    """The stream's accounting. ``total_bits == 8 * stream length`` always.

    ``kind``: the stream kind ("model", "update", "features", "state"); ``base_fingerprint`` /
    ``chain_fingerprint``: the base an update is coded against and the chain it continues (a state
    stream: the chain it holds), None when the header carries none."""

    mode: str
    version: int
    rows: tuple[TensorRow, ...]
    header_bits: int
    total_bits: int
    kind: str = "model"
    base_fingerprint: int | None = None
    chain_fingerprint: int | None = None

    @property
    def payload_bits(self) -> int:
        """Codes and float values (the seed's "payload" adds side info: see ``shared_bits``)."""
        return sum(r.payload_bits for r in self.rows)

    @property
    def side_bits(self) -> int:
        return sum(r.side_bits for r in self.rows)

    @property
    def shared_bits(self) -> int:
        """Coefficients plus quantization parameters: what the seed counts (27,456 for ptq-t8)."""
        return self.payload_bits + self.side_bits

    @property
    def overhead_bits(self) -> int:
        """Stream header, record framing, CRCs and padding."""
        return self.total_bits - self.shared_bits

    @property
    def float32_bits(self) -> int:
        """32 bits per model element (the meta record of dtypes / ties is not a model tensor)."""
        return 32 * sum(r.elements for r in self.rows if r.name != META_NAME)

    @property
    def reduction_percent(self) -> float:
        """Saving of the whole stream against float32 coefficients, in percent."""
        return 100.0 * (1 - self.total_bits / self.float32_bits) if self.float32_bits else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "version": self.version,
            "kind": self.kind,
            "base_fingerprint": _hex(self.base_fingerprint, self.version),
            "chain_fingerprint": _hex(self.chain_fingerprint, self.version),
            "tensors": [
                {**{k: v for k, v in r.__dict__.items() if k != "fields"}, "shape": list(r.shape),
                 "total_bits": r.total_bits, "spec": r.fields}
                for r in self.rows
            ],
            "header_bits": self.header_bits,
            "payload_bits": self.payload_bits,
            "side_bits": self.side_bits,
            "shared_bits": self.shared_bits,
            "overhead_bits": self.overhead_bits,
            "total_bits": self.total_bits,
            "float32_bits": self.float32_bits,
            "reduction_percent": self.reduction_percent,
        }


def _hex(fp: int | None, version: int) -> str | None:
    return None if fp is None else f"{fp:0{8 if version == 1 else 16}x}"


def describe(t) -> str:
    """Short text of how a tensor is sent, e.g. ``affine s8 ch0`` or ``fp32`` (a quantized
    tensor's text comes from its scheme)."""
    if isinstance(t, FloatTensor):
        return t.dtype
    if isinstance(t, RawTensor):
        return str(t.values.dtype)
    spec = _spec(t)
    scheme = scheme_of(spec)
    return scheme.describe(scheme.wire(spec, tuple(t.shape)))


def fields_of(t) -> dict[str, Any]:
    """How a tensor is sent, as structured fields (for ``inspect --json``): ``kind`` (quantized
    | float | raw) and, for quantized tensors, the scheme's wire fields (``Scheme.fields``: for
    affine bits, symmetric, restricted, granularity, axis, group size, scale dtype, per-channel
    widths)."""
    if isinstance(t, FloatTensor):
        return {"kind": "float", "dtype": t.dtype}
    if isinstance(t, RawTensor):
        return {"kind": "raw", "dtype": str(t.values.dtype)}
    spec = _spec(t)
    scheme = scheme_of(spec)
    return {"kind": "quantized", **scheme.fields(scheme.wire(spec, tuple(t.shape)))}


def _spec(t):
    """A quantized tensor's spec; a record read lazily gives its wire without decoding codes."""
    if isinstance(t, LazyTensor):
        return t.pending.wire if t.pending.wire is not None else t.finish().spec
    return t.spec


def inspect(data: bytes, into: Any = None, *, layout=None, chain=None) -> Inspection:
    """Parse a stream of any kind and account for every bit. Agreed-mode streams need ``into``
    or ``layout`` (an agreed-mode update: its base); a chained update needs ``chain``, the chain
    state it continues. The header, every record's framing and CRC and every entropy payload's
    header are checked; codes are not decoded (``decode`` does that and checks them)."""
    if layout is None and into is not None:
        from .model import layout_of

        layout = layout_of(into)
    st = container.read_stream(data, layout, chain=chain, lazy=True)
    per: dict[str, dict[str, int]] = {n: {} for n, _ in st.layout}
    notes: dict[str, str] = {}
    header = 0
    for sec in st.sections:
        if sec.kind == "header":
            header += sec.bits
        else:
            d = per[sec.name]
            d[sec.kind] = d.get(sec.kind, 0) + sec.bits
            if sec.note:
                notes[sec.name] = sec.note
    rows = []
    for name, shape in st.layout:
        t = st.tensors[name]
        d = per[name]
        n = int(np.prod(shape, dtype=np.int64))
        payload = d.get("payload", 0)
        rows.append(
            TensorRow(
                name=name,
                shape=shape,
                elements=n,
                scheme=" ".join(filter(None, (describe(t), notes.get(name, "")))),
                bits_per_element=payload / n if n else 0.0,
                payload_bits=payload,
                side_bits=d.get("side", 0),
                record_bits=d.get("record", 0),
                pad_bits=d.get("pad", 0),
                fields={**fields_of(t), **({"entropy": notes[name]} if name in notes else {})}
                if name != META_NAME else {"kind": "meta"},
            )
        )
    total = header + sum(r.total_bits for r in rows)
    if total != 8 * len(data):  # the accounting must add up; a mismatch is a bug here
        raise AssertionError(f"accounting gives {total} bits for a {len(data)}-byte stream")
    return Inspection(st.mode, st.version, tuple(rows), header, total, st.kind,
                      st.base_fingerprint, st.chain_fingerprint)
