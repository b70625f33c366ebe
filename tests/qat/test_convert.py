"""What was trained is exactly what is encoded: fake-quant outputs == decoded model outputs."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from qat_nets import MixedNet, mixed_batch

import nnshare
from nnshare.format.spec import QuantizedTensor, QuantSpec
from nnshare.plan import Plan, Rule, uniform
from nnshare.qat import convert, prepare, qat_plan, quantizers, to_float_model
from nnshare.qat.convert import ConvertError
from nnshare.qat.train import fit


def bits_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bitwise equality (distinguishes -0.0 from +0.0, unlike torch.equal)."""
    return a.shape == b.shape and torch.equal(a.view(torch.int32), b.view(torch.int32))


PLANS = {
    "t4-sym": uniform(4),
    "c3-asym": uniform(3, "channel", symmetric=False),
    "g2-asym-fp16": uniform(2, "group", symmetric=False, group_size=4, axis=1, scale_dtype="fp16"),
    "c4-bf16-restricted": uniform(4, "channel", restricted=True, scale_dtype="bf16"),
}


def _train_a_little(q, ranges_lr=1e-2):
    x = mixed_batch(48, 2)
    y = torch.randint(0, 3, (48,), generator=torch.Generator().manual_seed(3))
    opt = torch.optim.Adam(q.parameters(), lr=ranges_lr)
    for _ in range(5):
        opt.zero_grad()
        F.cross_entropy(q(x), y).backward()
        opt.step()


@pytest.mark.parametrize("ranges", ["minmax", "scale_offset", "beta_gamma", "lsq", "lsq+"])
@pytest.mark.parametrize("plan", list(PLANS), ids=str)
def test_encode_decode_reproduces_fake_quant_outputs_bit_exactly(mixed_net, ranges, plan):
    q = prepare(mixed_net, PLANS[plan], ranges)
    _train_a_little(q)
    q.eval()
    x = mixed_batch(16, 7)
    with torch.no_grad():
        expect = q(x)
    tensors = convert(q)
    for name in quantizers(q):
        assert isinstance(tensors[name], QuantizedTensor)
    data = nnshare.encode_tensors(tensors, mode="self")
    receiver = MixedNet().eval()
    nnshare.decode(data, into=receiver)
    fl = to_float_model(q).eval()
    with torch.no_grad():
        assert bits_equal(fl(x), expect)
    got, want = receiver.state_dict(), fl.state_dict()
    assert got.keys() == want.keys()
    for name in want:  # the receiver holds the fake-quantized weights, bit for bit
        same = bits_equal if want[name].is_floating_point() else torch.equal
        assert same(got[name], want[name]), name
    # Outputs compared against the same weights in a fresh module: torch may pick another CPU
    # kernel for a weight whose size-1 dims have other strides (seen on AMD EPYC / AVX2:
    # to_float_model's conv weight (9, 1, 3, 1) strides vs a fresh (9, 9, 3, 1) differ by 1 ulp).
    ref = MixedNet().eval()
    ref.load_state_dict(want)
    with torch.no_grad():
        assert bits_equal(receiver(x), ref(x))


def test_agreed_mode_stream_also_decodes_exactly(mixed_net):
    q = prepare(mixed_net, uniform(3, "channel"), "lsq")
    _train_a_little(q)
    q.eval()
    data = nnshare.encode_tensors(convert(q), mode="agreed")
    receiver = MixedNet().eval()
    nnshare.decode(data, into=receiver)
    x = mixed_batch(8, 9)
    with torch.no_grad():
        assert bits_equal(receiver(x), q(x))


def test_ranges_learned_by_qat_differ_from_ptq_of_the_same_weights(mixed_net):
    q = prepare(mixed_net, uniform(3, "channel", symmetric=False), "beta_gamma")
    _train_a_little(q, 5e-2)
    tensors = convert(q)
    w = quantizers(q)["fc.weight"]
    latent = q.fc.parametrizations.weight.original.detach()
    ptq = nnshare.quantize(latent.numpy(), w.spec)
    assert not np.array_equal(tensors["fc.weight"].params["scale"], ptq.params["scale"])


def test_channel_bits_spec_is_supported():
    torch.manual_seed(0)
    lin = torch.nn.Sequential(torch.nn.Linear(6, 3))
    spec = QuantSpec(bits=4, granularity="channel", channel_bits=(2, 4, 3), symmetric=False)
    q = prepare(lin, Plan(rules=(Rule(spec=spec, min_ndim=2),)), "minmax")
    codes = convert(q)["0.weight"].codes
    assert codes[0].max() <= 3 and codes[2].max() <= 7 and codes.max() >= 8
    w = q[0].parametrizations.weight.original.detach().numpy()
    np.testing.assert_array_equal(q[0].weight.detach().numpy(),
                                  nnshare.quantize(w, spec).dequantize())


def test_qat_plan_resolves_to_the_trained_specs(mixed_net):
    q = prepare(mixed_net, "w4-channel", freeze=["conv2"])
    plan = Plan.from_json(qat_plan(q).to_json())
    shapes = {k: tuple(v.shape) for k, v in mixed_net.state_dict().items()}
    resolved = plan.resolve(shapes)
    assert resolved["fc.weight"] == QuantSpec(bits=4, granularity="channel")
    assert resolved["conv2.weight"] == "fp32" and resolved["fc.bias"] == "fp32"


def test_convert_of_a_diverged_model_is_a_spec_error():
    q = prepare(torch.nn.Sequential(torch.nn.Linear(4, 4)), uniform(4), "scale_offset")
    with torch.no_grad():
        quantizers(q)["0.weight"].range.scale.fill_(float("nan"))
    with pytest.raises(nnshare.SpecError, match="diverged"):
        convert(q)


def test_convert_refuses_an_unprepared_model(mixed_net):
    with pytest.raises(nnshare.SpecError, match="prepare"):
        convert(mixed_net)


def test_convert_detects_a_mismatch(mixed_net):
    q = prepare(mixed_net, uniform(4))
    fq = quantizers(q)["fc.weight"]
    fq.round_fn = lambda u: torch.floor(u)  # the fake quantizer no longer matches the codec
    with pytest.raises(ConvertError, match="fc.weight"):
        convert(q)


def test_training_keeps_bit_exactness_with_fit_loop():
    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(10, 7), torch.nn.ReLU(), torch.nn.Linear(7, 10))
    q = prepare(model, uniform(2, "channel", symmetric=False), "minmax")
    x = torch.randn(128, 10)
    assert not fit(q, x, x, F.mse_loss, epochs=4, batch_size=32, lr=1e-2).diverged
    receiver = torch.nn.Sequential(torch.nn.Linear(10, 7), torch.nn.ReLU(),
                                   torch.nn.Linear(7, 10))
    nnshare.decode(nnshare.encode_tensors(convert(q)), into=receiver)
    with torch.no_grad():
        assert bits_equal(receiver(x), q(x))


def test_shared_encoder_with_frozen_decoder_round_trips_through_agreed_stream():
    """The 802.11 case: only the encoder is quantized, trained and sent; the AP keeps its
    float decoder; what the AP rebuilds gives exactly the fake-quant model's outputs."""
    from nnshare.qat import encode

    torch.manual_seed(0)
    ae = torch.nn.Sequential(
        torch.nn.Sequential(torch.nn.Linear(12, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)),
        torch.nn.Sequential(torch.nn.Linear(4, 12)),
    )
    q = prepare(ae, uniform(3, "channel"), "lsq", freeze=["1"])
    x = torch.randn(64, 12)
    assert not fit(q, x, x, F.mse_loss, epochs=3, batch_size=16, lr=1e-2).diverged
    data = encode(q, "agreed", submodule="0")
    enc = torch.nn.Sequential(torch.nn.Linear(12, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4))
    nnshare.decode(data, into=enc)
    with torch.no_grad():
        assert bits_equal(ae[1](enc(x)), q(x))
    # payload: 3 bits x 128 weights + 12 fp32 scales + 12 fp32 biases
    assert 8 * len(data) >= 3 * (12 * 8 + 8 * 4) + 32 * 24
    with pytest.raises(nnshare.SpecError, match="submodule"):
        convert(q, submodule="2")
