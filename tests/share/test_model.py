import copy

import numpy as np
import pytest
import torch
from torch import nn

import nnshare
from nnshare import FormatError, QuantSpec, SpecError
from nnshare.plan import Plan, Rule


def small_cnn():
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 6 * 6, 10))


def test_decode_into_module_equals_quantized_values():
    model = small_cnn()
    data = nnshare.encode(model, "w4-channel", mode="agreed")
    fresh = small_cnn()
    for p in fresh.parameters():
        p.data.zero_()
    fresh[1].num_batches_tracked.fill_(7)
    with pytest.warns(nnshare.NNShareWarning, match="bookkeeping counter"):
        nnshare.decode(data, into=fresh)
    q = nnshare.quantize_model(model, "w4-channel")
    assert "1.num_batches_tracked" not in q  # counters are not sent unless asked
    for name, t in fresh.state_dict().items():
        if name == "1.num_batches_tracked":
            assert int(t) == 7  # the receiver's own value is kept
            continue
        ref = q[name].dequantize()
        assert np.array_equal(t.numpy(), ref.astype(t.numpy().dtype)), name
    # with counters=True the integer buffer passes through exactly
    model[1].num_batches_tracked.fill_(12)
    nnshare.decode(nnshare.encode(model, "w4-channel", mode="agreed", counters=True), into=fresh)
    assert fresh[1].num_batches_tracked.dtype == torch.int64 and int(fresh[1].num_batches_tracked) == 12


def test_decode_returns_numpy_dict_in_self_mode():
    model = small_cnn()
    arrays = nnshare.decode(nnshare.encode(model, "ptq-t8"))
    assert set(arrays) == set(model.state_dict()) - {"1.num_batches_tracked"}
    assert arrays["0.weight"].dtype == np.float32
    assert np.array_equal(arrays["0.bias"], model[0].bias.detach().numpy())


def test_state_dict_and_numpy_inputs_agree():
    model = small_cnn()
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    assert nnshare.encode(model, "w8-channel") == nnshare.encode(sd, "w8-channel")


def test_plan_by_module_type_and_name():
    model = small_cnn()
    plan = Plan(rules=(
        Rule(spec=QuantSpec(bits=3), module_type="Conv2d", min_ndim=2),
        Rule(spec=None, name=r"1\..*", float_dtype="fp16"),
        Rule(spec=QuantSpec(bits=6, granularity="channel"), min_ndim=2),
    ))
    rep = nnshare.inspect(nnshare.encode(model, plan))
    kinds = {r.name: r.scheme for r in rep.rows}
    assert kinds["0.weight"] == "affine s3"
    assert kinds["1.weight"] == "fp16"
    assert kinds["4.weight"] == "affine s6 ch0"
    assert kinds["0.bias"] == "fp32"


def test_wrong_architecture_is_a_format_error():
    model = small_cnn()
    data = nnshare.encode(model, "ptq-t8", mode="agreed")
    other = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(FormatError, match="fingerprint mismatch"):
        nnshare.decode(data, into=other)
    selfd = nnshare.encode(model, "ptq-t8")
    with pytest.raises(FormatError, match="lacks tensors|does not have"):
        nnshare.decode(selfd, into=other)


def test_bad_plans_and_inputs():
    model = small_cnn()
    with pytest.raises(SpecError, match="unknown preset"):
        nnshare.encode(model, "int3-magic")
    with pytest.raises(SpecError, match="matches no tensor"):
        nnshare.encode(model, Plan(rules=(Rule(spec=QuantSpec(), name="nope.*"),)))
    with pytest.raises(SpecError, match="quantizes no tensor"):
        nnshare.encode({"b": np.ones(3, np.float32)}, "ptq-t8")
    with pytest.raises(SpecError, match="unsupported dtype"):
        nnshare.encode({"c": np.ones(3, np.complex64)}, "ptq-t8")
    with pytest.raises(SpecError, match="expected an nn.Module"):
        nnshare.encode(42, "ptq-t8")
    with pytest.raises(SpecError, match="mode must be"):
        nnshare.encode(model, "ptq-t8", mode="compact")


def test_decoded_model_is_a_deep_copy_safe_round_trip():
    model = small_cnn().eval()
    data = nnshare.encode(model, "w8-channel", mode="agreed")
    rebuilt = nnshare.decode(data, into=copy.deepcopy(model))
    x = torch.randn(2, 1, 8, 8)
    assert torch.allclose(rebuilt(x), model(x), atol=0.05)


def test_decode_as_state_dict():
    model = small_cnn()
    sd = nnshare.decode(nnshare.encode(model, "ptq-t8"), state_dict=True)
    assert isinstance(sd["0.weight"], torch.Tensor)
    fresh = small_cnn()
    fresh.load_state_dict(sd)
    assert torch.equal(fresh[4].bias, model[4].bias)
