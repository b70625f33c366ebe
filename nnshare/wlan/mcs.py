"""802.11ax MCS with PER tables here (LDPC, n = 1944) and the reference packet of the tables.

Rates and durations of every MCS live in the one airtime model, ``nnshare.link.phy``."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..format.errors import SpecError

PSDU_BYTES = 1000  # reference packet length (bytes), realised as whole codewords
TGAX_PACKET_BYTES = 1458  # the TGax calibration packet (bytes)


@dataclass(frozen=True)
class Mcs:
    """One HE MCS: ``bits_per_symbol`` per stream and per tone, LDPC ``rate``."""

    index: int
    modulation: str
    bits_per_symbol: int
    rate: str

    @property
    def k(self) -> int:
        """Information bits per 1944-bit codeword."""
        num, den = (int(x) for x in self.rate.split("/"))
        return 1944 * num // den

    @property
    def codewords(self) -> int:
        """Codewords per reference packet (PSDU_BYTES rounded up to whole codewords)."""
        return self.codewords_for(PSDU_BYTES)

    def codewords_for(self, packet_bytes: int) -> int:
        """Codewords of a packet of ``packet_bytes`` (whole codewords, no shortening)."""
        return math.ceil(8 * packet_bytes / self.k)


MCS_TABLE: dict[int, Mcs] = {
    4: Mcs(4, "16-QAM", 4, "3/4"),
    7: Mcs(7, "64-QAM", 6, "5/6"),
    9: Mcs(9, "256-QAM", 8, "5/6"),
    11: Mcs(11, "1024-QAM", 10, "5/6"),
}


def mcs(index: int) -> Mcs:
    """The MCS entry; only 4, 7, 9 and 11 are modelled."""
    try:
        return MCS_TABLE[int(index)]
    except (KeyError, ValueError):
        raise SpecError(f"MCS {index!r} is not modelled; use one of {sorted(MCS_TABLE)}") from None
