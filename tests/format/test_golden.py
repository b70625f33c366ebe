"""Golden streams of format v1 must decode to the same values in every later version."""

from pathlib import Path

import numpy as np
import pytest

from nnshare.format import read_stream

DATA = Path(__file__).parent.parent / "data"
PACKED = [(n, m) for n in ("seed_ptq_t8", "mixed") for m in ("self", "agreed")]
CASES = PACKED + [("entropy", m) for m in ("self", "agreed")]


def layout(name):
    out = []
    for line in (DATA / f"golden_v1_{name}.layout").read_text().splitlines():
        k, _, dims = line.partition(" ")
        out.append((k, tuple(int(d) for d in dims.split(",") if d)))
    return out


@pytest.mark.parametrize("name, mode", CASES)
def test_golden_stream_decodes_to_stored_values(name, mode):
    data = (DATA / f"golden_v1_{name}_{mode}.nnsh").read_bytes()
    stream = read_stream(data, layout(name) if mode == "agreed" else None)
    expected = np.load(DATA / f"golden_v1_{name}.npz", allow_pickle=False)
    assert sorted(stream.tensors) == sorted(expected.files)
    for k in expected.files:
        got = stream.tensors[k].dequantize()
        assert got.dtype == expected[k].dtype and got.shape == expected[k].shape
        assert np.array_equal(got, expected[k]), k


@pytest.mark.parametrize("name, mode", PACKED)
def test_writer_reproduces_the_golden_bytes(name, mode):
    """Parsing a golden stream and writing its tensors again gives the same bytes."""
    from nnshare.format import write_stream

    data = (DATA / f"golden_v1_{name}_{mode}.nnsh").read_bytes()
    stream = read_stream(data, layout(name) if mode == "agreed" else None)
    again, _ = write_stream(stream.tensors, mode, version=1)
    assert again == data
