"""The seed's numbers (IEEE 802.11-23/0756r1): 3,256 coefficients, 104,192 -> 27,456 bits."""

import torch
from torch import nn

import nnshare


def seed_mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 40), nn.ReLU(), nn.Linear(40, 16))


def test_seed_mlp_ptq_t8_is_exactly_27456_bits():
    model = seed_mlp()
    assert sum(p.numel() for p in model.parameters()) == 3256
    data = nnshare.encode(model, "ptq-t8", mode="agreed")
    rep = nnshare.inspect(data, into=model)
    assert rep.float32_bits == 104_192
    assert rep.payload_bits == 3200 * 8 + 56 * 32  # int8 weights, float32 biases
    assert rep.side_bits == 2 * 32  # one float32 scale per weight tensor
    assert rep.shared_bits == 27_456
    assert rep.total_bits == 8 * len(data)
    assert rep.overhead_bits == rep.header_bits + sum(r.record_bits + r.pad_bits for r in rep.rows)
    # agreed mode, format v2: 20-byte header (magic, version, kind, flags, count, 64-bit
    # fingerprint, CRC); 27,824 bits in all (v1's 32-bit fingerprint gave 27,784)
    assert rep.header_bits == 20 * 8
    assert rep.total_bits == 27_824
    assert round(100 * (1 - rep.shared_bits / rep.float32_bits), 1) == 73.6


def test_self_describing_mode_costs_only_names_and_shapes_more():
    model = seed_mlp()
    agreed = nnshare.inspect(nnshare.encode(model, "ptq-t8", mode="agreed"), into=model)
    selfd = nnshare.inspect(nnshare.encode(model, "ptq-t8", mode="self"))
    assert selfd.shared_bits == agreed.shared_bits
    names = sum(len(n) + 1 + 1 + len(s) for n, s in [("0.weight", (40, 64)), ("0.bias", (40,)),
                                                     ("2.weight", (16, 40)), ("2.bias", (16,))])
    assert selfd.header_bits - agreed.header_bits == 8 * (names - 8)  # no 8-byte fingerprint
