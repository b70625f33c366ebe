"""Codecs for the tensors crossing a split-learning cut: activations forward, gradients back.

Every codec writes one self-describing ``NNSH`` stream of kind "features" (so ``nnshare inspect``
accounts for every bit and :func:`rebuild_features` restores it from the stream alone) and
reads it back. ``encode(x, seed) -> bytes``, ``decode(data, shape) -> float32 array``.

- :class:`Lossless`: float32 records (exact; the baseline).
- :class:`Uniform`: affine at ``bits``, one range for the whole tensor.
- :class:`SGQ`: stripe-wise group quantization (after Zhou et al., NeurIPS 2022, rebuilt from
  its abstract): channels ordered by the similarity of their ranges and cut into ``groups``
  equal groups, each group's spatial map cut into stripes of ``stripe`` rows, one (scale, zero
  point) per (group, stripe) shared by the batch; plus the channel order. The gradient-deviation
  bound (``max_deviation``): the bit width is raised from ``bits`` until the relative L2 error
  ``||Q(x) - x|| / ||x||`` is at most the bound (up to ``max_bits``).
- :class:`UpdateCodec`: any update codec of :mod:`.codecs` (QSGD, top-k, rotated, ...).

``stochastic=True`` (Uniform, SGQ) rounds stochastically with a range widened by one step so no
code is ever clamped: E[decode(encode(x))] = x exactly (the unbiased backward option).
``SGQ(weighted=True)`` (for entropy-coded streams) takes a per-channel, per-row ``weight`` at encode
(the task's sensitivity: the mean squared loss gradient at the cut) and gives sensitive blocks
finer steps, see :meth:`SGQ.weighted_tensors`.
``symmetric=True`` (Uniform, SGQ) uses a grid centred on zero (signed restricted codes, no zero
point: 2 bits are -s, 0, s), the natural grid for gradients; the default asymmetric grid suits
ReLU activations.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..format.container import read_stream, write_stream
from ..format.errors import FormatError, SpecError
from ..format.spec import FloatTensor, RawTensor, round_scale_up, to_blocks
from ..quant.affine import as_float_array, quantize
from ..quant.spec import QuantSpec
from .codecs import Codec

NAME = "x"  # record of the tensor (SGQ: its (group, stripe) blocks)
ORDER = "x.order"  # SGQ: channel order, group k = order[k * C/G : (k + 1) * C/G]


def _seed(seed: int, salt: str) -> int:
    return (int(seed) * 0x9E3779B1 ^ zlib.crc32(salt.encode())) & 0x7FFFFFFF


def _checked(x) -> np.ndarray:
    a = as_float_array(x)
    if not np.all(np.isfinite(a)):
        raise SpecError("feature tensor has NaN or infinite values")
    if a.size == 0:
        raise SpecError("feature tensor is empty")
    return a


def _affine(a: np.ndarray, bits: int, grain: str, stochastic: bool, seed: int, scale_dtype: str,
            symmetric: bool = False):
    """Affine codes of ``a`` with one scale (and zero point) per row of ``grain`` ("tensor" or
    "channel" on axis 0). Asymmetric: codes 0..2^b - 1, zero point; stochastic: s = span /
    (qmax - 1), z = ceil(-lo / s), so every x / s + z lies in [0, qmax] and floor(x / s + z + u)
    is never clamped (unbiased). Symmetric: signed restricted codes -(2^(b-1) - 1)..2^(b-1) - 1
    centred on 0 (2 bits: -s, 0, s), no zero point; s = max|x| / qmax, so stochastic rounding
    is never clamped either."""
    spec = QuantSpec(bits=bits, symmetric=symmetric, restricted=symmetric, granularity=grain, axis=0,
                     scale_dtype=scale_dtype, rounding="stochastic" if stochastic else "nearest", seed=seed)
    if not stochastic:
        return quantize(a, spec)
    if bits < 2:
        raise SpecError("unbiased (stochastic) coding needs bits >= 2")
    blocks = to_blocks(a, spec)
    shape = () if grain == "tensor" else (blocks.shape[0],)
    if symmetric:
        m = np.abs(blocks).max(axis=1).astype(np.float64)
        s = np.nextafter(np.where(m > 0, m / spec.qmax, 1.0).astype(np.float32), np.float32(np.inf))
        s = round_scale_up(s, scale_dtype)
        return quantize(a, spec, scale=s.reshape(shape))
    lo = np.minimum(blocks.min(axis=1), 0).astype(np.float64)
    hi = np.maximum(blocks.max(axis=1), 0).astype(np.float64)
    span = hi - lo
    s = np.where(span > 0, span / (2**bits - 2), 1.0).astype(np.float32)
    s = round_scale_up(s, scale_dtype)
    z = np.ceil(-lo / s.astype(np.float64)).astype(np.int64)
    return quantize(a, spec, scale=s.reshape(shape), zero_point=z.reshape(shape))


def _centred_clip(v: np.ndarray, limit: float) -> np.ndarray:
    """``clip(v + c, -limit, limit)`` with the shift c that makes its mean 0 (bisection; the
    clipped mean is monotone in c)."""
    lo, hi = -v.max() - limit, -v.min() + limit
    for _ in range(60):
        c = (lo + hi) / 2
        lo, hi = (c, hi) if np.clip(v + c, -limit, limit).mean() < 0 else (lo, c)
    return np.clip(v + (lo + hi) / 2, -limit, limit)


@dataclass(frozen=True)
class FeatureCodec:
    """Base: subclasses implement :meth:`tensors` (the records) and :meth:`rebuild`."""

    name = "features"
    unbiased = False
    entropy: str = field(default="auto", kw_only=True)  # "auto": entropy-code when smaller

    def tensors(self, a: np.ndarray, seed: int) -> dict:
        raise NotImplementedError

    def rebuild(self, arrays: dict[str, np.ndarray], shape: tuple[int, ...] | None) -> np.ndarray:
        return rebuild_arrays(arrays)

    def weighted_tensors(self, a: np.ndarray, seed: int, weight) -> dict:
        raise SpecError(f"codec {self.name!r} takes no weight (only SGQ(weighted=True) does)")

    def encode(self, x, seed: int = 0, weight=None) -> bytes:
        """Stream bytes (kind "features", self-describing) of ``x`` (any float array); ``weight``:
        see :meth:`SGQ.weighted_tensors` (refused by every other codec)."""
        if self.entropy not in ("none", "auto"):
            raise SpecError(f"entropy must be 'none' or 'auto', got {self.entropy!r}")
        a = _checked(x)
        recs = self.tensors(a, int(seed)) if weight is None else self.weighted_tensors(a, int(seed), weight)
        data, _ = write_stream(recs, "self", entropy=self.entropy, kind="features")
        return data

    def decode(self, data: bytes, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """The float32 tensor a receiver rebuilds; FormatError for a bad stream, another kind, or
        (when ``shape`` is given) a tensor of another shape."""
        st = read_stream(data)
        if st.kind != "features":
            raise FormatError(f"not a features stream: a {st.kind} stream")
        out = self.rebuild({n: t.dequantize() for n, t in st.tensors.items()}, shape)
        if shape is not None and tuple(out.shape) != tuple(shape):
            raise FormatError(f"features stream holds shape {tuple(out.shape)}, expected {tuple(shape)}")
        return out.astype(np.float32, copy=False)

    def roundtrip(self, x, seed: int = 0, weight=None) -> tuple[np.ndarray, int]:
        """(what the receiver rebuilds, stream bytes)."""
        data = self.encode(x, seed, weight)
        return self.decode(data, tuple(np.shape(x))), len(data)


@dataclass(frozen=True)
class Lossless(FeatureCodec):
    """float32 records: exact."""

    name = "fp32"
    unbiased = True
    entropy: str = field(default="none", kw_only=True)

    def tensors(self, a, seed):
        return {NAME: FloatTensor(a)}


@dataclass(frozen=True)
class Uniform(FeatureCodec):
    """Affine ``bits``-bit codes with one (scale, zero point) for the whole tensor (per-channel
    ranges are SGQ with ``groups`` = channels and ``stripe`` = height)."""

    bits: int = 8
    stochastic: bool = False
    scale_dtype: str = "fp32"
    symmetric: bool = False
    name = "uniform"

    @property
    def unbiased(self) -> bool:
        return self.stochastic

    def tensors(self, a, seed):
        return {NAME: _affine(a, self.bits, "tensor", self.stochastic, _seed(seed, "uniform"),
                              self.scale_dtype, self.symmetric)}


@dataclass(frozen=True)
class SGQ(FeatureCodec):
    """Stripe-wise group quantization of (batch, channels, height, ...) features.

    ``groups`` must divide the channel count and ``stripe`` the height. Side info per stream:
    one scale (``scale_dtype``) and (asymmetric) one ``bits``-bit zero point per (group, stripe),
    and the channel order (uint8 per channel, int16 above 256 channels). ``weighted``: steps
    from the task's sensitivity (:meth:`weighted_tensors`) instead of each block's range."""

    bits: int = 4
    groups: int = 4
    stripe: int = 1
    stochastic: bool = False
    max_deviation: float | None = None
    max_bits: int = 8
    scale_dtype: str = "fp32"
    symmetric: bool = False
    weighted: bool = False
    name = "sgq"

    @property
    def unbiased(self) -> bool:
        return self.stochastic

    def __post_init__(self) -> None:
        for f in ("bits", "groups", "stripe", "max_bits"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SpecError(f"SGQ {f} must be a positive integer, got {v!r}")
        if not self.bits <= self.max_bits <= 16:
            raise SpecError(f"SGQ max_bits must be in bits..16, got {self.max_bits}")
        if self.max_deviation is not None and not self.max_deviation > 0:
            raise SpecError(f"SGQ max_deviation must be > 0, got {self.max_deviation}")
        if self.weighted and (self.stochastic or self.max_deviation is not None):
            raise SpecError("SGQ weighted=True takes neither stochastic rounding nor max_deviation")

    def layout(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of the block record for features of ``shape``: (groups * stripes, batch, C/G,
        stripe, *rest); SpecError when the shape does not split."""
        if len(shape) < 3:
            raise SpecError(f"SGQ needs features of shape (batch, channels, height, ...), got {shape}")
        n, c, h, *rest = shape
        if c % self.groups:
            raise SpecError(f"SGQ groups={self.groups} does not divide {c} channels")
        if h % self.stripe:
            raise SpecError(f"SGQ stripe={self.stripe} does not divide height {h}")
        return (self.groups * (h // self.stripe), n, c // self.groups, self.stripe, *rest)

    def order(self, a: np.ndarray) -> np.ndarray:
        """Channels ordered by range similarity: sorted by span (max - min over batch and space),
        then by the midpoint (stable), so each group of C/G consecutive channels shares a range;
        symmetric: by max |x| (the only range a symmetric grid has)."""
        c = a.shape[1]
        flat = np.moveaxis(a, 1, 0).reshape(c, -1)
        if self.symmetric:
            return np.argsort(np.abs(flat).max(1), kind="stable").astype(np.int64)
        lo, hi = np.minimum(flat.min(1), 0), np.maximum(flat.max(1), 0)
        return np.lexsort(((lo + hi) / 2, hi - lo)).astype(np.int64)

    def blocks(self, a: np.ndarray, order: np.ndarray) -> np.ndarray:
        n, c, h, *rest = a.shape
        g, sh = self.groups, self.stripe
        x = a[:, order].reshape(n, g, c // g, h // sh, sh, *rest)
        x = x.transpose(1, 3, 0, 2, *range(4, x.ndim))  # (G, S, N, C/G, sh, *rest)
        return np.ascontiguousarray(x).reshape(self.layout(a.shape))

    def tensors(self, a, seed):
        if self.weighted:
            return self.weighted_tensors(a, seed, None)
        shape = tuple(a.shape)
        self.layout(shape)  # SpecError when the shape does not split
        order = self.order(a)
        blocks = self.blocks(a, order)
        dt = np.uint8 if shape[1] <= 256 else np.int16
        side = RawTensor(order.astype(dt))
        bits = self.bits
        while True:
            q = _affine(blocks, bits, "channel", self.stochastic, _seed(seed, f"sgq{bits}"),
                        self.scale_dtype, self.symmetric)
            if self.max_deviation is None or bits >= self.max_bits:
                break
            err = np.linalg.norm(q.dequantize() - blocks)
            if err <= self.max_deviation * np.linalg.norm(blocks):
                break
            bits += 1
        return {NAME: q, ORDER: side}

    def weighted_tensors(self, a, seed, weight):
        """Records with task-weighted steps. ``weight``: (channels, height) non-negative, e.g. the
        mean squared loss gradient per channel and row (None: all equal). Channels are ordered by
        weight and grouped; block k (group x stripe) with mean weight w_k gets the step
        s0 * (w_k / geomean(w))^(-1/2), clipped to s0 / 8 .. 8 s0 with the steps' geometric mean
        kept at s0 (a dead channel's near-zero weight must not make every other step finer); s0 is
        uniform's step at ``bits`` (the whole tensor's range / (2^bits - 1); symmetric: max |x| /
        (2^(bits-1) - 1)). At high rate with an entropy coder this minimises sum_k w_k * MSE_k at
        uniform's rate. Nearest rounding, never clamped: the code width is what the steps need (at
        most 16 bits; beyond, the steps grow to fit); so no closed-form packed size."""
        if not self.weighted:
            raise SpecError("SGQ takes a weight only with weighted=True")
        shape = tuple(a.shape)
        self.layout(shape)  # SpecError when the shape does not split
        if self.symmetric and self.bits < 2:
            raise SpecError("symmetric weighted SGQ needs bits >= 2")
        g_, s_ = self.groups, shape[2] // self.stripe
        w = np.ones(shape[1:3]) if weight is None else np.asarray(weight, np.float64)
        if w.shape != shape[1:3] or not np.all(np.isfinite(w)) or np.any(w < 0):
            raise SpecError(f"SGQ weight must be finite, >= 0, of shape {shape[1:3]}, got {w.shape}")
        order = np.argsort(w.sum(1), kind="stable").astype(np.int64)
        wb = w[order].reshape(g_, shape[1] // g_, s_, self.stripe).mean(axis=(1, 3)).reshape(-1)
        wb = np.maximum(wb, 1e-12 * max(wb.max(), 1e-30))
        r = np.exp(_centred_clip(-0.5 * np.log(wb), math.log(8.0)))
        blocks = self.blocks(a, order).reshape(g_ * s_, -1).astype(np.float64)
        lo, hi = np.minimum(blocks.min(1), 0), np.maximum(blocks.max(1), 0)
        if self.symmetric:
            m = np.maximum(np.abs(lo), hi)
            s0 = max(m.max(), 1e-30) / (2 ** (self.bits - 1) - 1)
            need = lambda s: 2 * np.ceil(m / s + 0.5) + 1  # noqa: E731  (codes -q..q, q > m/s)
        else:
            s0 = max((hi - lo).max(), 1e-30) / (2**self.bits - 1)
            need = lambda s: np.ceil(-lo / s) + np.ceil(hi / s + 0.5) + 1  # noqa: E731
        step = round_scale_up((s0 * r).astype(np.float32), self.scale_dtype).astype(np.float64)
        while need(step).max() > 2**16 - 1:
            step = round_scale_up((2 * step).astype(np.float32), self.scale_dtype).astype(np.float64)
        bits = max(self.bits, int(np.ceil(np.log2(need(step).max() + 1))))
        spec = QuantSpec(bits=bits, symmetric=self.symmetric, restricted=self.symmetric,
                         granularity="channel", axis=0, scale_dtype=self.scale_dtype)
        z = None if self.symmetric else np.ceil(-lo / step).astype(np.int64)
        q = quantize(self.blocks(a, order), spec, scale=step.astype(np.float32), zero_point=z)
        dt = np.uint8 if shape[1] <= 256 else np.int16
        return {NAME: q, ORDER: RawTensor(order.astype(dt))}


@dataclass(frozen=True)
class UpdateCodec(FeatureCodec):
    """Any update codec of :mod:`.codecs` at the cut (its records, written as a features stream).
    A flat codec's record does not carry the shape: decode needs ``shape``."""

    codec: Codec | None = None
    name = "update"

    def __post_init__(self) -> None:
        if not isinstance(self.codec, Codec):
            raise SpecError(f"UpdateCodec needs an update codec, got {type(self.codec).__name__}")

    @property
    def unbiased(self) -> bool:
        return self.codec.unbiased

    def tensors(self, a, seed):
        return self.codec.tensors({NAME: a} if not self.codec.flat else {"update": a.reshape(-1)}, seed)

    def rebuild(self, arrays, shape):
        if shape is None:
            raise FormatError(f"codec {self.codec.name!r} needs the tensor's shape to rebuild it")
        layout = [(NAME, tuple(shape))]
        want = {n: math.prod(s) for n, s in self.codec.stream_layout(layout)}
        got = {n: int(np.size(a)) for n, a in arrays.items()}
        if got != want:
            raise FormatError(f"features stream holds {got}, codec expects {want} for shape {shape}")
        try:
            return self.codec.rebuild(arrays, layout)[NAME]
        except ValueError as e:
            raise FormatError(f"features stream does not fit shape {tuple(shape)}: {e}") from None


def rebuild_arrays(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The feature tensor from a features stream's decoded records (what any receiver does with a
    Lossless, Uniform or SGQ stream; numpy only)."""
    if set(arrays) == {NAME}:
        return arrays[NAME]
    if set(arrays) != {NAME, ORDER}:
        raise FormatError(f"not a split-cut features stream: records {sorted(arrays)}")
    b, order = arrays[NAME], np.asarray(arrays[ORDER]).astype(np.int64)
    c = order.size
    if b.ndim < 4 or b.shape[2] == 0 or c % b.shape[2] or b.shape[0] % max(c // b.shape[2], 1):
        raise FormatError(f"SGQ blocks of shape {b.shape} do not fit {c} channels")
    if not np.array_equal(np.sort(order), np.arange(c)):
        raise FormatError("SGQ channel order is not a permutation")
    g = c // b.shape[2]
    s = b.shape[0] // g
    _, n, cg, sh, *rest = b.shape
    x = b.reshape(g, s, n, cg, sh, *rest)
    x = x.transpose(2, 0, 3, 1, *range(4, x.ndim))  # (N, G, C/G, S, sh, *rest)
    x = x.reshape(n, c, s * sh, *rest)
    out = np.empty_like(x)
    out[:, order] = x
    return out


def rebuild_features(data: bytes) -> np.ndarray:
    """Receiver side without knowing the codec: the tensor of a Lossless / Uniform / SGQ stream
    (FormatError for a bad stream or another kind)."""
    st = read_stream(data)
    if st.kind != "features":
        raise FormatError(f"not a features stream: a {st.kind} stream")
    return rebuild_arrays({n: t.dequantize() for n, t in st.tensors.items()}).astype(np.float32)


def expected_bytes(codec: FeatureCodec, shape: tuple[int, ...]) -> int:
    """Exact stream bytes of ``codec`` (packed codes: entropy "none") for features of ``shape``."""
    from ..format.container import header_bytes
    from ..format.records import float_record_bits, raw_record_bits, record_bits

    n = math.prod(shape)
    if isinstance(codec, Lossless):
        layout, bits = [(NAME, shape)], float_record_bits(n)
    elif isinstance(codec, Uniform):
        spec = QuantSpec(bits=codec.bits, symmetric=codec.symmetric, restricted=codec.symmetric,
                         scale_dtype=codec.scale_dtype)
        layout, bits = [(NAME, shape)], record_bits(shape, spec)
    elif isinstance(codec, SGQ) and codec.max_deviation is None and not codec.weighted:
        bshape = codec.layout(shape)
        spec = QuantSpec(bits=codec.bits, symmetric=codec.symmetric, restricted=codec.symmetric,
                         granularity="channel", scale_dtype=codec.scale_dtype)
        item = 1 if shape[1] <= 256 else 2
        layout = [(NAME, bshape), (ORDER, (shape[1],))]
        bits = record_bits(bshape, spec) + raw_record_bits(shape[1], item)
    else:
        raise SpecError(f"no closed-form size for {codec!r}")
    if codec.entropy != "none":
        raise SpecError("a closed-form size needs packed codes (entropy='none')")
    return header_bytes(layout, "self") + bits // 8
