"""Train the fixed-rate TCQ codebooks shipped in nnshare/format/data/fixed_tcq_levels.json.

Lloyd iterations on a unit-variance Gaussian sample: Viterbi search with the current levels, then
each level moves to the mean of the samples it reconstructs; levels are kept antisymmetric
(Q1 = -reversed(Q0)). Deterministic (fixed seed); run once, the file is committed:
    python scripts/gen_fixed_tcq_levels.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from nnshare.format.fixed_tcq import _LEVELS_FILE, BITS, POLYNOMIALS, quantizers, reconstruct
from nnshare.quant.fixed_tcq import encode


def train(bits: int, nu: int, n: int, iters: int, seed: int = 20261201) -> tuple[list[float], float]:
    u = np.random.default_rng(seed).standard_normal(n)
    nb = 1 << bits
    step = {1: 0.8, 2: 0.5, 3: 0.3, 4: 0.17}[bits]
    union = (np.arange(2 * nb) - (2 * nb - 1) / 2) * step
    lv = np.stack([union[0::2], union[1::2]])
    for _ in range(iters):
        codes = encode(u, bits, nu, lv)
        q = quantizers(codes, nu)
        new = lv.copy()
        for qq in range(2):
            for j in range(nb):
                m = (q == qq) & (codes == j)
                if m.any():
                    new[qq, j] = u[m].mean()
        q0 = 0.5 * (new[0] - new[1][::-1])  # antisymmetric: Q1 = -reversed(Q0)
        lv = np.stack([q0, -q0[::-1]])
    codes = encode(u, bits, nu, lv)
    d = float(np.mean((u - reconstruct(codes, bits, nu, lv)) ** 2))
    return [float(v) for v in lv[0]], d


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1 << 17
    out = {}
    for bits in BITS:
        for nu in POLYNOMIALS:
            t = time.time()
            q0, d = train(bits, nu, n, iters=10)
            out[f"{bits}/{nu}"] = [round(v, 6) for v in q0]
            print(f"bits {bits} states {1 << nu:3d}: D {d:.4f} ({10 * np.log10(1 / d):.2f} dB) "
                  f"{time.time() - t:.1f} s", flush=True)
    Path(_LEVELS_FILE).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
