"""Channel ageing between sounding and data: PER vs CSI age, and goodput vs sounding interval.

The STA sounds the channel at t = 0 (noisy LS estimate at the data SNR, as in ``experiment``);
data packets at age tau see H(tau) of the same TGn channels fading with the bell Doppler
spectrum (``doppler``). The receiver knows its effective channel (from the data's own LTFs).

Goodput of a sounding interval T (s) for one channel, scheme and SNR: the AP picks the highest
modelled MCS (4/7/9/11, 2 streams) whose PER at the effective SINR measured right after the
sounding is at most 10 % (MCS4 if none), keeps it for the interval, and sends packets at ages
(k + 1/2) T / K, k < K; goodput = rate(MCS) x (1 - mean PER) x (1 - sounding duty cycle), the
duty cycle being the exchange airtime / T (``sounding``). PER is for ``packet_bytes`` packets
(1,458 bytes as in TGax calibration).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..link.phy import Phy
from . import abstraction
from . import beamforming as bf
from .doppler import AgeingChannel, ageing_channels
from .experiment import MCS_LIST, TARGET_PER, Curves, Scheme, TestSet, per_curves
from .link import effective_channel, mmse_sinr
from .mcs import TGAX_PACKET_BYTES, mcs
from .ofdm import data_tones, feedback_tones
from .per_tables import table

STALE_IDEAL = "perfect CSI at sounding"


@dataclass(frozen=True, eq=False)
class AgeingSet:
    """Time-varying test channels and the sounding noise on the Ng = 4 grid (n, 64, nr, nt)."""

    channels: AgeingChannel
    noise_fb: np.ndarray

    @property
    def n(self) -> int:
        return self.noise_fb.shape[0]

    def at_age(self, age_s: float) -> TestSet:
        """Sounding at t = 0, data at ``age_s``: the ``experiment.TestSet`` of that age."""
        ch = self.channels
        return TestSet(
            h_data=ch.at(age_s, data_tones()), h_fb=ch.at(0.0, feedback_tones(4)), noise_fb=self.noise_fb,
            model=ch.model,
        )  # fmt: skip


def make_ageing_set(n: int, fd_hz: float, model: str = "D", seed: int = 1, n_sin: int = 32) -> AgeingSet:
    """``n`` channels of ``model`` fading at Doppler ``fd_hz`` (Hz), seeded."""
    rng = np.random.default_rng(seed)
    ch = ageing_channels(n, model, fd_hz, rng=rng, n_sin=n_sin)
    shape = (n, feedback_tones(4).size, 2, 4)
    noise = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)
    return AgeingSet(ch, noise)


def _with_stale_ideal(aset: AgeingSet, schemes: dict[str, Scheme]) -> dict[str, Scheme]:
    v0 = bf.svd_v(aset.channels.at(0.0, data_tones()))
    return {STALE_IDEAL: lambda v4: v0, **schemes}


def snr10_vs_age(
    aset: AgeingSet,
    schemes: dict[str, Scheme],
    ages_s,
    snr_db: np.ndarray,
    mcs_list=MCS_LIST,
    progress: Callable[[], None] | None = None,
) -> dict:
    """{scheme: {age (s, str): {mcs (str): SNR (dB) at 10 % PER}}}, "perfect CSI at sounding"
    included (nan: not reached on the grid)."""
    sch = _with_stale_ideal(aset, schemes)
    out: dict = {s: {} for s in sch}
    for age in ages_s:
        c: Curves = per_curves(aset.at_age(float(age)), sch, snr_db, mcs_list, ideal=False)
        for s, by in c.snr_at_target().items():
            out[s][str(age)] = {str(m): v for m, v in by.items()}
        if progress is not None:
            progress()
    return out


def _sinr_eff(h: np.ndarray, v_hat: np.ndarray, snr_db: float, mcs_list) -> np.ndarray:
    """Effective SINR (dB) (n, len(mcs_list)) of precoder ``v_hat`` on data channels ``h``."""
    sinr = mmse_sinr(effective_channel(h, v_hat), snr_db)
    return np.stack([abstraction.effective_sinr_db(sinr, m) for m in mcs_list], axis=-1)


def goodput_vs_interval(
    aset: AgeingSet,
    schemes: dict[str, Scheme],
    exchange_us: dict[str, float],
    intervals_s,
    snr_db: float,
    *,
    mcs_list=MCS_LIST,
    ages_per_interval: int = 4,
    packet_bytes: int = TGAX_PACKET_BYTES,
    nss: int = 2,
) -> dict:
    """Goodput (Mbit/s, mean over channels) of each scheme at each sounding interval.

    ``exchange_us[scheme]``: airtime of one sounding exchange with that scheme's report.
    Returns {scheme: {interval (str): {"goodput_mbps", "phy_rate_mbps", "per", "duty_cycle",
    "mcs_share" {mcs: fraction of channels}}}}.
    """
    rates = np.array([Phy(mcs=m, nss=nss).rate_mbps for m in mcs_list])
    cws = [mcs(m).codewords_for(packet_bytes) for m in mcs_list]
    rows = np.arange(aset.n)

    def per(sinr_eff: np.ndarray) -> np.ndarray:  # (n, M) -> (n, M)
        return np.stack([table(m).per_at(sinr_eff[:, i], cws[i]) for i, m in enumerate(mcs_list)], -1)

    v4 = bf.svd_v(bf.noisy_estimate(aset.channels.at(0.0, feedback_tones(4)), snr_db, aset.noise_fb))
    h0 = aset.channels.at(0.0, data_tones())
    v_hat, pick = {}, {}
    for name, fn in schemes.items():
        v_hat[name] = fn(v4)
        ok = per(_sinr_eff(h0, v_hat[name], snr_db, mcs_list)) <= TARGET_PER
        pick[name] = np.where(ok.any(-1), len(mcs_list) - 1 - np.argmax(ok[:, ::-1], -1), 0)  # (n,)
    out: dict = {name: {} for name in schemes}
    for t in intervals_s:
        ages = (np.arange(ages_per_interval) + 0.5) * t / ages_per_interval
        pk = {name: np.zeros(aset.n) for name in schemes}
        for a in ages:
            h = aset.channels.at(float(a), data_tones())
            for name in schemes:
                pk[name] += per(_sinr_eff(h, v_hat[name], snr_db, mcs_list))[rows, pick[name]] / len(ages)
        for name in schemes:
            duty = exchange_us[name] * 1e-6 / t
            good = rates[pick[name]] * (1 - pk[name]) * max(0.0, 1 - duty)
            out[name][str(t)] = {
                "goodput_mbps": float(good.mean()),
                "phy_rate_mbps": float(rates[pick[name]].mean()),
                "per": float(pk[name].mean()),
                "duty_cycle": duty,
                "mcs_share": {str(m): float(np.mean(pick[name] == i)) for i, m in enumerate(mcs_list)},
            }
    return out


@dataclass(frozen=True)
class AgeingConfig:
    """The ageing study: TGn speeds (km/h; fd at 5.25 GHz), CSI ages for the SNR at 10 % PER,
    sounding intervals and SNRs (dB) for goodput, ``n`` channels, report MCS of the exchange."""

    speeds_kmh: tuple = (1.2, 3.0)
    ages_s: tuple = (0.0, 0.01, 0.02, 0.05)
    intervals_s: tuple = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)
    goodput_snr_db: tuple = (20.0, 30.0)
    n: int = 200
    snr_lo: float = 9.0
    snr_hi: float = 45.0
    report_mcs: int = 4
    seed: int = 30_000


def run_ageing(
    acfg: AgeingConfig,
    schemes: dict[str, Scheme],
    report_bits: dict[str, int],
    model_bytes: dict[str, int],
    ae_names: tuple = ("float32", "ptq-t8"),
    progress: Callable[[str, int], Callable[[], None]] | None = None,
) -> dict:
    """SNR at 10 % PER vs CSI age and goodput vs sounding interval at every speed, plus feedback
    bits per second, sounding airtime per second and the airtime break-even in seconds of the
    shared encoders (``model_bytes``) against each standard report, at every interval.

    ``report_bits[scheme]``: bits per sounding of each scheme (AE schemes: ``ae_names``).
    """
    from ..link.airtime import Link
    from .doppler import doppler_hz
    from .sounding import Sounding, airtime_break_even

    snd = Sounding(report_mcs=acfg.report_mcs)
    exch = {s: snd.exchange_us(report_bits[s]) for s in schemes}
    snr = np.arange(acfg.snr_lo, acfg.snr_hi + 1e-9, 1.0)
    link = Link(Phy(mcs=acfg.report_mcs))
    out: dict = {"config": {k: getattr(acfg, k) for k in acfg.__dataclass_fields__}, "speeds": {}}
    out["exchange_us"] = exch
    out["per_second"] = {
        s: {
            str(t): {"feedback_bits": report_bits[s] / t, "airtime_ms": exch[s] / 1000 / t}
            for t in acfg.intervals_s
        }
        for s in schemes
    }
    ae = next((a for a in ae_names if a in schemes), None)
    be: dict = {}
    for enc, nbytes in model_bytes.items():
        m_us = link.airtime_us(nbytes)
        be[enc] = {
            s: {str(t): airtime_break_even(m_us, exch[ae], exch[s]) * t for t in acfg.intervals_s}
            for s in schemes
            if s not in ae_names and ae is not None
        }
    out["break_even_s"] = be
    for i, v in enumerate(acfg.speeds_kmh):
        fd = doppler_hz(v)
        aset = make_ageing_set(acfg.n, fd, seed=acfg.seed + i)
        tick = progress(f"ageing {v:g} km/h", len(acfg.ages_s)) if progress else None
        out["speeds"][str(v)] = {
            "doppler_hz": fd,
            "snr10": snr10_vs_age(aset, schemes, acfg.ages_s, snr, progress=tick),
            "goodput": {
                str(s): goodput_vs_interval(aset, schemes, exch, acfg.intervals_s, s)
                for s in acfg.goodput_snr_db
            },
        }
    return out
