import numpy as np
import pytest
import torch

from nnshare.format.errors import SpecError
from nnshare.wlan import sharing
from nnshare.wlan.autoencoder import make_decoder, make_encoder
from nnshare.wlan.experiment import training_features
from nnshare.wlan.qat_encoder import qat_encoder


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return make_encoder()


def test_ptq_t8_is_exactly_27456_bits(encoder):
    sh = sharing.share(encoder, "ptq-t8")
    assert sh.shared_bits == 27_456
    assert sh.payload_bits == 8 * 3200 + 32 * 56 and sh.side_bits == 64
    assert sh.total_bits == 8 * sh.stream_bytes
    fp = sharing.share(encoder, "float32")
    assert fp.shared_bits == 104_192
    assert 100 * (1 - sh.shared_bits / fp.shared_bits) == pytest.approx(73.65, abs=0.01)
    # the decoded encoder is a different module holding the dequantized weights
    assert sh.encoder is not encoder
    w, wq = encoder[0].weight.detach(), sh.encoder[0].weight.detach()
    step = w.abs().max() / 127
    assert 0 < (w - wq).abs().max() <= step / 2 + 1e-7
    assert torch.equal(sh.encoder[0].bias, encoder[0].bias)
    assert torch.equal(fp.encoder[2].weight, encoder[2].weight)


@pytest.mark.parametrize(
    "scheme,bits", [("ptq-t4", 14_656), ("ptq-t3", 11_456), ("ptq-c4", 16_384), ("ptq-c3", 13_184)]
)
def test_bit_counts(encoder, scheme, bits):
    assert sharing.share(encoder, scheme).shared_bits == bits


def test_bad_scheme(encoder):
    for bad in ("ptq-x4", "ptq-t1", "int8", "ptq-t"):
        with pytest.raises(SpecError):
            sharing.scheme_plan(bad)


def test_qat_share_small():
    x = training_features(20, "D", (20.0, 30.0), seed=4)
    torch.manual_seed(1)
    enc, dec = make_encoder(), make_decoder()
    dec_before = {k: v.clone() for k, v in dec.state_dict().items()}
    tensors = qat_encoder(enc, dec, x, 4, epochs=1)
    sh = sharing.share_tensors("qat-t4", tensors)
    assert sh.shared_bits == 14_656
    for k, v in dec.state_dict().items():  # the AP's decoder is untouched
        assert torch.equal(v, dec_before[k])
    w = sh.encoder[0].weight.detach().numpy()
    assert len(np.unique(w)) <= 16  # 4-bit codes
    with pytest.raises(SpecError):
        sharing.share_tensors("qat-t4", {"0.weight": tensors["0.weight"]})
