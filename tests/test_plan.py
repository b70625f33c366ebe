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
