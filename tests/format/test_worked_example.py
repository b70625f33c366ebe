"""docs/format.md's worked example, byte for byte."""

import numpy as np

from nnshare.format import FloatTensor, QuantSpec, write_stream
from nnshare.quant import quantize

EXAMPLE = (
    "4e 4e 53 48 01 00 02 01 77 02 02 03 01 62 01 02 ce 98 76 a0 "
    "01 38 00 25 49 12 3e b1 ad 85 64 40 46 41 "
    "00 00 00 00 00 3f 00 00 00 c0 5b 9f 85 91"
)


def test_worked_example_bytes():
    w = np.array([[0.5, -1.0, 0.25], [0.75, 0.0, -0.5]], np.float32)
    q = quantize(w, QuantSpec(bits=4))
    assert q.codes.tolist() == [[3, -7, 2], [5, 0, -3]]
    data, secs = write_stream({"w": q, "b": FloatTensor(np.array([0.5, -2.0], np.float32))})
    assert data.hex(" ") == EXAMPLE
    by_kind = {}
    for s in secs:
        by_kind[s.kind] = by_kind.get(s.kind, 0) + s.bits
    assert by_kind == {"header": 160, "record": 104, "side": 32, "payload": 88}
