"""The 802.11 flagship demo: train the CSI autoencoder, share its encoder through nnshare with
every scheme, and measure what each shared encoder does to the link (SGCS, PER at MCS4/7/9/11).

``run_demo(out_dir)`` writes ``wlan_results.json`` (every number), ``wlan_report.md`` and the
plot ``wlan_per.png`` (PER vs SNR, 4 panels) into ``out_dir``; ``nnshare demo`` calls it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..format.errors import SpecError
from .baselines import STANDARD_SU, standard_name
from .progress import Bars, limit_threads


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
    givens: tuple = STANDARD_SU
    givens_per: tuple = STANDARD_SU  # standard reports that also get PER curves (all four: fair baselines)
    extra_seeds: tuple = ()
    latent_sweep: tuple = ()  # extra b_lat values (feedback bits vs quality), float encoder
    model_b: bool = False
    bitlevel: bool = False
    ageing: bool = False  # channel ageing, sounding interval and goodput (``ageing``)
    bandwidths: tuple = ()  # wider bandwidths (MHz) measured with the 20 MHz AE (``wideband``)
    estimation: bool = False  # smoothed sounding estimate and 1,458-byte packets
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
    givens=((6, 4, 4), (6, 4, 16)),
    givens_per=((6, 4, 4), (6, 4, 16)),
)
DEFAULT = DemoConfig()
FULL = replace(
    DEFAULT,
    extra_seeds=(1, 2),
    model_b=True,
    bitlevel=True,
    latent_sweep=(2, 3, 6),
    ageing=True,
    bandwidths=(80,),
    estimation=True,  # docs/wlan.md lists it under --full; it was never switched on
)

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


def _train_and_share(cfg: DemoConfig, seed: int, schemes, qat_bits, bars: Bars, tag: str):
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
            out[standard_name(bphi, bpsi, ng)] = givens_scheme(bphi, bpsi, ng)
    for name, sh in shared.items():
        out[name] = ae_scheme(sh.encoder, dec, cfg.b_lat)
    return out


def _shifts(snr10: dict, ref: str = "float32") -> dict:
    base = snr10.get(ref, {})
    return {
        s: {m: (v - base[m]) if m in base else float("nan") for m, v in by.items()} for s, by in snr10.items()
    }


def _fair_baselines(res: dict, shared: dict, fb: list[dict], ae_bits: int, mcs: list) -> dict:
    """Break-even against every standard report (per shared encoder, stream bits) and each AE
    scheme against the best standard report at equal or fewer bits."""
    from .baselines import break_even_table, equal_bits_verdict

    report_bits = {r["scheme"]: r["bits"] for r in fb}
    return {
        "break_even": break_even_table({k: v.total_bits for k, v in shared.items()}, ae_bits, report_bits),
        "equal_bits": {
            name: equal_bits_verdict(res["snr10"], report_bits, name, ae_bits, mcs)
            for name in shared
            if name in res["snr10"]
        },
    }


def _airtime(fb: list[dict], shared: dict) -> dict:
    """The overhead in airtime with the report at HE MCS0 and MCS4 (``overhead.airtime_overhead``)."""
    from .overhead import airtime_overhead
    from .sounding import Sounding

    bits = {r["scheme"]: r["bits"] for r in fb}
    ae = next(k for k in bits if k.startswith("AE"))
    enc = {k: shared[k].stream_bytes for k in ("ptq-t8", "float32") if k in shared}
    return {str(m): airtime_overhead(bits, ae, enc, Sounding(report_mcs=m)) for m in (0, 4)}


def run_demo(out_dir: Path, quick: bool = False, full: bool = False, progress: bool = True) -> dict:
    """Run the whole 802.11 story and write the report, plot and JSON into ``out_dir``.

    ``quick``: small sizes for CI (under a minute). ``full``: adds two more training seeds,
    model B test channels, the bit-level check of the abstraction and the MU-MIMO part
    (``mu_demo``, under ``res["mu"]``). Returns the results
    dict (also written as ``wlan_results.json``).
    """
    if quick and full:
        raise SpecError("choose quick or full, not both")
    cfg = QUICK if quick else FULL if full else DEFAULT
    res = run_with_config(
        Path(out_dir), cfg, mode="quick" if quick else "full" if full else "default", progress=progress
    )
    if full:  # the MU-MIMO part: wlan_mu_results.json and wlan_mu_report.md beside the SU report
        from .mu_demo import run_and_write

        res["mu"] = run_and_write(Path(out_dir), progress=progress)
    return res


def run_with_config(out_dir: Path, cfg: DemoConfig, mode: str = "custom", progress: bool = True) -> dict:
    """``run_demo`` with an explicit configuration."""
    from . import demo_full
    from .experiment import MCS_LIST, make_test_set, per_curves, sgcs_table
    from .overhead import ae_feedback_bits, feedback_table, sharing_airtime_us
    from .report import write_report

    limiter = limit_threads()
    out_dir.mkdir(parents=True, exist_ok=True)
    t_start = time.time()
    bars = Bars(progress)
    snr = np.arange(cfg.snr_lo, cfg.snr_hi + 1e-9, cfg.snr_step)
    res: dict = {"mode": mode, "config": asdict(cfg), "timings_s": {}}
    with bars.running():
        dec, shared, hist, tm = _train_and_share(cfg, cfg.seed, cfg.ptq, cfg.qat, bars, f"(seed {cfg.seed})")
        res["timings_s"].update(tm)
        res["train_loss"] = hist
        schemes = _schemes(cfg, dec, shared)
        per_names = [standard_name(*g) for g in cfg.givens_per] + [
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
        res["baselines"] = _fair_baselines(res, shared, fb, ae_feedback_bits(cfg.b_lat), list(MCS_LIST))
        res["break_even_soundings"] = {
            enc: by["Givens (6,4) Ng=4"] for enc, by in res["baselines"]["break_even"].items()
        }
        res["airtime"] = _airtime(fb, shared)
        if cfg.extra_seeds:
            res["seeds"] = demo_full.extra_seeds(cfg, res, snr, bars)
        if cfg.latent_sweep:
            res["latent_sweep"] = demo_full.latent_sweep(cfg, ts, snr, res, bars)
        if cfg.model_b:
            res["model_b"] = demo_full.model_b(cfg, schemes, snr, bars)
        if cfg.ageing and "ptq-t8" in shared:
            t1 = time.time()
            res["ageing"] = demo_full.ageing(cfg, schemes, shared, bars)
            res["timings_s"]["ageing_s"] = time.time() - t1
        if cfg.estimation:
            t1 = time.time()
            res["estimation"] = demo_full.estimation(cfg, schemes, res, snr, bars)
            res["timings_s"]["estimation_s"] = time.time() - t1
        if cfg.bandwidths:
            t1 = time.time()
            res["bandwidths"] = demo_full.bandwidths(cfg, dec, shared, bars, cfg.bandwidths)
            res["timings_s"]["bandwidths_s"] = time.time() - t1
        if cfg.bitlevel:
            t1 = time.time()
            res["bitlevel"] = demo_full.bitlevel_check(ts, schemes, cfg, bars)
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
