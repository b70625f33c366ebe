import numpy as np
import pytest

from nnshare.collab.codecs import CODECS, Codec, Float32, codec, fingerprint, layout_of
from nnshare.collab.feedback import ErrorFeedback
from nnshare.format import FormatError, SpecError, read_stream


def _update(seed=0):
    rng = np.random.default_rng(seed)
    return {"a.weight": rng.normal(size=(48, 32)).astype(np.float32),
            "a.bias": rng.normal(size=48).astype(np.float32),
            "b.weight": rng.normal(size=(10, 48)).astype(np.float32),
            "frozen.weight": np.zeros((4, 4), np.float32)}


CASES = [("fp32", {}), ("qsgd", {"levels": 3}), ("terngrad", {}), ("sign", {}),
         ("topk", {"fraction": 0.05}), ("randk", {"fraction": 0.2}), ("randk", {"unbiased": False}),
         ("rotated", {}), ("rotated", {"nu": 0, "unbiased": True}), ("tcq", {"bits_per_param": 1.0}),
         ("powersgd", {"rank": 2}), ("tcq", {"bits_per_param": 0.5, "unbiased": True}),
         ("tcq", {"bits_per_param": None, "unbiased": True, "step_rms": 20.0})]


@pytest.mark.parametrize("name,opts", CASES)
def test_every_codec_round_trips_through_the_container(name, opts):
    u = _update()
    c = codec(name, **opts)
    base = fingerprint(u)
    data = c.encode(u, seed=5, base=base)
    out = c.decode(data, layout_of(u), base=base)
    assert set(out) == set(u)
    for n in u:
        assert out[n].shape == u[n].shape and out[n].dtype == np.float32
    # the stream is an ordinary agreed-mode container: its accounting is exact
    st = read_stream(data, c.stream_layout(sorted(layout_of(u))))
    assert sum(s.bits for s in st.sections) == 8 * len(data)
    assert st.base_fingerprint == base and st.kind == "update"
    assert read_stream(c.encode(u, seed=5), c.stream_layout(sorted(layout_of(u)))).kind == "model"
    # decoding twice gives the same values; encoding with the same seed the same bytes
    assert c.encode(u, seed=5, base=base) == data
    if name == "fp32":
        for n in u:
            np.testing.assert_array_equal(out[n], u[n])


def test_unbiased_codecs_are_unbiased():
    u = {"w": np.random.default_rng(1).normal(size=512).astype(np.float32)}
    trials = 150  # (the rotated codec's bias is checked in test_mean.py)
    for c in (codec("qsgd", levels=2), codec("terngrad"), codec("randk", fraction=0.25),
              codec("tcq", bits_per_param=0.5, unbiased=True),
              codec("tcq", bits_per_param=None, unbiased=True, step_rms=8.0)):
        assert c.unbiased
        outs = [c.roundtrip(u, seed=s)[0]["w"] for s in range(trials)]
        est = np.mean(outs, axis=0)
        rel = np.sum((est - u["w"]) ** 2) / np.sum(u["w"] ** 2)
        one = np.mean([np.sum((o - u["w"]) ** 2) for o in outs]) / np.sum(u["w"] ** 2)
        assert rel < 2 * one / trials, c.name  # the error of the mean is the variance alone


def test_a_reply_coded_against_another_broadcast_is_refused():
    u = _update()
    c = codec("rotated")
    data = c.encode(u, seed=1, base=fingerprint(u))
    other = fingerprint({**u, "a.bias": u["a.bias"] + 1})
    with pytest.raises(FormatError, match="another round"):
        c.decode(data, layout_of(u), base=other)
    with pytest.raises(FormatError):
        c.decode(data[:-3], layout_of(u), base=fingerprint(u))
    with pytest.raises(FormatError, match="got a model stream"):  # no base: not an update
        c.decode(c.encode(u, seed=1), layout_of(u), base=fingerprint(u))
    with pytest.raises(FormatError):  # another architecture
        c.decode(data, [("a.weight", (48, 32))], base=fingerprint(u))


def test_target_bytes_is_never_exceeded():
    u = _update(2)
    for target in (200, 400, 900):
        data = codec("tcq", bits_per_param=None, target_bytes=target).encode(u)
        assert len(data) <= target
        assert len(data) >= 0.9 * target


def test_unbiased_tcq_meets_its_rate_with_one_step():
    u = _update(3)
    d = sum(a.size for a in u.values() if np.any(a))
    c = codec("tcq", bits_per_param=0.5, unbiased=True)
    assert not c.contractive and c.unbiased
    data = c.encode(u, seed=4, base=1)
    st = read_stream(data, c.stream_layout(sorted(layout_of(u))))
    steps = {float(t.params["scale"]) for n, t in st.tensors.items() if n != "frozen.weight"}
    assert len(steps) == 1  # one global step for every tensor
    payload = sum(s.bits for s in st.sections if s.kind == "payload" and s.name != "frozen.weight")
    assert 0.3 * d <= payload <= 0.5 * d
    for target in (300, 600):
        n = len(codec("tcq", bits_per_param=None, target_bytes=target, unbiased=True).encode(u))
        assert 0.8 * target <= n <= target
    # step_rms: the step is that multiple of the update's RMS (float32)
    # (the RMS of the tensors that are not all zero: a frozen tensor travels as zeros and counts not)
    flat = np.concatenate([a.reshape(-1) for a in u.values() if np.any(a)]).astype(np.float64)
    st = read_stream(codec("tcq", bits_per_param=None, unbiased=True, step_rms=30.0).encode(u, base=1),
                     c.stream_layout(sorted(layout_of(u))))
    want = 30 * np.sqrt(np.mean(flat**2))
    assert float(st.tensors["a.weight"].params["scale"]) == pytest.approx(want, 1e-6)
    with pytest.raises(SpecError, match="unbiased"):
        codec("tcq", bits_per_param=None, step_rms=30.0).encode(u)
    with pytest.raises(SpecError, match="not both"):
        codec("tcq", unbiased=True, step_rms=30.0).encode(u)
    with pytest.raises(SpecError, match="positive"):
        codec("tcq", bits_per_param=None, unbiased=True, step_rms=-1.0).encode(u)
    with pytest.raises(SpecError, match="not contractive"):
        ErrorFeedback(codec("tcq", unbiased=True))


def test_error_feedback_accumulates_what_was_not_sent():
    u = _update(3)
    ef = ErrorFeedback(codec("sign"))
    st = ef.new_state("client-1")
    total_sent = {n: np.zeros_like(a) for n, a in u.items()}
    for r in range(30):
        _, sent = ef.step(u, st, "client-1", seed=r)
        for n in u:
            total_sent[n] += sent[n]
    # with EF the sum of what was sent tracks the sum of the updates: 30 u - residual
    for n in u:
        np.testing.assert_allclose(total_sent[n] + st.memory[n], 30 * u[n], rtol=1e-4, atol=1e-3)
    assert st.nbytes() == sum(a.nbytes for a in u.values())


def test_ef21_estimate_converges_to_a_fixed_update():
    u = _update(4)
    ef = ErrorFeedback(codec("topk", fraction=0.1), kind="ef21")
    st = ef.new_state(7)
    errs = []
    for r in range(25):
        _, est = ef.step(u, st, 7, seed=r)
        errs.append(sum(float(np.sum((est[n] - u[n]) ** 2)) for n in u))
    assert errs[-1] < 0.05 * errs[0]


def test_error_feedback_guards_and_client_state_checks():
    with pytest.raises(SpecError, match="not contractive"):
        ErrorFeedback(codec("qsgd"))
    with pytest.raises(SpecError, match="not contractive"):
        ErrorFeedback(codec("rotated", unbiased=True))
    with pytest.raises(SpecError):
        ErrorFeedback(codec("sign"), kind="ef3")
    ef = ErrorFeedback(codec("sign"))
    st = ef.new_state("a")
    ef.step(_update(), st, "a")
    with pytest.raises(SpecError, match="belongs to client"):
        ef.step(_update(), st, "b")
    with pytest.raises(SpecError, match="different model"):
        ef.step({"x": np.ones(3, np.float32)}, st, "a")


def test_bad_codec_options_and_inputs():
    with pytest.raises(SpecError, match="unknown codec"):
        codec("gzip")
    with pytest.raises(SpecError, match="no option"):
        codec("topk", k=3)
    with pytest.raises(SpecError):
        codec("topk", fraction=0).encode(_update())
    with pytest.raises(SpecError, match="NaN"):
        Float32().encode({"w": np.array([1.0, np.nan], np.float32)})
    with pytest.raises(SpecError):
        Float32().encode({})
    assert set(CODECS) >= {"qsgd", "terngrad", "sign", "topk", "randk", "rotated", "tcq", "powersgd"}
    assert isinstance(codec("fp32"), Codec)
