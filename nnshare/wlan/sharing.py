"""Share the CSI encoder through nnshare for real: encode to a bitstream with a scheme, decode
it at the receiving side into a fresh encoder; only the decoded encoder is used in the link."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import nn

from .. import decode, encode, encode_tensors, inspect
from ..format.errors import SpecError
from ..plan import Plan, preset, uniform
from .autoencoder import make_encoder

PTQ_SCHEMES = ("float32", "ptq-t8") + tuple(f"ptq-{g}{b}" for g in ("t", "c") for b in (6, 5, 4, 3))
QAT_SCHEMES = ("qat-t4", "qat-t3")
LABELS = {
    "float32": "AE float32",
    "ptq-t8": "AE 8-bit (ptq-t8)",
    **{f"ptq-t{b}": f"AE {b}-bit per-tensor" for b in (6, 5, 4, 3)},
    **{f"ptq-c{b}": f"AE {b}-bit per-channel" for b in (6, 5, 4, 3)},
    "qat-t4": "AE QAT 4-bit",
    "qat-t3": "AE QAT 3-bit",
}


def scheme_plan(scheme: str) -> Plan:
    """The nnshare plan of a PTQ scheme name ("float32", "ptq-t8", "ptq-t4", "ptq-c3", ...).

    ptq-t<b>: symmetric per-tensor b-bit weights, one fp32 scale per weight tensor, fp32
    biases; ptq-c<b>: the same with one fp32 scale per output channel.
    """
    if scheme == "float32":
        return Plan()
    if scheme == "ptq-t8":
        return preset("ptq-t8")
    if scheme.startswith("ptq-") and len(scheme) >= 6 and scheme[4] in "tc":
        try:
            bits = int(scheme[5:])
        except ValueError:
            bits = 0
        if 2 <= bits <= 16:
            return uniform(bits, "tensor" if scheme[4] == "t" else "channel")
    raise SpecError(f"unknown sharing scheme {scheme!r}; known: {', '.join(PTQ_SCHEMES)}")


@dataclass(frozen=True, eq=False)
class Shared:
    """A decoded encoder and the exact size of the stream it came from (bits; bytes)."""

    scheme: str
    encoder: nn.Module
    stream_bytes: int
    total_bits: int  # 8 x stream length: header, records, CRC included
    shared_bits: int  # coefficients + quantization parameters (the seed's count)
    payload_bits: int
    side_bits: int

    def to_dict(self) -> dict:
        return {
            "scheme": self.scheme,
            "stream_bytes": self.stream_bytes,
            "total_bits": self.total_bits,
            "shared_bits": self.shared_bits,
            "payload_bits": self.payload_bits,
            "side_bits": self.side_bits,
        }


def receive(scheme: str, data: bytes) -> Shared:
    """Decode an agreed-mode encoder stream into a fresh encoder, with its exact bit counts."""
    fresh = make_encoder()
    report = inspect(data, into=fresh)
    decoded = decode(data, into=fresh)
    decoded.eval()
    return Shared(
        scheme=scheme,
        encoder=decoded,
        stream_bytes=len(data),
        total_bits=report.total_bits,
        shared_bits=report.shared_bits,
        payload_bits=report.payload_bits,
        side_bits=report.side_bits,
    )


def share(encoder: nn.Module, scheme: str) -> Shared:
    """Encode ``encoder`` with a PTQ scheme (agreed-architecture mode) and decode it again."""
    data = encode(encoder, scheme_plan(scheme), mode="agreed")
    return receive(scheme, data)


def share_tensors(scheme: str, tensors: Mapping) -> Shared:
    """Send already-quantized tensors (e.g. from QAT) and decode them into a fresh encoder."""
    order = list(make_encoder().state_dict())
    if set(order) != set(tensors):
        raise SpecError(f"tensors {sorted(tensors)} do not match the encoder's {order}")
    data = encode_tensors({n: tensors[n] for n in order}, mode="agreed")
    return receive(scheme, data)
