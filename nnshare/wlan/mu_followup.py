"""Follow-up to ``mu_demo.run_mu``: which encoder streams hold the 0.1 dB target at MCS11?

Retrains the same autoencoder (same config and seed; the training loss must equal the stored
run's, else the comparison is refused), then on the same 2-station ZF test drops measures the
SNR at 10 % PER on a fine local grid (0.25 dB around the float encoder's crossings) for wider
fixed streams (8-bit per channel, 10 and 12 bits per tensor) and re-runs the smallest-stream
search with more validation drops.
"""

from __future__ import annotations

import time
from dataclasses import fields

import numpy as np

from ..format.errors import SpecError


def _tup(v):
    return tuple(_tup(x) for x in v) if isinstance(v, list) else v


def follow_up(
    res: dict, extra=("ptq-t8", "ptq-c8", "ptq-t10", "ptq-t12"), n_val: int = 120, max_evals: int = 12
) -> dict:
    """Extra stream measurements for a stored ``run_mu`` result ``res`` (JSON dict)."""
    import torch

    from . import mu_autoencoder as A
    from . import mu_experiment as E
    from .mu_demo import MuConfig, _clean, training_set
    from .mu_sharing import local_grid, smallest_stream
    from .sharing import share

    torch.set_num_threads(1)
    t0, c0 = time.time(), time.process_time()
    names = {f.name for f in fields(MuConfig)}
    cfg = MuConfig(**{k: _tup(v) for k, v in res["config"].items() if k in names})
    x, tc = training_set(cfg)
    enc, dec, hist = A.train(x, tc)
    if not np.allclose(hist, res["train_loss"], rtol=0, atol=1e-9):
        raise SpecError("retraining did not reproduce the stored run's training loss")
    ts = E.make_test_set(cfg.n_test, cfg.n_users, seed=10_000 + cfg.seed)
    f10 = {
        int(k): (np.nan if v is None else v)
        for k, v in res["runs"][f"{cfg.n_users}u-zf"]["snr10"]["float32"].items()
    }
    grid = local_grid(f10)
    shared = {s: share(enc, s) for s in ("float32", *extra)}
    val = E.make_test_set(n_val, cfg.n_users, seed=30_000 + cfg.seed)
    sm = smallest_stream(
        enc, dec, cfg.b_lat, val, x, tol_db=cfg.tol_db, max_evals=max_evals, snr_ng=cfg.snr_ng
    )
    shared["smallest"] = sm.shared
    sch = {k: E.ae_mu_scheme(v.encoder, dec, cfg.b_lat, cfg.snr_ng) for k, v in shared.items()}
    c = E.per_curves(ts, sch, grid)
    s10 = c.snr_at_target()
    out = {"grid_step_db": 0.25, "n_val": n_val, "streams": {}}
    for k, v in shared.items():
        shift = {str(m): s10[k][m] - s10["float32"][m] for m in s10[k]}
        ok = [d for m, d in shift.items() if np.isfinite(s10["float32"][int(m)])]
        worst = max(ok) if ok and all(np.isfinite(ok)) else float("inf")
        out["streams"][k] = {
            **v.to_dict(),
            "snr10": {str(m): s10[k][m] for m in s10[k]},
            "shift_db": shift,
            "worst_db": worst,
            "holds": worst <= cfg.tol_db,
        }
    out["smallest_search"] = {
        "val_worst_shift_db": sm.val_shift_db,
        "evaluations": sm.evaluations,
        "trace": [list(t) for t in sm.trace],
    }
    out["timings_s"] = {"wall": time.time() - t0, "cpu": time.process_time() - c0}
    return _clean(out)


def markdown(fu: dict, tol: float = 0.1) -> str:
    """The follow-up table."""
    lines = [
        f"**Follow-up: which stream holds {tol} dB at MCS11** (same encoder retrained bit-exactly, same "
        f"2-station ZF test drops, crossings on a {fu['grid_step_db']} dB grid; smallest stream searched "
        f"again on {fu['n_val']} validation drops; {fu['timings_s']['wall']:.0f} s wall, "
        f"{fu['timings_s']['cpu']:.0f} s CPU):",
        "",
        "| encoder stream | stream bits | MCS4 | MCS7 | MCS9 | MCS11 | worst shift (dB) | holds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k, v in fu["streams"].items():
        snr = " | ".join(
            "—" if v["snr10"][m] is None else f"{v['snr10'][m]:.2f}" for m in ("4", "7", "9", "11")
        )
        w = v["worst_db"]
        lines.append(
            f"| {k} | {v['total_bits']:,} | {snr} | {'—' if w is None else f'{w:+.3f}'} | "
            f"{'yes' if v['holds'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"
