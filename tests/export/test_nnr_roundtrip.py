"""A real NNR round trip: nnshare stream -> NNCodec 2.1.3 (MPEG NNR bitstream) -> nnshare stream.

NNCodec needs numpy<2 and builds a C++ extension, so it lives in its own venv,
bench/.nncodec-venv, made by bench/nncodec/setup_venv.sh (``make test`` prepares it; here it is
built on first use when missing, or taken from ``$NNSHARE_NNCODEC_PYTHON``). The test skips only
when that venv cannot be built, and says why.
"""


import numpy as np

import nnshare
from nnshare import QuantSpec
from nnshare.export.nnr import from_nnr, nnr_plan, nnr_step, to_nnr
from nnshare.format import QuantizedTensor, decode_arrays, read_stream


def test_digits_mlp_through_nncodec_decodes_to_nnshare_values(trained_mlp, nncodec_python):
    w4 = QuantSpec(bits=4, granularity="tensor", scale_dtype="bf16")  # NNR's layout: one step
    b16 = QuantSpec(bits=16, granularity="tensor", scale_dtype="bf16")
    plan = {n: w4 if p.ndim == 2 else b16 for n, p in trained_mlp.state_dict().items()}
    data = nnshare.encode(trained_mlp, plan)
    mine = read_stream(data).tensors
    qps = nnr_plan(mine)

    nnr = to_nnr(data, python=nncodec_python, verify=False)
    assert nnr[:4] != b"NNSH" and 0 < len(nnr) < len(data)
    back = from_nnr(nnr, python=nncodec_python)

    want, got = decode_arrays(data), decode_arrays(back)
    assert list(got) == list(want)
    for name in want:
        assert np.array_equal(got[name], want[name]), name
    theirs = read_stream(back).tensors
    for name, t in mine.items():  # levels are nnshare's codes and the step is its scale
        u = theirs[name]
        assert isinstance(u, QuantizedTensor) and u.spec.granularity == "tensor"
        assert np.array_equal(np.asarray(u.codes), np.asarray(t.codes)), name
        assert float(u.params["scale"]) == float(t.params["scale"]) == nnr_step(qps[name])

