"""Write the golden streams of format v1 (run once; the files must never change afterwards).

    .venv/bin/python tests/data/make_golden.py

Each ``golden_v1_NAME.nnsh`` decodes to the arrays in ``golden_v1_NAME.npz`` (no pickle), forever.
"""

from pathlib import Path

import numpy as np

from nnshare.format import FloatTensor, QuantSpec, RawTensor, write_stream
from nnshare.quant import quantize

HERE = Path(__file__).parent


def golden_tensors() -> dict[str, dict]:
    rng = np.random.default_rng(20261122)
    w = rng.standard_normal((6, 5)).astype(np.float32)
    v = rng.standard_normal((3, 2, 4)).astype(np.float32)
    return {
        "seed_ptq_t8": {
            "0.weight": quantize(w, QuantSpec(bits=8)),
            "0.bias": FloatTensor(w[0].copy()),
        },
        "mixed": {
            "a": quantize(w, QuantSpec(bits=3, symmetric=False, granularity="channel", axis=1)),
            "b": quantize(v, QuantSpec(bits=5, granularity="group", group_size=3, axis=2,
                                       scale_dtype="fp16")),
            "c": quantize(w, QuantSpec(bits=8, granularity="channel",
                                       channel_bits=(2, 8, 3, 4, 1, 6), symmetric=False)),
            "d": quantize(np.float32(0.7), QuantSpec(bits=16, restricted=True, scale_dtype="bf16")),
            "e": FloatTensor(v[0, 0].copy(), "bf16"),
            "f": RawTensor(np.array([3, -1], np.int64)),
        },
    }


def entropy_tensors() -> dict:
    """Entropy-coded records (coding 1): Laplacian-like codes, a sparse update-like tensor."""
    rng = np.random.default_rng(7)
    w = rng.laplace(0, 0.05, (32, 48)).astype(np.float32)
    sparse = np.zeros((16, 64), np.float32)
    sparse[rng.integers(0, 16, 20), rng.integers(0, 64, 20)] = 0.5
    return {
        "w": quantize(w, QuantSpec(bits=6, granularity="channel")),
        "u": quantize(sparse, QuantSpec(bits=4, symmetric=False)),
        "b": FloatTensor(w[0].copy()),
    }


def main() -> None:
    """Write the golden files that do not exist yet; existing ones never change."""
    cases = {n: (t, "none") for n, t in golden_tensors().items()}
    cases["entropy"] = (entropy_tensors(), "auto")
    for name, (tensors, entropy) in cases.items():
        npz = HERE / f"golden_v1_{name}.npz"
        if npz.exists():
            continue
        for mode in ("self", "agreed"):
            data, _ = write_stream(tensors, mode, entropy=entropy)
            (HERE / f"golden_v1_{name}_{mode}.nnsh").write_bytes(data)
        arrays = {k: t.dequantize() for k, t in tensors.items()}
        np.savez(npz, **arrays)
        layout = "\n".join(f"{k} {','.join(map(str, t.shape))}" for k, t in tensors.items())
        (HERE / f"golden_v1_{name}.layout").write_text(layout + "\n")


if __name__ == "__main__":
    main()
