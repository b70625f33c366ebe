"""The ``--full`` demo's extra runs: latent-width sweep and the bit-level check of the abstraction."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .progress import Bars

if TYPE_CHECKING:
    from .demo import DemoConfig


def latent_sweep(cfg: DemoConfig, ts, snr, res: dict, bars: Bars) -> list[dict]:
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


def bitlevel_check(ts, schemes: dict, cfg: DemoConfig, bars: Bars) -> list[dict]:
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


def extra_seeds(cfg: DemoConfig, res: dict, snr: np.ndarray, bars: Bars) -> dict:
    """Retrain and re-share at every extra seed: {seed: {"snr10", "sgcs"}} (seed 0 from ``res``)."""
    from .demo import SEED_SCHEMES, _schemes, _train_and_share
    from .experiment import make_test_set, per_curves, sgcs_table

    per_seed = {cfg.seed: {"snr10": res["snr10"], "sgcs": res["sgcs"]}}
    for sd in cfg.extra_seeds:
        names = [s for s in SEED_SCHEMES if s.startswith("qat") or s in cfg.ptq]
        dec_s, sh_s, _, _ = _train_and_share(
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
    return {str(k): v for k, v in per_seed.items()}


def model_b(cfg: DemoConfig, schemes: dict, snr: np.ndarray, bars: Bars) -> dict:
    """The plotted schemes (encoder trained on model D) on model B NLOS test channels."""
    from .demo import PLOT_SCHEMES
    from .experiment import make_test_set, per_curves, sgcs_table

    sch = {k: v for k, v in schemes.items() if k in set(PLOT_SCHEMES)}
    tsb = make_test_set(cfg.n_test, "B", seed=20_000 + cfg.seed)
    step = bars.task("PER curves, model B", len(snr))
    cb = per_curves(tsb, sch, snr, progress=step)
    return {
        "snr10": {s: {str(m): v for m, v in by.items()} for s, by in cb.snr_at_target().items()},
        "sgcs": {
            **sgcs_table(tsb, sch, cfg.sgcs_snr_db),
            "ideal V": {"sgcs": 1.0, "sgcs_std": 0.0, "sgcs_true": 1.0},
        },
    }


def train_shared(cfg: DemoConfig, names=("float32", "ptq-t8"), bars: Bars | None = None):
    """Train the AE of ``cfg`` (seed ``cfg.seed``) and share its encoder as each of ``names``:
    (decoder, {name: Shared})."""
    from .demo import _train_and_share

    dec, shared, _, _ = _train_and_share(cfg, cfg.seed, names, (), bars or Bars(False), f"(seed {cfg.seed})")
    return dec, shared


def ageing(cfg: DemoConfig, schemes: dict, shared: dict, bars: Bars, acfg=None) -> dict:
    """The ageing study (``ageing.run_ageing``) for ptq-t8 against (6,4) Ng=16 and (6,4) Ng=4."""
    from .ageing import AgeingConfig, run_ageing
    from .overhead import ae_feedback_bits, feedback_table

    names = ("Givens (6,4) Ng=16", "Givens (6,4) Ng=4", "ptq-t8")
    bits = {r["scheme"]: r["bits"] for r in feedback_table(cfg.b_lat)}
    bits["ptq-t8"] = ae_feedback_bits(cfg.b_lat)
    acfg = acfg or AgeingConfig(n=min(cfg.n_test, 100))
    return run_ageing(
        acfg,
        {k: schemes[k] for k in names},
        bits,
        {"ptq-t8": shared["ptq-t8"].stream_bytes},
        progress=bars.task,
    )


def bandwidths(cfg: DemoConfig, dec, shared: dict, bars: Bars, bws=(80,), n: int | None = None) -> dict:
    """Bits at 20-160 MHz and PER at ``bws`` (``wideband.run_bandwidths``) for float32 and ptq-t8."""
    from .wideband import run_bandwidths

    enc = {k: shared[k].encoder for k in ("float32", "ptq-t8") if k in shared}
    n = min(cfg.n_test, 100) if n is None else n
    return run_bandwidths(enc, dec, cfg.b_lat, bws, n, progress=bars.task)


ESTIMATION_SCHEMES = ("Givens (6,4) Ng=16", "Givens (6,4) Ng=4", "float32", "ptq-t8")


def estimation(
    cfg: DemoConfig, schemes: dict, res: dict, snr: np.ndarray, bars: Bars, smooth: int = 5
) -> dict:
    """SNR at 10 % PER with the sounding estimate smoothed over ``smooth`` tones, and with
    1,458-byte packets (TGax calibration), beside the default (raw LS, 1,000 bytes; taken from
    ``res["snr10"]`` when it holds every scheme) on the same channels:
    {"smooth", "snr10" {variant: {scheme: {mcs: dB}}}}."""
    from .experiment import make_test_set, per_curves
    from .mcs import TGAX_PACKET_BYTES

    sch = {k: schemes[k] for k in ESTIMATION_SCHEMES if k in schemes}
    keep = ("ideal V", *sch)
    have = res.get("snr10", {})
    out = {"ls, 1000 B": {k: have[k] for k in keep if k in have}} if all(k in have for k in keep) else {}
    for label, smooth_w, pb in (
        *([] if out else [("ls, 1000 B", 1, None)]),
        (f"smoothed ({smooth} tones), 1000 B", smooth, None),
        ("ls, 1458 B", 1, TGAX_PACKET_BYTES),
        (f"smoothed ({smooth} tones), 1458 B", smooth, TGAX_PACKET_BYTES),
    ):
        ts = make_test_set(cfg.n_test, "D", seed=10_000 + cfg.seed, smooth=smooth_w)
        step = bars.task(f"PER curves, {label}", len(snr))
        c = per_curves(ts, sch, snr, progress=step, packet_bytes=pb)
        out[label] = {s: {str(m): v for m, v in by.items()} for s, by in c.snr_at_target().items()}
    return {"smooth": smooth, "snr10": out}
