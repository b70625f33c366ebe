"""Non-affine schemes (codebook, rotated) are refused by name by every integer-affine target and
load as float in place."""

import numpy as np
import pytest
import torch
from torch import nn

from nnshare.export import ExportError, to_compressed_tensors
from nnshare.export.nnr import nnr_plan
from nnshare.export.onnx_qdq import qdq_parts
from nnshare.quant import RotatedConfig
from nnshare.quant import rotated as rotated_quant
from nnshare.share.model import encode_tensors
from nnshare.torch import QuantLinear, load_quantized


def _rotated(shape=(8, 16)):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    return rotated_quant.quantize(x, RotatedConfig(bits=2, seed=3))


def test_targets_name_the_scheme(tmp_path):
    q = _rotated()
    data = encode_tensors({"fc.weight": q})
    with pytest.raises(ExportError, match="tensor 'fc.weight' \\(rotated 2-bit\\) uses scheme 'rotated'"):
        to_compressed_tensors(data, tmp_path)
    with pytest.raises(ExportError, match="uses scheme 'rotated'"):
        qdq_parts("fc.weight", q)
    with pytest.raises(ExportError, match="uses scheme 'rotated'"):
        nnr_plan({"fc.weight": q})


def test_load_quantized_keeps_other_schemes_as_float():
    q = _rotated()
    model = nn.Sequential(nn.Linear(16, 8, bias=False))
    loaded = load_quantized(model, encode_tensors({"0.weight": q}))
    assert not isinstance(loaded[0], QuantLinear)
    assert torch.equal(loaded[0].weight.detach(), torch.from_numpy(q.dequantize()))
