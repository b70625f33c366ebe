"""Overhead arithmetic: model-sharing airtime, feedback bits per sounding, break-even soundings."""

from __future__ import annotations

import math

from ..link.airtime import Link
from ..link.phy import SERVICE_BITS, Phy
from .autoencoder import LATENT, groups
from .beamforming import givens_report_bits
from .ofdm import feedback_tones


def airtime_us(bits: int, mcs_index: int = 0) -> float:
    """Data-field airtime (us) of ``bits`` at HE SU 20 MHz, 1 SS, 0.8 us GI (LDPC: no tail),
    any MCS 0-11: ceil((16 + bits) / N_DBPS) OFDM symbols of 13.6 us; preamble and MAC framing
    excluded (``sharing_airtime_us`` counts them). Computed by the one airtime model, ``nnshare.link``.
    """
    phy = Phy(mcs=mcs_index)
    return math.ceil((SERVICE_BITS + bits) / phy.n_dbps) * phy.symbol_us


def sharing_airtime_us(stream_bytes: int, mcs_index: int = 0) -> float:
    """Whole-transfer airtime (us) of a stream at HE SU 20 MHz, 1 SS, 0.8 us GI: fragments in
    A-MPDUs, preambles, channel access and Block Acks included (``nnshare.link.Link``)."""
    return Link(Phy(mcs=mcs_index)).airtime_us(stream_bytes)


def ae_feedback_bits(b_lat: int, ng: int = 4, bw: int = 20) -> int:
    """AE feedback bits per sounding: ceil(Ns / 4) groups x 16 latents x ``b_lat`` bits on the
    Ng = ``ng`` grid of ``bw`` MHz (20 MHz Ng = 4: 16 groups; 40 MHz: 31; 80 MHz: 63; 160 MHz: 125),
    plus 8 bits of average SNR per stream as in the standard's report."""
    return groups(feedback_tones(ng, bw).size) * LATENT * b_lat + 8 * 2


def feedback_table(b_lat: int, bw: int = 20) -> list[dict]:
    """Feedback bits per sounding at ``bw`` MHz: the standard's report at (6,4)/(4,2) x Ng 4/16
    and the AE."""
    rows = []
    for ng in (4, 16):
        ns = feedback_tones(ng, bw).size
        for bphi, bpsi in ((6, 4), (4, 2)):
            rows.append(
                {
                    "scheme": f"Givens ({bphi},{bpsi}) Ng={ng}",
                    "reported_tones": int(ns),
                    "bits": givens_report_bits(ns, 4, 2, bphi, bpsi),
                }
            )
    rows.append(
        {
            "scheme": f"AE b_lat={b_lat} (Ng=4 grid)",
            "reported_tones": int(feedback_tones(4, bw).size),
            "bits": ae_feedback_bits(b_lat, 4, bw),
        }
    )
    return rows


def break_even_soundings(model_bits: int, ae_bits: int, baseline_bits: int) -> float:
    """Soundings after which sharing the model plus AE feedback costs fewer bits than the
    baseline report: model_bits / (baseline_bits - ae_bits) (inf if the AE saves nothing)."""
    saving = baseline_bits - ae_bits
    return model_bits / saving if saving > 0 else math.inf


def airtime_overhead(
    report_bits: dict[str, int],
    ae_name: str,
    model_bytes: dict[str, int],
    sounding=None,
    intervals_s: tuple = (0.01, 0.1),
    model_mcs: int | None = None,
) -> dict:
    """The feedback overhead in airtime, per exchange and per second, the AE against each report.

    ``report_bits``: bits per sounding of every scheme (the AE's under ``ae_name``);
    ``model_bytes``: stream bytes of each shared encoder, sent once through ``nnshare.link`` at
    HE MCS ``model_mcs`` (default: the report's MCS), 20 MHz or the sounding's bandwidth, 1 SS.
    Returns {"sounding", "rows" (per scheme: us per exchange and its parts, ms of airtime and
    bits per second at each interval, the AE's saving in % of each report's exchange and its
    verdict), "break_even" {encoder: {report: {"soundings", "seconds" {interval: s}}}}}.
    """
    from .sounding import Sounding, airtime_break_even

    snd = sounding if sounding is not None else Sounding()
    mcs_m = snd.report_mcs if model_mcs is None else model_mcs
    ae_us = snd.exchange_us(report_bits[ae_name])
    rows = []
    for name, bits in report_bits.items():
        b = snd.breakdown(bits)
        row = {"scheme": name, "bits": bits, **b}
        row["per_second"] = {
            str(t): {"airtime_ms": b["exchange_us"] / 1000 / t, "feedback_bits": bits / t}
            for t in intervals_s
        }
        if name != ae_name:
            row["ae_saving_percent"] = 100.0 * (1 - ae_us / b["exchange_us"])
            row["ae_airtime"] = (
                "wins" if ae_us < b["exchange_us"] else "ties" if ae_us == b["exchange_us"] else "loses"
            )
        rows.append(row)
    link = Link(Phy(mcs=mcs_m, bandwidth_mhz=snd.bandwidth_mhz))
    be = {}
    for enc, nbytes in model_bytes.items():
        m_us = link.airtime_us(nbytes)
        be[enc] = {"model_us": m_us}
        for name, bits in report_bits.items():
            if name == ae_name:
                continue
            n = airtime_break_even(m_us, ae_us, snd.exchange_us(bits))
            be[enc][name] = {"soundings": n, "seconds": {str(t): n * t for t in intervals_s}}
    return {
        "sounding": {
            "description": snd.describe(),
            "model_link": link.describe(),
            "fixed_us": snd.fixed_us,
            "intervals_s": list(intervals_s),
        },
        "rows": rows,
        "break_even": be,
    }
