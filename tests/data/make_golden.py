"""Write the golden streams of formats v1 and v2 (run once; files never change afterwards).

    .venv/bin/python tests/data/make_golden.py

Each ``golden_vN_NAME_MODE.nnsh`` decodes to the arrays in ``golden_vN_NAME.npz`` (no pickle),
forever. v2 adds every stream kind: models (packed, entropy-coded, per-channel widths entropy-coded,
codebook), an update and a chained update against stored bases, their chain state, features.
The v1 update files (``golden_v1_update*``) were written by the v1 writer before it was retired.
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
            data, _ = write_stream(tensors, mode, entropy=entropy, version=1)
            (HERE / f"golden_v1_{name}_{mode}.nnsh").write_bytes(data)
        arrays = {k: t.dequantize() for k, t in tensors.items()}
        np.savez(npz, **arrays)
        layout = "\n".join(f"{k} {','.join(map(str, t.shape))}" for k, t in tensors.items())
        (HERE / f"golden_v1_{name}.layout").write_text(layout + "\n")


def v2_model_tensors() -> dict:
    """Every record kind of a model stream: float, raw, affine per tensor / channel / group /
    per-channel widths, restricted, asymmetric, codebook; entropy-coded ones with ``auto``."""
    from nnshare.quant.codebook import CodebookConfig

    rng = np.random.default_rng(20261201)
    w = rng.laplace(0, 0.05, (12, 40)).astype(np.float32)
    v = rng.standard_normal((3, 2, 4)).astype(np.float32)
    out = golden_tensors()["mixed"]
    out["g"] = quantize(w, CodebookConfig(levels=6, level_dtype="fp16"))
    out["h"] = quantize(w, QuantSpec(bits=7, granularity="channel",
                                     channel_bits=(7, 6, 5, 7, 4, 6, 5, 7, 3, 6, 5, 4)))
    out["i"] = quantize(v, QuantSpec(bits=4, restricted=True, granularity="group", group_size=2))
    return out


def v2_rounds() -> list[dict]:
    """A base and two correlated updates (momentum-like federated rounds)."""
    rng = np.random.default_rng(20261202)
    base = {"fc.weight": (rng.standard_normal((32, 24)) * 0.1).astype(np.float32),
            "fc.bias": (rng.standard_normal(32) * 0.1).astype(np.float32)}
    d = {k: rng.standard_normal(a.shape) * 0.01 for k, a in base.items()}
    models = [base]
    for _ in range(2):
        models.append({k: (models[-1][k] + d[k] + rng.standard_normal(a.shape) * 0.003)
                       .astype(np.float32) for k, a in base.items()})
    return models


def main_v2() -> None:
    """The v2 golden files that do not exist yet."""
    from nnshare.share.delta import decode_update, encode_update
    from nnshare.share.features import encode_features

    def save(name, tensors, entropy, kind="model"):
        npz = HERE / f"golden_v2_{name}.npz"
        if npz.exists():
            return
        for mode in ("self", "agreed"):
            data, _ = write_stream(tensors, mode, entropy=entropy, kind=kind)
            (HERE / f"golden_v2_{name}_{mode}.nnsh").write_bytes(data)
        np.savez(npz, **{k: t.dequantize() for k, t in tensors.items()})
        layout = "\n".join(f"{k} {','.join(map(str, t.shape))}" for k, t in tensors.items())
        (HERE / f"golden_v2_{name}.layout").write_text(layout + "\n")

    model = v2_model_tensors()
    save("model", model, "none")
    lap = np.random.default_rng(20261204).laplace(0, 0.05, (8, 256)).astype(np.float32)
    wide = quantize(lap, QuantSpec(bits=7, granularity="channel",
                                   channel_bits=(7, 5, 6, 4, 6, 5, 7, 6)))
    save("entropy", {**entropy_tensors(), "h": wide, "g": model["g"]}, "auto")
    npz = HERE / "golden_v2_update.npz"
    if not npz.exists():
        m = v2_rounds()
        e1 = encode_update(m[1], m[0], sqnr_db=18.0)
        e2 = encode_update(m[2], m[1], state=e1.state, step=max(e1.steps.values()))
        r1, s1 = decode_update(e1.data, m[0])
        r2, _ = decode_update(e2.data, m[1], state=s1)
        (HERE / "golden_v2_update_1.nnsh").write_bytes(e1.data)
        (HERE / "golden_v2_update_2.nnsh").write_bytes(e2.data)
        (HERE / "golden_v2_update_1_state.nnsh").write_bytes(e1.state.to_bytes())
        arrays = {f"m{i}/{k}": a for i in range(2) for k, a in m[i].items()}
        arrays.update({f"r1/{k}": a for k, a in r1.items()})
        arrays.update({f"r2/{k}": a for k, a in r2.items()})
        arrays.update({f"codes1/{k}": c for k, c in s1.codes.items()})
        np.savez(npz, **arrays)
    npz = HERE / "golden_v2_features.npz"
    if not npz.exists():
        rng = np.random.default_rng(20261203)
        x = np.maximum(rng.standard_normal((4, 64)), 0).astype(np.float32)
        data = encode_features({"act": x, "emb": rng.standard_normal((4, 8)).astype(np.float32)},
                               bits=6)
        (HERE / "golden_v2_features_self.nnsh").write_bytes(data)
        from nnshare.share.features import decode_features

        np.savez(npz, **decode_features(data))


if __name__ == "__main__":
    main()
    main_v2()
