"""Report sections of the ageing study: SNR at 10 % PER vs CSI age, goodput vs sounding interval,
feedback per second and break-even in seconds (``ageing.run_ageing`` results)."""

from __future__ import annotations

import math

from .ageing import STALE_IDEAL
from .sharing import LABELS


def _f(x, nd=2) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{nd}f}"


def _num(x) -> float:
    return math.nan if x is None else float(x)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def _ms(t: str) -> str:
    return f"{1000 * float(t):g} ms"


def ageing_sections(ag: dict | None, mcs: list) -> list[str]:
    """Markdown lines for an ageing study (empty if ``ag`` is None)."""
    if not ag:
        return []
    cfg = ag["config"]
    lines = [
        "## Channel ageing: TGn bell Doppler, sounding interval, goodput",
        "",
        f"TGn bell Doppler spectrum (A = 9, truncated at fd), sum of sinusoids per tap; {cfg['n']} "
        "model-D channels per speed. The STA sounds at t = 0 (noisy estimate at the data SNR); data "
        "at age tau see H(tau). Fluorescent-light Doppler of model D not modelled. "
        f"'{STALE_IDEAL}': the exact V at t = 0, aged like the rest.",
        "",
    ]
    for v, sp in ag["speeds"].items():
        lines += [
            f"### {v} km/h (fd = {sp['doppler_hz']:.2f} Hz at 5.25 GHz): SNR (dB) at 10 % PER vs CSI age",
            "",
        ]
        rows = []
        for name, by_age in sp["snr10"].items():
            fresh = by_age.get(str(cfg["ages_s"][0]), {})
            for age, by in by_age.items():
                loss = [_num(by[str(m)]) - _num(fresh.get(str(m))) for m in mcs]
                rows.append(
                    [LABELS.get(name, name), _ms(age)]
                    + [_f(by[str(m)]) for m in mcs]
                    + [_f(max(loss), 2) if all(math.isfinite(x) for x in loss) else "n/a"]
                )
        lines += _table(["feedback", "CSI age"] + [f"MCS{m}" for m in mcs] + ["worst loss vs age 0"], rows)
        for snr, by_s in sp["goodput"].items():
            names = list(by_s)
            ivs = list(next(iter(by_s.values())))
            lines += [
                "",
                f"Goodput (Mbit/s, 2 streams, {1458}-byte packets, MCS from the SINR right after sounding, "
                f"minus the sounding duty cycle) at {float(snr):g} dB:",
                "",
            ]
            rows = []
            for t in ivs:
                vals = [by_s[n][t]["goodput_mbps"] for n in names]
                best = max(vals)
                rows.append(
                    [_ms(t)]
                    + [("**" + _f(x, 1) + "**") if x == best else _f(x, 1) for x in vals]
                    + [_f(by_s[names[0]][t]["per"], 3), _f(100 * by_s[names[-1]][t]["duty_cycle"], 2)]
                )
            lines += _table(
                ["sounding interval"]
                + [LABELS.get(n, n) for n in names]
                + [f"PER ({LABELS.get(names[0], names[0])})", "AE duty cycle (%)"],
                rows,
            )
            peak = {n: max(by_s[n].items(), key=lambda kv: kv[1]["goodput_mbps"]) for n in names}
            lines += [
                "",
                "Best interval: "
                + "; ".join(
                    f"{LABELS.get(n, n)} {_f(r['goodput_mbps'], 1)} Mbit/s at {_ms(t)}"
                    for n, (t, r) in peak.items()
                )
                + ".",
            ]
        lines.append("")
    ps = ag["per_second"]
    ivs = [str(t) for t in cfg["intervals_s"]]
    lines += ["### Feedback per second and break-even in seconds", ""]
    rows = [
        [LABELS.get(n, n), f"{ag['exchange_us'][n]:.1f}"]
        + [f"{ps[n][t]['feedback_bits'] / 1000:,.1f} kbit/s, {ps[n][t]['airtime_ms']:.2f} ms/s" for t in ivs]
        for n in ps
    ]
    lines += _table(["feedback", "exchange (us)"] + [f"every {_ms(t)}" for t in ivs], rows)
    for enc, by in ag["break_even_s"].items():
        parts = []
        for std, secs in by.items():
            s = [_num(secs[t]) for t in ivs]
            parts.append(
                f"{std}: "
                + (
                    "never"
                    if not all(math.isfinite(x) for x in s)
                    else ", ".join(f"{_f(x, 2)} s at {_ms(t)}" for x, t in zip(s, ivs, strict=True))
                )
            )
        lines += [
            "",
            f"Break-even of {LABELS.get(enc, enc)} in seconds of sounding (airtime): "
            + "; ".join(parts)
            + ".",
        ]
    lines.append("")
    return lines
