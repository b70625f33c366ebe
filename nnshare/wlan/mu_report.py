"""Markdown of the MU-MIMO results (``mu_demo.run_mu``): SNR at 10 % PER, bits, the sharing
target, equal-bits comparison and sum goodput."""

from __future__ import annotations

LABELS = {
    "ideal": "ideal CSI",
    "float32": "AE float32",
    "ptq-t8": "AE 8-bit (ptq-t8)",
    "ptq-c8": "AE 8-bit per-channel",
    "ptq-t6": "AE 6-bit per-tensor",
    "ptq-t4": "AE 4-bit per-tensor",
    "ptq-c4": "AE 4-bit per-channel",
    "qat-t8": "AE 8-bit QAT (frozen decoder)",
    "gptq-t8": "AE 8-bit GPTQ rounding (ptq-t8 layout)",
    "smallest": "AE nnshare smallest stream",
}
MCS = ("4", "7", "9", "11")
GOODPUT_SNRS = (15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 45.0)


def _f(x, fmt: str = ".2f", none: str = "—") -> str:
    return none if x is None else format(x, fmt)


def label(name: str) -> str:
    return LABELS.get(name, name)


def _snr_table(res: dict, key: str) -> list[str]:
    run = res["runs"][key]
    bits = res["feedback_bits"]
    sharing = res["sharing"]
    lines = [
        "| feedback | report bits / station | encoder stream bits | SGCS | "
        + " | ".join(f"MCS{m}" for m in MCS)
        + " |",
        "|---|---|---|---|" + "---|" * len(MCS),
    ]
    for name, by in run["snr10"].items():
        fb = bits.get(name, bits["AE"] if name in sharing else None)
        enc = sharing.get(name, {}).get("total_bits")
        sg = _f(res["sgcs"].get(name), ".4f", "1" if name == "ideal" else "—")
        lines.append(
            f"| {label(name)} | {_f(fb, ',')} | {_f(enc, ',', '')} | {sg}"
            f" | " + " | ".join(_f(by.get(m), ".2f", "not reached") for m in MCS) + " |"
        )
    return lines


def markdown(res: dict, command: str = "python bench/wlan_mu.py") -> str:
    """The docs/benchmarks/wlan_mu.md section."""
    cfg = res["config"]
    u = cfg["n_users"]
    main = f"{u}u-{cfg['precoders'][0]}"
    t = res["timings_s"]
    out = [
        "## 802.11 MU-MIMO: shared 4x1 CSI encoder vs the standard's MU feedback",
        "",
        f"`{command}` ({t['total_s']:.0f} s wall, {t.get('total_cpu_s', 0):.0f} s CPU"
        + (f", load average {res['load_average']}" if "load_average" in res else "")
        + "). "
        f"HE 20 MHz, AP with 4 antennas, {u} single-antenna stations (4x1 each), TGn model D NLOS "
        "with TGac per-user AoD offsets (+-30 deg per cluster), block fading, sounding SNR = data SNR "
        f"(noisy LS estimate), {cfg['n_test']} test drops (common random numbers), RBIR abstraction "
        "over the project's LDPC n=1944 AWGN tables, one 1000-byte packet per user. Every station "
        "sends its report; the AP builds ZF or MMSE (regularised ZF) precoders from the fed-back "
        "V and per-tone SNR. The standard's MU report: Givens angles with the MU codebooks, 8-bit "
        "average SNR and 4-bit delta SNR per reported tone. The autoencoder (the flagship's "
        f"64->40->16 encoder, 3,256 coefficients) codes V on 8 adjacent Ng=4 tones into 16 latents "
        f"of {cfg['b_lat']} bits (training loss `{cfg['loss']}`) and sends the standard's SNR fields on "
        f"the Ng={cfg.get('snr_ng', 4)} tones. SNR (dB) at 10 % PER:",
        "",
    ]
    for key in res["runs"]:
        uu, meth = key.split("u-")
        out += [f"**{uu} users, {meth.upper()} precoding**", ""] + _snr_table(res, key) + [""]
    out += _target_lines(res, main) + [""] + _paired_lines(res) + [""] + _equal_bits_lines(res) + [""]
    out += _goodput_lines(res, main)
    if "follow_up" in res:
        from .mu_followup import markdown as follow_up_md

        out += ["", follow_up_md(res["follow_up"], cfg["tol_db"]).rstrip()]
    out += [
        "",
        "Reference from the issue (2 users, ZF, model D without per-user offsets, MCS11): 30.1 dB "
        "ideal, 31.5 (9,7) Ng=4, 32.0 (7,5) Ng=4, 34.9 (6,4) Ng=4. The (6,4) row uses the SU "
        "codebook, which the standard does not allow in an MU report; it is shown for that "
        "comparison only. Report bits exclude the MIMO Control field; no MAC or PHY framing.",
    ]
    return "\n".join(out) + "\n"


def _target_lines(res: dict, main: str) -> list[str]:
    tgt = res["target"]
    sh = res["sharing"]
    lines = [
        "**Sharing the encoder** (worst SNR-at-10%-PER shift against float32 over MCS4/7/9/11, dB;"
        " positive = worse):",
        "",
        "| encoder stream | stream bits | shared bits | " + " | ".join(tgt.get("ptq-t8", {}).keys()) + " |",
        "|---|---|---|" + "---|" * len(tgt.get("ptq-t8", {})),
    ]
    for name, by in tgt.items():
        s = sh[name]
        cells = " | ".join(_f(v["worst_db"], "+.3f") for v in by.values())
        lines.append(f"| {label(name)} | {s['total_bits']:,} | {s['shared_bits']:,} | {cells} |")
    t8 = tgt.get("ptq-t8", {}).get(main)
    tol = res["config"]["tol_db"]
    if t8 is not None:
        lines += [
            "",
            f"Target, 8-bit shared encoder within {tol} dB of float32 ({main}): worst shift "
            f"{_f(t8['worst_db'], '+.3f')} dB, max |shift| {_f(t8['max_abs_db'], '.3f')} dB: "
            f"{'PASS' if t8['holds'] else 'FAIL'}.",
        ]
    if "error" in res.get("smallest_search", {}):
        lines += ["", f"No smallest stream: {res['smallest_search']['error']}."]
    sm = tgt.get("smallest", {}).get(main)
    if sm is not None:
        srch = res["smallest_search"]
        lines += [
            f"nnshare's smallest stream within {tol} dB (chosen on {res['config']['n_val']} validation "
            f"drops: worst shift {_f(srch['val_worst_shift_db'], '+.3f')} dB, {srch['evaluations']} "
            f"evaluations): {sh['smallest']['stream_bytes']:,} bytes ({sh['smallest']['total_bits']:,} "
            f"bits, {sh['smallest']['total_bits'] / sh['ptq-t8']['total_bits']:.2f}x the 8-bit stream); "
            f"on the test drops its worst shift is {_f(sm['worst_db'], '+.3f')} dB: "
            f"{'holds' if sm['holds'] else 'does not hold'}."
        ]
    return lines


def _paired_lines(res: dict) -> list[str]:
    """The paired float32-vs-shared shifts with their bootstrap 95 % intervals."""
    pr = res.get("paired")
    if not pr or not pr["shift"]:
        return []
    tol = res["config"]["tol_db"]
    mcs = list(next(iter(pr["shift"].values())))
    lines = [
        f"**Paired shift against float32** ({pr['run']}, the same {pr['n_drops']} drops and noise, "
        f"crossings on a {pr['grid_step_db']} dB grid; dB, [bootstrap 95 % interval over drops, "
        f"{pr['n_boot']} resamples]; share of resamples above {tol} dB):",
        "",
        "| encoder stream | stream bits | " + " | ".join(f"MCS{m}" for m in mcs) + f" | holds {tol} dB |",
        "|---|---|" + "---|" * len(mcs) + "---|",
    ]
    for name, by in pr["shift"].items():
        cells = []
        for m in mcs:
            d = by[m]
            lo, hi = d["ci95_db"]
            cells.append(
                f"{_f(d['shift_db'], '+.3f')} [{_f(lo, '+.2f')}, {_f(hi, '+.2f')}]; "
                f"{_f(d['p_above_0.1'], '.0%')}"
            )
        vals = [by[m]["shift_db"] for m in mcs]
        ok = all(v is not None and v <= tol + 1e-9 for v in vals)
        bits = res["sharing"].get(name, {}).get("total_bits")
        row = f"| {label(name)} | {_f(bits, ',')} | " + " | ".join(cells)
        lines.append(row + f" | {'yes' if ok else 'no'} |")
    return lines


def _equal_bits_lines(res: dict) -> list[str]:
    eb = res["equal_bits"]
    lines = [
        f"**Against the best standard MU mode** (AE report {eb['ae_bits']:,} bits per station per "
        "sounding; AE float32 minus the best mode's SNR at 10 % PER, dB):",
        "",
        "| MCS | best mode with <= AE bits | its bits | AE - it | best mode at any bits | its bits "
        "| AE - it |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in MCS:
        a, b = eb["at_most_ae_bits"].get(m, {}), eb["any"].get(m, {})
        lines.append(
            f"| {m} | {a.get('mode') or 'none'} | {_f(a.get('bits'), ',')} | "
            f"{_f(a.get('ae_float32_minus_best_db'), '+.2f', 'AE not reached' if a.get('mode') else '—')} | "
            f"{b.get('mode') or 'none'} | {_f(b.get('bits'), ',')} | "
            f"{_f(b.get('ae_float32_minus_best_db'), '+.2f', 'AE not reached' if b.get('mode') else '—')} |"
        )
    return lines


def _goodput_lines(res: dict, main: str) -> list[str]:
    snr = res["snr_db"]
    idx = [snr.index(s) for s in GOODPUT_SNRS if s in snr]
    gp = res["runs"][main]["sum_goodput_mbps"]
    lines = [
        f"**Sum goodput ({main}), Mb/s**: stations x max over MCS4/7/9/11 of (1 - PER) x the HE "
        "20 MHz 1-SS rate (0.8 us GI); sounding airtime not subtracted.",
        "",
        "| feedback | " + " | ".join(f"{snr[i]:.0f} dB" for i in idx) + " |",
        "|---|" + "---|" * len(idx),
    ]
    for name, g in gp.items():
        lines.append(f"| {label(name)} | " + " | ".join(f"{g[i]:.1f}" for i in idx) + " |")
    return lines


def headline(res: dict) -> str:
    """One paragraph for the console: the 8-bit target and the smallest stream, MCS11 numbers."""
    cfg = res["config"]
    main = f"{cfg['n_users']}u-{cfg['precoders'][0]}"
    s10 = res["runs"][main]["snr10"]
    t8 = res["target"].get("ptq-t8", {}).get(main, {})
    parts = [
        f"MU-MIMO ({cfg['n_users']} users x 4x1, {cfg['precoders'][0].upper()}), SNR at 10 % PER at MCS11:"
    ]
    for name in ("ideal", "MU (9,7) Ng=4", "MU (9,7) Ng=16", "float32", "ptq-t8", "smallest"):
        if name in s10:
            parts.append(f"{label(name)} {_f(s10[name].get('11'), '.2f', 'not reached')} dB;")
    parts.append(
        f"8-bit vs float32 worst shift over MCS4-11 {_f(t8.get('worst_db'), '+.3f')} dB"
        f" ({'PASS' if t8.get('holds') else 'FAIL'}, limit {cfg['tol_db']} dB)."
    )
    for name, by in res.get("paired", {}).get("shift", {}).items():
        w = max(by.values(), key=lambda d: -1e9 if d["shift_db"] is None else d["shift_db"])
        parts.append(
            f"Paired, 0.25 dB grid: {label(name)} worst {_f(w['shift_db'], '+.3f')} dB "
            f"(95 % [{_f(w['ci95_db'][0], '+.2f')}, {_f(w['ci95_db'][1], '+.2f')}])."
        )
    return " ".join(parts)
