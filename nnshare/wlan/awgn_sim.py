"""Bit-level AWGN simulation of one MCS: LDPC codewords -> Gray QAM -> AWGN -> max-log LLR -> BP.

This is what the AWGN PER tables in ``data/awgn_per.json`` are generated from
(``scripts/gen_wlan_per_tables.py``).
"""

from __future__ import annotations

import numpy as np

from . import qam
from .ldpc_code import code
from .mcs import mcs


def codeword_errors(
    mcs_index: int,
    snr_db: float,
    n_codewords: int,
    rng: np.random.Generator,
    *,
    max_errors: int | None = None,
    batch: int = 50,
) -> tuple[int, int]:
    """(codeword errors, codewords simulated) at Es/N0 = ``snr_db`` over AWGN.

    Stops early once ``max_errors`` codeword errors were seen.
    """
    m = mcs(mcs_index)
    c = code(m.rate)
    dec = c.decoder()
    n0 = 10.0 ** (-snr_db / 10.0)
    errors = done = 0
    while done < n_codewords:
        nb = min(batch, n_codewords - done)
        info = rng.integers(0, 2, size=(nb, c.k), dtype=np.uint8)
        cw = c.encode(info)
        bits = cw.reshape(-1)
        pad = (-bits.size) % m.bits_per_symbol
        bits_p = np.concatenate([bits, rng.integers(0, 2, pad, dtype=np.uint8)])
        x = qam.modulate(bits_p, m.bits_per_symbol)
        noise = (rng.standard_normal(x.size) + 1j * rng.standard_normal(x.size)) * np.sqrt(n0 / 2)
        llr = qam.llr(x + noise, n0, m.bits_per_symbol)[: bits.size].reshape(nb, c.n)
        hard = c.decode(llr, dec)
        errors += int(np.any(hard[:, : c.k] != info, axis=1).sum())
        done += nb
        if max_errors is not None and errors >= max_errors:
            break
    return errors, done
