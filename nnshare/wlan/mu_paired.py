"""Paired float-vs-shared comparison of the MU link with its statistical spread.

Both encoders see the same drops and the same sounding noise (common random numbers), so the
shift of the SNR at 10 % PER is measured paired; its spread comes from a bootstrap over drops:
resample the drops with replacement, recompute both mean PER curves on the resample and the
difference of their crossings. PER is kept per drop (averaged over the drop's stations).
"""

from __future__ import annotations

import numpy as np

from ..format.errors import SpecError
from .bitlevel import snr_at_per
from .mu_experiment import MuTestSet, per_by_drop
from .mu_feedback import MuScheme


def crossing_shift(snr_db: np.ndarray, per_ref: np.ndarray, per_q: np.ndarray) -> float:
    """SNR at 10 % PER of the mean curve ``per_q`` minus that of ``per_ref`` (dB, nan if either
    does not cross on the grid); both (n_drops, len(snr_db))."""
    return snr_at_per(snr_db, per_q.mean(0)) - snr_at_per(snr_db, per_ref.mean(0))


def bootstrap_shift(
    snr_db: np.ndarray, per_ref: np.ndarray, per_q: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> dict:
    """Paired shift (dB) and its bootstrap over drops: {"shift_db", "ci95_db" (2.5/97.5 %),
    "std_db", "p_above_0.1" (fraction of resamples with a shift > 0.1 dB), "n_boot_crossed"}."""
    if per_ref.shape != per_q.shape or per_ref.ndim != 2 or per_ref.shape[1] != len(snr_db):
        raise SpecError(
            f"PER arrays must both be (n_drops, {len(snr_db)}), got {per_ref.shape} and {per_q.shape}"
        )
    if n_boot < 1:
        raise SpecError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    n = per_ref.shape[0]
    b = np.array([crossing_shift(snr_db, per_ref[i], per_q[i]) for i in rng.integers(0, n, (n_boot, n))])
    ok = b[np.isfinite(b)]
    lo, hi = (np.percentile(ok, [2.5, 97.5]) if ok.size else (np.nan, np.nan))
    return {
        "shift_db": crossing_shift(snr_db, per_ref, per_q),
        "ci95_db": [float(lo), float(hi)],
        "std_db": float(ok.std()) if ok.size else float("nan"),
        "p_above_0.1": float(np.mean(ok > 0.1)) if ok.size else float("nan"),
        "n_boot_crossed": int(ok.size),
    }


def paired_table(
    ts: MuTestSet,
    schemes: dict[str, MuScheme],
    ref10: dict[int, float],
    *,
    ref: str = "float32",
    method: str = "zf",
    n_boot: int = 1000,
    seed: int = 0,
    lo_db: float = -1.0,
) -> dict:
    """Every scheme against ``schemes[ref]`` at each MCS the reference reaches (``ref10``: its
    SNR at 10 % PER, dB, from a coarse grid): PER per drop on a 0.25 dB grid from ``lo_db`` to
    +2.5 dB around those points, then :func:`bootstrap_shift`. Returns {"grid_step_db", "n_boot",
    "n_drops", "shift": {scheme: {mcs: bootstrap dict}}}."""
    from .mu_sharing import local_grid

    if ref not in schemes:
        raise SpecError(f"the reference scheme {ref!r} is not among {sorted(schemes)}")
    mcs_list = [m for m, v in ref10.items() if v is not None and np.isfinite(v)]
    out = {"grid_step_db": 0.25, "n_boot": n_boot, "n_drops": int(ts.h_data.shape[0]), "shift": {}}
    if not mcs_list:
        return out
    grid = local_grid({m: ref10[m] for m in mcs_list}, lo=lo_db)
    per = per_by_drop(ts, schemes, grid, mcs_list, method)
    for name in schemes:
        if name != ref:
            out["shift"][name] = {
                str(m): bootstrap_shift(grid, per[ref][m], per[name][m], n_boot, seed) for m in mcs_list
            }
    return out
