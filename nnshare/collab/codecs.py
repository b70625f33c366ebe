"""Update codecs for collaborative learning: a model update (named float arrays) <-> one nnshare
stream (agreed-architecture mode, stream kind "update", the broadcast's fingerprint in the header).

Every codec writes ordinary records of the one container — affine (QSGD, TernGrad, top-k,
random-k, rate-controlled TCQ), codebook (scaled sign), rotated (DRIVE/EDEN-style and nnshare's
TCQ) or float (PowerSGD factors, fp32) — so ``nnshare inspect`` accounts for every bit and the
numpy receiver decodes it. ``encode(update, seed, base)`` returns the stream bytes;
``decode(data, layout, base)`` the update, after checking that the stream was coded against the
same broadcast (``base``: the model fingerprint both sides hold; FormatError otherwise).

Properties used by error feedback (:mod:`.feedback`): ``unbiased`` (E[decode] = update) and
``contractive`` (||C(x) - x||^2 <= (1 - delta) ||x||^2, what EF needs).
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..format.container import read_stream, write_stream
from ..format.errors import FormatError, SpecError
from ..format.spec import FloatTensor, QuantizedTensor
from ..quant import CodebookConfig, QuantSpec, RotatedConfig
from ..quant import quantize as quantize_any
from ..quant.affine import quantize as quantize_affine
from ..quant.rate import rate_control
from .stochastic import stochastic_at, stochastic_rate

Update = dict[str, np.ndarray]
Layout = list[tuple[str, tuple[int, ...]]]
FLAT = "update"  # record name of codecs that code the whole update as one vector


def layout_of(update: Mapping[str, np.ndarray]) -> Layout:
    """(name, shape) of every tensor, sorted by name (the order agreed mode uses)."""
    return [(n, tuple(np.shape(update[n]))) for n in sorted(update)]


def fingerprint(arrays: Mapping[str, np.ndarray]) -> int:
    """32-bit fingerprint of a model both sides hold (names, shapes, float32 values)."""
    crc = 0
    for name in sorted(arrays):
        a = np.ascontiguousarray(np.asarray(arrays[name], dtype="<f4"))
        crc = zlib.crc32(f"{name}:{','.join(map(str, a.shape))};".encode(), crc)
        crc = zlib.crc32(a.tobytes(), crc)
    return crc


def _tensor_seed(seed: int, name: str) -> int:
    return (int(seed) * 0x9E3779B1 ^ zlib.crc32(name.encode())) & 0x7FFFFFFF


@dataclass(frozen=True)
class Codec:
    """Base: subclasses implement :meth:`tensors` (sender) and, when the records are not the
    update itself, :meth:`rebuild` (receiver)."""

    name = "codec"
    unbiased = False
    contractive = True
    flat = False  # the update travels as one concatenated vector

    def tensors(self, update: Update, seed: int) -> dict:
        raise NotImplementedError

    def stream_layout(self, layout: Layout) -> Layout:
        if self.flat:
            return [(FLAT, (sum(math.prod(s) for _, s in layout),))]
        return list(layout)

    def rebuild(self, arrays: dict[str, np.ndarray], layout: Layout) -> Update:
        if self.flat:
            flat, out, at = arrays[FLAT].reshape(-1), {}, 0
            for n, s in layout:
                k = math.prod(s)
                out[n] = flat[at : at + k].reshape(s)
                at += k
            return out
        return {n: arrays[n].reshape(s) for n, s in layout}

    def encode(self, update: Mapping[str, np.ndarray], seed: int = 0, base: int | None = None) -> bytes:
        """Stream bytes of ``update`` (float arrays by name), coded against broadcast ``base``."""
        upd = {n: np.asarray(update[n], np.float32) for n in sorted(update)}
        if not upd:
            raise SpecError("an update needs at least one tensor")
        for n, a in upd.items():
            if not np.all(np.isfinite(a)):
                raise SpecError(f"update tensor {n!r} has NaN or infinite values")
        if self.flat:
            upd = {FLAT: np.concatenate([a.reshape(-1) for a in upd.values()])}
        # coded against a broadcast: the container's "update" kind; without one (a gradient in
        # DDP, a vector in mean estimation) a plain tensor stream
        data, _ = write_stream(self.tensors(upd, int(seed)), "agreed", entropy="auto",
                               base_fingerprint=base, kind="model" if base is None else "update")
        return data

    def decode(self, data: bytes, layout: Layout, base: int | None = None) -> Update:
        """The update (float32 arrays of ``layout``) a receiver rebuilds; FormatError on a bad or
        truncated stream, one coded for another architecture, or against another broadcast."""
        layout = sorted((str(n), tuple(int(d) for d in s)) for n, s in layout)
        stream = read_stream(data, self.stream_layout(layout))
        if base is not None and stream.kind != "update":
            raise FormatError(f"expected an update coded against a broadcast, got a {stream.kind} stream")
        if base is not None and stream.base_fingerprint != base:
            got = stream.base_fingerprint
            raise FormatError(
                f"update was coded against broadcast {got if got is None else f'{got:#010x}'}, "
                f"the receiver holds {base:#010x} (a reply from another round?)"
            )
        return self.rebuild({n: t.dequantize() for n, t in stream.tensors.items()}, layout)

    def roundtrip(self, update: Mapping[str, np.ndarray], seed: int = 0) -> tuple[Update, int]:
        """(decoded update, stream bytes) without a base check: what a simulator needs."""
        data = self.encode(update, seed)
        return self.decode(data, layout_of(update)), len(data)


@dataclass(frozen=True)
class Float32(Codec):
    """No compression: float32 records (the baseline every table compares against)."""

    name = "fp32"
    unbiased = True

    def tensors(self, update, seed):
        return {n: FloatTensor(a) for n, a in update.items()}


@dataclass(frozen=True)
class QSGD(Codec):
    """QSGD: per tensor, |x_i| / ||x||_2 stochastically rounded to ``levels`` steps (unbiased),
    codes entropy-coded (in place of the paper's Elias coding). Not contractive unscaled."""

    levels: int = 1
    name = "qsgd"
    unbiased = True
    contractive = False

    def tensors(self, update, seed):
        if not 1 <= self.levels <= 2**15 - 1:
            raise SpecError(f"QSGD levels must be in 1..32767, got {self.levels}")
        bits = max(2, int(2 * self.levels).bit_length() + 1)
        out = {}
        for n, a in update.items():
            norm = float(np.linalg.norm(a))
            spec = QuantSpec(bits=bits, rounding="stochastic", seed=_tensor_seed(seed, n))
            out[n] = quantize_affine(a, spec, scale=np.float32(max(norm, 1e-30) / self.levels))
        return out


@dataclass(frozen=True)
class TernGrad(Codec):
    """TernGrad: codes in {-1, 0, 1} by stochastic rounding of x / max|x| (unbiased)."""

    name = "terngrad"
    unbiased = True
    contractive = False

    def tensors(self, update, seed):
        out = {}
        for n, a in update.items():
            s = float(np.max(np.abs(a))) if a.size else 0.0
            spec = QuantSpec(bits=2, restricted=True, rounding="stochastic", seed=_tensor_seed(seed, n))
            out[n] = quantize_affine(a, spec, scale=np.float32(max(s, 1e-30)))
        return out


@dataclass(frozen=True)
class ScaledSign(Codec):
    """Scaled sign: sign(x) * ||x||_1 / d per tensor (1 bit per element; biased, contractive)."""

    name = "sign"

    def tensors(self, update, seed):
        out = {}
        for n, a in update.items():
            m = np.float32(np.mean(np.abs(a))) if a.size else np.float32(0)
            codes = (a.reshape(-1) >= 0).astype(np.int32).reshape(a.shape)
            out[n] = QuantizedTensor(codes=codes, params={"levels": np.array([-m, m], np.float32)},
                                     spec=CodebookConfig(levels=2).wire(), shape=a.shape)
        return out


@dataclass(frozen=True)
class TopK(Codec):
    """Top-k sparsification of the whole update: the ``fraction`` largest |x| kept at ``bits``
    (one scale), the rest zero; the entropy coder codes the zeros (the indices) compactly."""

    fraction: float = 0.01
    bits: int = 8
    name = "topk"
    flat = True

    def tensors(self, update, seed):
        x = update[FLAT]
        if not 0 < self.fraction <= 1:
            raise SpecError(f"top-k fraction must be in (0, 1], got {self.fraction}")
        k = max(1, int(round(self.fraction * x.size)))
        keep = np.argpartition(np.abs(x), x.size - k)[x.size - k :]
        sparse = np.zeros_like(x)
        sparse[keep] = x[keep]
        return {FLAT: quantize_affine(sparse, QuantSpec(bits=self.bits))}


@dataclass(frozen=True)
class RandK(Codec):
    """Random-k: a seeded random ``fraction`` of the coordinates, scaled by d/k when
    ``unbiased`` (then not contractive), sent at ``bits`` with the zeros entropy-coded."""

    fraction: float = 0.01
    bits: int = 8
    unbiased: bool = True
    name = "randk"
    flat = True

    @property
    def contractive(self) -> bool:
        return not self.unbiased

    def tensors(self, update, seed):
        x = update[FLAT]
        if not 0 < self.fraction <= 1:
            raise SpecError(f"random-k fraction must be in (0, 1], got {self.fraction}")
        k = max(1, int(round(self.fraction * x.size)))
        idx = np.random.default_rng(seed).choice(x.size, k, replace=False)
        sparse = np.zeros_like(x)
        sparse[idx] = x[idx] * (x.size / k if self.unbiased else 1.0)
        return {FLAT: quantize_affine(sparse, QuantSpec(bits=self.bits))}


@dataclass(frozen=True)
class Rotated(Codec):
    """Rotated quantization of the whole update at ``bits`` per coordinate: ``nu`` = 0 is the
    DRIVE/EDEN family (scalar Lloyd-Max levels), 2..8 nnshare's fixed-rate TCQ with 2**nu
    states; payload exactly bits * d + 64."""

    bits: int = 1
    nu: int = 6
    unbiased: bool = False
    name = "rotated"
    flat = True

    @property
    def contractive(self) -> bool:
        return not self.unbiased

    def tensors(self, update, seed):
        cfg = RotatedConfig(bits=self.bits, nu=self.nu, unbiased=self.unbiased, seed=seed & 0xFFFFFFFF)
        return {FLAT: quantize_any(update[FLAT], cfg)}


@dataclass(frozen=True)
class RateTCQ(Codec):
    """nnshare's own: rate-controlled, entropy-coded quantization of every tensor at
    ``bits_per_param`` (or ``target_bytes`` for the whole update), one step for all tensors
    (MSE-optimal), found per update by bisection on the coded size.

    Biased (default): TCQ codes (``method``), contractive, for error feedback. ``unbiased``:
    stochastic rounding to the same kind of grid (E[decode] = update; :mod:`.stochastic`), to
    be averaged without error feedback; it also takes ``step_rms`` in place of a rate (step =
    step_rms x the RMS of the update's tensors that are not all zero: coarse steps, e.g. 90,
    make the codes sparse)."""

    bits_per_param: float | None = 1.0
    target_bytes: int | None = None
    method: str = "tcq"
    unbiased: bool = False
    step_rms: float | None = None
    name = "tcq"

    @property
    def contractive(self) -> bool:
        return not self.unbiased

    def tensors(self, update, seed):
        if self.step_rms is not None:
            if not self.unbiased:
                raise SpecError("step_rms is an option of the unbiased variant (unbiased=True)")
            if self.bits_per_param is not None or self.target_bytes is not None:
                raise SpecError("give step_rms or a rate (bits_per_param, target_bytes), not both")
            nonzero = {n: a for n, a in update.items() if np.any(a)}
            out = {n: FloatTensor(a) for n, a in update.items() if n not in nonzero}
            if nonzero:
                out.update(stochastic_at(nonzero, self.step_rms, seed))
            return {n: out[n] for n in update}
        if (self.bits_per_param is None) == (self.target_bytes is None):
            raise SpecError("RateTCQ needs exactly one of bits_per_param and target_bytes")
        nonzero = {n: a for n, a in update.items() if np.any(a)}
        out = {n: FloatTensor(a) for n, a in update.items() if n not in nonzero}
        if nonzero:
            if self.target_bytes is not None:
                n_rec = len(update)
                bits = max(8 * int(self.target_bytes) - 96 - 48 * n_rec, 8)  # header and record framing
            else:
                bits = self.bits_per_param * sum(a.size for a in nonzero.values())
            if self.unbiased:
                out.update(stochastic_rate(nonzero, bits, seed))
            else:
                out.update(rate_control(nonzero, bits=bits, method=self.method).tensors)
        return {n: out[n] for n in update}

    def encode(self, update, seed=0, base=None) -> bytes:
        """As :meth:`Codec.encode`; with ``target_bytes`` the stream never exceeds it (the bit
        target is tightened by any excess and the rate control run again, up to 4 times)."""
        if self.target_bytes is None:
            return super().encode(update, seed, base)
        want = int(self.target_bytes)
        codec = self
        for _ in range(4):
            data = Codec.encode(codec, update, seed, base)
            if len(data) <= want:
                return data
            codec = dataclasses.replace(codec, target_bytes=codec.target_bytes - (len(data) - want) - 1)
        raise SpecError(f"cannot fit the update into {want} bytes")


@dataclass(frozen=True)
class PowerSGD(Codec):
    """PowerSGD: every matrix M (rank >= 2, viewed as rows x rest) sent as P Q^T of ``rank``
    (one power iteration from a seeded start; float32 factors); vectors sent in float32. Biased.
    :class:`.feedback.ErrorFeedback` adds the error feedback PowerSGD needs."""

    rank: int = 2
    name = "powersgd"

    def stream_layout(self, layout):
        out = []
        for n, s in layout:
            if len(s) >= 2 and min(s[0], math.prod(s[1:])) > self.rank:
                out += [(n + ".P", (s[0], self.rank)), (n + ".Q", (math.prod(s[1:]), self.rank))]
            else:
                out.append((n, s))
        return sorted(out)

    def tensors(self, update, seed):
        out = {}
        rng = np.random.default_rng(seed)
        for n, a in update.items():
            if a.ndim >= 2 and min(a.shape[0], a[0].size) > self.rank:
                m = a.reshape(a.shape[0], -1).astype(np.float64)
                q = rng.standard_normal((m.shape[1], self.rank))
                p, _ = np.linalg.qr(m @ q)
                q = m.T @ p
                out[n + ".P"] = FloatTensor(p.astype(np.float32))
                out[n + ".Q"] = FloatTensor(q.astype(np.float32))
            else:
                out[n] = FloatTensor(a)
        return out

    def rebuild(self, arrays, layout):
        out = {}
        for n, s in layout:
            if n + ".P" in arrays:
                out[n] = (arrays[n + ".P"] @ arrays[n + ".Q"].T).reshape(s).astype(np.float32)
            else:
                out[n] = arrays[n].reshape(s)
        return out


CODECS = {c.name: c for c in (Float32, QSGD, TernGrad, ScaledSign, TopK, RandK, Rotated, RateTCQ, PowerSGD)}


def codec(name: str, **options) -> Codec:
    """A codec by name with options, e.g. ``codec("rotated", bits=1, nu=6)``."""
    if name not in CODECS:
        raise SpecError(f"unknown codec {name!r}; known: {', '.join(CODECS)}")
    fields = {f.name for f in dataclasses.fields(CODECS[name])}
    bad = set(options) - fields
    if bad:
        raise SpecError(f"codec {name!r} has no option(s) {', '.join(sorted(bad))}")
    return CODECS[name](**options)
