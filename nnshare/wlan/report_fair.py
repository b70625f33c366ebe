"""Report sections on the fair baselines: every standard SU report against the AE at equal bits."""

from __future__ import annotations

import math

from .baselines import STANDARD_NAMES
from .sharing import LABELS


def _f(x, nd=2, signed=False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:+.{nd}f}" if signed else f"{x:.{nd}f}"


_PHRASE = {
    "ties": "ties",
    "wins": "wins",
    "loses": "loses",
    "mixed": "is mixed (better at one MCS, worse at another)",
}


def _soundings(x) -> str:
    return "never" if x is None or not math.isfinite(x) else f"{x:,.1f}"


def _seconds(x) -> str:
    return "never" if x is None or not math.isfinite(x) else f"{x:,.2f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def fair_baselines(res: dict) -> list[str]:
    """Markdown lines: the standard reports beside the AE (bits, SGCS, SNR at 10 % PER,
    break-even of the shared encoder against each), then the verdict at equal bits."""
    base = res.get("baselines")
    if not base:
        return []
    mcs = res["mcs"]
    bits = {r["scheme"]: r["bits"] for r in res["feedback_bits"]}
    ae_row = next((r for r in res["feedback_bits"] if r["scheme"].startswith("AE")), None)
    encs = [e for e in ("ptq-t8", "float32") if e in base["break_even"]]
    lines = [
        "## Fair baselines: every standard SU report on the same channels",
        "",
        "All four standard 4x2 SU compressed beamforming reports get PER curves on the AE's test "
        "channels, sounding noise and interpolation. Break-even: soundings after which the shared "
        "encoder's whole stream plus the AE's reports cost fewer bits than that report alone "
        "(never: the AE report is not smaller).",
        "",
    ]
    rows = []
    for name in STANDARD_NAMES:
        if name not in bits:
            continue
        snr = res["snr10"].get(name)
        rows.append(
            [name, f"{bits[name]:,}", _f(res["sgcs"].get(name, {}).get("sgcs"), 4)]
            + [_f(snr[str(m)]) if snr else "" for m in mcs]
            + [_soundings(base["break_even"][e].get(name)) for e in encs]
        )
    if ae_row is not None:
        fl = res["snr10"].get("float32")
        rows.append(
            [
                f"AE float32 ({ae_row['scheme'][3:].replace(' (', ', ').rstrip(')')})",
                f"{ae_row['bits']:,}",
                _f(res["sgcs"].get("float32", {}).get("sgcs"), 4),
            ]
            + [_f(fl[str(m)]) if fl else "" for m in mcs]
            + ["" for _ in encs]
        )
    lines += _table(
        ["feedback", "bits per sounding", "SGCS"]
        + [f"MCS{m}" for m in mcs]
        + [f"break-even, {LABELS.get(e, e)}" for e in encs],
        rows,
    )
    lines += ["", "At equal bits (the best standard report costing at most the AE's bits):", ""]
    for name, v in base["equal_bits"].items():
        if name not in ("float32", "ptq-t8", "qat-t4", "ptq-t4") or not v.get("baseline"):
            continue
        diffs = ", ".join(f"MCS{m} {_f(v['difference_db'][str(m)], 2, True)}" for m in mcs)
        good = v.get("cheapest_as_good")
        extra = (
            f"; the cheapest standard report within {v['tie_db']} dB of it at every MCS is {good} "
            f"({v['cheapest_as_good_bits']:,} bits)"
            if good
            else ""
        )
        lines.append(
            f"- {LABELS.get(name, name)} ({v['ae_bits']:,} bits) vs {v['baseline']} "
            f"({v['baseline_bits']:,} bits): **{v['verdict']}** (AE - standard, dB: {diffs}){extra}."
        )
    fe = base["equal_bits"].get("float32", {})
    if ae_row is not None and fe.get("baseline"):
        saves = [n for n in STANDARD_NAMES if n in bits and bits[n] > ae_row["bits"]]
        lines += [
            "",
            f"The AE report ({ae_row['bits']:,} bits) is smaller than "
            f"{', '.join(saves) or 'no standard report'} only, so it can break even "
            f"against those alone. Against {fe['baseline']} "
            f"({fe['baseline_bits']:,} bits), the best standard report at equal bits, the float32 "
            f"AE {_PHRASE.get(fe['verdict'], fe['verdict'])} (margin {fe['tie_db']} dB): at equal bits "
            "the autoencoder "
            + ("gains nothing." if fe["verdict"] in ("ties", "loses", "mixed") else "gains."),
        ]
    return lines


def _per_gap(res: dict, ae: str, std: str) -> str:
    """AE minus standard SNR at 10 % PER over the MCS, as 'a..b dB' (or n/a)."""
    a, b = res["snr10"].get(ae), res["snr10"].get(std)
    if not a or not b:
        return "n/a"
    d = [a[str(m)] - b[str(m)] for m in res["mcs"] if a.get(str(m)) is not None and b.get(str(m)) is not None]
    d = [x for x in d if math.isfinite(x)]
    return f"{min(d):+.2f}..{max(d):+.2f} dB" if d else "n/a"


def airtime_sections(res: dict) -> list[str]:
    """Markdown lines: the sounding exchange in airtime per exchange and per second, the AE
    against every standard report, and the break-even of the shared encoder in airtime."""
    air = res.get("airtime")
    if not air:
        return []
    lines = [
        "## Feedback overhead in airtime (sounding exchange, end to end)",
        "",
        "One exchange = channel access (AIFS + mean backoff) + NDPA (25 octets, non-HT 24 Mbit/s) + "
        "SIFS + HE sounding NDP (4 HE-LTFs, 72 us) + SIFS + the report as an Action No Ack frame "
        "(35 octets of MAC header, HE MIMO Control and FCS + the report) in an HE SU PPDU at the "
        "report's MCS, 20 MHz, 1 stream. The model transfer goes through `nnshare.link` "
        "(fragments, A-MPDU, preamble, access, Block Ack) at the same MCS. PER gap: AE float32 "
        "minus the report's SNR at 10 % PER over MCS4-11 (negative: the AE needs less SNR).",
        "",
    ]
    for mcs_r, t in air.items():
        ivs = t["sounding"]["intervals_s"]
        ae_row = next(r for r in t["rows"] if "ae_saving_percent" not in r)
        be = t["break_even"].get("ptq-t8", {})
        lines += [f"Report at HE MCS{mcs_r} ({t['sounding']['fixed_us']:.1f} us of fixed costs):", ""]
        rows = []
        for r in t["rows"]:
            std = "ae_saving_percent" in r
            b = be.get(r["scheme"], {})
            rows.append(
                [
                    r["scheme"],
                    f"{r['bits']:,}",
                    f"{r['report_us']:.1f}",
                    f"{r['exchange_us']:.1f}",
                    _f(r.get("ae_saving_percent"), 1) if std else "",
                    r.get("ae_airtime", ""),
                    _per_gap(res, "float32", r["scheme"]) if std else "",
                ]
                + [f"{r['per_second'][str(iv)]['airtime_ms']:.2f}" for iv in ivs]
                + (
                    [_soundings(b.get("soundings"))]
                    + [_seconds(b.get("seconds", {}).get(str(iv))) for iv in ivs]
                    if std
                    else ["", *("" for _ in ivs)]
                )
            )
        lines += _table(
            [
                "feedback",
                "bits",
                "report PPDU (us)",
                "exchange (us)",
                "AE saves (%)",
                "AE airtime",
                "PER gap",
            ]
            + [f"ms/s at {1000 * iv:g} ms" for iv in ivs]
            + ["break-even ptq-t8 (soundings)"]
            + [f"break-even (s) at {1000 * iv:g} ms" for iv in ivs],
            rows,
        )
        model_ms = be.get("model_us", math.nan) / 1000
        lines += [
            "",
            f"The AE exchange takes {ae_row['exchange_us']:.1f} us; the 8-bit encoder's whole transfer "
            f"takes {model_ms:.3f} ms once ({t['sounding']['model_link']}).",
            "",
        ]
    return lines


def bandwidth_sections(bw_res: dict | None, mcs: list) -> list[str]:
    """Markdown lines: bits and exchange airtime of every report at 20-160 MHz, then the measured
    SNR at 10 % PER at the wider bandwidths (``wideband.run_bandwidths`` results)."""
    if not bw_res:
        return []
    from .baselines import equal_bits_verdict

    rows = bw_res["bits"]
    names = list(rows[0]["bits"])
    lines = [
        "## Bandwidths 20-160 MHz",
        "",
        "Bits per sounding (the standard's Ns x Na/2 x (bphi + bpsi) + 8 Nss; the AE codes "
        "ceil(Ns/4) groups of 4 Ng = 4 tones, the last padded by repeating its last tone) and, in "
        "brackets, the sounding exchange airtime in us with the report at HE MCS4, 1 stream:",
        "",
    ]
    lines += _table(
        ["bandwidth", "Ns (Ng=4 / 16)"] + names,
        [
            [f"{r['bw_mhz']} MHz ({r['ru']})", f"{r['ns']['4']} / {r['ns']['16']}"]
            + [f"{r['bits'][n]:,} ({r['exchange_us'][n]:.0f})" for n in names]
            for r in rows
        ],
    )
    for bw, m in bw_res.get("measured", {}).items():
        lines += ["", f"Measured at {bw} MHz ({m['n']} model-D channels), SNR (dB) at 10 % PER:", ""]
        tab = []
        for name, by in m["snr10"].items():
            b = m["bits"].get(name)
            tab.append(
                [LABELS.get(name, name), f"{b:,}" if b else "", _f(m["sgcs"].get(name, {}).get("sgcs"), 4)]
                + [_f(by[str(x)]) for x in mcs]
            )
        lines += _table(["feedback", "bits per sounding", "SGCS"] + [f"MCS{x}" for x in mcs], tab)
        for enc in ("float32", "ptq-t8"):
            if enc in m["snr10"]:
                v = equal_bits_verdict(m["snr10"], m["bits"], enc, m["bits"][enc], mcs)
                if v.get("baseline"):
                    diffs = ", ".join(f"MCS{x} {_f(v['difference_db'][str(x)], 2, True)}" for x in mcs)
                    lines += [
                        "",
                        f"{LABELS.get(enc, enc)} ({m['bits'][enc]:,} bits) vs the best standard report at "
                        f"equal or fewer bits, {v['baseline']} ({v['baseline_bits']:,}): "
                        f"**{v['verdict']}** (AE - standard: {diffs}).",
                    ]
    lines.append("")
    return lines


def estimation_sections(est: dict | None, mcs: list) -> list[str]:
    """Markdown lines: SNR at 10 % PER with the raw and the smoothed sounding estimate, at 1,000-
    and 1,458-byte packets (``demo_full.estimation`` results)."""
    if not est:
        return []
    lines = [
        "## Channel estimation with smoothing; 1,458-byte packets (TGax calibration)",
        "",
        f"The STA's LS estimate of every used tone averaged over {est['smooth']} adjacent tones "
        "before the feedback grid is taken (the encoder was trained on raw LS estimates); PER "
        "also for the TGax calibration packet of 1,458 bytes. SNR (dB) at 10 % PER, same channels:",
        "",
    ]
    rows = []
    for variant, by_s in est["snr10"].items():
        for name, by in by_s.items():
            rows.append([LABELS.get(name, name), variant] + [_f(by[str(m)]) for m in mcs])
    rows.sort(key=lambda r: r[0])
    lines += _table(["feedback", "estimate, packet"] + [f"MCS{m}" for m in mcs], rows)
    lines.append("")
    return lines
