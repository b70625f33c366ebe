"""Fixed-rate trellis-coded quantization (TCQ): the receiver side. numpy only.

b bits per element, no entropy coder. The union codebook has 2**(b+1) levels; quantizer Q0 holds
the even-indexed ones and Q1 the odd-indexed ones (2**b each). A trellis of 2**nu states decides
which quantizer the next element uses: the state's parity bit ``z0`` selects the quantizer, and
the chosen code's lowest bit ``z1`` (which of the two subsets of that quantizer) drives the next
state. The trellis is Ungerboeck's systematic feedback code for one-dimensional signals with
parity-check polynomials (h1, h0) (:data:`POLYNOMIALS`, octal); state bits ``a_1..a_nu`` update as
``a_k' = a_{k+1} ^ h0_k z0 ^ h1_k z1`` with ``z0 = a_1``.

Elements are cut into S interleaved stripes (element i is step i // S of stripe i % S, S =
ceil(d / STRIPE_MAX)), each starting in state 0, so decoding walks all stripes in parallel.
The levels are those of a unit-variance Gaussian source (trained offline by
``scripts/gen_fixed_tcq_levels.py``, shipped in ``data/fixed_tcq_levels.json``): the caller
scales them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np

from .errors import FormatError

#: (h1, h0) parity-check polynomials (octal) per nu = log2(states), Ungerboeck's 1-D codes.
POLYNOMIALS = {2: (0o2, 0o5), 3: (0o04, 0o13), 4: (0o04, 0o23), 5: (0o10, 0o45),
               6: (0o024, 0o103), 7: (0o126, 0o235), 8: (0o362, 0o515)}
BITS = (1, 2, 3, 4)
STRIPE_MAX = 1024
_LEVELS_FILE = Path(__file__).parent / "data" / "fixed_tcq_levels.json"


@cache
def trellis(nu: int) -> tuple[np.ndarray, np.ndarray]:
    """(next state (2**nu, 2) int64 indexed by [state, z1], quantizer (2**nu,) int64)."""
    if nu not in POLYNOMIALS:
        raise FormatError(f"fixed-rate TCQ has no trellis with 2**{nu} states (nu in 2..8)")
    h1, h0 = POLYNOMIALS[nu]
    ns = 1 << nu
    nxt = np.zeros((ns, 2), np.int64)
    quant = np.zeros(ns, np.int64)
    for s in range(ns):
        a = [(s >> k) & 1 for k in range(nu)]
        z0 = a[0]
        quant[s] = z0
        for z1 in (0, 1):
            bits = [(a[k + 1] if k + 1 < nu else 0) ^ ((h0 >> (k + 1)) & z0) ^ ((h1 >> (k + 1)) & z1)
                    for k in range(nu)]
            nxt[s, z1] = sum(v << k for k, v in enumerate(bits))
    nxt.setflags(write=False)
    quant.setflags(write=False)
    return nxt, quant


@cache
def _table() -> dict:
    return json.loads(_LEVELS_FILE.read_text())


def levels(bits: int, nu: int) -> np.ndarray:
    """Reconstruction levels (2, 2**bits) float64 of Q0 and Q1 for a unit-variance Gaussian."""
    key = f"{bits}/{nu}"
    tab = _table()
    if key not in tab:
        raise FormatError(f"fixed-rate TCQ has no codebook for {bits} bits and 2**{nu} states")
    q0 = np.array(tab[key], dtype=np.float64)
    out = np.stack([q0, -q0[::-1]])
    out.setflags(write=False)
    return out


def layout(d: int) -> tuple[int, int]:
    """(stripes S, steps T) for d elements: S = ceil(d / STRIPE_MAX), T = ceil(d / S)."""
    if d <= 0:
        return 0, 0
    s = -(-d // STRIPE_MAX)
    return s, -(-d // s)


def _grid(codes: np.ndarray) -> tuple[np.ndarray, int, int, int]:
    """Rows (r, d) of codes as a (T, r * S) grid of stripe steps, plus r, S, d."""
    rows = codes.reshape(-1, codes.shape[-1]) if codes.ndim > 1 else codes.reshape(1, -1)
    r_n, d = rows.shape
    s_n, t_n = layout(d)
    pad = np.zeros((r_n, s_n * t_n), np.int64)
    pad[:, :d] = rows
    return pad.reshape(r_n, t_n, s_n).transpose(1, 0, 2).reshape(t_n, r_n * s_n), r_n, s_n, d


def _ungrid(grid: np.ndarray, r_n: int, s_n: int, d: int, shape) -> np.ndarray:
    t_n = grid.shape[0]
    return grid.reshape(t_n, r_n, s_n).transpose(1, 0, 2).reshape(r_n, -1)[:, :d].reshape(shape)


def reconstruct(codes: np.ndarray, bits: int, nu: int, lv: np.ndarray | None = None) -> np.ndarray:
    """Reconstruction float64 in units of the source's standard deviation from codes in
    [0, 2**bits), (d,) or (rows, d) with each row coded on its own, walking every stripe's
    trellis from state 0. ``lv``: levels (2, 2**bits) other than the shipped ones (training)."""
    codes = np.asarray(codes, np.int64)
    nxt, quant = trellis(nu)
    lv = levels(bits, nu) if lv is None else lv
    if codes.size and (codes.min() < 0 or codes.max() >= 1 << bits):
        raise FormatError(f"fixed-rate TCQ codes outside [0, {(1 << bits) - 1}]")
    if codes.size == 0:
        return np.zeros(codes.shape)
    grid, r_n, s_n, d = _grid(codes)
    out = np.zeros(grid.shape)
    st = np.zeros(grid.shape[1], np.int64)
    for t in range(grid.shape[0]):
        j = grid[t]
        out[t] = lv[quant[st], j]
        st = nxt[st, j & 1]
    return _ungrid(out, r_n, s_n, d, codes.shape)


def quantizers(codes: np.ndarray, nu: int) -> np.ndarray:
    """The quantizer (0 or 1) each element used, from the codes (training only)."""
    codes = np.asarray(codes, np.int64)
    nxt, quant = trellis(nu)
    if codes.size == 0:
        return np.zeros(codes.shape, np.int64)
    grid, r_n, s_n, d = _grid(codes)
    out = np.zeros(grid.shape, np.int64)
    st = np.zeros(grid.shape[1], np.int64)
    for t in range(grid.shape[0]):
        out[t] = quant[st]
        st = nxt[st, grid[t] & 1]
    return _ungrid(out, r_n, s_n, d, codes.shape)
