import pytest

from nnshare import QuantSpec, SpecError
from nnshare.plan import PRESETS, Plan, Rule, preset


def test_presets_and_seed_scheme():
    p = preset("ptq-t8")
    got = p.resolve({"w": (40, 64), "b": (40,)})
    assert got["w"] == QuantSpec(bits=8, symmetric=True, granularity="tensor")
    assert got["b"] == "fp32"
    assert preset("w4-channel").resolve({"w": (3, 3)})["w"].granularity == "channel"
    assert {"ptq-t8", "w8-channel", "w4-channel"} <= set(PRESETS)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_json_round_trip(name):
    p = PRESETS[name]
    assert Plan.from_json(p.to_json()) == p


def test_json_round_trip_with_everything():
    p = Plan(rules=(Rule(spec=QuantSpec(bits=3, granularity="channel", channel_bits=(3, 2)),
                         name="a.*", module_type="Linear", min_ndim=2),
                    Rule(spec=None, name="b", float_dtype="bf16")), default_float="fp16")
    assert Plan.from_json(p.to_json()) == p


def test_first_matching_rule_wins():
    p = Plan(rules=(Rule(spec=QuantSpec(bits=2), name="x"), Rule(spec=QuantSpec(bits=7))))
    got = p.resolve({"x": (2,), "y": (2,)})
    assert got["x"].bits == 2 and got["y"].bits == 7


@pytest.mark.parametrize("text, msg", [
    ("{", "not valid JSON"),
    ("[]", "object with a 'rules'"),
    ('{"rules": [{"spec": {"bits": 40}}]}', "bits must be in 1..16"),
    ('{"rules": [{"colour": 1}]}', "unknown Rule field"),
    ('{"rules": [{"name": "("}]}', "bad regular expression"),
])
def test_bad_plan_json(text, msg):
    with pytest.raises(SpecError, match=msg):
        Plan.from_json(text)


def test_plan_apply_is_the_one_path_to_the_stream():
    """The allocator sizes exactly the stream ``encode`` writes, stochastic rounding included
    (one path from a plan to quantized tensors: ``Plan.apply``)."""
    import numpy as np

    import nnshare
    from nnshare.mixed import exact_stream_bits

    rng = np.random.default_rng(3)
    state = {
        "a.weight": rng.normal(size=(16, 12)).astype(np.float32),
        "b.weight": rng.normal(size=(8, 16)).astype(np.float32),
        "b.bias": rng.normal(size=8).astype(np.float32),
        "n.count": np.array(7, np.int64),
    }
    plan = nnshare.uniform(3, "channel", rounding="stochastic", seed=11)
    data = nnshare.encode(state, plan, entropy="auto")
    assert exact_stream_bits(state, plan, "self", None, "auto") == 8 * len(data)
    # one tensor at a time: the same bytes and the same quality report as encode
    from nnshare.mixed.plans import plan_stream
    from nnshare.share.model import encode_model

    for mode in ("self", "agreed"):
        got, quality = plan_stream(state, plan, mode, entropy="auto")
        enc = encode_model(state, plan, mode, entropy="auto")
        assert got == enc.data
        assert quality.to_dict() == enc.quality.to_dict()
    assert plan_stream(state, plan, counters=True)[0] == nnshare.encode(state, plan, counters=True)
    applied = plan.apply(state)
    model = nnshare.quantize_model(state, plan)
    assert set(applied) == set(model) == set(state) - {"n.count"}  # counters only when asked
    assert "n.count" in plan.apply(state, counters=True)
    for name in applied:
        np.testing.assert_array_equal(applied[name].dequantize(), model[name].dequantize())
    # per-tensor seeds differ, so two tensors of the same shape get independent rounding noise
    twin = {"x": state["a.weight"], "y": state["a.weight"].copy()}
    q = plan.apply(twin)
    assert not np.array_equal(q["x"].codes, q["y"].codes)


def test_plan_from_choices_round_trips_a_mapping_plan():
    import numpy as np

    import nnshare

    state = {"w.0": np.ones((4, 4), np.float32), "b[0]": np.ones(4, np.float32)}
    plan = nnshare.Plan.from_choices({"w.0": nnshare.QuantSpec(bits=4), "b[0]": "fp16"})
    out = plan.apply(state)
    assert isinstance(out["w.0"], nnshare.QuantizedTensor) and out["b[0]"].dtype == "fp16"
    with pytest.raises(nnshare.SpecError, match="QuantSpec or a float dtype"):
        nnshare.Plan.from_choices({"w.0": 3})


def test_plans_take_any_registered_scheme():
    """A rule may name any registered scheme's config; JSON keeps the scheme."""
    import numpy as np

    import nnshare
    from nnshare.quant import CodebookConfig, RotatedConfig

    rng = np.random.default_rng(0)
    state = {"a.weight": rng.normal(size=(16, 8)).astype(np.float32),
             "b.weight": rng.normal(size=(8, 16)).astype(np.float32),
             "b.bias": rng.normal(size=8).astype(np.float32)}
    plan = Plan(rules=(Rule(spec=CodebookConfig(levels=8), name=r"a\.weight"),
                       Rule(spec=RotatedConfig(bits=2, nu=4), name=r"b\.weight")))
    assert Plan.from_json(plan.to_json()) == plan
    data = nnshare.encode(state, plan)
    out = nnshare.decode(data)
    for name in ("a.weight", "b.weight"):
        cos = float(np.dot(out[name].ravel(), state[name].ravel())
                    / np.linalg.norm(out[name]) / np.linalg.norm(state[name]))
        assert cos > 0.9, name
    np.testing.assert_array_equal(out["b.bias"], state["b.bias"])
    with pytest.raises(SpecError):
        Rule(spec=object())
