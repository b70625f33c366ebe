"""The 802.11 flagship demo: train the CSI autoencoder, share its encoder through nnshare with
every scheme, and measure what each shared encoder does to the link (SGCS, PER at MCS4/7/9/11).

``run_demo(out_dir)`` writes ``wlan_results.json`` (every number), ``wlan_report.md`` and the
plot ``wlan_per.png`` (PER vs SNR, 4 panels) into ``out_dir``; ``nnshare demo`` calls it.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..format.errors import SpecError


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of one run. SNR grid in dB; ``n_train`` / ``n_test`` channel realisations."""

    n_train: int = 3000
    epochs: int = 20
    qat_epochs: int = 4
    n_test: int = 200
    snr_lo: float = 9.0
    snr_hi: float = 37.0
    snr_step: float = 1.0
    b_lat: int = 4
    sgcs_snr_db: float = 30.0
    ptq: tuple = (
        "float32",
        "ptq-t8",
        "ptq-t6",
        "ptq-t5",
        "ptq-t4",
        "ptq-t3",
        "ptq-c6",
        "ptq-c5",
        "ptq-c4",
        "ptq-c3",
    )
    qat: tuple = (4, 3)
    givens: tuple = ((6, 4, 4), (4, 2, 4), (6, 4, 16), (4, 2, 16))
    givens_per: tuple = ((6, 4, 4), (4, 2, 16))  # Givens schemes that also get PER curves
    extra_seeds: tuple = ()
    latent_sweep: tuple = ()  # extra b_lat values (feedback bits vs quality), float encoder
    model_b: bool = False
    bitlevel: bool = False
    n_bitlevel: int = 200
    seed: int = 0


QUICK = DemoConfig(
    n_train=600,
    epochs=6,
    qat_epochs=2,
    n_test=60,
    snr_step=1.0,
    ptq=("float32", "ptq-t8", "ptq-t4", "ptq-t3", "ptq-c4"),
    qat=(4,),
    givens=((6, 4, 4), (4, 2, 16)),
)
DEFAULT = DemoConfig()
FULL = replace(DEFAULT, extra_seeds=(1, 2), model_b=True, bitlevel=True, latent_sweep=(2, 3, 6))

PLOT_SCHEMES = (
    "ideal V",
    "Givens (6,4) Ng=4",
    "float32",
    "ptq-t8",
    "ptq-t4",
    "ptq-t3",
    "qat-t4",
)
SEED_SCHEMES = ("float32", "ptq-t8", "ptq-t4", "ptq-t3", "ptq-c4", "qat-t4")


class _Bars:
    """Rich progress bars (or nothing)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._p = None

    @contextmanager
    def running(self):
        if not self.enabled:
            yield self
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(
            TextColumn("{task.description:<34}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        ) as p:
            self._p = p
            yield self
        self._p = None

    def task(self, name: str, total: int):
        if self._p is None:
            return lambda *a, **k: None
        tid = self._p.add_task(name, total=total)
        return lambda *a, **k: self._p.advance(tid)


def _limit_threads():
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        return threadpool_limits(1)
    except ImportError:  # pragma: no cover
        return None


def _train_and_share(cfg: DemoConfig, seed: int, schemes, qat_bits, bars: _Bars, tag: str):
    """Train one AE, share its encoder with every scheme.

    Returns (decoder, {scheme: Shared}, loss per epoch, {"train_s", "qat_s"} wall seconds).
    """
    from .autoencoder import TrainConfig, train
    from .experiment import training_features
    from .qat_encoder import qat_encoder
    from .sharing import share, share_tensors

    t0 = time.time()
    tc = TrainConfig(n_channels=cfg.n_train, epochs=cfg.epochs, b_lat=cfg.b_lat, seed=seed)
    x = training_features(cfg.n_train, "D", tc.snr_db, seed=1000 + seed)
    step = bars.task(f"train AE {tag}", cfg.epochs)
    enc, dec, hist = train(x, tc, progress=lambda e, loss: step())
    enc.eval()
    dec.eval()
    t_train = time.time() - t0
    shared = {}
    for s in schemes:
        shared[s] = share(enc, s)
    step = bars.task(f"QAT encoder {tag}", len(qat_bits))
    t1 = time.time()
    for b in qat_bits:
        tensors = qat_encoder(enc, dec, x, b, b_lat=cfg.b_lat, epochs=cfg.qat_epochs, seed=seed)
        shared[f"qat-t{b}"] = share_tensors(f"qat-t{b}", tensors)
        step()
    return dec, shared, hist, {"train_s": t_train, "qat_s": time.time() - t1}


def _schemes(cfg: DemoConfig, dec, shared: dict, givens: bool = True) -> dict:
    """Feedback schemes by name: the standard's Givens reports (if ``givens``) and one AE
    scheme per shared encoder (all with the same decoder)."""
    from .experiment import ae_scheme, givens_scheme

    out = {}
    if givens:
        for bphi, bpsi, ng in cfg.givens:
            out[f"Givens ({bphi},{bpsi}) Ng={ng}"] = givens_scheme(bphi, bpsi, ng)
    for name, sh in shared.items():
        out[name] = ae_scheme(sh.encoder, dec, cfg.b_lat)
    return out


def _latent_sweep(cfg: DemoConfig, ts, snr, res: dict, bars: _Bars) -> list[dict]:
    """Feedback bits vs quality: retrain the float AE at each extra latent width."""
    from .autoencoder import TrainConfig, train
    from .experiment import ae_scheme, per_curves, sgcs_table, training_features
    from .overhead import ae_feedback_bits

    rows = [
        {
            "b_lat": cfg.b_lat,
            "feedback_bits": ae_feedback_bits(cfg.b_lat),
            "sgcs": res["sgcs"]["float32"]["sgcs"],
            "snr10": res["snr10"]["float32"],
        }
    ]
    for b in cfg.latent_sweep:
        tc = TrainConfig(n_channels=cfg.n_train, epochs=cfg.epochs, b_lat=b, seed=cfg.seed)
        x = training_features(cfg.n_train, "D", tc.snr_db, seed=1000 + cfg.seed)
        tick = bars.task(f"train AE (b_lat {b})", cfg.epochs)
        enc, dec, _ = train(x, tc, progress=lambda e, loss, tick=tick: tick())
        enc.eval()
        dec.eval()
        sch = {"float32": ae_scheme(enc, dec, b)}
        step = bars.task(f"PER curves, b_lat {b}", len(snr))
        c = per_curves(ts, sch, snr, ideal=False, progress=step)
        rows.append(
            {
                "b_lat": b,
                "feedback_bits": ae_feedback_bits(b),
                "sgcs": sgcs_table(ts, sch, cfg.sgcs_snr_db)["float32"]["sgcs"],
                "snr10": {str(m): v for m, v in c.snr_at_target()["float32"].items()},
            }
        )
    return sorted(rows, key=lambda r: r["b_lat"])


def _shifts(snr10: dict, ref: str = "float32") -> dict:
    base = snr10.get(ref, {})
    return {
        s: {m: (v - base[m]) if m in base else float("nan") for m, v in by.items()} for s, by in snr10.items()
    }


def _bitlevel_check(ts, schemes: dict, cfg: DemoConfig, bars: _Bars) -> list[dict]:
    """SNR at 10 % PER by bit-level simulation vs the abstraction on the same channels."""
    from . import abstraction
    from . import beamforming as bf
    from .bitlevel import packet_errors, snr_at_per
    from .experiment import MCS_LIST, TestSet
    from .link import effective_channel, mmse_sinr

    n = min(cfg.n_bitlevel, ts.n)
    sub = TestSet(ts.h_data[:n], ts.h_fb[:n], ts.noise_fb[:n], ts.model)
    names = ["ideal V"] + [s for s in ("float32", "ptq-t8") if s in schemes]
    rows = []
    step = bars.task("bit-level check", len(names) * len(MCS_LIST))
    grid = np.arange(cfg.snr_lo, cfg.snr_hi + 1e-9, 0.25)
    for name in names:
        for m in MCS_LIST:
            memo: dict = {}

            def point(s: float, name=name, m=m, memo=memo):
                """(V-hat, abstraction PER) at SNR s on the bit-level channels."""
                if s not in memo:
                    vh = bf.svd_v(sub.h_data) if name == "ideal V" else schemes[name](sub.v_fb(s))
                    sinr = mmse_sinr(effective_channel(sub.h_data, vh), s)
                    memo[s] = (vh, abstraction.packet_error_rate(sinr, m).mean())
                return memo[s]

            # locate the abstraction's 10 % point on a 0.25 dB grid, then simulate around it
            lo, hi = 0, len(grid) - 1
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if point(float(grid[mid]))[1] > 0.1:
                    lo = mid
                else:
                    hi = mid
            centre = float(np.round(grid[hi]))
            pts = centre + np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
            p_bit, p_abs = [], []
            for s in pts:
                vh, pabs = point(float(s))
                p_abs.append(pabs)
                # same data bits and noise for every scheme at (MCS, SNR): common random numbers
                rng = np.random.default_rng([77, m, int(round(4 * s))])
                p_bit.append(packet_errors(sub.h_data, vh, float(s), m, rng).mean())
            sa, sb = snr_at_per(pts, p_abs), snr_at_per(pts, p_bit)
            rows.append(
                {
                    "scheme": name,
                    "mcs": m,
                    "snr_db": pts.tolist(),
                    "per_abstraction": p_abs,
                    "per_bitlevel": p_bit,
                    "snr10_abstraction": sa,
                    "snr10_bitlevel": sb,
                    "difference_db": sb - sa,
                    "packets_per_point": n,
                }
            )
            step()
    return rows


def run_demo(out_dir: Path, quick: bool = False, full: bool = False, progress: bool = True) -> dict:
    """Run the whole 802.11 story and write the report, plot and JSON into ``out_dir``.

    ``quick``: small sizes for CI (under a minute). ``full``: adds two more training seeds,
    model B test channels and the bit-level check of the abstraction. Returns the results
    dict (also written as ``wlan_results.json``).
    """
    if quick and full:
        raise SpecError("choose quick or full, not both")
    cfg = QUICK if quick else FULL if full else DEFAULT
    return run_with_config(
        Path(out_dir), cfg, mode="quick" if quick else "full" if full else "default", progress=progress
    )


def run_with_config(out_dir: Path, cfg: DemoConfig, mode: str = "custom", progress: bool = True) -> dict:
    """``run_demo`` with an explicit configuration."""
    from .experiment import MCS_LIST, make_test_set, per_curves, sgcs_table
    from .overhead import ae_feedback_bits, break_even_soundings, feedback_table, sharing_airtime_us
    from .report import write_report

    limiter = _limit_threads()
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    bars = _Bars(progress)
    snr = np.arange(cfg.snr_lo, cfg.snr_hi + 1e-9, cfg.snr_step)
    res: dict = {"mode": mode, "config": asdict(cfg), "timings_s": {}}
    with bars.running():
        dec, shared, hist, tm = _train_and_share(cfg, cfg.seed, cfg.ptq, cfg.qat, bars, f"(seed {cfg.seed})")
        res["timings_s"].update(tm)
        res["train_loss"] = hist
        schemes = _schemes(cfg, dec, shared)
        per_names = [f"Givens ({a},{b}) Ng={g}" for a, b, g in cfg.givens_per] + [
            k for k in schemes if not k.startswith("Givens")
        ]
        t0 = time.time()
        ts = make_test_set(cfg.n_test, "D", seed=10_000 + cfg.seed)
        res["sgcs"] = sgcs_table(ts, schemes, cfg.sgcs_snr_db)
        res["sgcs"]["ideal V"] = {"sgcs": 1.0, "sgcs_std": 0.0, "sgcs_true": 1.0}
        step = bars.task("PER curves, model D", len(snr))
        curves = per_curves(ts, {k: schemes[k] for k in per_names}, snr, progress=step)
        res["timings_s"]["per_curves_s"] = time.time() - t0
        res["snr_db"] = snr.tolist()
        res["per"] = {s: {str(m): c.tolist() for m, c in by.items()} for s, by in curves.per.items()}
        snr10 = curves.snr_at_target()
        res["snr10"] = {s: {str(m): v for m, v in by.items()} for s, by in snr10.items()}
        res["shift_vs_float32"] = {s: {str(m): v for m, v in by.items()} for s, by in _shifts(snr10).items()}
        # overhead
        fp32_bits = shared["float32"].shared_bits
        rows = []
        for name, sh in shared.items():
            d = sh.to_dict()
            d["reduction_percent"] = 100.0 * (1 - sh.shared_bits / fp32_bits)
            d["stream_reduction_percent"] = 100.0 * (1 - sh.total_bits / shared["float32"].total_bits)
            d["airtime_mcs0_us"] = sharing_airtime_us(sh.total_bits // 8, 0)
            d["airtime_mcs7_us"] = sharing_airtime_us(sh.total_bits // 8, 7)
            d["sgcs"] = res["sgcs"][name]["sgcs"]
            rows.append(d)
        res["sharing"] = rows
        fb = feedback_table(cfg.b_lat)
        res["feedback_bits"] = fb
        ae_bits = ae_feedback_bits(cfg.b_lat)
        base = next(r["bits"] for r in fb if r["scheme"] == "Givens (6,4) Ng=4")
        res["break_even_soundings"] = {
            name: break_even_soundings(shared[name].total_bits, ae_bits, base)
            for name in ("float32", "ptq-t8")
            if name in shared
        }
        # extra seeds
        if cfg.extra_seeds:
            per_seed = {cfg.seed: {"snr10": res["snr10"], "sgcs": res["sgcs"]}}
            for sd in cfg.extra_seeds:
                names = [s for s in SEED_SCHEMES if s.startswith("qat") or s in cfg.ptq]
                dec_s, sh_s, _, tm_s = _train_and_share(
                    cfg,
                    sd,
                    [s for s in names if not s.startswith("qat")],
                    [int(s[-1]) for s in names if s.startswith("qat")],
                    bars,
                    f"(seed {sd})",
                )
                sch = _schemes(cfg, dec_s, sh_s, givens=False)
                ts_s = make_test_set(cfg.n_test, "D", seed=10_000 + sd)
                step = bars.task(f"PER curves, seed {sd}", len(snr))
                c = per_curves(ts_s, sch, snr, ideal=False, progress=step)
                per_seed[sd] = {
                    "snr10": {s: {str(m): v for m, v in by.items()} for s, by in c.snr_at_target().items()},
                    "sgcs": sgcs_table(ts_s, sch, cfg.sgcs_snr_db),
                }
            res["seeds"] = {str(k): v for k, v in per_seed.items()}
        if cfg.latent_sweep:
            res["latent_sweep"] = _latent_sweep(cfg, ts, snr, res, bars)
        if cfg.model_b:
            names = set(PLOT_SCHEMES)
            sch = {k: v for k, v in schemes.items() if k in names}
            tsb = make_test_set(cfg.n_test, "B", seed=20_000 + cfg.seed)
            step = bars.task("PER curves, model B", len(snr))
            cb = per_curves(tsb, sch, snr, progress=step)
            res["model_b"] = {
                "snr10": {s: {str(m): v for m, v in by.items()} for s, by in cb.snr_at_target().items()},
                "sgcs": {
                    **sgcs_table(tsb, sch, cfg.sgcs_snr_db),
                    "ideal V": {"sgcs": 1.0, "sgcs_std": 0.0, "sgcs_true": 1.0},
                },
            }
        if cfg.bitlevel:
            t1 = time.time()
            res["bitlevel"] = _bitlevel_check(ts, schemes, cfg, bars)
            res["timings_s"]["bitlevel_s"] = time.time() - t1
    res["mcs"] = list(MCS_LIST)
    res["timings_s"]["total_s"] = time.time() - t_start
    paths = write_report(out_dir, res)
    res["files"] = {k: str(v) for k, v in paths.items()}
    if progress:
        from rich.console import Console

        Console().print(
            f"[bold]802.11 demo ({mode})[/bold] done in {res['timings_s']['total_s']:.0f} s: "
            f"report {paths['report']}, plot {paths['plot']}, numbers {paths['json']}"
        )
    if limiter is not None and hasattr(limiter, "restore_original_limits"):
        limiter.restore_original_limits()
    return res
