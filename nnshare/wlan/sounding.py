"""Airtime of one HE non-trigger-based sounding exchange with one beamformee, end to end.

One channel access, then (802.11ax-2021 26.7, times in us):

    NDPA (non-HT) -- SIFS -- HE sounding NDP -- SIFS -- HE compressed beamforming report (HE SU PPDU)

- NDPA: HE NDP Announcement with one STA Info field: frame control 2 + duration 2 + RA 6 + TA 6 +
  sounding dialog token 1 + STA Info 4 + FCS 4 = 25 octets, in a non-HT PPDU at a basic rate.
- NDP: an HE SU PPDU without a data field: legacy 20 + RL-SIG 4 + HE-SIG-A 8 + HE-STF 4 +
  N_LTF(Nt) HE-LTFs (2x LTF, 1.6 us GI: 8 us each) + packet extension 4 us; Nt = 4 sounds 4 LTFs.
- Report: an Action No Ack frame (no acknowledgement follows): management header 24 + category
  1 + HE action 1 + HE MIMO Control 5 + the compressed beamforming report (angles and per-stream
  SNR, bits rounded up to octets) + FCS 4, as an HE SU PPDU at the report's MCS and streams.
- Access: AIFS + mean backoff before the NDPA (EDCA best effort, ``nnshare.link.Mac``).

PPDU durations come from the one airtime model, ``nnshare.link.phy``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import SpecError
from ..link.airtime import Mac
from ..link.phy import N_LTF, Phy, legacy_ppdu_us

NDPA_OCTETS = 2 + 2 + 6 + 6 + 1 + 4 + 4  # one STA Info field
REPORT_MAC_OCTETS = 24 + 1 + 1 + 5 + 4  # header, category, HE action, HE MIMO Control, FCS
NDP_PE_US = 4.0


@dataclass(frozen=True)
class Sounding:
    """One sounding exchange: ``nt`` AP antennas sounded, the report sent at ``report_mcs`` with
    ``report_nss`` streams over ``bandwidth_mhz``; NDPA at ``control_rate_mbps`` (non-HT)."""

    nt: int = 4
    bandwidth_mhz: int = 20
    report_mcs: int = 4
    report_nss: int = 1
    control_rate_mbps: int = 24
    mac: Mac = field(default_factory=Mac)

    def __post_init__(self) -> None:
        if isinstance(self.nt, bool) or self.nt not in N_LTF:
            raise SpecError(f"sounded antennas must be 1-8, got {self.nt!r}")
        _ = self.report_phy  # validates MCS, bandwidth and streams

    @property
    def report_phy(self) -> Phy:
        return Phy(mcs=self.report_mcs, bandwidth_mhz=self.bandwidth_mhz, nss=self.report_nss)

    @property
    def ndpa_us(self) -> float:
        return legacy_ppdu_us(NDPA_OCTETS, self.control_rate_mbps)

    @property
    def ndp_us(self) -> float:
        """HE sounding NDP: preamble with N_LTF(nt) 2x HE-LTFs at 1.6 us GI + 4 us PE."""
        return Phy(nss=self.nt, bandwidth_mhz=self.bandwidth_mhz, gi_us=1.6, ltf=2).preamble_us + NDP_PE_US

    @staticmethod
    def report_octets(report_bits: int) -> int:
        """MPDU octets of the report frame carrying ``report_bits`` of compressed report."""
        if isinstance(report_bits, bool) or not isinstance(report_bits, int) or report_bits < 0:
            raise SpecError(f"report size must be a non-negative number of bits, got {report_bits!r}")
        return REPORT_MAC_OCTETS + math.ceil(report_bits / 8)

    def report_us(self, report_bits: int) -> float:
        """The report's HE SU PPDU (preamble + data field)."""
        return self.report_phy.ppdu_us(self.report_octets(report_bits))

    @property
    def fixed_us(self) -> float:
        """Everything but the report PPDU: access, NDPA, 2 SIFS, NDP."""
        m = self.mac
        return m.aifs_us + m.backoff_us + self.ndpa_us + m.sifs_us + self.ndp_us + m.sifs_us

    def exchange_us(self, report_bits: int) -> float:
        """Airtime (us) of one whole sounding exchange with a report of ``report_bits``."""
        return self.fixed_us + self.report_us(report_bits)

    def breakdown(self, report_bits: int) -> dict:
        """Each part of the exchange in us."""
        m = self.mac
        return {
            "access_us": m.aifs_us + m.backoff_us,
            "ndpa_us": self.ndpa_us,
            "sifs_us": 2 * m.sifs_us,
            "ndp_us": self.ndp_us,
            "report_us": self.report_us(report_bits),
            "report_octets": self.report_octets(report_bits),
            "exchange_us": self.exchange_us(report_bits),
        }

    def duty_cycle(self, report_bits: int, interval_s: float) -> float:
        """Fraction of airtime spent sounding when sounding every ``interval_s`` seconds."""
        if not interval_s > 0:
            raise SpecError(f"sounding interval must be positive, got {interval_s!r}")
        return self.exchange_us(report_bits) * 1e-6 / interval_s

    def describe(self) -> str:
        return (
            f"sounding of {self.nt} antennas, {self.bandwidth_mhz} MHz, report at HE MCS{self.report_mcs} "
            f"{self.report_nss}SS, NDPA at {self.control_rate_mbps} Mbit/s"
        )


def airtime_break_even(model_us: float, ae_exchange_us: float, std_exchange_us: float) -> float:
    """Soundings after which the model transfer (``model_us`` once) plus AE exchanges take less
    airtime than the standard's exchanges: model_us / (std - ae); inf if the AE saves nothing."""
    saving = std_exchange_us - ae_exchange_us
    return model_us / saving if saving > 1e-9 else math.inf
