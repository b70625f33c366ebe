"""Bit-level link simulation of beamformed packets, to check the PHY abstraction.

Per packet (one channel realisation, block fading): 802.11 LDPC codewords (n = 1944) -> a fixed
pseudo-random bit interleaver over the whole packet (a stand-in for the stream parser and LDPC
tone mapper) -> Gray QAM on every data tone and stream -> precoding with V-hat / sqrt(Nss) ->
channel + AWGN -> per-tone MMSE, unbiased -> max-log LLRs with the post-MMSE SINR -> BP
decoding. The packet fails if any codeword fails. No shortening or puncturing (a documented
simplification); the packet is the 1000-byte reference realised as whole codewords.
"""

from __future__ import annotations

import numpy as np

from . import qam
from .ldpc_code import code
from .link import effective_channel
from .mcs import mcs


def packet_errors(
    h: np.ndarray,
    v_hat: np.ndarray,
    snr_db: float,
    mcs_index: int,
    rng: np.random.Generator,
    *,
    interleaver_seed: int = 7,
) -> np.ndarray:
    """Packet error indicator (n,) bool for channels h (n, K, Nr, Nt) and precoders
    v_hat (n, K, Nt, Nss) on the K data tones, at SNR ``snr_db`` (dB per receive antenna)."""
    m = mcs(mcs_index)
    c = code(m.rate)
    dec = c.decoder()
    n0 = 10.0 ** (-snr_db / 10.0)
    g = effective_channel(h, v_hat)  # (n, K, Nr, S)
    n_ch, k_tones, nr, nss = g.shape
    bps = m.bits_per_symbol
    per_sym = k_tones * nss * bps
    coded = m.codewords * c.n
    n_sym = -(-coded // per_sym)
    total = n_sym * per_sym
    perm = np.random.default_rng(interleaver_seed).permutation(total)
    gram = g.conj().swapaxes(-1, -2) @ g
    a_inv = np.linalg.inv(gram + n0 * np.eye(nss))  # (n, K, S, S)
    w = a_inv @ g.conj().swapaxes(-1, -2)  # MMSE filter (n, K, S, Nr)
    mu = np.real(np.diagonal(w @ g, axis1=-2, axis2=-1))  # (n, K, S)
    sinr = np.maximum(mu / np.maximum(1 - mu, 1e-12), 1e-12)
    errors = np.zeros(n_ch, bool)
    for i in range(n_ch):
        info = rng.integers(0, 2, size=(m.codewords, c.k), dtype=np.uint8)
        bits = np.concatenate([c.encode(info).reshape(-1), rng.integers(0, 2, total - coded, dtype=np.uint8)])
        tx_bits = np.empty_like(bits)
        tx_bits[perm] = bits
        x = qam.modulate(tx_bits, bps).reshape(n_sym, k_tones, nss)
        noise = rng.standard_normal((n_sym, k_tones, nr)) + 1j * rng.standard_normal((n_sym, k_tones, nr))
        y = np.einsum("krs,nks->nkr", g[i], x) + np.sqrt(n0 / 2) * noise
        xe = np.einsum("ksr,nkr->nks", w[i], y) / mu[i][None]
        nv = np.broadcast_to((1.0 / sinr[i])[None], xe.shape)
        llr_tx = qam.llr(xe.reshape(-1), nv.reshape(-1), bps)
        llr = llr_tx[perm][:coded].reshape(m.codewords, c.n)
        hard = c.decode(llr, dec)
        errors[i] = bool(np.any(hard[:, : c.k] != info))
    return errors


def snr_at_per(snr_db: np.ndarray, per: np.ndarray, target: float = 0.1) -> float:
    """SNR (dB) where a decreasing PER curve crosses ``target`` (log-PER linear interpolation).

    Returns nan when the curve does not cross the target on the grid.
    """
    snr_db = np.asarray(snr_db, dtype=np.float64)
    lp = np.log10(np.clip(np.asarray(per, dtype=np.float64), 1e-6, 1.0))
    lt = np.log10(target)
    for j in range(len(snr_db) - 1):
        if lp[j] >= lt > lp[j + 1]:
            t = (lp[j] - lt) / (lp[j] - lp[j + 1])
            return float(snr_db[j] + t * (snr_db[j + 1] - snr_db[j]))
    return float("nan")
