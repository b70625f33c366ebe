"""Made once, with nnshare at commit 59a9486 (float64 tables, before the INT flag), by
`PYTHONPATH=<that tree> python tests/data/make_legacy_entropy.py`: legacy rANS and range
payloads that every later version must decode bit-exactly (tests/format/test_entropy_tables.py)."""
import numpy as np

from nnshare.format.entropy import contexts as cx
from nnshare.format.entropy import describe, encode_codes


def trellis_codes(levels, states=4):
    trans, quant = cx.TRELLISES[states]
    n = levels.size
    n_s, t = cx.stripes(n)
    k = np.zeros(n_s * t, np.int64)
    k[:n] = levels
    k = k.reshape(n_s, t)
    r = np.empty_like(k)
    state = np.zeros(n_s, np.int8)
    for step in range(t):
        r[:, step] = cx.k_to_r(k[:, step], quant[state])
        state = trans[state, k[:, step] & 1]
    return r.reshape(-1)[:n]

rng = np.random.default_rng(2024)
n = 4000
prev = np.rint(rng.standard_normal(n) * 3).astype(np.int64)
cases = {
    "iid_gauss": (np.rint(rng.standard_normal(n) * 6), "iid", -128, 127),
    "iid_laplace": (np.rint(rng.laplace(size=n) * 4), "iid", -128, 127),
    "iid_wide": (np.rint(rng.standard_normal(n) * 2000), "iid", -(2**14), 2**14 - 1),
    "rowcol+neighbour": (np.rint(rng.laplace(size=n) * np.repeat(rng.random(n // 40) * 8, 40)),
                         "rowcol+neighbour", -128, 127),
    "tcq8+rowcol+neighbour": (np.rint(rng.standard_normal(n) * 5), "tcq8+rowcol+neighbour", -128, 127),
    "tcq+temporal": (np.rint(prev * 0.5 + rng.standard_normal(n)), "tcq+temporal", -128, 127),
}
out = {}
for name, (x, model, qmin, qmax) in cases.items():
    x = x.astype(np.int64)
    if "tcq" in model:
        x = trellis_codes(x, 8 if "tcq8" in model else 4)
    x = np.clip(x, qmin, qmax).astype(np.int32)
    ctx = prev if "temporal" in model else None
    for coder in ("rans", "range"):
        p = encode_codes(x, qmin, qmax, models=model, row_len=40, context=ctx, coder=coder)
        d = describe(p, n, qmin, qmax)
        print(name, coder, d["coder"], sorted(set(d["dists"])), len(p))
        out[f"{name}.{coder}.payload"] = np.frombuffer(p, np.uint8)
    out[f"{name}.codes"] = x
    out[f"{name}.range"] = np.array([qmin, qmax])
    if ctx is not None:
        out[f"{name}.context"] = ctx
np.savez_compressed("/work/wt/entropy/tests/data/legacy_entropy_payloads.npz", **out)
