import pytest
import torch

from nnshare import SpecError
from nnshare.ptq.softmax import QuantSoftmax, quantize_probs


def _rows(n_rows=64, t=128, temp=0.3, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = torch.softmax(torch.randn(n_rows, 2, t, t, generator=g) * temp, dim=-1)  # long, flat rows
    return p, torch.ones(t, t, dtype=torch.bool)


def test_quantized_probabilities_lose_mass_and_correction_restores_it():
    p, mask = _rows()
    q = quantize_probs(p, 6)
    assert q.sum(-1).mean() < 0.9  # many entries < s/2 round to zero
    sm = QuantSoftmax(heads=2, max_len=128, bits=6)
    sm.start_calibration()
    assert torch.equal(sm(p, mask), p)  # calibration passes the float values through
    beta = sm.finish_calibration()
    assert beta.shape == (2, 1, 1) and (beta > 0).all()
    p2, _ = _rows(seed=1)
    out = sm(p2, mask)
    assert abs(float(out.sum(-1).mean()) - 1.0) < 0.01  # unbiased row sums on new data
    assert abs(float((out - p2).mean())) < 1e-4


def test_per_position_correction_respects_the_causal_mask():
    t = 32
    mask = torch.tril(torch.ones(t, t, dtype=torch.bool))
    p = torch.softmax(torch.zeros(4, 1, t, t).masked_fill(~mask, float("-inf")), dim=-1)  # uniform rows
    sm = QuantSoftmax(heads=1, max_len=t, bits=4, granularity="position")
    sm.start_calibration()
    sm(p, mask)
    sm.finish_calibration()
    out = sm(p, mask)
    assert torch.equal(out[..., ~mask], torch.zeros_like(out[..., ~mask]))  # nothing leaks to the future
    assert torch.allclose(out.sum(-1), torch.ones(4, 1, t), atol=1e-5)
    assert torch.allclose(out, p, atol=1e-6)  # uniform rows: the per-position offset is exact


def test_bad_settings():
    with pytest.raises(SpecError, match="granularity"):
        QuantSoftmax(1, 4, granularity="row")
    with pytest.raises(SpecError, match="bits"):
        quantize_probs(torch.rand(3), 0)
    sm = QuantSoftmax(1, 4)
    sm.start_calibration()
    with pytest.raises(SpecError, match="no calibration"):
        sm.finish_calibration()
