"""802.11ax (HE SU) and 802.11be (EHT, one user) PHY timing: data rates and PPDU durations.

Formulas (IEEE 802.11ax-2021 clause 27, 802.11be-2024 clause 36), all times in microseconds:

- N_DBPS = floor(N_SD * N_BPSCS * N_SS * R) data bits per OFDM symbol (LDPC, no DCM), with N_SD
  the data subcarriers of the full-band RU (234 / 468 / 980 / 1960 / 3920 at 20 / 40 / 80 / 160 /
  320 MHz) and N_BPSCS, R from the MCS table below;
- T_SYM = 12.8 + GI (13.6 / 14.4 / 16.0 us at GI 0.8 / 1.6 / 3.2 us);
- HE SU preamble = L-STF 8 + L-LTF 8 + L-SIG 4 + RL-SIG 4 + HE-SIG-A 8 + HE-STF 4 +
  N_LTF * (3.2 * LTF size + GI), N_LTF = 1, 2, 4, 4, 6, 6, 8, 8 for 1..8 streams;
  EHT: U-SIG 8 + EHT-SIG (``eht_sig_symbols`` * 4) in place of HE-SIG-A;
- data field: N_SYM = ceil((16 + 8 * PSDU octets) / N_DBPS) symbols (16 SERVICE bits; LDPC has no
  tail bits); pre-FEC padding to a quarter symbol and the LDPC extra symbol segment are not
  modelled (at most one symbol), packet extension ``pe_us`` (default 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import SpecError

# MCS -> (N_BPSCS, rate numerator, rate denominator); 12 and 13 are EHT only.
MCS_TABLE: dict[int, tuple[int, int, int]] = {
    0: (1, 1, 2), 1: (2, 1, 2), 2: (2, 3, 4), 3: (4, 1, 2), 4: (4, 3, 4), 5: (6, 2, 3),
    6: (6, 3, 4), 7: (6, 5, 6), 8: (8, 3, 4), 9: (8, 5, 6), 10: (10, 3, 4), 11: (10, 5, 6),
    12: (12, 3, 4), 13: (12, 5, 6),
}  # fmt: skip
MODULATION = {1: "BPSK", 2: "QPSK", 4: "16-QAM", 6: "64-QAM", 8: "256-QAM", 10: "1024-QAM",
              12: "4096-QAM"}  # fmt: skip
N_SD = {20: 234, 40: 468, 80: 980, 160: 1960, 320: 3920}
N_LTF = {1: 1, 2: 2, 3: 4, 4: 4, 5: 6, 6: 6, 7: 8, 8: 8}
GIS = (0.8, 1.6, 3.2)
SERVICE_BITS = 16
LEGACY_US = 8.0 + 8.0 + 4.0  # L-STF + L-LTF + L-SIG
STANDARDS = ("ax", "be")


@dataclass(frozen=True)
class Phy:
    """One transmit configuration: standard ("ax" = HE SU PPDU, "be" = EHT MU PPDU to one user),
    MCS, bandwidth (MHz), spatial streams, guard interval (us), HE/EHT-LTF size (1, 2 or 4;
    default 2x for GI 0.8/1.6 and 4x for GI 3.2) and packet extension (us)."""

    mcs: int = 0
    bandwidth_mhz: int = 20
    nss: int = 1
    gi_us: float = 0.8
    standard: str = "ax"
    ltf: int | None = None
    pe_us: float = 0.0
    eht_sig_symbols: int = 2

    def __post_init__(self) -> None:
        if self.standard not in STANDARDS:
            raise SpecError(f"standard must be 'ax' or 'be', got {self.standard!r}")
        top = 11 if self.standard == "ax" else 13
        if isinstance(self.mcs, bool) or not isinstance(self.mcs, int) or not 0 <= self.mcs <= top:
            raise SpecError(f"802.11{self.standard} MCS must be 0-{top}, got {self.mcs!r}")
        bws = (20, 40, 80, 160) if self.standard == "ax" else (20, 40, 80, 160, 320)
        if self.bandwidth_mhz not in bws:
            raise SpecError(f"802.11{self.standard} bandwidth must be one of {bws} MHz, "
                            f"got {self.bandwidth_mhz!r}")
        if isinstance(self.nss, bool) or self.nss not in N_LTF:
            raise SpecError(f"spatial streams must be 1-8, got {self.nss!r}")
        if self.gi_us not in GIS:
            raise SpecError(f"guard interval must be 0.8, 1.6 or 3.2 us, got {self.gi_us!r}")
        if self.ltf not in (None, 1, 2, 4):
            raise SpecError(f"LTF size must be 1, 2 or 4, got {self.ltf!r}")
        if self.ltf_size == 1 and self.gi_us != 0.8 or self.gi_us == 3.2 and self.ltf_size != 4:
            raise SpecError(f"LTF {self.ltf_size}x with GI {self.gi_us} us is not a valid combination")
        if not (isinstance(self.pe_us, int | float) and self.pe_us in (0, 4, 8, 12, 16)):
            raise SpecError(f"packet extension must be 0, 4, 8, 12 or 16 us, got {self.pe_us!r}")

    @property
    def ltf_size(self) -> int:
        return self.ltf if self.ltf is not None else (4 if self.gi_us == 3.2 else 2)

    @property
    def n_sd(self) -> int:
        """Data subcarriers of the full-band RU."""
        return N_SD[self.bandwidth_mhz]

    @property
    def n_bpscs(self) -> int:
        """Coded bits per subcarrier per stream."""
        return MCS_TABLE[self.mcs][0]

    @property
    def coding_rate(self) -> tuple[int, int]:
        """LDPC rate as (numerator, denominator)."""
        return MCS_TABLE[self.mcs][1:]

    @property
    def modulation(self) -> str:
        return MODULATION[self.n_bpscs]

    @property
    def n_dbps(self) -> int:
        """Data bits per OFDM symbol, all streams: floor(N_SD * N_BPSCS * N_SS * R)."""
        num, den = self.coding_rate
        return self.n_sd * self.n_bpscs * self.nss * num // den

    @property
    def symbol_us(self) -> float:
        """OFDM data symbol duration: 12.8 us + GI."""
        return 12.8 + self.gi_us

    @property
    def rate_mbps(self) -> float:
        """PHY data rate in Mbit/s: N_DBPS / T_SYM."""
        return self.n_dbps / self.symbol_us

    @property
    def preamble_us(self) -> float:
        """Preamble duration (legacy + RL-SIG + SIG fields + STF + LTFs), us."""
        ltf_us = N_LTF[self.nss] * (3.2 * self.ltf_size + self.gi_us)
        sig = 8.0 if self.standard == "ax" else 8.0 + 4.0 * self.eht_sig_symbols
        return LEGACY_US + 4.0 + sig + 4.0 + ltf_us

    def data_symbols(self, psdu_octets: int) -> int:
        """OFDM symbols of the data field carrying ``psdu_octets``."""
        return math.ceil((SERVICE_BITS + 8 * psdu_octets) / self.n_dbps)

    def data_us(self, psdu_octets: int) -> float:
        """Data-field duration (us) of a PSDU of ``psdu_octets``."""
        return self.data_symbols(psdu_octets) * self.symbol_us

    def ppdu_us(self, psdu_octets: int) -> float:
        """Whole PPDU duration (us): preamble + data field + packet extension."""
        return self.preamble_us + self.data_us(psdu_octets) + self.pe_us

    def describe(self) -> str:
        num, den = self.coding_rate
        return (f"{'HE' if self.standard == 'ax' else 'EHT'} MCS{self.mcs} ({self.modulation} "
                f"{num}/{den}) {self.bandwidth_mhz} MHz {self.nss}SS GI {self.gi_us:g} us, "
                f"{self.rate_mbps:.1f} Mbit/s")


# Non-HT (legacy OFDM) rates for control responses: Mbit/s -> N_DBPS; 4 us symbols, 20 us preamble.
LEGACY_NDBPS = {6: 24, 9: 36, 12: 48, 18: 72, 24: 96, 36: 144, 48: 192, 54: 216}


def legacy_ppdu_us(octets: int, rate_mbps: int = 24) -> float:
    """Duration (us) of a non-HT PPDU: 20 + 4 * ceil((16 + 8 * octets + 6) / N_DBPS)."""
    if rate_mbps not in LEGACY_NDBPS:
        raise SpecError(f"legacy rate must be one of {sorted(LEGACY_NDBPS)} Mbit/s, got {rate_mbps!r}")
    return 20.0 + 4.0 * math.ceil((16 + 8 * octets + 6) / LEGACY_NDBPS[rate_mbps])
