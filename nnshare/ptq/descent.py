"""Coordinate descent on integer codes: after GPTQ (or any rounding), sweep the columns and move
a code one step up or down where that lowers ``(w - w_hat) H (w - w_hat)^T``, all rows at once.

The objective per row r is ``e_r H e_r^T`` with ``e_r = w_hat_r - w_r``. Changing code (r, j) by
``t`` (+-1) changes ``w_hat[r, j]`` by ``t s[r, j]`` and the objective by
``2 t s (e_r H)_j + s^2 H_jj``; a move is made only when that is negative and the code stays in
its range, so every sweep leaves each row's objective lower or equal.
"""

from __future__ import annotations

import numpy as np

from ..format.errors import SpecError


def descend(
    codes: np.ndarray, w: np.ndarray, h: np.ndarray, scale, zero, qmin, qmax, sweeps: int = 2
) -> np.ndarray:
    """Codes (float64, rows x cols) improved by ``sweeps`` sweeps of coordinate descent for
    ``w`` (rows, cols) with Hessian ``h`` (cols, cols); the grid arrays broadcast to w's shape."""
    if sweeps < 0:
        raise SpecError(f"sweeps must be >= 0, got {sweeps}")
    c = np.array(codes, np.float64)
    W = np.asarray(w, np.float64)
    H = np.asarray(h, np.float64)
    S, Z, LO, HI = (np.broadcast_to(np.asarray(a, np.float64), W.shape) for a in (scale, zero, qmin, qmax))
    G = ((c - Z) * S - W) @ H  # (e H) per row
    hd = np.diag(H)
    for _ in range(sweeps):
        moved = False
        for j in range(W.shape[1]):
            s, g = S[:, j], G[:, j]
            gain_up = 2.0 * s * g + s * s * hd[j]  # change of the objective for t = +1
            gain_dn = -2.0 * s * g + s * s * hd[j]  # for t = -1
            t = np.where((gain_up < gain_dn) & (gain_up < 0) & (c[:, j] < HI[:, j]), 1.0, 0.0)
            t = np.where((gain_dn <= gain_up) & (gain_dn < 0) & (c[:, j] > LO[:, j]), -1.0, t)
            idx = np.flatnonzero(t)
            if idx.size == 0:
                continue
            moved = True
            c[idx, j] += t[idx]
            G[idx] += np.outer(t[idx] * s[idx], H[j])
        if not moved:
            break
    return c
