"""Overhead arithmetic: model-sharing airtime, feedback bits per sounding, break-even soundings."""

from __future__ import annotations

import math

from ..link.airtime import Link
from ..link.phy import SERVICE_BITS, Phy
from .autoencoder import LATENT, TONES_PER_GROUP
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


def ae_feedback_bits(b_lat: int, ng: int = 4) -> int:
    """AE feedback bits per 20 MHz sounding: 16 latents x ``b_lat`` bits per group of 4 tones
    of the Ng = 4 grid (64 tones -> 16 groups), plus 8 bits of average SNR per stream as in the
    standard's report."""
    groups = feedback_tones(ng).size // TONES_PER_GROUP
    return groups * LATENT * b_lat + 8 * 2


def feedback_table(b_lat: int) -> list[dict]:
    """Feedback bits per sounding: the standard's report at (6,4)/(4,2) x Ng 4/16 and the AE."""
    rows = []
    for ng in (4, 16):
        ns = feedback_tones(ng).size
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
            "reported_tones": int(feedback_tones(4).size),
            "bits": ae_feedback_bits(b_lat),
        }
    )
    return rows


def break_even_soundings(model_bits: int, ae_bits: int, baseline_bits: int) -> float:
    """Soundings after which sharing the model plus AE feedback costs fewer bits than the
    baseline report: model_bits / (baseline_bits - ae_bits) (inf if the AE saves nothing)."""
    saving = baseline_bits - ae_bits
    return model_bits / saving if saving > 0 else math.inf
