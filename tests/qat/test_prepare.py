import pytest
import torch
import torch.nn.functional as F
from qat_nets import mixed_batch
from torch import nn
from torch.nn.utils import parametrize

from nnshare.format.errors import SpecError
from nnshare.format.spec import FloatTensor, QuantizedTensor, QuantSpec
from nnshare.plan import Plan, Rule, uniform
from nnshare.qat import convert, prepare, quantizers, range_parameters, to_float_model
from nnshare.qat.train import fit


def test_prepare_wraps_every_planned_weight_and_keeps_the_original(mixed_net):
    before = {k: v.clone() for k, v in mixed_net.state_dict().items()}
    q = prepare(mixed_net, "w4-channel", "beta_gamma")
    assert set(quantizers(q)) == {"emb.weight", "conv1.weight", "conv2.weight", "fc.weight"}
    assert not parametrize.is_parametrized(mixed_net)  # deep copy by default
    for k, v in mixed_net.state_dict().items():
        assert torch.equal(v, before[k])
    q.eval()
    out = q(mixed_batch())
    assert out.shape == (16, 3) and torch.isfinite(out).all()
    # a 4-bit per-channel weight has at most 16 distinct values per output channel
    assert all(len(torch.unique(row)) <= 16 for row in q.conv2.weight.detach())


def test_frozen_part_is_neither_trained_nor_quantized():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 4), nn.Tanh(), nn.Linear(4, 8))  # encoder 0, decoder 2
    q = prepare(model, uniform(3, "channel"), "minmax", freeze=["2"])
    assert set(quantizers(q)) == {"0.weight"}
    assert not any(p.requires_grad for p in q[2].parameters())
    dec0 = {k: v.clone() for k, v in q[2].state_dict().items()}
    enc0 = q[0].parametrizations.weight.original.clone()
    x = torch.randn(64, 8)
    res = fit(q, x, x, F.mse_loss, epochs=3, batch_size=16, lr=1e-2)
    assert res.losses[-1] < res.losses[0]
    for k, v in q[2].state_dict().items():
        assert torch.equal(v, dec0[k])
    assert not torch.equal(q[0].parametrizations.weight.original, enc0)
    tensors = convert(q)
    assert isinstance(tensors["0.weight"], QuantizedTensor)
    assert isinstance(tensors["2.weight"], FloatTensor) and tensors["2.weight"].dtype == "fp32"


def test_quantize_frozen_uses_fixed_ranges():
    model = nn.Sequential(nn.Linear(8, 4), nn.Linear(4, 8))
    q = prepare(model, uniform(4), "lsq", freeze=["1"], quantize_frozen=True)
    assert set(quantizers(q)) == {"0.weight", "1.weight"}
    frozen = list(quantizers(q)["1.weight"].parameters())
    assert frozen and not any(p.requires_grad for p in frozen)
    assert all(p.requires_grad for p in quantizers(q)["0.weight"].parameters())
    assert len(range_parameters(q)) == 1  # the trainable LSQ step of layer 0


def test_fp16_float_tensors_are_rounded_during_training():
    model = nn.Sequential(nn.Linear(8, 4))
    plan = Plan(rules=(Rule(spec=QuantSpec(bits=4), min_ndim=2), Rule(float_dtype="fp16")))
    q = prepare(model, plan)
    b = q[0].bias.detach()
    assert torch.equal(b, b.half().float())
    assert convert(q)["0.bias"].dtype == "fp16"


def test_activation_quantization_calibrates_and_is_removed_by_to_float_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    q = prepare(model, uniform(8), activations=4)
    x = torch.randn(32, 8)
    q(x)
    act = q[2].input_quant
    assert bool(act.calibrated) and act.lo.item() == 0.0 and act.hi.item() > 0
    h = q[1](q[0](x))
    assert len(torch.unique(act(h))) <= 16
    plain = to_float_model(q)
    assert not hasattr(plain[2], "input_quant") and not plain[2]._forward_pre_hooks
    assert list(convert(q)) == list(model.state_dict())  # activation ranges are not sent


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"ranges": "maxmin"}, "parameterization"),
        ({"freeze": ["nope"]}, "freeze prefix"),
        ({"plan": "w3-nothing"}, "preset"),
        ({"plan": uniform(4, rounding="stochastic")}, "nearest"),
        ({"plan": uniform(4, "channel", axis=3)}, "axis"),
    ],
)
def test_bad_input_raises_spec_error(kwargs, match):
    model = nn.Sequential(nn.Linear(8, 4))
    with pytest.raises(SpecError, match=match):
        prepare(model, **kwargs)


def test_preparing_twice_is_an_error():
    q = prepare(nn.Sequential(nn.Linear(8, 4)), "ptq-t8")
    with pytest.raises(SpecError, match="already prepared"):
        prepare(q, "ptq-t8", inplace=True)


def test_tied_parameters_are_refused():
    a, b = nn.Linear(4, 4), nn.Linear(4, 4)
    b.weight = a.weight
    with pytest.raises(SpecError, match="tied"):
        prepare(nn.Sequential(a, b), uniform(4))
