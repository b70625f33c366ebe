"""The 802.11 LDPC codes with n = 1944 (rates 3/4 and 5/6): parity-check matrix, encoder, decoder.

The prototype matrices (IEEE Std 802.11-2020, Z = 81) ship as ``data/ldpc_80211_n1944.json``.
Decoding uses the ``ldpc`` package's C++ belief propagation (normalised min-sum), fed with
per-bit LLRs. LLR sign convention: positive means bit 0 is more likely.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import scipy.sparse as sp

from ..format.errors import NNShareError, SpecError

RATES = ("3/4", "5/6")
N = 1944
Z = 81
MAX_ITER = 30
MS_SCALE = 0.75


def prototype(rate: str) -> np.ndarray:
    """Prototype matrix of shifts (rows x 24), -1 for the zero block."""
    if rate not in RATES:
        raise SpecError(f"LDPC rate must be one of {', '.join(RATES)}, got {rate!r}")
    text = resources.files("nnshare.wlan").joinpath("data/ldpc_80211_n1944.json").read_text()
    return np.asarray(json.loads(text)[rate], dtype=np.int64)


def expand(proto: np.ndarray, z: int = Z) -> sp.csr_matrix:
    """Lift a prototype to a binary parity-check matrix (rows*z x cols*z), CSR uint8."""
    rows, cols = [], []
    for i, j in zip(*np.nonzero(proto >= 0), strict=False):
        s = int(proto[i, j])
        r = np.arange(z)
        rows.append(i * z + r)
        cols.append(j * z + (r + s) % z)
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    m, n = proto.shape[0] * z, proto.shape[1] * z
    return sp.csr_matrix((np.ones(r.size, np.uint8), (r, c)), shape=(m, n))


def _gf2_inverse(a: np.ndarray) -> np.ndarray:
    """Inverse of a square binary matrix over GF(2) (Gauss-Jordan); raises if singular."""
    n = a.shape[0]
    m = np.concatenate([a.astype(np.uint8) & 1, np.eye(n, dtype=np.uint8)], axis=1)
    for col in range(n):
        piv = np.nonzero(m[col:, col])[0]
        if piv.size == 0:
            raise SpecError("parity part of the LDPC matrix is singular")
        p = col + piv[0]
        if p != col:
            m[[col, p]] = m[[p, col]]
        hit = np.nonzero(m[:, col])[0]
        hit = hit[hit != col]
        m[hit] ^= m[col]
    return m[:, n:]


@dataclass(frozen=True, eq=False)
class LdpcCode:
    """One code: ``h`` (m x n sparse), ``k`` information bits, systematic first k positions."""

    rate: str
    h: sp.csr_matrix
    k: int
    hp_inv: np.ndarray  # (m, m) float32 0/1: inverse of the parity part over GF(2)
    hs: np.ndarray  # (m, k) float32 0/1: information part

    @property
    def n(self) -> int:
        return int(self.h.shape[1])

    def encode(self, info: np.ndarray) -> np.ndarray:
        """Codewords (batch, n) uint8 from information bits (batch, k)."""
        info = np.atleast_2d(np.asarray(info, dtype=np.uint8))
        if info.shape[1] != self.k:
            raise SpecError(f"expected {self.k} information bits per codeword, got {info.shape[1]}")
        syn = (info.astype(np.float32) @ self.hs.T) % 2
        par = (syn @ self.hp_inv.T) % 2
        return np.concatenate([info, par.astype(np.uint8)], axis=1)

    def decoder(self):
        """A fresh ``ldpc.BpDecoder`` (normalised min-sum, scale 0.75, at most 30 iterations)."""
        try:
            from ldpc import BpDecoder
        except ImportError:  # pragma: no cover
            raise NNShareError(
                "LDPC decoding needs the 'ldpc' package: pip install 'nnshare[wlan]'"
            ) from None
        return BpDecoder(
            self.h,
            error_rate=0.1,
            max_iter=MAX_ITER,
            bp_method="minimum_sum",
            ms_scaling_factor=MS_SCALE,
            input_vector_type="received_vector",
        )

    def decode(self, llr: np.ndarray, decoder=None) -> np.ndarray:
        """Hard decisions (batch, n) uint8 after BP from per-bit LLRs (batch, n)."""
        llr = np.atleast_2d(np.asarray(llr, dtype=np.float64))
        dec = decoder if decoder is not None else self.decoder()
        out = np.empty(llr.shape, np.uint8)
        for i, row in enumerate(llr):
            a = np.minimum(np.abs(row), 30.0)
            p = 1.0 / (1.0 + np.exp(a))
            hard = (row < 0).astype(np.uint8)
            dec.update_channel_probs(np.clip(p, 1e-13, 0.5 - 1e-9))
            out[i] = dec.decode(hard)
        return out


@cache
def code(rate: str) -> LdpcCode:
    """The 802.11 n = 1944 LDPC code at ``rate`` ("3/4" or "5/6"), built once and cached."""
    proto = prototype(rate)
    h = expand(proto)
    m, n = h.shape
    k = n - m
    dense = h.toarray()
    hp_inv = _gf2_inverse(dense[:, k:]).astype(np.float32)
    return LdpcCode(rate=rate, h=h, k=k, hp_inv=hp_inv, hs=dense[:, :k].astype(np.float32))
