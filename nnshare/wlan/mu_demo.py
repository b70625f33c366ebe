"""The MU-MIMO part of the 802.11 story: train the 4x1 CSI autoencoder, share its encoder
through nnshare (float32, 8-bit, 4-bit, the smallest stream within 0.1 dB), and measure SNR at
10 % PER and sum goodput against the standard's MU feedback with ZF and MMSE precoding.

``run_mu(cfg)`` returns every number as a dict; ``markdown(res)`` renders it. Used by
``bench/wlan_mu.py`` and by ``nnshare demo --full``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

IDEAL = "ideal"
SU_REF = "(6,4) Ng=4 (SU codebook)"


@dataclass(frozen=True)
class MuConfig:
    """Sizes of one MU run: drops (x ``n_users`` stations) for training, validation and test,
    the SNR grid (dB), the latent width ``b_lat``, the AE's SNR-field grid ``snr_ng`` (4 or 16),
    the training loss, the encoder's training weight noise (``MuTrainConfig.weight_noise_bits``),
    QAT bit widths of the encoder (fine-tuned ``qat_epochs`` at ``qat_lr`` against the frozen
    decoder with the training loss), GPTQ bit widths (``gptq_encoder``: per-tensor codes chosen
    on the float encoder's outputs over training soundings; the ``ptq-t<b>`` layout), ``n_boot``
    bootstrap resamples of the paired float-vs-shared shift and extra user counts (ZF, fewer
    schemes)."""

    n_train: int = 3000
    epochs: int = 40
    n_users: int = 2
    n_val: int = 120
    n_test: int = 200
    snr_lo: float = 8.0
    snr_hi: float = 50.0
    snr_step: float = 1.0
    b_lat: int = 7
    snr_ng: int = 16
    loss: str = "tone_log"
    ptq: tuple = ("float32", "ptq-t8", "ptq-c8", "ptq-t6", "ptq-t4", "ptq-c4")
    weight_noise_bits: int | None = 8
    qat: tuple = (8,)
    qat_epochs: int = 8
    qat_lr: float = 2e-5
    gptq: tuple = (8,)
    n_boot: int = 1000
    givens: tuple = ((9, 7, 4), (7, 5, 4), (9, 7, 16), (7, 5, 16))
    precoders: tuple = ("zf", "mmse")
    more_users: tuple = (3, 4)
    smallest: bool = True
    tol_db: float = 0.1
    max_evals: int = 16
    seed: int = 0


QUICK_MU = replace(
    MuConfig(),
    n_train=400,
    epochs=4,
    n_val=20,
    n_test=40,
    snr_step=2.0,
    ptq=("float32", "ptq-t8"),
    qat=(),
    gptq=(),
    n_boot=100,
    more_users=(),
    smallest=False,
    precoders=("zf",),
)
DEMO_MU = replace(MuConfig(), n_test=100, more_users=(4,), max_evals=12)


def _clean(x):
    """JSON-safe: nan/inf -> None, numpy -> python."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def training_set(cfg: MuConfig):
    """The training features (N, 64) and the training config of a run ``cfg`` (deterministic)."""
    from . import mu_autoencoder as A
    from . import mu_experiment as E

    tc = A.MuTrainConfig(n_channels=cfg.n_train, n_users=cfg.n_users, epochs=cfg.epochs,
                         b_lat=cfg.b_lat, loss=cfg.loss, weight_noise_bits=cfg.weight_noise_bits,
                         seed=cfg.seed)
    return E.training_features(cfg.n_train, cfg.n_users, tc.snr_db, seed=1000 + cfg.seed), tc


def run_mu(cfg: MuConfig = MuConfig(), progress: Callable[[str], None] | None = None) -> dict:
    """Run the MU-MIMO experiment; returns the results dict (JSON-safe)."""
    import torch

    from ..format.errors import SpecError
    from . import mu_autoencoder as A
    from . import mu_experiment as E
    from . import mu_feedback as F
    from .gptq_encoder import gptq_encoder
    from .mu_paired import paired_table
    from .mu_sharing import smallest_stream
    from .qat_encoder import qat_encoder
    from .sharing import share, share_tensors

    say = progress or (lambda s: None)
    torch.set_num_threads(1)
    t0 = time.time()
    c0 = time.process_time()
    res: dict = {"config": asdict(cfg), "timings_s": {}}
    x, tc = training_set(cfg)
    say(f"training the 4x1 autoencoder on {x.shape[0]} groups")
    enc, dec, hist = A.train(x, tc)
    res["train_loss"] = hist
    res["timings_s"]["train_s"] = time.time() - t0
    res["timings_s"]["train_cpu_s"] = time.process_time() - c0
    shared = {s: share(enc, s) for s in cfg.ptq}
    c1 = time.process_time()
    for b in cfg.qat:
        say(f"QAT of the {b}-bit encoder against the frozen decoder")
        tensors = qat_encoder(enc, dec, x, b, b_lat=cfg.b_lat, epochs=cfg.qat_epochs, lr=cfg.qat_lr,
                              seed=cfg.seed, batch_loss=A.make_loss(cfg.loss, cfg.b_lat))
        shared[f"qat-t{b}"] = share_tensors(f"qat-t{b}", tensors)
    res["timings_s"]["qat_cpu_s"] = time.process_time() - c1
    for b in cfg.gptq:
        shared[f"gptq-t{b}"] = share_tensors(f"gptq-t{b}", gptq_encoder(enc, x, b))
    if cfg.smallest:
        say("searching nnshare's smallest stream within the tolerance (validation drops)")
        t1 = time.time()
        val = E.make_test_set(cfg.n_val, cfg.n_users, seed=30_000 + cfg.seed)
        try:
            sm = smallest_stream(enc, dec, cfg.b_lat, val, x, tol_db=cfg.tol_db, max_evals=cfg.max_evals,
                                 snr_ng=cfg.snr_ng)
        except SpecError as e:
            sm = None
            res["smallest_search"] = {"error": str(e)}
    if cfg.smallest and sm is not None:
        shared["smallest"] = sm.shared
        res["smallest_search"] = {
            "val_worst_shift_db": sm.val_shift_db,
            "evaluations": sm.evaluations,
            "trace": [list(t) for t in sm.trace],
            "seconds": time.time() - t1,
        }
    res["sharing"] = {k: v.to_dict() for k, v in shared.items()}

    std = {F.scheme_name(a, b, g): F.givens_mu_scheme(a, b, g) for a, b, g in cfg.givens}
    std[SU_REF] = F.givens_mu_scheme(6, 4, 4)
    ae = {k: E.ae_mu_scheme(v.encoder, dec, cfg.b_lat, cfg.snr_ng) for k, v in shared.items()}
    res["feedback_bits"] = {
        **{k: F.report_bits(k) for k in std if k != SU_REF},
        SU_REF: F.mu_report_bits(64, 4, 1, 6, 4),
        "AE": A.ae_report_bits(cfg.b_lat, snr_ng=cfg.snr_ng),
    }
    snr = np.arange(cfg.snr_lo, cfg.snr_hi + 1e-9, cfg.snr_step)
    res["snr_db"] = snr
    ts = E.make_test_set(cfg.n_test, cfg.n_users, seed=10_000 + cfg.seed)
    res["sgcs"] = E.sgcs_table(ts, {**std, **ae}, 30.0)
    runs = {}
    for method in cfg.precoders:
        say(f"PER curves, {cfg.n_users} users, {method.upper()}")
        c = E.per_curves(ts, {IDEAL: None, **std, **ae}, snr, method=method)
        runs[f"{cfg.n_users}u-{method}"] = _summary(c, cfg.n_users)
    main = f"{cfg.n_users}u-{cfg.precoders[0]}"
    f10 = {int(m): v for m, v in runs[main]["snr10"]["float32"].items()}
    say(f"paired float32-vs-shared shifts on a 0.25 dB grid, bootstrap over {cfg.n_test} drops")
    variants = (*(f"qat-t{b}" for b in cfg.qat), *(f"gptq-t{b}" for b in cfg.gptq))
    paired = ("float32", "ptq-t8", "ptq-c8", *variants, "smallest")
    pair = {k: ae[k] for k in paired if k in ae}
    res["paired"] = paired_table(ts, pair, f10, method=cfg.precoders[0], n_boot=cfg.n_boot, seed=cfg.seed)
    res["paired"]["run"] = main
    keep = [k for k in ("float32", "ptq-t8", *variants, "smallest") if k in ae]
    for u in cfg.more_users:
        say(f"PER curves, {u} users, ZF")
        tsu = E.make_test_set(cfg.n_test, u, seed=11_000 + 100 * u + cfg.seed)
        sch = {IDEAL: None, **{k: std[k] for k in list(std)[:1] + list(std)[2:3]}, **{k: ae[k] for k in keep}}
        runs[f"{u}u-zf"] = _summary(E.per_curves(tsu, sch, snr, method="zf"), u)
    res["runs"] = runs
    res["target"] = _target(runs, cfg.tol_db)
    res["equal_bits"] = _equal_bits(runs[main], res["feedback_bits"])
    res["timings_s"]["total_s"] = time.time() - t0
    res["timings_s"]["total_cpu_s"] = time.process_time() - c0
    return _clean(res)


def run_and_write(out_dir: Path, cfg: MuConfig = DEMO_MU, progress: bool = True) -> dict:
    """``nnshare demo --full``'s MU-MIMO part: run, write ``wlan_mu_results.json`` and
    ``wlan_mu_report.md`` into ``out_dir``, print the headline. Returns the results."""
    from .mu_report import headline, markdown

    out_dir.mkdir(parents=True, exist_ok=True)
    say = (lambda s: print(f"MU-MIMO: {s}", flush=True)) if progress else None
    res = run_mu(cfg, progress=say)
    (out_dir / "wlan_mu_results.json").write_text(json.dumps(res, indent=1, allow_nan=False) + "\n")
    (out_dir / "wlan_mu_report.md").write_text(markdown(res, "nnshare demo --full"))
    if progress:
        print(headline(res), flush=True)
    return res


def _summary(c, n_users: int) -> dict:
    snr10 = c.snr_at_target()
    return {
        "per": {s: {str(m): v for m, v in by.items()} for s, by in c.per.items()},
        "snr10": {s: {str(m): v for m, v in by.items()} for s, by in snr10.items()},
        "sum_goodput_mbps": c.sum_goodput(n_users),
    }


def _shift(a, b):
    return None if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) else a - b


def _target(runs: dict, tol: float) -> dict:
    """Worst SNR-at-10%-PER shift of every shared encoder against float32 in every run."""
    out = {}
    for key, r in runs.items():
        s10 = {
            k: {m: (v if v is None or math.isfinite(v) else None) for m, v in by.items()}
            for k, by in r["snr10"].items()
        }
        ref = s10.get("float32")
        if ref is None:
            continue
        for name in [k for k in r["snr10"] if k.startswith(("ptq-", "qat-", "gptq-")) or k == "smallest"]:
            if name in s10:
                sh = {m: _shift(s10[name][m], ref[m]) for m in ref}
                vals = [v for v in sh.values() if v is not None]
                out.setdefault(name, {})[key] = {
                    "shift_db": sh,
                    "worst_db": max(vals) if vals else None,
                    "max_abs_db": max(map(abs, vals)) if vals else None,
                    "holds": bool(vals) and max(vals) <= tol + 1e-9,
                }
    return out


def _equal_bits(run: dict, bits: dict) -> dict:
    """The best standard MU mode (lowest SNR at 10 % PER per MCS) among those costing at most the
    AE's report bits, and among all modes; the AE float32 against both (dB, positive = AE worse)."""
    std = [k for k in bits if k.startswith("MU ")]
    ae_bits = bits["AE"]
    s10 = run["snr10"]
    out = {"ae_bits": ae_bits}
    for label, pool in (("at_most_ae_bits", [k for k in std if bits[k] <= ae_bits]), ("any", std)):
        row = {}
        for m in s10[IDEAL]:
            cands = [(s10[k][m], k) for k in pool if s10[k][m] is not None and math.isfinite(s10[k][m])]
            best = min(cands) if cands else (None, None)
            row[m] = {
                "mode": best[1],
                "snr10": best[0],
                "bits": bits.get(best[1]),
                "ae_float32_minus_best_db": _shift(s10.get("float32", {}).get(m), best[0]),
            }
        out[label] = row
    return out
