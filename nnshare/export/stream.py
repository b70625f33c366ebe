"""Reading a stream for export: its tensors and a one-line description of each layout."""

from __future__ import annotations

from collections.abc import Mapping

from ..format import read_stream
from ..format.records import Tensor
from ..format.spec import QuantizedTensor, QuantSpec


def stream_tensors(data: bytes | Mapping[str, Tensor], layout=None) -> dict[str, Tensor]:
    """The tensors of a stream (bytes, verified and parsed) or of an already-parsed mapping."""
    if isinstance(data, bytes | bytearray | memoryview):
        return dict(read_stream(data, layout).tensors)
    return dict(data)


def describe(spec: QuantSpec) -> str:
    """Short layout text, e.g. ``affine 4-bit asymmetric group 32 on axis 1``."""
    if getattr(spec, "scheme", "affine") != "affine":
        bits = getattr(spec, "bits", None)
        return f"{spec.scheme}" + (f" {bits}-bit" if bits is not None else "")
    kind = "symmetric" if spec.symmetric else "asymmetric"
    if spec.restricted:
        kind += " restricted"
    if spec.granularity == "tensor":
        gran = "per tensor"
    elif spec.granularity == "channel":
        gran = f"per channel on axis {spec.axis}"
    else:
        gran = f"group {spec.group_size} on axis {spec.axis}"
    bits = f"{spec.bits}-bit"
    if spec.channel_bits:
        bits = f"{min(spec.channel_bits)}..{max(spec.channel_bits)}-bit per channel"
    return f"{spec.scheme} {bits} {kind} {gran}"


def quantized(tensors: Mapping[str, Tensor]) -> dict[str, QuantizedTensor]:
    """The quantized tensors only."""
    return {n: t for n, t in tensors.items() if isinstance(t, QuantizedTensor)}
