"""Context structure of entropy-coded records: stripes, the TCQ trellis, neighbour, row/column
and temporal classes. numpy only.

Sequential models (neighbour context, TCQ state) cut the flat code array into stripes of
``STRIPE`` consecutive elements; element ``i`` is step ``i % STRIPE`` of stripe ``i // STRIPE``.
Each stripe starts afresh (no neighbour, trellis state 0), so all stripes are decoded one step at
a time in parallel.
"""

from __future__ import annotations

import numpy as np

from ..errors import FormatError

STRIPE = 64

# Dependent-quantization trellises: next state = TRANS[state, parity(k)], quantizer = QUANT[state]
# (Q0: r = 2k, Q1: r = 2k - sgn(k)). 4 states as in VVC; 8 states as in NNC (ISO/IEC 15938-17).
TRANS = np.array([[0, 2], [2, 0], [1, 3], [3, 1]], dtype=np.int8)
QUANT = np.array([0, 0, 1, 1], dtype=np.int8)
TRANS8 = np.array([[0, 2], [7, 5], [1, 3], [6, 4], [2, 0], [5, 7], [3, 1], [4, 6]], dtype=np.int8)
QUANT8 = np.array([0, 1, 0, 1, 0, 1, 0, 1], dtype=np.int8)
TRELLISES = {4: (TRANS, QUANT), 8: (TRANS8, QUANT8)}


def stripes(n: int) -> tuple[int, int]:
    """(number of stripes, steps per stripe) for ``n`` elements."""
    t = min(STRIPE, max(n, 1))
    return -(-n // t), t


def active(n: int, n_stripes: int, t: int, step: int) -> int:
    """How many leading stripes have an element at ``step``."""
    return min(n_stripes, -(-(n - step) // t)) if n > step else 0


def r_to_k(r: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, bool]:
    """Levels k from reconstruction indices r under quantizers q (0/1); also whether r is valid."""
    odd = (r & 1).astype(bool)
    q1 = q.astype(bool)
    if np.any(odd & ~q1):  # Q0 has even indices only (Q1 has odd ones and zero)
        return r, False
    if np.any(q1 & ~odd & (r != 0)):
        return r, False
    k = np.where(q1, (r + np.sign(r)) >> 1, r >> 1)
    return k, True


def k_to_r(k: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Reconstruction indices r (units of the step) of levels k under quantizers q (0/1)."""
    return np.where(q == 0, 2 * k, 2 * k - np.sign(k))


def tcq_levels(codes: np.ndarray, states: int = 4) -> tuple[np.ndarray, np.ndarray] | None:
    """Levels k and quantizer ids q (0/1) of a flat array of reconstruction indices r along the
    ``states``-state trellis, or None if ``codes`` is not a valid path (per stripe, state 0 at
    start)."""
    trans, quant = TRELLISES[states]
    n = codes.size
    s_n, t = stripes(n)
    # cheap rejection on the first two steps of every stripe before the full pass
    st = np.zeros(-(-n // t), np.int8)
    for step in range(min(2, t)):
        col = np.asarray(codes[step::t], np.int64)
        k0, ok = r_to_k(col, quant[st[: col.size]])
        if not ok:
            return None
        st = st[: col.size]
        st = trans[st, k0 & 1]
    r = np.zeros(s_n * t, np.int64)
    r[:n] = codes
    r = np.ascontiguousarray(r.reshape(s_n, t).T)  # step-major: one row per step
    k = np.empty_like(r)
    q = np.empty(r.shape, np.int8)
    state = np.zeros(s_n, np.int8)
    for step in range(t):
        qs = quant[state]
        ks, ok = r_to_k(r[step], qs)
        if not ok:
            return None
        k[step] = ks
        q[step] = qs
        state = trans[state, ks & 1]
    return k.T.reshape(-1)[:n], q.T.reshape(-1)[:n]


def neighbour_ctx(prev_mag: np.ndarray, t1: int, t2: int) -> np.ndarray:
    """Neighbour context 0/1/2: |previous symbol - center| <= t1, <= t2, or larger."""
    return (prev_mag > t1).astype(np.int8) + (prev_mag > t2).astype(np.int8)


def prev_magnitudes(sym: np.ndarray, center: int) -> np.ndarray:
    """|symbol - center| of each element's predecessor in its stripe (0 at a stripe start)."""
    n = sym.size
    mag = np.abs(sym.astype(np.int64) - center)
    prev = np.zeros(n, np.int64)
    prev[1:] = mag[:-1]
    prev[:: stripes(n)[1]] = 0
    return prev


def temporal_ctx(prev: np.ndarray, t: int) -> np.ndarray:
    """Temporal context 0..4 of each element from its co-located previous code ``prev``:
    0 if prev == 0, else 1/2 for prev in [-t, 0) / below -t, 3/4 for (0, t] / above t."""
    p = prev.astype(np.int64)
    c = np.where(p < 0, np.where(p < -t, 2, 1), np.where(p > t, 4, 3))
    return np.where(p == 0, 0, c).astype(np.int16)


def rowcol_ctx(rows: np.ndarray, cols: np.ndarray, k_col: int) -> np.ndarray:
    """Flat row/column context ``row_class * k_col + col_class`` of every element."""
    return (rows.astype(np.int16)[:, None] * k_col + cols.astype(np.int16)[None, :]).reshape(-1)


def pack_classes(cls: np.ndarray, bits: int) -> bytes:
    """Pack small class indices with ``bits`` bits each, MSB first."""
    if bits == 0:
        return b""
    b = np.unpackbits(cls.astype(np.uint8)[:, None], axis=1)[:, 8 - bits :]
    return np.packbits(b.ravel()).tobytes()


def unpack_classes(raw: bytes | memoryview, count: int, bits: int, k: int) -> np.ndarray:
    """Inverse of :func:`pack_classes`; every class must be < ``k``."""
    if bits == 0:
        return np.zeros(count, np.int8)
    b = np.unpackbits(np.frombuffer(raw, np.uint8))[: count * bits].reshape(count, bits)
    cls = (b << np.arange(bits - 1, -1, -1, dtype=np.uint8)).sum(axis=1, dtype=np.uint8)
    if count and int(cls.max()) >= k:
        raise FormatError(f"class index {int(cls.max())} >= {k}")
    return cls.astype(np.int8)


def class_bits(k: int) -> int:
    """Bits to send one class index out of ``k``."""
    return int(k - 1).bit_length()
