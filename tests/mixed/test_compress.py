"""compress(model, evaluate=fn, max_drop=...): the smallest stream whose measured task metric stays
within the drop; never worse than the uniform plan; evaluations counted; bad input refused."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import nnshare
from nnshare.digits import accuracy, digits_data, digits_mlp, train_classifier
from nnshare.errors import SpecError
from nnshare.mixed import Budget, compress, search, task_weights
from nnshare.mixed.compress import FAMILIES


@pytest.fixture(scope="module")
def digits():
    return digits_data()


def bn_cnn(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(16 * 4 * 4, 10))


@pytest.fixture(scope="module")
def mlp(digits):
    xtr, ytr, _, _ = digits
    return train_classifier(digits_mlp((64, 32)), xtr, ytr, epochs=30).eval()


@pytest.fixture(scope="module")
def cnn(digits):
    xtr, ytr, _, _ = digits
    return train_classifier(bn_cnn(), xtr, ytr, epochs=6).eval()


def fresh_like(model):
    import copy

    m = copy.deepcopy(model)
    with torch.no_grad():
        for p in m.state_dict().values():
            if p.dtype.is_floating_point:
                p.zero_()
    return m


@pytest.mark.filterwarnings("ignore:the stream does not carry")
@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_compress_meets_its_tolerance_on_digits(which, digits, request):
    model = request.getfixturevalue(which)
    xtr, _, xte, yte = digits
    calls = []

    def evaluate(m):
        calls.append(1)
        return accuracy(m, xte, yte)

    ref = accuracy(model, xte, yte)
    r = compress(model, evaluate, max_drop=0.005, calibration=[xtr[:128], xtr[128:256]])
    # measured again on the decoded stream, in a model that never saw the float weights
    got = accuracy(nnshare.decode(r.data, into=fresh_like(model)), xte, yte)
    assert got == pytest.approx(r.metric)
    assert r.reference == ref
    assert got >= 0.995 * ref
    assert r.nbytes == len(r.data) < 0.2 * 4 * sum(p.numel() for p in model.parameters())
    assert r.evaluations == len(calls) == len(r.trace) + 1 <= 40
    assert {"task", "hybrid", "uniform"} <= {p.family for p in r.trace} <= set(FAMILIES)
    # the chosen stream is the smallest of its family whose every larger stream is within budget
    fam = sorted((p for p in r.trace if p.family == r.family), key=lambda p: p.bytes)
    i = [p.bytes for p in fam].index(r.nbytes)
    assert all(p.ok for p in fam[i:]) and (i == 0 or not fam[i - 1].ok)
    # the front is sorted by bytes with strictly better metrics
    f = r.front
    assert all(a.bytes <= b.bytes and a.metric < b.metric for a, b in zip(f, f[1:], strict=False))
    if which == "cnn":  # BatchNorm statistics measured and coded at their own step
        assert "2.running_mean" in r.weights.weights and "2.running_var" in r.plan
        dec = nnshare.decode(r.data)
        rv = model.state_dict()["2.running_var"].numpy()
        assert np.abs(dec["2.running_var"] - rv).max() < 0.1 * np.abs(rv).max()


def test_lower_is_better_metric_and_reused_sensitivity(mlp, digits):
    xtr, ytr, xte, yte = digits

    def loss(m):
        with torch.no_grad():
            return float(nn.functional.cross_entropy(m(xte), yte))

    w = task_weights(mlp, "output", [xtr[:128]])
    r = compress(mlp, loss, max_drop=0.05, higher_is_better=False, sensitivity=w)
    assert r.weights is w and r.seconds["sensitivity"] < 0.5
    assert r.metric <= 1.05 * r.reference and r.drop <= 0.05 * r.reference
    assert loss(nnshare.decode(r.data, into=fresh_like(mlp))) == pytest.approx(r.metric)
    # an absolute drop in the metric's units
    r2 = compress(mlp, loss, budget=Budget(max_drop=0.01, relative=False, higher_is_better=False),
                  sensitivity=w)
    assert r2.metric <= r2.reference + 0.01


def scaled_mlp(widths, scales, seed):
    """A random ReLU MLP whose layers are rescaled (the function changes, the sensitivities of
    the layers then differ by orders of magnitude)."""
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(widths, widths[1:], strict=False)):
        lin = nn.Linear(a, b)
        with torch.no_grad():
            lin.weight.mul_(scales[i])
        layers += [lin, nn.ReLU()]
    return nn.Sequential(*layers[:-1]).eval()


def cosine_metric(model, x):
    with torch.no_grad():
        ref = model(x).reshape(-1)

    def cos(m):
        with torch.no_grad():
            y = m(x).reshape(-1)
        return float(torch.nn.functional.cosine_similarity(y, ref, dim=0))

    return cos


@settings(max_examples=5, deadline=None, derandomize=True)
@given(st.lists(st.integers(8, 40), min_size=3, max_size=4),
       st.lists(st.sampled_from([0.05, 0.3, 1.0, 4.0]), min_size=3, max_size=3),
       st.integers(0, 1000))
def test_budget_path_never_worse_than_uniform(widths, scales, seed):
    model = scaled_mlp(widths, scales, seed)
    x = torch.randn(64, widths[0], generator=torch.Generator().manual_seed(seed))
    budget = Budget(max_drop=2e-3, relative=False)
    r = compress(model, cosine_metric(model, x), budget=budget, calibration=[x])
    uni = compress(model, cosine_metric(model, x), budget=budget)  # data-free: the uniform plan
    assert {p.family for p in uni.trace} == {"uniform"}
    assert r.metric >= r.reference - 2e-3 and uni.metric >= uni.reference - 2e-3
    # never worse than the uniform plan of its own search, nor (within the bisection's resolution
    # of 1/16 of an octave of step, about 1/16 bit per weight) than an independent uniform search
    # (the uniform family stops at a failing stream at least as large as the best one)
    uni_ok = [p.bytes for p in r.trace if p.family == "uniform" and p.ok]
    assert r.nbytes <= min(uni_ok) if uni_ok else any(
        p.family == "uniform" and not p.ok and p.bytes >= r.nbytes for p in r.trace)
    n = sum(p.numel() for p in model.parameters())
    assert r.nbytes <= uni.nbytes + n / 16 / 8 + 8


def test_task_allocation_beats_uniform_on_unbalanced_layers():
    """One layer 100x smaller than the other: one global step wastes its bits; the sensitivity-
    weighted steps give a clearly smaller stream at the same measured quality."""
    model = scaled_mlp([32, 64, 64, 8], [0.02, 2.0, 1.0], 3)
    x = torch.randn(256, 32, generator=torch.Generator().manual_seed(1))
    r = compress(model, cosine_metric(model, x), max_drop=1e-3, relative=False, calibration=[x])
    uni = compress(model, cosine_metric(model, x), max_drop=1e-3, relative=False)  # uniform only
    assert r.family in ("task", "channel") and r.nbytes < 0.9 * uni.nbytes


def test_state_dict_model_gets_a_state_dict(mlp, digits):
    _, _, xte, yte = digits
    sd = mlp.state_dict()
    seen = []

    def evaluate(state):
        seen.append(type(state))
        m = fresh_like(mlp)
        m.load_state_dict(state)
        return accuracy(m, xte, yte)

    r = compress(sd, evaluate, max_drop=0.01, mode="agreed")
    assert set(seen) == {dict} and r.metric >= 0.99 * r.reference
    assert accuracy(nnshare.decode(r.data, into=fresh_like(mlp)), xte, yte) == pytest.approx(r.metric)


def test_lossless_fallback_and_non_deterministic_metric(mlp, digits):
    _, _, xte, yte = digits
    # a zero tolerance on a metric that any rounding changes: only the float32 stream is exact
    x = xte[:64]
    r = compress(mlp, cosine_metric(mlp, x), max_drop=0.0, relative=False, max_evals=6)
    assert r.family == "float" and r.metric == r.reference and r.evaluations <= 8
    calls = []

    def worse_each_call(m):  # not a function of the weights
        calls.append(1)
        return -float(len(calls))

    with pytest.raises(SpecError, match="deterministic"):
        compress(mlp, worse_each_call, max_drop=0.0, relative=False, max_evals=4)


@pytest.mark.parametrize("kw, match", [
    ({"max_drop": -0.1}, "max_drop"),
    ({"max_drop": 1.5}, "fraction"),
    ({"max_drop": math.nan}, "finite"),
    ({"max_drop": "1%"}, "number"),
    ({}, "needs max_drop"),
    ({"max_drop": 0.01, "budget": Budget(max_drop=0.01)}, "not both"),
    ({"budget": Budget(bits=1000)}, "task-quality"),
    ({"max_drop": 0.01, "sensitivity": "output"}, "calibration"),
    ({"max_drop": 0.01, "sensitivity": "magic", "calibration": [torch.zeros(2, 64)]}, "sensitivity"),
    ({"max_drop": 0.01, "mode": "both"}, "mode"),
    ({"max_drop": 0.01, "method": "fancy"}, "method"),
    ({"max_drop": 0.01, "max_evals": 1}, "max_evals"),
    ({"max_drop": 0.01, "resolution": 0}, "resolution"),
    ({"max_drop": 0.01, "higher_is_better": "yes"}, "higher_is_better"),
])
def test_bad_input_is_one_spec_error(kw, match, mlp):
    with pytest.raises(SpecError, match=match):
        compress(mlp, lambda m: 1.0, **kw)


def test_bad_metrics(mlp):
    with pytest.raises(SpecError, match="callable|function"):
        compress(mlp, 3.0, max_drop=0.01)
    with pytest.raises(SpecError, match="number"):
        compress(mlp, lambda m: "good", max_drop=0.01)
    with pytest.raises(SpecError, match="finite"):
        compress(mlp, lambda m: math.nan, max_drop=0.01)


def test_quality_budget_rules():
    b = Budget(max_drop=0.005)
    assert b.is_quality and b.total_bits is None and b.allowed(0.9) == pytest.approx(0.8955)
    assert b.meets(0.8955, 0.9) and not b.meets(0.89, 0.9) and not b.meets(math.nan, 0.9)
    lo = Budget(max_drop=0.05, higher_is_better=False)
    assert lo.meets(1.05, 1.0) and not lo.meets(1.06, 1.0)
    assert "0.5 %" in b.describe() and "lower" in lo.describe()
    with pytest.raises(SpecError, match="stands alone"):
        Budget(max_drop=0.01, bytes=100)
    with pytest.raises(SpecError, match="only a task-quality"):
        Budget(bits=8).allowed(1.0)
    with pytest.raises(SpecError, match="compress"):
        search(nn.Linear(4, 4), b)


# ------------------------------------------------------------------ size budgets: the uniform floor


def test_size_budget_falls_back_to_uniform_when_the_sensitivity_misleads():
    """Layer 1 scaled by 0.01 and layer 2 by 100 (the same function): the data-free weight
    error calls layer 1 cheap to destroy; measured on calibration inputs the uniform plan of the
    same size is far better, and search keeps it."""
    from nnshare.mixed.uniform_check import output_distortion

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 48), nn.ReLU(), nn.Linear(48, 8)).eval()
    with torch.no_grad():
        model[0].weight.mul_(0.01)
        model[0].bias.mul_(0.01)
        model[2].weight.mul_(100)
    x = [torch.randn(64, 16, generator=torch.Generator().manual_seed(1))]
    uni4 = search(model, Budget(bits=10**6), "weight", candidates=(2, 3, 4, 6, 8), ceilings=4, floors=4)
    budget = Budget(bits=uni4.exact_bits)
    blind = search(model, budget, "weight", candidates=(2, 3, 4, 6, 8), uniform_check=False)
    a = search(model, budget, "weight", data=x, candidates=(2, 3, 4, 6, 8))
    assert a.uniform["chosen"] == "uniform" and a.uniform["bits"] == 4
    assert {float(w.mean()) for w in a.widths.values()} == {4.0}
    assert a.exact_bits <= budget.total_bits and a.solution.solver == "uniform"
    d_blind = output_distortion(model, blind.plan, x)
    d = output_distortion(model, a.plan, x)
    assert d == pytest.approx(a.uniform["distortion"]) and d < 0.1 * d_blind
    assert a.uniform["allocated_distortion"] == pytest.approx(d_blind)


@settings(max_examples=5, deadline=None, derandomize=True)
@given(st.lists(st.integers(6, 24), min_size=3, max_size=4),
       st.lists(st.sampled_from([0.05, 0.3, 1.0, 4.0]), min_size=3, max_size=3),
       st.integers(0, 1000), st.sampled_from(["weight", "output"]), st.sampled_from(["tensor", "channel"]),
       st.floats(0.2, 0.8))
def test_size_budget_never_worse_than_uniform(widths, scales, seed, sens, gran, frac):
    """At equal (or fewer) bytes the measured output distortion of the budget path is at most that
    of the widest uniform width that fits."""
    from nnshare.mixed.uniform_check import output_distortion

    model = scaled_mlp(widths, scales, seed)
    x = [torch.randn(32, widths[0], generator=torch.Generator().manual_seed(seed))]
    cands = (2, 3, 4, 6, 8)

    def at(b):  # the uniform plan at width b
        return search(model, Budget(bits=10**7), "weight", granularity=gran, candidates=cands, floors=b,
                      ceilings=b)

    lo, hi = at(2).exact_bits, at(8).exact_bits
    budget = Budget(bits=int(lo + frac * (hi - lo)))
    a = search(model, budget, sens, data=x, granularity=gran, candidates=cands)
    assert a.exact_bits <= budget.total_bits
    ub = max(b for b in cands if at(b).exact_bits <= budget.total_bits)
    uni = at(ub)
    assert a.uniform["bits"] == ub
    assert output_distortion(model, a.plan, x) <= output_distortion(model, uni.plan, x) * (1 + 1e-9)


def test_task_weights_cover_every_float_tensor_and_refuse_bad_options(mlp, digits):
    xtr = digits[0]
    names = [n for n, v in mlp.state_dict().items() if v.dtype.is_floating_point]
    for dist in ("mse", "kl"):
        w = task_weights(mlp, "output", [xtr[:64]], distance=dist)
        assert sorted(w.weights) == sorted(names) and all(v > 0 for v in w.weights.values())
        assert w.info["distance"] == dist
    assert task_weights(mlp, "weight").weights == {}
    with pytest.raises(SpecError, match="distance"):
        task_weights(mlp, "output", [xtr[:64]], distance="l1")
    with pytest.raises(SpecError, match="nn.Module"):
        task_weights(mlp.state_dict(), "output", [xtr[:64]])


def test_one_tensor_at_a_time_writes_the_same_bytes(mlp, digits):
    """The search quantizes each tensor where its record is written (issue 19, memory): the
    same bytes as quantizing the whole model first, per-channel steps included, every tensor
    handed to the sink once; the chosen stream is the one its steps give."""
    from nnshare.mixed.task_channels import ChannelSteps
    from nnshare.mixed.task_rate import quantize_steps, steps_for, write_quantized, write_steps
    from nnshare.state import model_state

    xtr, _, xte, yte = digits
    st_ = model_state(mlp).without_counters()
    rel = np.linspace(0.5, 2.0, 64)
    ch = {"0.weight": ChannelSteps(0, rel, 0.0, 0)}
    for w, chan in (({}, {}), ({n: 1.0 + i for i, n in enumerate(st_.arrays)}, ch)):
        steps = steps_for(st_.arrays, w, 2.0**-6, chan)
        seen: list[str] = []
        data = write_quantized(st_, steps, "tcq", "self", chan, sink=lambda n, t, seen=seen: seen.append(n))
        assert data == write_steps(st_, quantize_steps(st_, steps, "tcq", channels=chan), "self")
        assert seen == list(st_.arrays)
    r = compress(mlp, lambda m: accuracy(m, xte, yte), max_drop=0.005, calibration=[xtr[:128]])
    chan = r.weights.channels if r.family == "channel" else {}
    assert r.data == write_quantized(st_, r.plan, "tcq", "self", chan)
