"""Model-update coding: W_new - W_base against a base both sides hold, with the previous
update's codes as temporal context for the next.

Stream (integers big-endian unless noted; varints LEB128):

- ``b"NNSU"``, version (u8) = 1, flags (u8): bit 0 = the update uses a temporal chain.
- base fingerprint (u32): :func:`fingerprint_arrays` of the base values (what the receiver must
  hold); chain fingerprint (u32): :func:`fingerprint_codes` of the previous update's codes
  (0 without a chain).
- tensor count (varint), then per tensor in sorted name order: step (f32, little-endian),
  code bits b (u8; 0 = all-zero update, nothing follows), entropy payload length (varint) and
  payload (:mod:`nnshare.format.entropy`, codes in [-2**(b-1), 2**(b-1) - 1]).
- CRC-32 (u32) of everything before.

The receiver rebuilds ``base + step * codes`` (float32; integer tensors exactly, in their own
dtype). A receiver holding another base, or
another previous update, gets FormatError: never a wrong model.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ..format.entropy import decode_codes, describe, encode_codes
from ..format.errors import FormatError, SpecError
from ..format.wire import Reader, Writer
from ..quant.affine import as_float_array
from ..quant.fine import fine_step, is_fine
from ..quant.rate import DEFAULT_LAM_SCALE, LAMBDA_HIGH_RATE, quantize_tensor, rate_control

MAGIC = b"NNSU"
STATE_MAGIC = b"NNSS"
VERSION = 1
FLAG_CHAIN = 0x01


def fingerprint_arrays(arrays: Mapping[str, np.ndarray]) -> int:
    """CRC-32 of the sorted names, shapes and float32 values (little-endian) of a model."""
    crc = 0
    for name in sorted(arrays):
        a = np.ascontiguousarray(np.asarray(arrays[name], dtype="<f4"))
        crc = zlib.crc32(f"{name}:{','.join(map(str, a.shape))};".encode(), crc)
        crc = zlib.crc32(a.tobytes(), crc)
    return crc


def fingerprint_codes(codes: Mapping[str, np.ndarray]) -> int:
    """CRC-32 of the sorted names and int32 codes of an update (the temporal-context state)."""
    crc = 0
    for name in sorted(codes):
        a = np.ascontiguousarray(np.asarray(codes[name], dtype="<i4"))
        crc = zlib.crc32(name.encode() + b";" + a.tobytes(), crc)
    return crc


@dataclass(frozen=True)
class UpdateState:
    """What both sides keep after an update: its codes (flat int32 per tensor), the temporal
    context of the next update."""

    codes: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def fingerprint(self) -> int:
        return fingerprint_codes(self.codes)

    def to_bytes(self) -> bytes:
        """``b"NNSS"``, count, then per tensor (sorted): name (varint length + UTF-8), element
        count (varint), int32 little-endian codes; CRC-32 (u32, big-endian) at the end."""
        w = Writer()
        w.raw(STATE_MAGIC)
        w.varint(len(self.codes))
        for name in sorted(self.codes):
            nb = name.encode()
            c = np.ascontiguousarray(np.asarray(self.codes[name]).reshape(-1), dtype="<i4")
            w.varint(len(nb))
            w.raw(nb)
            w.varint(c.size)
            w.raw(c.tobytes())
        w.raw(struct.pack(">I", zlib.crc32(w.buf)))
        return bytes(w.buf)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> UpdateState:
        """Inverse of :meth:`to_bytes`; FormatError on a bad file."""
        buf = memoryview(bytes(data))
        if len(buf) < 9 or bytes(buf[:4]) != STATE_MAGIC:
            raise FormatError("not an nnshare update state (wrong magic or too short)")
        if zlib.crc32(buf[:-4]) != struct.unpack(">I", buf[-4:])[0]:
            raise FormatError("CRC mismatch in the update state")
        r = Reader(buf[:-4], "update state")
        r.take(4)
        codes = {}
        for _ in range(r.varint(limit=len(buf))):
            try:
                name = bytes(r.take(r.varint(limit=len(buf)))).decode()
            except UnicodeDecodeError:
                raise FormatError("update state: tensor name is not UTF-8") from None
            n = r.varint(limit=len(buf) // 4)
            codes[name] = np.frombuffer(r.take(4 * n), dtype="<i4").astype(np.int32)
        if r.remaining:
            raise FormatError("update state: trailing bytes")
        return cls(codes)


@dataclass(frozen=True)
class EncodedUpdate:
    """An encoded update: the stream, the state for the next round, and what the receiver
    rebuilds (base + decoded delta, float32)."""

    data: bytes
    state: UpdateState
    reconstruction: dict[str, np.ndarray]
    steps: dict[str, float]
    models: dict[str, str]


def _arrays(d: Mapping[str, object], what: str) -> dict[str, np.ndarray]:
    if not isinstance(d, Mapping):
        raise SpecError(f"{what} must be a mapping of names to arrays")
    return {str(k): as_float_array(v) for k, v in d.items()}


def encode_update(
    new: Mapping[str, object],
    base: Mapping[str, object],
    *,
    state: UpdateState | None = None,
    step: float | None = None,
    sqnr_db: float | None = None,
    bits_per_param: float | None = None,
    method: str = "tcq",
    lam_scale: float | None = None,
    models: str | Iterable[str] = "auto",
) -> EncodedUpdate:
    """Encode ``new - base`` tensor by tensor, each at its own step:

    - weight deltas (rank >= 2): a step per tensor chosen by rate control so that every weight
      delta meets the update SQNR target (dB) on its own, or (a step proportional to each delta's
      RMS) all of them together the bits-per-parameter target; or the one given ``step``;
    - 1-D float deltas (biases, norms, BatchNorm statistics): their own fine step
      (:func:`nnshare.quant.fine.fine_step`);
    - integer / bool tensors (counters, position ids): exactly, step 1.

    ``state``: the previous update's state (both sides hold it) for temporal context; None
    starts a chain."""
    new_a, base_a = _arrays(new, "new"), _arrays(base, "base")
    if set(new_a) != set(base_a):
        raise SpecError(f"new and base differ in tensors: {sorted(set(new_a) ^ set(base_a))}")
    for k in new_a:
        if new_a[k].shape != base_a[k].shape:
            raise SpecError(f"tensor {k!r}: shape {new_a[k].shape} vs base {base_a[k].shape}")
    names = sorted(new_a)
    exact = {k for k in names if _is_integer(new[k]) or _is_integer(base[k])}
    delta = {k: new_a[k].astype(np.float64) - base_a[k] for k in names}
    for k in exact:
        delta[k] = np.asarray(new[k]).astype(np.int64) - np.asarray(base[k]).astype(np.int64)
    if sum(x is not None for x in (step, sqnr_db, bits_per_param)) != 1:
        raise SpecError("give exactly one of step, sqnr_db, bits_per_param")
    if lam_scale is None:
        lam_scale = DEFAULT_LAM_SCALE[method] if method in DEFAULT_LAM_SCALE else 0.0
    weights = [k for k in names if k not in exact and not is_fine(delta[k].shape) and np.any(delta[k])]
    steps: dict[str, float] = {k: 1.0 for k in exact}
    for k in names:
        if k not in exact and k not in weights:
            steps[k] = fine_step(delta[k])
    if step is not None:
        if not (np.isfinite(step) and step > 0):
            raise SpecError(f"step must be a positive number, got {step}")
        steps.update({k: float(step) for k in weights})
    elif weights:
        models_ = {"tcq": ("iid", "tcq8"), "tcq4": ("iid", "tcq")}.get(method, ("iid",))
        # an SQNR target holds for every weight delta on its own; a rate target for them together
        groups = [[k] for k in weights] if sqnr_db is not None else [weights]
        for group in groups:
            rc = rate_control(
                {k: delta[k].astype(np.float32) for k in group},
                sqnr_db=sqnr_db,
                bits_per_param=bits_per_param,
                method=method,
                lam_scale=lam_scale,
                allocation="sqnr",
                models=models_,
            )
            steps.update({k: float(rc.tensors[k].params["scale"]) for k in group})
    if state is not None and set(state.codes) != set(names):
        raise SpecError("the previous update's state covers other tensors")
    w = Writer()
    w.raw(MAGIC + bytes([VERSION, FLAG_CHAIN if state is not None else 0]))
    w.raw(struct.pack(">II", fingerprint_arrays(base_a), state.fingerprint if state else 0))
    w.varint(len(names))
    codes_out, recon, chosen = {}, {}, {}
    for k in names:
        kind = method if k in weights else "nearest"
        q = quantize_tensor(delta[k].astype(np.float32) if k not in exact else delta[k].astype(np.float64),
                            steps[k], method=kind, lam=lam_scale * LAMBDA_HIGH_RATE)
        c = q.codes.reshape(-1)
        s = float(q.params["scale"])
        steps[k] = s
        w.raw(struct.pack("<f", s))
        ctx = state.codes[k] if state is not None else None
        if c.size == 0 or not c.any():
            w.u8(0)
            chosen[k] = "zero"
        else:
            b = q.spec.bits
            row_len = q.shape[-1] if len(q.shape) >= 2 and q.shape[-1] >= 2 else None
            p = encode_codes(c, q.spec.qmin, q.spec.qmax, models=models, row_len=row_len,
                             context=ctx)
            w.u8(b)
            w.varint(len(p))
            w.raw(p)
            chosen[k] = describe(p, c.size, q.spec.qmin, q.spec.qmax)["model"]
        codes_out[k] = c.astype(np.int32)
        recon[k] = _rebuild(np.asarray(base[k]), base_a[k], s, c)
    w.raw(struct.pack(">I", zlib.crc32(w.buf)))
    return EncodedUpdate(bytes(w.buf), UpdateState(codes_out), recon, steps, chosen)


def _is_integer(v: object) -> bool:
    dt = getattr(v, "dtype", None)
    if dt is None:
        return False
    if hasattr(v, "is_floating_point"):  # torch
        return not v.is_floating_point()
    return np.dtype(dt).kind in "iub"


def _rebuild(base_orig: np.ndarray, base_f: np.ndarray, step: float, codes: np.ndarray) -> np.ndarray:
    """``base + step * codes``: float32 for float tensors; integer / bool tensors exactly, in
    their own dtype."""
    if _is_integer(base_orig):
        d = np.rint(np.float64(step) * codes).astype(np.int64).reshape(base_f.shape)
        return (np.asarray(base_orig).astype(np.int64) + d).astype(np.asarray(base_orig).dtype)
    return (base_f + np.float32(step) * codes.astype(np.float32).reshape(base_f.shape)).astype(np.float32)


def decode_update(
    data: bytes | bytearray | memoryview,
    base: Mapping[str, object] | None,
    *,
    state: UpdateState | None = None,
) -> tuple[dict[str, np.ndarray], UpdateState]:
    """Rebuild ``base + delta`` (float32 per tensor) and the state for the next update.

    FormatError when the stream is corrupted, when ``base`` is missing or is not the base the
    update was made against, or when the update continues a chain the receiver's ``state``
    does not match.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise FormatError(f"expected bytes, got {type(data).__name__}")
    buf = memoryview(bytes(data))
    if len(buf) < 18 or bytes(buf[:4]) != MAGIC:
        raise FormatError("not an nnshare update stream (wrong magic or too short)")
    if zlib.crc32(buf[:-4]) != struct.unpack(">I", buf[-4:])[0]:
        raise FormatError("CRC mismatch in the update stream (corrupted or truncated)")
    r = Reader(buf[:-4], "update stream")
    r.take(4)
    version, flags = r.u8(), r.u8()
    if version != VERSION:
        raise FormatError(f"unsupported update version {version} (this reader knows {VERSION})")
    if flags & ~FLAG_CHAIN:
        raise FormatError(f"reserved update flag bits set: {flags:#04x}")
    base_fp, chain_fp = struct.unpack(">II", r.take(8))
    if base is None:
        raise FormatError("this is a model update: the receiver must supply the base model")
    try:
        base_a = _arrays(base, "base")
    except SpecError as e:
        raise FormatError(f"unusable base: {e}") from None
    if fingerprint_arrays(base_a) != base_fp:
        raise FormatError(
            f"base fingerprint mismatch: update made against {base_fp:#010x}, receiver holds "
            f"{fingerprint_arrays(base_a):#010x} (wrong or modified base)"
        )
    if flags & FLAG_CHAIN:
        if state is None:
            raise FormatError("update continues a chain: the receiver needs the previous update")
        if state.fingerprint != chain_fp:
            raise FormatError("previous-update mismatch: the receiver holds another update chain")
    count = r.varint(limit=len(base_a))
    names = sorted(base_a)
    if count != len(names):
        raise FormatError(f"update has {count} tensors, base has {len(names)}")
    out, codes = {}, {}
    for k in names:
        b_ = base_a[k]
        s = struct.unpack("<f", r.take(4))[0]
        if not (np.isfinite(s) and s > 0):
            raise FormatError(f"tensor {k!r}: bad step {s}")
        bits = r.u8()
        if bits == 0:
            c = np.zeros(b_.size, np.int32)
        elif bits > 17:
            raise FormatError(f"tensor {k!r}: code width {bits} out of range")
        else:
            length = r.varint(limit=r.remaining)
            ctx = state.codes.get(k) if (state is not None and flags & FLAG_CHAIN) else None
            if ctx is not None and ctx.size != b_.size:
                raise FormatError(f"tensor {k!r}: previous update has another size")
            c = decode_codes(r.take(length), b_.size, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1,
                             context=ctx)
        out[k] = _rebuild(np.asarray(base[k]), b_, s, c)
        codes[k] = c
    if r.remaining:
        raise FormatError(f"{r.remaining} unexpected bytes after the last tensor")
    return out, UpdateState(codes)
