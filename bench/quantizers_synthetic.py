"""The quantizer zoo next to theory on synthetic sources (part 1 of ``bench/quantizers.py``).

Unit Gaussian and Laplacian sources, 1-8 bits: each scheme's measured SQNR next to its
theoretical value (the exact MSE integral of the same quantizer under the source density; the
classical tables where they exist): optimal-step uniform, nnshare's affine (midtread, MSE range),
Lloyd-Max fitted to the data, optimal / spline / mu-law companders, entropy-coded uniform (rate
from nnshare's entropy coder), minifloat FP4 / FP6 / FP8 with an MSE-chosen scale, MXFP and NVFP4
(no closed form: measured only), and the R(D) bound. :func:`synthetic` returns the table rows.
"""

from __future__ import annotations

import time

import numpy as np

from nnshare.format import entropy as ent
from nnshare.format.floats import FORMATS, value_table
from nnshare.format.spec import QuantSpec
from nnshare.quant import CodebookConfig, compand, densities
from nnshare.quant import codebook as per_tensor_codebook
from nnshare.quant.affine import quantize as affine_quantize
from nnshare.quant.lloyd import assign, lloyd_levels
from nnshare.quant.minifloat import MinifloatConfig
from nnshare.quant.minifloat import quantize as mf_quantize

TOL_DB = 0.05
ECSQ_OFFSET = {"gaussian": 10 * np.log10(np.pi * np.e / 6), "laplacian": 10 * np.log10(np.e**2 / 6)}
NAMED = {  # Max / Jayant-Noll tables and ../shared/research/algorithms.md section 13.4
    "gaussian": {
        "uniform": {2: 9.25, 3: 14.27, 4: 19.38, 8: 40.57},
        "lloyd": {1: 4.40, 2: 9.30, 3: 14.62, 4: 20.22, 8: 43.85},
    },
    "laplacian": {
        "uniform": {2: 7.07, 3: 11.44, 4: 15.96, 8: 35.21},
        "lloyd": {2: 7.54, 3: 12.64, 4: 18.13, 8: 41.67},
    },
}
BLOCKS = [
    ("MXFP4", MinifloatConfig.mx("mxfp4")),
    ("MXFP6 E2M3", MinifloatConfig.mx("mxfp6_e2m3")),
    ("MXFP6 E3M2", MinifloatConfig.mx("mxfp6_e3m2")),
    ("MXFP8 E4M3", MinifloatConfig.mx("mxfp8_e4m3")),
    ("NVFP4", MinifloatConfig.nvfp4()),
]
RD_OFFSET = {"gaussian": 0.0, "laplacian": 10 * np.log10(np.pi / np.e)}  # R(D) / Shannon lower bound


def sqnr(x: np.ndarray, xh: np.ndarray) -> float:
    """Measured SQNR in dB: 10 log10(sum x^2 / sum (x - x_hat)^2)."""
    x = np.asarray(x, np.float64)
    return float(10 * np.log10(np.sum(x * x) / np.sum((x - np.asarray(xh, np.float64)) ** 2)))


def levels_sqnr(x: np.ndarray, levels: np.ndarray) -> float:
    """Measured SQNR of nearest-level quantization of x with sorted ``levels``."""
    y = np.sort(np.asarray(levels, np.float64))
    return sqnr(x, y[assign(x[None], y[None])[0]])


def row(scheme, source, bits, measured, theory=None, rate=None, note="", named=None) -> dict:
    """One table row; ``measured`` is (stratified-sample dB, i.i.d.-sample dB) or one number."""
    strat, iid = measured if isinstance(measured, tuple) else (measured, measured)
    r = {
        "scheme": scheme,
        "source": source,
        "bits": bits,
        "measured_db": round(strat, 3),
        "iid_db": round(iid, 3),
        "note": note,
    }
    if theory is not None:
        r["theory_db"] = round(theory, 3)
        r["gap_db"] = round(strat - theory, 3)
        r["within_tol"] = bool(abs(strat - theory) <= TOL_DB)
    if named is not None:
        r["table_db"] = named
    if rate is not None:
        r["rate_bits"] = round(rate, 4)
    return r


def fp_theory(source: str, fmt_name: str) -> tuple[float, float]:
    """(scale, SQNR) of the per-tensor scaled minifloat grid with the MSE-optimal scale (exact)."""
    from scipy.optimize import minimize_scalar

    tab = value_table(FORMATS[fmt_name]).astype(np.float64)
    grid = np.unique(tab[np.isfinite(tab)])

    def mse(log_s: float) -> float:
        return densities.quantizer_mse(source, grid * np.exp(log_s))

    cands = np.linspace(np.log(1e-3), np.log(10.0 / grid.max() * 8), 400)
    j = int(np.argmin([mse(c) for c in cands]))
    res = minimize_scalar(
        mse,
        bounds=(cands[max(j - 1, 0)], cands[min(j + 1, cands.size - 1)]),
        method="bounded",
        options={"xatol": 1e-9},
    )
    return float(np.exp(res.x)), densities.sqnr_db(float(res.fun))


def affine_grid_theory(source: str, scale: float, spec: QuantSpec) -> float:
    """Exact SQNR of nnshare's affine grid s * q, q in [qmin, qmax], at a given scale."""
    q = np.arange(spec.qmin, spec.qmax + 1, dtype=np.float64)
    return densities.sqnr_db(densities.quantizer_mse(source, q * scale))


def ecsq(x: np.ndarray, source: str, rate: float) -> dict:
    """Uniform midtread quantizer with step 2^(h - rate), indices entropy-coded by nnshare."""
    h = densities.differential_entropy_bits(source)
    step = 2.0 ** (h - rate)
    q = np.rint(x / step).astype(np.int64)
    qmin, qmax = int(q.min()), int(q.max())
    payload = ent.encode_codes(q - qmin, 0, qmax - qmin)
    _, counts = np.unique(q, return_counts=True)
    p = counts / x.size
    # exact theory of the same quantizer: cells [(k - 1/2) step, (k + 1/2) step)
    ks = np.arange(int(-12 / step) - 1, int(12 / step) + 2)
    edges = np.concatenate([[-np.inf], (ks[:-1] + 0.5) * step, [np.inf]])
    return {
        "coded_rate": 8 * len(payload) / x.size,
        "entropy": float(-np.sum(p * np.log2(p))),
        "exact_entropy": densities.entropy_bits(source, edges),
        "measured_db": sqnr(x, q * step),
        "exact_db": densities.sqnr_db(densities.quantizer_mse(source, ks * step, edges[1:-1])),
    }


def _levels_fn(levels):
    return lambda x: levels_sqnr(x, levels)


def _block_fn(cfg):
    def run(x):
        xr = x.astype(np.float32).reshape(-1, 1000)
        return sqnr(xr, mf_quantize(xr, cfg).dequantize())

    return run


def _lloyd_fn(source, b):
    """Lloyd-Max levels fitted to the data (started from the source's Lloyd-Max levels scaled to
    the data), sent through the per-tensor codebook scheme with fp32 levels."""

    def run(x):
        levels = lloyd_levels(x, 2**b, source, iters=300)
        q = per_tensor_codebook.quantize(x, CodebookConfig(levels=2**b), levels=levels)
        return sqnr(x, q.dequantize())

    return run


def _affine_fn(spec, scales):
    def run(x):
        qt = affine_quantize(x.astype(np.float32), spec)
        scales.append(float(qt.params["scale"]))
        return sqnr(x, qt.dequantize())

    return run


def _fp_fn(fmt):
    cfg = MinifloatConfig(fmt=fmt, scale_method="mse")
    return lambda x: sqnr(x, mf_quantize(x.astype(np.float32), cfg).dequantize())


def synthetic(n: int, bit_range: range) -> list[dict]:
    """Rows for both sources and every bit width; each measurement on a stratified and an i.i.d.
    sample of n values (seed 11)."""
    rows: list[dict] = []
    for source in densities.SOURCES:
        xs = (densities.sample(source, n, seed=11, stratified=True), densities.sample(source, n, seed=11))
        named = NAMED[source]

        def both(fn, xs=xs):
            return tuple(fn(x) for x in xs)

        for b in bit_range:
            k = 2**b
            t0 = time.perf_counter()
            step, mse = densities.optimal_uniform_step(source, k)
            rows.append(
                row(
                    "uniform (optimal step)",
                    source,
                    b,
                    both(_levels_fn(densities.uniform_levels(k, step))),
                    densities.sqnr_db(mse),
                    named=named["uniform"].get(b),
                    note=f"step {step:.5f}",
                )
            )
            if b >= 2:
                spec, scales = QuantSpec(bits=b, symmetric=True, range_method="mse"), []
                m = both(_affine_fn(spec, scales))
                rows.append(
                    row(
                        "affine INT (nnshare, MSE range)",
                        source,
                        b,
                        m,
                        affine_grid_theory(source, scales[0], spec),
                        note=f"midtread grid; theory at the chosen step {scales[0]:.5f}",
                    )
                )
            _, lm_mse = densities.lloyd_max(source, k, iters=20000 if b <= 6 else 4000)
            rows.append(
                row(
                    "Lloyd-Max (fitted to data)",
                    source,
                    b,
                    both(_lloyd_fn(source, b)),
                    densities.sqnr_db(lm_mse),
                    named=named["lloyd"].get(b),
                )
            )
            opt = compand.optimal_levels(source, k)
            pd = 6.0206 * b - 10 * np.log10(np.sqrt(3) * np.pi / 2 if source == "gaussian" else 4.5)
            rows.append(
                row(
                    "optimal compander",
                    source,
                    b,
                    both(_levels_fn(opt)),
                    densities.sqnr_db(densities.quantizer_mse(source, opt)),
                    note=f"Panter-Dite {pd:.2f}",
                )
            )
            if b >= 4:
                seg = max(2, k // 16)
                thr, lv, smse = compand.best_spline(source, k, seg)
                rows.append(
                    row(
                        f"spline compander ({seg} segments)",
                        source,
                        b,
                        both(_levels_fn(lv)),
                        densities.sqnr_db(smse),
                        note=f"threshold {thr:.2f} sigma",
                    )
                )
            if b >= 2:
                xm, lv, mmse = compand.best_mu_law(source, k)
                rows.append(
                    row(
                        "mu-law (mu=255, best loading)",
                        source,
                        b,
                        both(_levels_fn(lv)),
                        densities.sqnr_db(mmse),
                        note=f"xmax {xm:.2f} sigma",
                    )
                )
                es = [ecsq(x, source, float(b)) for x in xs]
                e = es[0]
                hr = 6.0206 * e["coded_rate"] - ECSQ_OFFSET[source]
                gap = (hr - e["measured_db"]) / 6.0206
                rows.append(
                    row(
                        "entropy-coded uniform",
                        source,
                        b,
                        (e["measured_db"], es[1]["measured_db"]),
                        e["exact_db"],
                        e["coded_rate"],
                        named=round(hr, 3),
                        note=f"table: 6.02R-{ECSQ_OFFSET[source]:.2f} at the coded rate; gap {gap:.3f} bit; "
                        f"entropy {e['entropy']:.4f}",
                    )
                )
            rd = 6.0206 * b + RD_OFFSET[source]
            rows.append(
                row("R(D) bound" if source == "gaussian" else "Shannon lower bound", source, b, rd, rd)
            )
            for fmt in [f for f in FORMATS if FORMATS[f].bits == b]:
                scale, th = fp_theory(source, fmt)
                rows.append(
                    row(
                        f"FP{b} {fmt.upper()} (per tensor, MSE scale)",
                        source,
                        b,
                        both(_fp_fn(fmt)),
                        th,
                        note=f"optimal scale {scale:.4g}",
                    )
                )
            for name, cfg in BLOCKS:
                if cfg.bits == b:
                    rows.append(
                        row(
                            name,
                            source,
                            b,
                            both(_block_fn(cfg)),
                            rate=b + 8 / cfg.wire().group_size,
                            note="block scales: no closed form",
                        )
                    )
            print(f"{source} {b} bits: {time.perf_counter() - t0:.1f} s", flush=True)
    return rows
