"""Golden streams of format v2 (every stream kind and record kind) decode to the stored values
forever (written once by tests/data/make_golden.py)."""

from pathlib import Path

import numpy as np
import pytest

from nnshare.format import read_stream
from nnshare.format.chain import ChainState
from nnshare.share.delta import decode_update
from nnshare.share.features import decode_features

DATA = Path(__file__).parent.parent / "data"
MODELS = [(n, m) for n in ("model", "entropy") for m in ("self", "agreed")]


def layout(name):
    out = []
    for line in (DATA / f"golden_v2_{name}.layout").read_text().splitlines():
        k, _, dims = line.partition(" ")
        out.append((k, tuple(int(d) for d in dims.split(",") if d)))
    return out


def split(npz, prefix):
    return {k.split("/", 1)[1]: npz[k] for k in npz.files if k.startswith(prefix + "/")}


@pytest.mark.parametrize("name, mode", MODELS)
def test_golden_v2_model_streams_decode_to_stored_values(name, mode):
    data = (DATA / f"golden_v2_{name}_{mode}.nnsh").read_bytes()
    st = read_stream(data, layout(name) if mode == "agreed" else None)
    assert (st.version, st.kind, st.mode) == (2, "model", mode)
    expected = np.load(DATA / f"golden_v2_{name}.npz", allow_pickle=False)
    assert sorted(st.tensors) == sorted(expected.files)
    for k in expected.files:
        got = st.tensors[k].dequantize()
        assert got.dtype == expected[k].dtype and np.array_equal(got, expected[k]), k
    assert sum(s.bits for s in st.sections) == 8 * len(data)


def test_golden_v2_covers_every_record_kind():
    st = read_stream((DATA / "golden_v2_model_self.nnsh").read_bytes())
    schemes = {getattr(t, "spec", None).scheme if hasattr(t, "spec") else type(t).__name__
               for t in st.tensors.values()}
    assert {"affine", "codebook", "FloatTensor", "RawTensor"} <= schemes
    grains = {t.spec.granularity for t in st.tensors.values() if hasattr(t, "spec") and
              t.spec.scheme == "affine"}
    assert grains == {"tensor", "channel", "group"}
    ent = read_stream((DATA / "golden_v2_entropy_self.nnsh").read_bytes())
    coded = {s.name for s in ent.sections if s.note.startswith("ec:")}
    assert {"h", "g", "w", "u"} <= coded  # per-channel widths and codebook entropy-coded too
    assert ent.tensors["h"].spec.channel_bits


def test_golden_v2_updates_chain_state_and_features():
    ref = np.load(DATA / "golden_v2_update.npz", allow_pickle=False)
    m0, m1 = split(ref, "m0"), split(ref, "m1")
    u1 = (DATA / "golden_v2_update_1.nnsh").read_bytes()
    u2 = (DATA / "golden_v2_update_2.nnsh").read_bytes()
    out1, s1 = decode_update(u1, m0)
    state = ChainState.from_bytes((DATA / "golden_v2_update_1_state.nnsh").read_bytes())
    assert state == s1
    for k, c in split(ref, "codes1").items():
        assert np.array_equal(state.codes[k], c)
    out2, _ = decode_update(u2, m1, state=state)
    for k, v in split(ref, "r1").items():
        assert np.array_equal(out1[k], v)
    for k, v in split(ref, "r2").items():
        assert np.array_equal(out2[k], v)
    assert read_stream(u2, [(k, v.shape) for k, v in m1.items()], chain=state).chain_fingerprint \
        == state.fingerprint
    feats = decode_features((DATA / "golden_v2_features_self.nnsh").read_bytes())
    expected = np.load(DATA / "golden_v2_features.npz", allow_pickle=False)
    assert sorted(feats) == sorted(expected.files)
    for k in expected.files:
        assert np.array_equal(feats[k], expected[k])
