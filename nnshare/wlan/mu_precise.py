"""The paired float32-vs-8-bit shift of the MU link on many drops: precise enough for 0.1 dB.

With 200 drops the paired MCS11 shift is resolved to about +-0.19 dB (95 %). ``run_precise``
retrains the MU autoencoder of a ``MuConfig`` (deterministic), shares its encoder only as
float32 and the 8-bit variants (``ptq-t8``, ``qat-t<b>``, ``gptq-t<b>``), reports how far each
moves the latents on held-out soundings, and measures the paired shift of the SNR at 10 % PER
on ``n_drops`` drops of the test drops' generator (seed 10,000 + cfg.seed): the same drops and
sounding noise for every encoder, per-drop PER on a 0.25 dB grid around float32's crossings
(found on the first 200 drops on a 1 dB grid), a bootstrap over drops.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

HELD_OUT_SEED = 2000  # held-out soundings for the latent error (training: 1000, test: 10,000)


def subset(ts, n: int):
    """The first ``n`` drops of a MuTestSet."""
    from .mu_experiment import MuTestSet

    return MuTestSet(h_data=ts.h_data[:n], h_fb=ts.h_fb[:n], noise_fb=ts.noise_fb[:n])


def run_precise(
    cfg=None,
    n_drops: int = 1600,
    *,
    gptq_bits: tuple = (8, 7),
    smallest: bool = True,
    lo_db: float = -1.5,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Paired shifts (dB, bootstrap 95 % intervals) against float32 on ``n_drops`` 2-station ZF
    drops of ``ptq-t8``, ``qat-t<b>`` (cfg.qat), ``gptq-t<b>`` (``gptq_bits``) and, with
    ``smallest``, nnshare's smallest stream searched as in ``run_mu`` (cfg.n_val validation
    drops, seed 30,000); their stream bits and latent errors. JSON-safe dict."""
    import torch

    from . import mu_autoencoder as A
    from . import mu_experiment as E
    from .gptq_encoder import gptq_encoder
    from .mu_demo import MuConfig, _clean, training_set
    from .mu_paired import paired_table
    from .mu_sharing import smallest_stream
    from .qat_encoder import qat_encoder
    from .sharing import share, share_tensors

    cfg = MuConfig() if cfg is None else cfg
    say = progress or (lambda s: None)
    torch.set_num_threads(1)
    t0, c0 = time.time(), time.process_time()
    x, tc = training_set(cfg)
    say(f"training the 4x1 autoencoder on {x.shape[0]} groups")
    enc, dec, hist = A.train(x, tc)
    shared = {s: share(enc, s) for s in ("float32", "ptq-t8")}
    for b in cfg.qat:
        tensors = qat_encoder(enc, dec, x, b, b_lat=cfg.b_lat, epochs=cfg.qat_epochs, lr=cfg.qat_lr,
                              seed=cfg.seed, batch_loss=A.make_loss(cfg.loss, cfg.b_lat))
        shared[f"qat-t{b}"] = share_tensors(f"qat-t{b}", tensors)
    for b in gptq_bits:
        shared[f"gptq-t{b}"] = share_tensors(f"gptq-t{b}", gptq_encoder(enc, x, b))
    search = None
    if smallest:
        say("searching nnshare's smallest stream within the tolerance (validation drops)")
        c1 = time.process_time()
        val = E.make_test_set(cfg.n_val, cfg.n_users, seed=30_000 + cfg.seed)
        sm = smallest_stream(enc, dec, cfg.b_lat, val, x, tol_db=cfg.tol_db, max_evals=cfg.max_evals,
                             snr_ng=cfg.snr_ng)
        shared["smallest"] = sm.shared
        search = {"val_worst_shift_db": sm.val_shift_db, "evaluations": sm.evaluations,
                  "n_val": cfg.n_val, "cpu_s": time.process_time() - c1}
    held = E.training_features(300, cfg.n_users, tc.snr_db, seed=HELD_OUT_SEED + cfg.seed)
    latent = {k: A.latent_error(enc, v.encoder, held, cfg.b_lat) for k, v in shared.items()}
    ae = {k: E.ae_mu_scheme(v.encoder, dec, cfg.b_lat, cfg.snr_ng) for k, v in shared.items()}
    ts = E.make_test_set(n_drops, cfg.n_users, seed=10_000 + cfg.seed)
    say("float32 crossings on the first 200 drops (1 dB grid)")
    coarse = E.per_curves(subset(ts, min(200, n_drops)), {"float32": ae["float32"]},
                          np.arange(cfg.snr_lo, cfg.snr_hi + 1e-9, 1.0))
    f10 = coarse.snr_at_target()["float32"]
    paired: dict = {"grid_step_db": 0.25, "n_boot": cfg.n_boot, "n_drops": n_drops, "shift": {}}
    for m in (m for m in (11, 9, 7, 4) if np.isfinite(f10.get(m, np.nan))):
        say(f"paired shifts at MCS{m} on {n_drops} drops")  # one MCS per grid: 1/4 of the PER work
        one = paired_table(ts, ae, {m: f10[m]}, n_boot=cfg.n_boot, seed=cfg.seed, lo_db=lo_db)
        for name, by in one["shift"].items():
            paired["shift"].setdefault(name, {}).update(by)
    return _clean({
        "n_drops": n_drops,
        "test_seed": 10_000 + cfg.seed,
        "lo_db": lo_db,
        "train_loss_last": hist[-1],
        "float32_snr10_coarse": {str(m): v for m, v in f10.items()},
        "sharing": {k: v.to_dict() for k, v in shared.items()},
        "smallest_search": search,
        "latent_error": latent,
        "paired": paired,
        "timings_s": {"wall": time.time() - t0, "cpu": time.process_time() - c0},
    })


def markdown(res: dict, command: str = "python bench/wlan_mu_paired.py") -> str:
    """The docs/benchmarks/wlan_mu_paired.md section."""
    t = res["timings_s"]
    pr = res["paired"]
    lines = [
        "## 802.11 MU-MIMO: the 8-bit shared encoder against float32 on many drops",
        "",
        f"`{command}` ({t['wall']:.0f} s wall, {t['cpu']:.0f} s CPU"
        + (f", load average {res['load_average']}" if "load_average" in res else "")
        + f"): 2 stations, 4x1, ZF, **{res['n_drops']:,} drops** of the test drops' generator (seed "
        f"{res['test_seed']:,}), every encoder on the same drops and sounding noise; the shift of the "
        f"SNR at 10 % PER against float32 (dB, positive = worse) on a {pr['grid_step_db']} dB grid, "
        f"[95 % interval] from {pr['n_boot']:,} bootstrap resamples of the drops; share of resamples "
        "above 0.1 dB. Latent error on held-out soundings (rms of the pre-quantization latent "
        "against float32; share of 7-bit latent codes that flip).",
        "",
        "| encoder stream | stream bits | latent rms | codes flipped | MCS4 | MCS7 | MCS9 | MCS11 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, by in pr["shift"].items():
        le = res["latent_error"][name]
        cells = []
        for m in ("4", "7", "9", "11"):
            b = by.get(m)
            if b is None or b["shift_db"] is None:
                cells.append("—")
                continue
            lo, hi = b["ci95_db"]
            cells.append(f"{b['shift_db']:+.3f} [{lo:+.2f}, {hi:+.2f}]; {100 * b['p_above_0.1']:.0f} %")
        lines.append(
            f"| {name} | {res['sharing'][name]['total_bits']:,} | {le['rms']:.5f} | "
            f"{100 * le['flip_rate']:.1f} % | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"
