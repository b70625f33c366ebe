"""The chain state of model updates: what sender and receiver keep between rounds.

A chained update codes each tensor's codes with the previous update's codes (same tensor, same
element) as temporal context, so both sides must hold those codes. They are kept compact: the
state is itself an ``NNSH`` v2 stream of kind "state" whose records hold the previous codes as
entropy-coded integer records (affine, symmetric, per tensor, scale 1), with the chain
fingerprint of those codes in its header. Its size is about that of the update it came from
(a few bits per parameter, far below the float32 model) instead of 32 bits per parameter.

Fingerprints (u64): BLAKE2b-64 of the sorted names, shapes and values, so a receiver holding
another base or another previous update is told so instead of rebuilding a wrong model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np

from .errors import FormatError, SpecError
from .spec import QuantizedTensor, QuantSpec

MAX_CODE_BITS = 16


def fingerprint_arrays(arrays: Mapping[str, np.ndarray]) -> int:
    """u64 fingerprint of a model's values (an update's base): BLAKE2b-64 over every tensor in
    sorted name order of ``name:d0,d1;`` and its float32 little-endian values."""
    h = hashlib.blake2b(b"nnsh-base;", digest_size=8)
    for name in sorted(arrays):
        a = np.ascontiguousarray(np.asarray(arrays[name], dtype="<f4"))
        h.update(f"{name}:{','.join(map(str, a.shape))};".encode())
        h.update(a.tobytes())
    return int.from_bytes(h.digest(), "little")


def fingerprint_codes(codes: Mapping[str, np.ndarray]) -> int:
    """u64 fingerprint of an update's codes (the chain): BLAKE2b-64 over every tensor in sorted
    name order of ``name:n;`` and its codes as int32 little-endian."""
    h = hashlib.blake2b(b"nnsh-chain;", digest_size=8)
    for name in sorted(codes):
        a = np.ascontiguousarray(np.asarray(codes[name]).reshape(-1), dtype="<i4")
        h.update(f"{name}:{a.size};".encode())
        h.update(a.tobytes())
    return int.from_bytes(h.digest(), "little")


def _code_record(c: np.ndarray) -> QuantizedTensor:
    m = int(np.abs(c).max()) if c.size else 0
    bits = max(2, m.bit_length() + 1)
    if bits > MAX_CODE_BITS:
        raise SpecError(f"chain codes up to {m} need more than {MAX_CODE_BITS} bits")
    if c.size and int(c.min()) < -(2 ** (bits - 1)):  # -2**(b-1) fits; below it does not
        bits += 1
    spec = QuantSpec(bits=bits)
    return QuantizedTensor(c.astype(np.int32), {"scale": np.float32(1.0)}, spec, (c.size,))


class ChainState:
    """The previous update's codes (flat int per tensor, stream order), held compact.

    ``data`` is the state stream (what ``--state-out`` writes); ``codes`` decodes it on demand;
    ``fingerprint`` is the u64 an update that continues this chain carries in its header.
    """

    __slots__ = ("data", "fingerprint")

    def __init__(self, data: bytes, fingerprint: int) -> None:
        self.data = bytes(data)
        self.fingerprint = int(fingerprint)

    @classmethod
    def from_codes(cls, codes: Mapping[str, np.ndarray]) -> ChainState:
        """Build the compact state from an update's codes."""
        from .container import write_stream

        flat = {str(k): np.asarray(v).reshape(-1) for k, v in codes.items()}
        for k, v in flat.items():
            if v.size and not np.issubdtype(v.dtype, np.integer):
                raise SpecError(f"chain codes of {k!r} must be integers, got {v.dtype}")
        fp = fingerprint_codes(flat)
        tensors = {k: _code_record(flat[k]) for k in sorted(flat)}
        data, _ = write_stream(tensors, "self", entropy="auto", kind="state",
                               chain_fingerprint=fp)
        return cls(data, fp)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> ChainState:
        """Parse and verify a state stream (its codes must match its fingerprint)."""
        _, fp = cls._read(data)
        return cls(bytes(data), fp)

    @staticmethod
    def _read(data) -> tuple[dict[str, np.ndarray], int]:
        from .container import read_stream

        st = read_stream(data)
        if st.kind != "state" or st.chain_fingerprint is None:
            raise FormatError(f"not an update chain state (a {st.kind} stream)")
        codes = {}
        for k, t in st.tensors.items():
            s = getattr(t, "spec", None)
            if s is None or (s.scheme, s.symmetric, s.granularity, len(t.shape)) != (
                "affine", True, "tensor", 1
            ):
                raise FormatError(f"chain state record {k!r} is not a flat integer record")
            codes[k] = np.asarray(t.codes, np.int32).reshape(-1)
        if fingerprint_codes(codes) != st.chain_fingerprint:
            raise FormatError("chain state codes do not match its fingerprint")
        return codes, st.chain_fingerprint

    def to_bytes(self) -> bytes:
        """The state stream."""
        return self.data

    @property
    def codes(self) -> dict[str, np.ndarray]:
        """{name: flat int32 codes} (decoded from the compact stream on each call)."""
        return self._read(self.data)[0]

    @property
    def nbytes(self) -> int:
        """Bytes the state takes (its stream)."""
        return len(self.data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ChainState) and other.fingerprint == self.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __repr__(self) -> str:
        return f"ChainState({self.fingerprint:#018x}, {len(self.data)} bytes)"
