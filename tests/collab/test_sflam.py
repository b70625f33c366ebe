import numpy as np
import pytest
import torch

from nnshare.collab.codecs import codec
from nnshare.collab.feature_codecs import Lossless, Uniform, expected_bytes
from nnshare.collab.sflam import EdgeDevice, front, operating_point, round_cost, split_fedavg
from nnshare.format.errors import SpecError

DEVICES = [EdgeDevice(cycles=2e8, clock_hz=1e9, gain=1e-12), EdgeDevice(cycles=2e8, clock_hz=2e9, gain=1e-13),
           EdgeDevice(cycles=1e8, clock_hz=0.5e9, gain=3e-13)]


def up(bits):
    return 40_000 * bits


def test_round_cost_adds_compute_and_upload_energy():
    op = round_cost(DEVICES, [up(4)] * 3, [0.01, 0.02, 0.05], 1e6)
    assert sum(op.bandwidth_hz) == pytest.approx(1e6)
    from nnshare.collab.feel import Device

    energy = 0.0
    for d, p, b in zip(DEVICES, op.powers_w, op.bandwidth_hz, strict=True):
        rate = Device(d.compute_s, p, d.gain).rate(b, 4e-21)
        energy += d.kappa * d.cycles * d.clock_hz**2 + p * up(4) / rate
        assert d.compute_s + up(4) / rate <= op.latency_s * (1 + 1e-6)
    assert op.energy_j == pytest.approx(energy)


def test_operating_points_trade_latency_for_energy():
    fast = operating_point(DEVICES, (2, 4, 8), up, 1e6, 1.0, min_bits=4)
    thrifty = operating_point(DEVICES, (2, 4, 8), up, 1e6, 0.0, min_bits=4)
    assert min(fast.bits) >= 4 and min(thrifty.bits) >= 4
    assert fast.latency_s <= thrifty.latency_s and thrifty.energy_j <= fast.energy_j
    assert thrifty.energy_j < 0.9 * fast.energy_j  # compute energy (0.1 J) is the same for both
    pts = front(DEVICES, (2, 4, 8), up, 1e6, weights=np.linspace(0, 1, 6), min_bits=4)
    pairs = zip(pts, pts[1:], strict=False)
    assert len(pts) >= 2 and all(a.latency_s <= b.latency_s and a.energy_j > b.energy_j for a, b in pairs)
    with pytest.raises(SpecError, match="weight"):
        operating_point(DEVICES, (2, 4), up, 1e6, 1.5)
    with pytest.raises(SpecError, match="no bit width"):
        operating_point(DEVICES, (2, 4), up, 1e6, 0.5, min_bits=8)


def test_split_fedavg_averages_device_parts_and_counts_bytes():
    torch.manual_seed(0)
    device, server = torch.nn.Linear(6, 4), torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(4, 3))
    shards = [(torch.randn(20, 6), torch.randint(0, 3, (20,))) for _ in range(2)]
    test = (torch.randn(10, 6), torch.randint(0, 3, (10,)))
    before = {n: v.clone() for n, v in device.state_dict().items()}
    run = split_fedavg(device, server, shards, test, [(Lossless(), Lossless()), (Uniform(4), Uniform(4))],
                       [codec("fp32"), codec("fp32")], rounds=2, local_steps=3, batch=8)
    assert len(run.accuracy) == 2 and not torch.equal(device.weight, before["weight"])
    lossless, packed = expected_bytes(Lossless(), (8, 4)), expected_bytes(Uniform(4, entropy="none"), (8, 4))
    for got in (run.up_bytes[0], run.down_bytes[0], run.up_bytes[1]):  # 3 steps on each device
        assert 3 * lossless < got <= 3 * lossless + 3 * packed
    assert run.update_bytes[0] == run.update_bytes[1] > 2 * 4 * (6 * 4 + 4)
    with pytest.raises(SpecError, match="2 devices need"):
        split_fedavg(device, server, shards, test, [(None, None)], [codec("fp32")] * 2)
