"""A lower bound on a model's fitted payload, from its histogram alone: no distribution record
(:mod:`.entropy_fit`) codes a context's symbols in fewer bits than their empirical entropy
(Gibbs' inequality: every record's probabilities are normalised), nor takes fewer side-info bits
than a uniform record over the same range. The sender fits a candidate model only when this
bound is below the best fitted one's bits; a model skipped so is strictly worse, so the choice
(and the stream) is the one fitting every model gives. A sender decision (issue 19 speed).
"""

from __future__ import annotations

import numpy as np

from ..format.entropy.dists import LEVEL_BITS

#: Relative slack for floating-point rounding of the entropy and the fitted costs (~1e-13).
SLACK = 1e-9


def _varint_bytes(v: np.ndarray) -> np.ndarray:
    """Bytes of the unsigned LEB128 varint of each v >= 0 (int64)."""
    return 1 + (v >= 1 << 7) + (v >= 1 << 14) + (v >= 1 << 21) + (v >= 1 << 28) + (v >= 1 << 35)


def lower_bound(hist: np.ndarray, lo: int, fixed_bits: float) -> float:
    """Bits that no fit of a (contexts x width) histogram starting at symbol ``lo`` beats:
    ``fixed_bits`` (header, CRC, flush) + per context the side info of a constant record (one
    symbol or none), or the cheaper of a uniform record (its exact cost) and any other record:
    at least the empirical entropy of the counts plus the uniform record's side info (kind byte,
    svarint lo, varint width - 1) and the extra of the smallest other record (a table's levels
    or a parametric record's 8 bytes)."""
    h = hist.astype(np.float64)
    cnt = hist.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = np.where(hist > 0, h * np.log2(np.maximum(cnt, 1)[:, None] / h), 0.0).sum(axis=1)
    nz = hist > 0
    width = hist.shape[1]
    first = np.where(cnt > 0, nz.argmax(axis=1), 0)
    last = np.where(cnt > 0, width - 1 - nz[:, ::-1].argmax(axis=1), 0)
    c_lo = lo + first.astype(np.int64)
    zig = np.where(c_lo >= 0, 2 * c_lo, -2 * c_lo - 1)
    w = last - first + 1
    many = w > 1
    side = 8.0 * (1 + _varint_bytes(zig) + np.where(many, _varint_bytes(w - 1), 0))
    uniform = cnt * np.log2(w)
    other = ent + np.minimum(8 * ((w * LEVEL_BITS + 7) // 8), 64)
    return fixed_bits + float((side + np.where(many, np.minimum(uniform, other), 0.0)).sum())


def beaten(bound: float, best: float) -> bool:
    """Whether a model whose fit is at least ``bound`` bits is strictly worse than ``best``."""
    return bound * (1 - SLACK) > best
