import pytest
import torch

from nnshare import QuantSpec
from nnshare.ptq import debug, fold_batchnorm

from .ptq_nets import images, mobile_cnn


def test_debug_report_rows_table_and_plot(tmp_path):
    net, x = mobile_cnn(seed=0), images(64)
    fold_batchnorm(net)
    ref = net(x).detach()

    def agreement(m):  # cosine of the outputs to the float model's
        return float(torch.nn.functional.cosine_similarity(m(x).detach(), ref).mean())

    base, rows = debug.analyze(net, QuantSpec(bits=2, granularity="channel"), [x], agreement, act_bits=2)
    assert base == pytest.approx(1.0)
    assert [r.layer for r in rows] == ["0", "3", "6", "11"]
    assert all(0.0 <= r.weight <= 1.0 and 0.0 <= r.activation <= 1.0 for r in rows)
    assert min(min(r.weight, r.activation) for r in rows) < 0.999  # 2 bits hurt somewhere
    assert torch.equal(net(x), ref)  # the model itself is left alone
    text = debug.table(base, rows, "acc")
    assert text.count("\n") == len(rows) + 2 and "(sensitive)" in text
    debug.plot(base, rows, tmp_path / "d.png")
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
    assert isinstance(rows[0].params, int) and rows[0].params == net[0].weight.numel()
    assert torch.is_tensor(net[0].weight)
