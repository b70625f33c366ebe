"""docs/format.md's worked examples (format v1 and v2), byte for byte."""

import numpy as np

from nnshare.format import FloatTensor, QuantSpec, write_stream
from nnshare.quant import quantize

EXAMPLE = (
    "4e 4e 53 48 01 00 02 01 77 02 02 03 01 62 01 02 ce 98 76 a0 "
    "01 38 00 25 49 12 3e b1 ad 85 64 40 46 41 "
    "00 00 00 00 00 3f 00 00 00 c0 5b 9f 85 91"
)


def test_worked_example_v1_bytes():
    w = np.array([[0.5, -1.0, 0.25], [0.75, 0.0, -0.5]], np.float32)
    q = quantize(w, QuantSpec(bits=4))
    assert q.codes.tolist() == [[3, -7, 2], [5, 0, -3]]
    data, secs = write_stream({"w": q, "b": FloatTensor(np.array([0.5, -2.0], np.float32))},
                              version=1)
    assert data.hex(" ") == EXAMPLE
    by_kind = {}
    for s in secs:
        by_kind[s.kind] = by_kind.get(s.kind, 0) + s.bits
    assert by_kind == {"header": 160, "record": 104, "side": 32, "payload": 88}


EXAMPLE_V2 = (
    "4e 4e 53 48 02 00 00 02 01 77 02 02 03 01 62 01 02 0a 00 3f 7a "
    "01 38 00 25 49 12 3e b1 ad 85 41 46 40 64 "
    "00 00 00 00 00 3f 00 00 00 c0 91 85 9f 5b"
)
UPDATE_V2 = (
    "4e 4e 53 48 02 01 03 01 2e ef 21 33 9b 9c fb bf 70 2b 1e c2 9f 53 a6 4a 00 3e 41 ee "
    "01 28 00 cd cc cc 3d b2 47 80 4d 56 7f 44"
)
STATE_V2 = (
    "4e 4e 53 48 02 03 04 01 01 77 01 06 d3 9a 36 89 9b 29 f1 e7 2e 83 36 7e "
    "01 28 00 00 00 80 3f b2 47 80 0a 0b 95 b8"
)


def _example_tensors():
    w = np.array([[0.5, -1.0, 0.25], [0.75, 0.0, -0.5]], np.float32)
    return w, {"w": quantize(w, QuantSpec(bits=4)), "b": FloatTensor(np.array([0.5, -2.0], np.float32))}


def test_worked_example_v2_bytes():
    from nnshare.format import read_stream

    _, tensors = _example_tensors()
    data, secs = write_stream(tensors)
    assert data.hex(" ") == EXAMPLE_V2
    by_kind = {}
    for s in secs:
        by_kind[s.kind] = by_kind.get(s.kind, 0) + s.bits
    assert by_kind == {"header": 168, "record": 104, "side": 32, "payload": 88}
    agreed, _ = write_stream(tensors, "agreed")
    assert agreed[:20].hex(" ") == "4e 4e 53 48 02 00 01 02 52 74 82 a6 bd 06 35 d6 6f d9 0b d1"
    assert read_stream(agreed, [("w", (2, 3)), ("b", (2,))]).kind == "model"


def test_worked_example_v2_update_and_chain_state_bytes():
    from nnshare.share.delta import decode_update, encode_update

    w, _ = _example_tensors()
    new = {"w": (w + np.array([[0.1, 0, 0], [0, -0.1, 0.2]], np.float32)).astype(np.float32)}
    enc = encode_update(new, {"w": w}, step=0.1, method="nearest")
    assert enc.data.hex(" ") == UPDATE_V2
    assert enc.state.to_bytes().hex(" ") == STATE_V2
    assert enc.state.codes["w"].tolist() == [1, 0, 0, 0, -1, 2]
    out, _ = decode_update(enc.data, {"w": w})
    assert np.array_equal(out["w"], w + np.float32(0.1) * np.array([[1, 0, 0], [0, -1, 2]], np.float32))
