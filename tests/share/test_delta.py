"""Model-update coding against a shared base, with temporal context, through the one container."""

from pathlib import Path

import numpy as np
import pytest

from nnshare.format import read_stream
from nnshare.format.chain import ChainState, fingerprint_arrays
from nnshare.format.errors import FormatError, SpecError
from nnshare.share import inspect
from nnshare.share.delta import UpdateState, decode_update, encode_update, load_state

DATA = Path(__file__).parent.parent / "data"


@pytest.fixture(scope="module")
def rounds():
    """A base and three correlated updates (momentum-like), as in federated rounds."""
    rng = np.random.default_rng(0)
    base = {"fc.weight": rng.standard_normal((64, 32)).astype(np.float32) * 0.1,
            "fc.bias": rng.standard_normal(64).astype(np.float32) * 0.1}
    direction = {k: rng.standard_normal(v.shape) * 0.01 for k, v in base.items()}
    models = [base]
    for _ in range(3):
        prev = models[-1]
        models.append({k: (prev[k] + direction[k] + rng.standard_normal(v.shape) * 0.004)
                       .astype(np.float32) for k, v in base.items()})
    return models


def sqnr(ref, new, base):
    d = np.concatenate([(ref[k] - base[k]).ravel() for k in ref]).astype(np.float64)
    e = np.concatenate([(ref[k] - new[k]).ravel() for k in ref]).astype(np.float64)
    return 10 * np.log10((d**2).sum() / (e**2).sum())


def test_update_round_trip_is_bit_exact_and_meets_sqnr(rounds):
    base, new = rounds[0], rounds[1]
    enc = encode_update(new, base, sqnr_db=20.0)
    out, state = decode_update(enc.data, base)
    for k in new:
        np.testing.assert_array_equal(out[k], enc.reconstruction[k])
        assert out[k].dtype == np.float32
    assert sqnr(new, out, base) >= 20.0
    assert set(state.codes) == {"fc.weight"}  # the temporal context needs weights' codes only
    assert state == enc.state and state.to_bytes() == enc.state.to_bytes()


def test_update_is_a_v2_stream_inspect_accounts_for_every_bit(rounds):
    base, new = rounds[0], rounds[1]
    enc = encode_update(new, base, sqnr_db=20.0)
    st = read_stream(enc.data, [(k, v.shape) for k, v in base.items()])
    assert (st.version, st.kind, st.mode) == (2, "update", "agreed")
    assert st.base_fingerprint == fingerprint_arrays(base) and st.chain_fingerprint is None
    rep = inspect(enc.data, layout=[(k, v.shape) for k, v in base.items()])
    assert rep.kind == "update" and rep.total_bits == 8 * len(enc.data)
    assert sum(s.bits for s in enc.sections) == 8 * len(enc.data)
    assert rep.header_bits == 8 * (4 + 1 + 1 + 1 + 1 + 8 + 8 + 4)  # agreed, base fingerprint
    assert any("ec:tcq8" in r.scheme for r in rep.rows)
    with pytest.raises(FormatError, match="agreed-architecture"):
        inspect(enc.data)


def test_chain_state_is_compact(rounds):
    """The state kept between rounds: <= 1/8 of the float32 model (it was 32 bits/param)."""
    state = None
    for r in range(1, 4):
        enc = encode_update(rounds[r], rounds[r - 1], state=state, sqnr_db=20.0)
        state = enc.state
        float32_bytes = 4 * sum(v.size for v in rounds[r].values())
        assert state.nbytes <= float32_bytes / 8, (r, state.nbytes, float32_bytes)
        assert read_stream(state.to_bytes()).kind == "state"
        back = ChainState.from_bytes(state.to_bytes())
        assert back.fingerprint == state.fingerprint
        for k, c in state.codes.items():
            assert c.dtype == np.int32 and c.size == rounds[r][k].size


def test_chain_with_temporal_context_saves_bits_and_needs_the_previous_update(rounds):
    enc1 = encode_update(rounds[1], rounds[0], sqnr_db=15.0)
    _, state_rx = decode_update(enc1.data, rounds[0])
    with_ctx = encode_update(rounds[2], rounds[1], state=enc1.state, step=max(enc1.steps.values()))
    without = encode_update(rounds[2], rounds[1], step=max(enc1.steps.values()))
    assert len(with_ctx.data) < 0.9 * len(without.data)
    assert any("temporal" in m for m in with_ctx.models.values())
    out, _ = decode_update(with_ctx.data, rounds[1], state=state_rx)
    for k in out:
        np.testing.assert_array_equal(out[k], with_ctx.reconstruction[k])
    layout = [(k, v.shape) for k, v in rounds[1].items()]
    rep = inspect(with_ctx.data, layout=layout, chain=state_rx)
    assert rep.chain_fingerprint == state_rx.fingerprint and rep.total_bits == 8 * len(with_ctx.data)
    with pytest.raises(FormatError, match="previous update"):
        inspect(with_ctx.data, layout=layout)
    with pytest.raises(FormatError, match="previous update"):
        decode_update(with_ctx.data, rounds[1])
    _, other_state = decode_update(without.data, rounds[1])
    with pytest.raises(FormatError, match="previous-update mismatch"):
        decode_update(with_ctx.data, rounds[1], state=other_state)


def test_wrong_or_missing_base_is_rejected(rounds):
    base, new = rounds[0], rounds[1]
    enc = encode_update(new, base, sqnr_db=20.0)
    wrong = {k: v.copy() for k, v in base.items()}
    wrong["fc.bias"][3] = np.nextafter(wrong["fc.bias"][3], np.float32(1))  # one ulp
    with pytest.raises(FormatError, match="base fingerprint mismatch"):
        decode_update(enc.data, wrong)
    with pytest.raises(FormatError, match="supply the base"):
        decode_update(enc.data, None)
    with pytest.raises(FormatError, match="fingerprint mismatch"):
        decode_update(enc.data, {"fc.weight": base["fc.weight"]})


def test_corrupted_update_is_format_error(rounds):
    enc = encode_update(rounds[1], rounds[0], sqnr_db=12.0)
    for i in range(0, len(enc.data), 7):
        bad = bytearray(enc.data)
        bad[i] ^= 0x10
        with pytest.raises(FormatError):
            decode_update(bytes(bad), rounds[0])
    for cut in range(0, len(enc.data), 11):
        with pytest.raises(FormatError):
            decode_update(enc.data[:cut], rounds[0])


def test_state_round_trips_through_bytes(rounds):
    enc = encode_update(rounds[1], rounds[0], sqnr_db=15.0)
    blob = enc.state.to_bytes()
    back = UpdateState.from_bytes(blob)
    assert back.fingerprint == enc.state.fingerprint
    nxt = encode_update(rounds[2], rounds[1], state=enc.state, step=0.002)
    out, _ = decode_update(nxt.data, rounds[1], state=back)
    np.testing.assert_array_equal(out["fc.bias"], nxt.reconstruction["fc.bias"])
    for i in range(len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 0x04
        with pytest.raises(FormatError):
            UpdateState.from_bytes(bytes(bad))
    for cut in range(len(blob)):
        with pytest.raises(FormatError):
            UpdateState.from_bytes(blob[:cut])


def test_version1_update_streams_and_states_still_decode():
    """NNSU / NNSS files written by format v1 decode to the stored values forever."""
    ref = np.load(DATA / "golden_v1_update.npz", allow_pickle=False)
    part = {p: {k.split("/", 1)[1]: ref[k] for k in ref.files if k.startswith(p + "/")}
            for p in ("base", "m1", "r1", "r2")}
    out1, st1 = decode_update((DATA / "golden_v1_update_1.nnsu").read_bytes(), part["base"])
    state = load_state((DATA / "golden_v1_update_1.nnss").read_bytes())
    assert state == st1
    out2, _ = decode_update((DATA / "golden_v1_update_2.nnsu").read_bytes(), part["m1"],
                            state=state)
    for k in part["r1"]:
        assert np.array_equal(out1[k], part["r1"][k]) and np.array_equal(out2[k], part["r2"][k])
    with pytest.raises(FormatError, match="previous update"):
        decode_update((DATA / "golden_v1_update_2.nnsu").read_bytes(), part["m1"])


def test_bad_arguments_are_spec_errors(rounds):
    with pytest.raises(SpecError, match="exactly one"):
        encode_update(rounds[1], rounds[0])
    with pytest.raises(SpecError, match="differ in tensors"):
        encode_update({"x": np.zeros(3)}, rounds[0], step=0.1)
    unchanged = encode_update(rounds[0], rounds[0], step=0.01)  # zero update: no payload
    out, _ = decode_update(unchanged.data, rounds[0])
    np.testing.assert_array_equal(out["fc.weight"], rounds[0]["fc.weight"])
