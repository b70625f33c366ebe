import itertools
import json

import numpy as np
import pytest
import torch

import nnshare
from nnshare import Plan, QuantSpec
from nnshare.format import read_stream
from nnshare.format.errors import SpecError
from nnshare.link import Link, Phy
from nnshare.mixed import Budget, allocate, estimate_sensitivity, search
from nnshare.mixed.cost import macs_per_tensor
from nnshare.mixed.tensors import fake_quantize_mixed

CANDS = (2, 3, 4, 6, 8)


def mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(16, 12),
        torch.nn.ReLU(),
        torch.nn.Linear(12, 8),
        torch.nn.ReLU(),
        torch.nn.Linear(8, 4),
    )


def odd_mlp(seed=0):
    """Odd sizes: codes, zero points and width fields need byte padding."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(15, 11),
        torch.nn.ReLU(),
        torch.nn.Linear(11, 7),
        torch.nn.ReLU(),
        torch.nn.Linear(7, 3),
    )


def mlp_like(model):
    import copy

    return copy.deepcopy(model)


def data(n=64):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(n, 16, generator=g)
    return [
        (x[: n // 2], torch.randint(0, 4, (n // 2,), generator=g)),
        (x[n // 2 :], torch.randint(0, 4, (n // 2,), generator=g)),
    ]


def stream_bounds(model, gran, mode):
    lo = search(
        model, Budget(bits=10**7), "weight", granularity=gran, candidates=CANDS, mode=mode, ceilings=CANDS[0]
    )
    hi = search(
        model, Budget(bits=10**7), "weight", granularity=gran, candidates=CANDS, mode=mode, floors=CANDS[-1]
    )
    return lo.exact_bits, hi.exact_bits


def mid_budget(model, gran="channel", frac=0.4):
    lo, hi = stream_bounds(model, gran, "self")
    return int(lo + frac * (hi - lo))


@pytest.mark.parametrize("gran", ["tensor", "channel"])
@pytest.mark.parametrize("mode", ["self", "agreed"])
@pytest.mark.parametrize("make", [mlp, odd_mlp])
def test_budget_is_never_exceeded(gran, mode, make):
    model = make()
    sens = estimate_sensitivity(model, "weight", candidates=CANDS)
    lo, hi = stream_bounds(model, gran, mode)
    prev = None
    for total in np.linspace(lo, hi + 200, 9).astype(int):
        a = search(model, Budget(bits=int(total)), sens, granularity=gran, mode=mode)
        data_ = nnshare.encode(model, a.plan, mode=mode)
        assert 8 * len(data_) == a.exact_bits <= total  # header and side info included
        # The solver's model is exact up to byte padding (<= 7 bits per padded field) and the
        # 4-bit width fields of tensors whose channels all got one width (then not sent).
        fields = 4 * 24 if gran == "channel" else 0  # at most 24 channels
        assert a.model_bits - 7 * 6 - fields <= a.exact_bits <= a.model_bits + 7 * 6
        if total >= lo + 7 * 3:  # the bounding model reserves up to 7 padding bits per tensor
            b = search(model, Budget(bits=int(total)), sens, granularity=gran, mode=mode, verify=False)
            assert 8 * len(nnshare.encode(model, b.plan, mode=mode)) <= b.model_bits <= total
        if prev is not None:
            assert a.predicted_loss <= prev + 1e-12  # more bits never predicts worse
        prev = a.predicted_loss
    with pytest.raises(SpecError, match="below"):
        search(model, Budget(bits=int(lo) - 200), sens, granularity=gran, mode=mode)


def test_byte_and_airtime_budgets():
    model = mlp()
    a = search(model, Budget(bytes=500), "weight", candidates=CANDS)
    assert a.exact_bits <= 4000
    lk = Link(Phy(mcs=1))  # 17.2 Mbit/s; 0.7 ms carries 987 stream bytes
    b = search(model, Budget(airtime_ms=0.7, link=lk), "weight", candidates=CANDS)
    assert b.exact_bits <= 8 * lk.max_stream_bytes(0.7) == 8 * 987
    assert lk.airtime_us(len(nnshare.encode(model, b.plan))) <= 700


def test_tensor_allocation_is_optimal_by_brute_force():
    model = mlp()
    sens = estimate_sensitivity(model, "hessian", data(), CANDS, n_samples=8)
    lo, hi = stream_bounds(model, "tensor", "self")
    limit = (lo + hi) // 2
    # Every tensor's codes fill whole bytes (no padding): the size model is exact here.
    a0 = search(model, Budget(bits=limit), sens, granularity="tensor", solver="milp")
    assert a0.exact_bits == a0.model_bits
    names = [t.name for t in a0.tensors]
    best = None
    for combo in itertools.product(range(len(CANDS)), repeat=len(names)):
        widths = {n: np.array([CANDS[k]]) for n, k in zip(names, combo, strict=True)}
        plan = nnshare.mixed.plan_from_widths(a0.tensors, widths, a0.base)
        bits = 8 * len(nnshare.encode(model, plan))
        if bits > limit:
            continue
        loss = sum(sens.tensor_loss[n][k] for n, k in zip(names, combo, strict=True))
        if best is None or loss < best:
            best = loss
    assert a0.predicted_loss == pytest.approx(best, rel=1e-9)


def test_per_channel_widths_round_trip_through_the_format():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 40), torch.nn.ReLU(), torch.nn.Linear(40, 12))
    with torch.no_grad():
        model[0].weight[::3] *= 4  # channels of very different ranges
    limit = mid_budget(model)
    a = search(model, Budget(bits=limit), "output", [d[0] for d in data()], "channel", CANDS)
    assert a.exact_bits <= limit
    mixed = [n for n, w in a.widths.items() if np.unique(w).size > 1]
    assert mixed, "expected at least one tensor with mixed channel widths"
    stream = nnshare.encode(model, a.plan)
    parsed = read_stream(stream).tensors
    sd = model.state_dict()
    for t in a.tensors:
        q = parsed[t.name]
        w = a.widths[t.name]
        if t.name in mixed:
            assert q.spec.channel_bits == tuple(int(x) for x in w)
        assert q.spec.bits == int(w.max())
        lo, hi = q.spec.row_qrange(w.size)
        assert np.all(q.codes >= lo[:, None]) and np.all(q.codes <= hi[:, None])
        expect = fake_quantize_mixed(sd[t.name].numpy(), a.base, w)
        np.testing.assert_array_equal(q.dequantize(), expect)
    assert 8 * len(stream) == a.exact_bits
    clone = nnshare.decode(stream, into=mlp_like(model))
    np.testing.assert_array_equal(clone[0].weight.detach().numpy(), parsed["0.weight"].dequantize())
    again = Plan.from_json(a.plan.to_json())
    shapes = {k: tuple(v.shape) for k, v in sd.items()}
    assert again.resolve(shapes) == a.plan.resolve(shapes)
    assert json.loads(a.plan.to_json())["rules"]


def test_floors_and_ceilings():
    model = mlp()
    a = search(
        model,
        Budget(bits=mid_budget(model)),
        "weight",
        granularity="channel",
        candidates=CANDS,
        floors={r"0\.weight": 6},
        ceilings={r"4\.weight": 3},
    )
    assert a.widths["0.weight"].min() >= 6
    assert a.widths["4.weight"].max() <= 3
    with pytest.raises(SpecError, match="no candidate"):
        search(model, Budget(bits=9000), "weight", candidates=CANDS, floors=5, ceilings=5)
    with pytest.raises(SpecError):
        search(model, Budget(bits=9000), "weight", candidates=CANDS, floors="high")


def test_bops_budget_is_respected():
    model = mlp()
    x = torch.randn(1, 16)
    macs = macs_per_tensor(model, x)
    assert macs == {"0.weight": 192.0, "2.weight": 96.0, "4.weight": 32.0}
    limit = 320 * 8 * 3.5
    a = search(model, Budget(bits=10**6, bops=limit), "weight", candidates=CANDS, example_input=x)
    bops = sum(macs[n] * 8 * int(w[0]) for n, w in a.widths.items())
    assert bops <= limit
    assert a.solution.extra_costs[0] == bops
    with pytest.raises(SpecError, match="example_input"):
        search(model, Budget(bops=1e4), "weight")


def test_latency_table_restricts_widths():
    model = mlp()
    table = {"0.weight": {4: 1.0, 8: 2.0}, "2.weight": {2: 0.5, 8: 1.0}}
    a = search(model, Budget(latency_ms=2.5), "weight", candidates=CANDS, latency_table=table)
    assert int(a.widths["0.weight"][0]) in (4, 8) and int(a.widths["2.weight"][0]) in (2, 8)
    lat = table["0.weight"][int(a.widths["0.weight"][0])] + table["2.weight"][int(a.widths["2.weight"][0])]
    assert lat <= 2.5
    assert a.widths["4.weight"][0] == 8  # unconstrained tensor takes the best width


def test_allocate_returns_a_plan_and_rejects_bad_arguments():
    model = mlp()
    plan = allocate(model, Budget(bits=mid_budget(model, "tensor")), "weight", candidates=CANDS)
    assert isinstance(plan, Plan) and len(plan.rules) == 3
    assert all(isinstance(r.spec, QuantSpec) for r in plan.rules)
    with pytest.raises(SpecError):
        allocate(model, 3000)
    with pytest.raises(SpecError):
        allocate(model, Budget(bits=3000), granularity="layer")
    with pytest.raises(SpecError):
        allocate(model, Budget(bits=3000), candidates=(0, 2))
    with pytest.raises(SpecError, match="needs data"):
        allocate(model, Budget(bits=3000), "output")


def test_lagrangian_solver_and_front():
    model = mlp()
    limit = mid_budget(model)
    a = search(
        model,
        Budget(bits=limit),
        "weight",
        granularity="channel",
        candidates=CANDS,
        solver="lagrangian",
        front_points=8,
    )
    b = search(model, Budget(bits=limit), "weight", granularity="channel", candidates=CANDS, solver="milp")
    assert a.exact_bits <= limit
    assert b.predicted_loss <= a.predicted_loss <= b.predicted_loss * 1.05
    assert len(a.front) >= 3
    bits = [p.bits for p in a.front]
    pred = [p.predicted for p in a.front]
    assert bits == sorted(bits) and pred == sorted(pred, reverse=True)


def test_dense_budget_sweep_with_padding():
    # Asymmetric: zero points and codes are both byte-padded per tensor; every budget must hold.
    model = odd_mlp(1)
    base = QuantSpec(granularity="channel", symmetric=False)
    sens = estimate_sensitivity(model, "weight", candidates=CANDS, base=base)
    lo = search(model, Budget(bits=10**7), sens, ceilings=2).exact_bits
    for gran in ("tensor", "channel"):
        for total in range(lo, lo + 1500, 37):
            a = search(model, Budget(bits=total), sens, granularity=gran, mode="agreed")
            assert a.exact_bits <= total


def test_state_dict_input_with_data_free_sensitivity():
    sd = {k: v.numpy() for k, v in mlp().state_dict().items()}
    sd["step"] = np.array([3], np.int64)  # non-float tensors travel raw and are counted
    limit = mid_budget(mlp(), "tensor") + 200
    a = search(sd, Budget(bits=limit), "weight", candidates=CANDS, float_dtype="fp16")
    assert 8 * len(nnshare.encode(sd, a.plan)) == a.exact_bits <= limit
    assert a.plan.default_float == "fp16"
    with pytest.raises(SpecError):
        search(sd, Budget(bits=limit), "output", data=[np.zeros(16)])


def test_precomputed_sensitivity_must_match_the_model():
    sens = estimate_sensitivity(mlp(), "weight", candidates=CANDS)
    with pytest.raises(SpecError, match="not in this model"):
        search(odd_mlp(), Budget(bits=10**6), sens)


def test_entropy_coded_sizes_are_exact_and_optimal():
    model = mlp()
    sens = estimate_sensitivity(model, "weight", candidates=(2, 4, 8))
    limit = mid_budget(model, "tensor", 0.5)
    a = search(model, Budget(bits=limit), sens, entropy="auto", mode="agreed")
    assert a.entropy == "auto"
    assert 8 * len(nnshare.encode(model, a.plan, mode="agreed", entropy="auto")) == a.exact_bits
    assert a.exact_bits == a.model_bits <= limit  # the coded size table is exact
    names = [t.name for t in a.tensors]
    best = None
    for combo in itertools.product((2, 4, 8), repeat=len(names)):
        widths = {n: np.array([b]) for n, b in zip(names, combo, strict=True)}
        plan = nnshare.mixed.plan_from_widths(a.tensors, widths, a.base)
        if 8 * len(nnshare.encode(model, plan, mode="agreed", entropy="auto")) > limit:
            continue
        loss = sum(sens.tensor_loss[n][(2, 4, 8).index(b)] for n, b in zip(names, combo, strict=True))
        best = loss if best is None else min(best, loss)
    assert a.predicted_loss == pytest.approx(best, rel=1e-9)
    plain = search(model, Budget(bits=limit), sens, mode="agreed")
    assert a.predicted_loss <= plain.predicted_loss  # coding can only buy more bits
    with pytest.raises(SpecError, match="verify"):
        search(model, Budget(bits=limit), sens, granularity="channel", entropy="auto", verify=False)


def test_per_channel_widths_entropy_coded_meet_the_budget():
    """Format v2 entropy-codes records with per-channel widths: the budget holds exactly."""
    model = mlp()
    sens = estimate_sensitivity(model, "weight", candidates=(2, 4, 8))
    limit = mid_budget(model, "channel", 0.5)
    a = search(model, Budget(bits=limit), sens, granularity="channel", entropy="auto",
               mode="agreed")
    data = nnshare.encode(model, a.plan, mode="agreed", entropy="auto")
    assert 8 * len(data) == a.exact_bits <= limit
    packed = search(model, Budget(bits=limit), sens, granularity="channel", mode="agreed")
    assert a.predicted_loss <= packed.predicted_loss + 1e-12  # coding buys bits, never costs
    st = read_stream(data, nnshare.layout_of(model))
    assert st.version == 2
