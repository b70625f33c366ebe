"""The demo's outputs: ``wlan_results.json``, ``wlan_report.md`` and the 4-panel ``wlan_per.png``."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..format.errors import NNShareError
from .mcs import PSDU_BYTES
from .report_ageing import ageing_sections
from .report_fair import airtime_sections, bandwidth_sections, estimation_sections, fair_baselines
from .sharing import LABELS

PLOT_SCHEMES = (
    ("ideal V", "k", "-"),
    ("Givens (6,4) Ng=4", "tab:gray", "--"),
    ("float32", "tab:blue", "-"),
    ("ptq-t8", "tab:orange", ":"),
    ("ptq-t4", "tab:green", "-."),
    ("ptq-t3", "tab:red", "-"),
    ("qat-t4", "tab:purple", "--"),
)
SHIFT_LIMIT_DB = 0.1


def _clean(x):
    if isinstance(x, float):
        return None if not math.isfinite(x) else x
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if hasattr(x, "item"):
        return _clean(x.item())
    return x


def label(name: str) -> str:
    """Human label of a scheme key."""
    return LABELS.get(name, name)


def _f(x, nd=2, signed=False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:+.{nd}f}" if signed else f"{x:.{nd}f}"


def plot_per(res: dict, path: Path) -> Path:
    """4-panel PER vs SNR (MCS4/7/9/11) of the plotted schemes."""
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover
        raise NNShareError("the demo's plot needs matplotlib: pip install 'nnshare[plot]'") from None

    fig = Figure(figsize=(10, 7.5))
    axes = fig.subplots(2, 2, sharey=True)
    snr = res["snr_db"]
    for ax, m in zip(axes.ravel(), res["mcs"], strict=False):
        for name, color, ls in PLOT_SCHEMES:
            if name not in res["per"]:
                continue
            per = [max(p, 1e-4) for p in res["per"][name][str(m)]]
            ax.semilogy(snr, per, color=color, ls=ls, lw=1.6, label=label(name))
        bl = [r for r in res.get("bitlevel", []) if r["mcs"] == m]
        for r in bl:
            style = {"ideal V": "ks", "float32": "bo", "ptq-t8": "^"}.get(r["scheme"], "x")
            ax.semilogy(
                r["snr_db"],
                [max(p, 1e-4) for p in r["per_bitlevel"]],
                style,
                mfc="none",
                ms=5,
                label=f"bit-level {label(r['scheme'])}",
            )
        ax.axhline(0.1, color="0.6", lw=0.8)
        s10 = [res["snr10"][n][str(m)] for n, _, _ in PLOT_SCHEMES if n in res["snr10"]]
        s10 = [s for s in s10 if s is not None and math.isfinite(s)]
        if s10:
            ax.set_xlim(min(s10) - 4, max(s10) + 6)
        ax.set_ylim(1e-3, 1.05)
        ax.set_title(f"MCS{m}")
        ax.set_xlabel("SNR per receive antenna (dB)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].set_ylabel("PER (1000-byte packet)")
    axes[1, 0].set_ylabel("PER (1000-byte packet)")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.suptitle("802.11ax 4x2, 2 streams, TGn model D NLOS: PER with the shared CSI encoder")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def plot_sgcs_bits(res: dict, path: Path) -> Path:
    """SGCS vs shared model bits: per-tensor PTQ, per-channel PTQ and QAT, with the float
    encoder and the 802.11 Givens reports as horizontal references."""
    try:
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover
        raise NNShareError("the demo's plot needs matplotlib: pip install 'nnshare[plot]'") from None

    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    rows = {r["scheme"]: r for r in res["sharing"]}
    for prefix, name, marker in (
        ("ptq-t", "PTQ per-tensor", "o"),
        ("ptq-c", "PTQ per-channel", "s"),
        ("qat-t", "QAT per-tensor (decoder frozen)", "^"),
    ):
        pts = sorted(
            (r["shared_bits"], r["sgcs"], int(k[5:])) for k, r in rows.items() if k.startswith(prefix)
        )
        if prefix == "ptq-t" and "ptq-t8" in rows:
            pts = sorted(set(pts) | {(rows["ptq-t8"]["shared_bits"], rows["ptq-t8"]["sgcs"], 8)})
        if not pts:
            continue
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, label=name)
        for b, sg, nb in pts:
            ax.annotate(f"{nb}b", (b, sg), textcoords="offset points", xytext=(3, -10), fontsize=7)
    if "float32" in rows:
        ax.axhline(
            rows["float32"]["sgcs"],
            color="k",
            lw=0.8,
            ls="--",
            label=f"float32 encoder ({rows['float32']['shared_bits']:,} bits)",
        )
    for g, ls in (("Givens (6,4) Ng=4", ":"), ("Givens (4,2) Ng=16", "-.")):
        if g in res["sgcs"]:
            ax.axhline(res["sgcs"][g]["sgcs"], color="0.5", lw=0.8, ls=ls, label=f"802.11 {g}")
    ax.set_xlabel("shared encoder bits (coefficients + quantization parameters)")
    ax.set_ylabel("SGCS")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("CSI encoder shared at b bits: SGCS of the feedback")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def markdown(res: dict) -> str:
    """The markdown report of a results dict."""
    cfg = res["config"]
    mcs = res["mcs"]
    lines = [
        "# 802.11 flagship: sharing a quantized CSI-feedback encoder",
        "",
        f"Mode `{res['mode']}`; run time {res['timings_s']['total_s']:.0f} s. 802.11ax HE SU "
        "20 MHz (RU242, 234 data tones), AP 4 antennas, STA 2, 2 spatial streams, TGn model D "
        f"NLOS (cluster taps and spatial correlation), {cfg['n_test']} test channels, "
        f"{cfg['n_train']} training channels. Sounding SNR = data SNR (noisy LS estimate). "
        f"Autoencoder 64->40->16 (3,256 coefficients), latent {cfg['b_lat']} bits. Precoding "
        "with V-hat/sqrt(2), per-tone MMSE; PER by RBIR effective-SINR mapping onto the "
        "project's own AWGN tables (802.11 LDPC n=1944, bit-level), packet "
        f"{PSDU_BYTES} bytes.",
        "",
        "## Model-sharing overhead (the encoder, decoded at the receiver)",
        "",
        "Shared bits = coefficients + quantization parameters (the seed's count); stream bits = "
        "the whole nnshare stream (agreed-architecture header, records, CRC). Airtime: the "
        "whole transfer at HE SU MCS0 (8.6 Mbit/s) and MCS7, 20 MHz, 1 stream, 0.8 us GI, by "
        "nnshare.link: 1500-byte fragments in A-MPDUs, MAC framing, preamble, channel access "
        "and Block Ack included.",
        "",
    ]
    rows = []
    for r in res["sharing"]:
        rows.append(
            [
                label(r["scheme"]),
                f"{r['shared_bits']:,}",
                f"{r['total_bits']:,}",
                _f(r["reduction_percent"], 1),
                _f(r["airtime_mcs0_us"] / 1000, 2),
                _f(r["airtime_mcs7_us"] / 1000, 3),
                _f(r["sgcs"], 4),
            ]
        )
    lines.append(
        _md_table(
            [
                "encoder shared as",
                "shared bits",
                "stream bits",
                "reduction %",
                "airtime MCS0 (ms)",
                "airtime MCS7 (ms)",
                "SGCS",
            ],
            rows,
        )
    )
    lines += ["", "## Feedback bits per sounding (20 MHz)", ""]
    lines.append(
        _md_table(
            ["scheme", "reported tones", "bits per sounding"],
            [[r["scheme"], str(r["reported_tones"]), f"{r['bits']:,}"] for r in res["feedback_bits"]],
        )
    )
    be = res.get("break_even_soundings", {})
    if be and "baselines" not in res:
        lines += [
            "",
            "Break-even against Givens (6,4) Ng=4 (soundings after which model + AE "
            "feedback cost fewer bits): " + ", ".join(f"{label(k)} {v:.1f}" for k, v in be.items()) + ".",
        ]
    lines += [
        "",
        f"## SGCS (sounding SNR {cfg['sgcs_snr_db']:.0f} dB)",
        "",
        "Against the STA's measured V (what the feedback must reproduce) and against the "
        "true channel's V (end to end). Mean (std over channels).",
        "",
    ]
    rows = [
        [label(k), f"{v['sgcs']:.4f} ({v['sgcs_std']:.4f})", f"{v['sgcs_true']:.4f}"]
        for k, v in res["sgcs"].items()
    ]
    lines.append(_md_table(["scheme", "SGCS vs measured V", "SGCS vs true V"], rows))
    lines += ["", "## SNR (dB) at 10 % PER and shift from the float32 encoder", ""]
    rows = []
    for name, by in res["snr10"].items():
        sh = res["shift_vs_float32"][name]
        rows.append(
            [label(name)] + [_f(by[str(m)]) for m in mcs] + [_f(sh[str(m)], 2, signed=True) for m in mcs]
        )
    lines.append(_md_table(["scheme"] + [f"MCS{m}" for m in mcs] + [f"shift MCS{m}" for m in mcs], rows))
    # verdict
    s8 = res["shift_vs_float32"].get("ptq-t8", {})
    vals = [s8.get(str(m)) for m in mcs]
    ok = all(v is not None and math.isfinite(v) and abs(v) <= SHIFT_LIMIT_DB for v in vals)
    worst = max((abs(v) for v in vals if v is not None and math.isfinite(v)), default=math.nan)
    lines += [
        "",
        f'**Seed check ("same PER"): 8-bit PTQ (ptq-t8, 27,456 shared bits) shifts the '
        f"SNR at 10 % PER by at most {worst:.3f} dB from float32 at MCS"
        f"{'/'.join(str(m) for m in mcs)}: {'PASS' if ok else 'FAIL'} "
        f"(limit {SHIFT_LIMIT_DB} dB).**",
        "",
    ]
    res["seed_check"] = {"max_abs_shift_db": worst, "pass": ok}
    fair = fair_baselines(res)
    if fair:
        lines += fair + [""]
    lines += airtime_sections(res)
    lines += ageing_sections(res.get("ageing"), mcs)
    lines += bandwidth_sections(res.get("bandwidths"), mcs)
    lines += estimation_sections(res.get("estimation"), mcs)
    lines += ["## Where lower bit widths start to hurt", ""]
    for b in (6, 5, 4, 3):
        parts = []
        for key, name in (
            (f"ptq-t{b}", "per-tensor"),
            (f"ptq-c{b}", "per-channel"),
            (f"qat-t{b}", "QAT (decoder frozen)"),
        ):
            if key in res["shift_vs_float32"]:
                v = [res["shift_vs_float32"][key][str(m)] for m in mcs]
                v = [x for x in v if x is not None and math.isfinite(x)]
                if v:
                    parts.append(f"{name} worst {max(v):+.2f} dB (SGCS {res['sgcs'][key]['sgcs']:.4f})")
        if parts:
            lines.append(f"- {b} bits: " + "; ".join(parts) + ".")
    if "seeds" in res:
        lines += ["", "## Training seeds (SNR at 10 % PER, dB)", ""]
        rows = []
        for sd, d in res["seeds"].items():
            for name, by in d["snr10"].items():
                if name == "ideal V":
                    continue
                rows.append(
                    [sd, label(name)]
                    + [_f(by[str(m)]) for m in mcs]
                    + [_f(d["sgcs"].get(name, {}).get("sgcs"), 4)]
                )
        lines.append(_md_table(["seed", "scheme"] + [f"MCS{m}" for m in mcs] + ["SGCS"], rows))
    if "latent_sweep" in res:
        lines += ["", "## Feedback bits vs quality (float encoder, latent width b_lat)", ""]
        rows = [
            [f"AE b_lat={r['b_lat']}", f"{r['feedback_bits']:,}", _f(r["sgcs"], 4)]
            + [_f(r["snr10"][str(m)]) for m in mcs]
            for r in res["latent_sweep"]
        ]
        fb = {r["scheme"]: r["bits"] for r in res["feedback_bits"]}
        for name in ("Givens (6,4) Ng=4", "Givens (4,2) Ng=4", "Givens (6,4) Ng=16", "Givens (4,2) Ng=16"):
            if name in fb and name in res["sgcs"]:
                snrs = res["snr10"].get(name)
                rows.append(
                    [name, f"{fb[name]:,}", _f(res["sgcs"][name]["sgcs"], 4)]
                    + [_f(snrs[str(m)]) if snrs else "" for m in mcs]
                )
        lines.append(_md_table(["feedback", "bits per sounding", "SGCS"] + [f"MCS{m}" for m in mcs], rows))
    if "model_b" in res:
        lines += ["", "## Model B NLOS test channels (encoder trained on model D)", ""]
        rows = [
            [label(n)]
            + [_f(by[str(m)]) for m in mcs]
            + [_f(res["model_b"]["sgcs"].get(n, {}).get("sgcs"), 4)]
            for n, by in res["model_b"]["snr10"].items()
        ]
        lines.append(_md_table(["scheme"] + [f"MCS{m}" for m in mcs] + ["SGCS"], rows))
    if "bitlevel" in res:
        lines += ["", "## Bit-level check of the abstraction (same channels)", ""]
        rows = [
            [
                label(r["scheme"]),
                f"MCS{r['mcs']}",
                _f(r["snr10_abstraction"]),
                _f(r["snr10_bitlevel"]),
                _f(r["difference_db"], 2, signed=True),
                str(r["packets_per_point"]),
            ]
            for r in res["bitlevel"]
        ]
        lines.append(
            _md_table(
                [
                    "scheme",
                    "MCS",
                    "SNR@10% abstraction",
                    "SNR@10% bit-level",
                    "difference (dB)",
                    "packets per point",
                ],
                rows,
            )
        )
        diffs = [
            abs(r["difference_db"])
            for r in res["bitlevel"]
            if r["difference_db"] is not None and math.isfinite(r["difference_db"])
        ]
        fl = {r["mcs"]: r["snr10_bitlevel"] for r in res["bitlevel"] if r["scheme"] == "float32"}
        q8 = {r["mcs"]: r["snr10_bitlevel"] for r in res["bitlevel"] if r["scheme"] == "ptq-t8"}
        sh = [(m, q8[m] - fl[m]) for m in fl if m in q8]
        lines += [
            "",
            f"Largest |bit-level - abstraction|: {max(diffs, default=math.nan):.2f} dB (limit 0.5 dB).",
        ]
        if sh:
            lines.append(
                "Bit-level shift of ptq-t8 from float32 (same packets and noise): "
                + ", ".join(f"MCS{m} {v:+.2f} dB" for m, v in sh)
                + "."
            )
    lines += [
        "",
        "![PER vs SNR](wlan_per.png)",
        "",
        "![SGCS vs bits](wlan_sgcs_bits.png)",
        "",
        "Timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in res["timings_s"].items()),
        "",
    ]
    return "\n".join(lines)


def write_report(out_dir: Path, res: dict) -> dict[str, Path]:
    """Write the JSON, the markdown report and the plot; return their paths."""
    out_dir = Path(out_dir)
    plot = plot_per(res, out_dir / "wlan_per.png")
    plot_sgcs_bits(res, out_dir / "wlan_sgcs_bits.png")
    md = markdown(res)
    (out_dir / "wlan_report.md").write_text(md)
    js = out_dir / "wlan_results.json"
    js.write_text(json.dumps(_clean(res), indent=1) + "\n")
    return {
        "report": out_dir / "wlan_report.md",
        "plot": plot,
        "json": js,
        "sgcs_plot": out_dir / "wlan_sgcs_bits.png",
    }
