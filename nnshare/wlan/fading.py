"""MPDU losses from the project's PHY abstraction: a fading channel drawn per PPDU, the
post-MMSE SINR per tone and stream, RBIR effective SINR, and the AWGN codeword error table.

A loss model for ``nnshare.link.blockack.deliver``: every PPDU sees one TGn channel draw (block
fading, HE 20 MHz RU242, ideal SVD beamforming with ``nss`` streams over ``nt`` x ``nr``
antennas); an MPDU of L octets spans ceil(8 L / k) LDPC codewords of k information bits and is
lost with probability 1 - (1 - CWER(SINR_eff))^codewords, independently given the channel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import SpecError
from .abstraction import effective_sinr_db
from .beamforming import svd_v
from .channels import MODELS, generate
from .link import effective_channel, mmse_sinr
from .mcs import mcs
from .per_tables import table


@dataclass(frozen=True)
class FadingLoss:
    """MPDU loss at ``mcs_index`` and average SNR ``snr_db`` on TGn ``model`` fading."""

    mcs_index: int
    snr_db: float
    model: str = "D"
    nt: int = 2
    nr: int = 2
    nss: int = 1

    def __post_init__(self) -> None:
        mcs(self.mcs_index)  # refuses an MCS without a PER table
        if self.model not in MODELS:
            raise SpecError(f"channel model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if not 1 <= self.nss <= min(self.nt, self.nr):
            raise SpecError(f"{self.nss} streams need at least as many antennas at each side")

    def sinr_eff_db(self, rng: np.random.Generator) -> float:
        """Effective SINR (dB) of one channel draw."""
        h = generate(1, self.model, nt=self.nt, nr=self.nr, rng=rng)
        g = effective_channel(h, svd_v(h, self.nss))
        return float(effective_sinr_db(mmse_sinr(g, self.snr_db), self.mcs_index)[0])

    def per(self, mpdu_octets: int, rng: np.random.Generator) -> float:
        """Loss probability of an MPDU of ``mpdu_octets`` on one channel draw."""
        return float(self._per(np.asarray([mpdu_octets]), self.sinr_eff_db(rng))[0])

    def _per(self, mpdu_octets: np.ndarray, sinr_eff_db: float) -> np.ndarray:
        m = mcs(self.mcs_index)
        cw = float(table(self.mcs_index).cwer_at(sinr_eff_db))
        words = np.ceil(8 * np.asarray(mpdu_octets) / m.k)
        return 1.0 - (1.0 - cw) ** words

    def lost(self, mpdu_octets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        p = self._per(mpdu_octets, self.sinr_eff_db(rng))
        return rng.random(len(p)) < p

    def mean_per(self, mpdu_octets: int, draws: int = 200, seed: int = 0) -> float:
        """MPDU loss rate averaged over ``draws`` channel draws."""
        rng = np.random.default_rng(seed)
        return float(np.mean([self.per(mpdu_octets, rng) for _ in range(draws)]))


def codewords(mpdu_octets: int, mcs_index: int) -> int:
    """LDPC codewords an MPDU spans at this MCS."""
    return math.ceil(8 * mpdu_octets / mcs(mcs_index).k)
