"""Progressive bundles: index and parts round trip, readiness from fragment arrivals, ordering
by criticality, assembly with missing blocks, coarse-to-fine refinement."""

import numpy as np
import pytest

from nnshare.format.errors import FormatError, SpecError
from nnshare.link import Link, Phy
from nnshare.link.blockack import deliver
from nnshare.link.progressive import (
    Part,
    assemble,
    assemble_coarse,
    channel_parts,
    coarse_to_fine,
    index,
    pack,
    part_ready_us,
    unpack,
)

RNG = np.random.default_rng(0)
MODEL = {"a.weight": RNG.standard_normal((8, 5)).astype(np.float32), "a.bias": np.ones(8, np.float32),
         "b.weight": RNG.standard_normal((3, 8)).astype(np.float32)}
SHAPES = {k: v.shape for k, v in MODEL.items()}


def test_bundle_round_trip_and_damage():
    parts = [Part("x", b"abc"), Part("lé", b""), Part("z", bytes(300))]
    b = pack(parts)
    assert unpack(b) == parts
    idx, head = index(b)
    assert [i[0] for i in idx] == ["x", "lé", "z"] and idx[-1][2] == len(b) and head == idx[0][1]
    with pytest.raises(FormatError):
        index(b[: head - 1])
    bad = bytearray(b)
    bad[6] ^= 1
    with pytest.raises(FormatError, match="CRC"):
        index(bytes(bad))
    with pytest.raises(FormatError, match="length"):
        unpack(b + b"!")
    assert unpack(pack([])) == []


def test_parts_ready_when_their_fragments_arrive():
    parts = [Part(str(i), bytes([i]) * 2000) for i in range(6)]  # 24 fragments, 10 per PPDU
    b = pack(parts)
    lk = Link(Phy(0), fragment_bytes=500)  # 3 MPDUs per PPDU: parts complete PPDU by PPDU
    d = deliver(b, lk)
    ready = part_ready_us(b, 500, d.arrival_us)
    assert ready == sorted(ready) and ready[-1] == pytest.approx(d.airtime_us)
    assert ready[0] < ready[-1]


def test_criticality_order_and_assembly():
    scores = {"a.weight": np.arange(8.0), "b.weight": np.full(3, 100.0)}
    parts = channel_parts(MODEL, "w8-channel", scores=scores, blocks=2)
    assert parts[0].label == "head" and parts[1].label.startswith("b.weight")
    assert [p.label for p in parts[1:]][-1] == "a.weight[0:4]"  # least critical last
    inorder = channel_parts(MODEL, "w8-channel", order="in-order", blocks=2)
    assert [p.label for p in inorder] == ["head", "a.weight[0:4]", "a.weight[4:8]", "b.weight[0:2]",
                                          "b.weight[2:3]"]
    full = assemble(parts, SHAPES)
    for k, v in MODEL.items():
        assert np.allclose(full[k], v, atol=np.abs(v).max() / 100)
    partial = assemble(parts[:2], SHAPES)
    assert np.all(partial["a.weight"] == 0) and np.array_equal(partial["a.bias"], MODEL["a.bias"])
    a, b = (int(x) for x in parts[1].label.split("[")[1].rstrip("]").split(":"))
    assert np.allclose(partial["b.weight"][a:b], MODEL["b.weight"][a:b], atol=0.05)
    assert np.all(np.delete(partial["b.weight"], np.s_[a:b], axis=0) == 0)
    with pytest.raises(SpecError):
        channel_parts(MODEL, order="criticality")
    with pytest.raises(SpecError):
        channel_parts(MODEL, order="random")


def test_coarse_to_fine():
    parts = coarse_to_fine(MODEL, fine_sqnr_db=40.0)
    assert [p.label for p in parts] == ["coarse", "refine:a.weight", "refine:b.weight"]  # bias exact
    err = {}
    for k in range(4):
        m = assemble_coarse(parts[:k], SHAPES)
        err[k] = sum(float(np.sum((m[n] - MODEL[n]) ** 2)) for n in MODEL)
    assert err[0] > err[1] > err[2] > err[3]
    total = sum(float(np.sum(v**2)) for v in MODEL.values())
    assert err[3] < total * 10 ** (-3.5)  # ~40 dB SQNR of the refinements
    ranked = coarse_to_fine(MODEL, scores={"a.weight": np.zeros(8), "b.weight": np.ones(3)})
    assert [p.label for p in ranked][1] == "refine:b.weight"
