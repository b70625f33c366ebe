"""What nnshare's Flower adapter puts in Flower's records (shared by the mod and the strategy).

An nnshare stream travels as one Flower ``Array`` (``dtype`` "uint8", ``shape`` (n bytes,),
``stype`` :data:`STYPE_MODEL` or :data:`STYPE_UPDATE`, ``data`` the stream) in an ``ArrayRecord``
holding only it, under :data:`ARRAY_KEY`. The codec the server chose travels in the message's
ConfigRecord as JSON under :data:`KEY_CODEC`, so every client codes with the same one.

Flower is imported inside the functions (the ``flower`` extra); this module itself needs numpy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np

from ..format.container import read_stream, write_stream
from ..format.errors import FormatError, SpecError
from ..format.spec import FloatTensor
from .codecs import Codec, codec
from .feedback import ErrorFeedback

ARRAY_KEY = "nnshare"
STYPE_MODEL = "nnshare/model"
STYPE_UPDATE = "nnshare/update"
KEY_CODEC = "nnshare-codec"
KEY_ROUND = "nnshare-round"
STATE_ARRAYS = "nnshare-ef"  # Context.state: the error-feedback memory (float32 arrays)
STATE_META = "nnshare-ef-meta"  # Context.state: whose memory it is, for which codec


def flwr():
    """The ``flwr.app`` module, or a SpecError naming the extra to install."""
    try:
        import flwr.app as app
    except ImportError:  # pragma: no cover - the extra is installed by make test
        raise SpecError("the Flower adapter needs Flower: pip install 'nnshare[flower]'") from None
    return app


def describe(c: Codec | ErrorFeedback) -> str:
    """JSON naming ``c`` (codec name, its options, error feedback kind or "none")."""
    inner = c.codec if isinstance(c, ErrorFeedback) else c
    import dataclasses

    opts = {f.name: getattr(inner, f.name) for f in dataclasses.fields(inner)}
    ef = c.kind if isinstance(c, ErrorFeedback) else "none"
    return json.dumps({"codec": inner.name, "options": opts, "ef": ef}, sort_keys=True)


def from_description(text: str) -> Codec | ErrorFeedback:
    """The codec :func:`describe` named; SpecError on anything else."""
    try:
        d = json.loads(text)
        name, opts, ef = d["codec"], dict(d["options"]), d["ef"]
    except (ValueError, TypeError, KeyError):
        raise SpecError(f"not an nnshare codec description: {str(text)[:80]!r}") from None
    c = codec(str(name), **opts)
    if ef == "none":
        return c
    return ErrorFeedback(c, kind=str(ef))


def to_array(data: bytes, stype: str):
    """A Flower Array carrying the stream bytes."""
    return flwr().Array(dtype="uint8", shape=(len(data),), stype=stype, data=bytes(data))


def from_record(record, stype: str, what: str) -> bytes:
    """The stream bytes of an ArrayRecord written by :func:`stream_record`; FormatError otherwise."""
    keys = list(record.keys())
    if keys != [ARRAY_KEY]:
        raise FormatError(f"{what} is not an nnshare stream record (arrays {keys[:4]})")
    arr = record[ARRAY_KEY]
    if arr.stype != stype:
        raise FormatError(f"{what} carries {arr.stype!r}, expected {stype!r}")
    data = bytes(arr.data)
    if tuple(arr.shape) != (len(data),):
        raise FormatError(f"{what} claims {tuple(arr.shape)} bytes but holds {len(data)}")
    return data


def stream_record(data: bytes, stype: str):
    """An ArrayRecord holding only the stream."""
    return flwr().ArrayRecord({ARRAY_KEY: to_array(data, stype)})


def is_stream_record(record) -> bool:
    return list(record.keys()) == [ARRAY_KEY] and record[ARRAY_KEY].stype in (STYPE_MODEL, STYPE_UPDATE)


def numpy_arrays(record) -> dict[str, np.ndarray]:
    """Name -> float32 array of an ordinary ArrayRecord (the model); SpecError for non-float."""
    out = {}
    for k in record.keys():
        a = record[k].numpy()
        if not np.issubdtype(a.dtype, np.floating):
            raise SpecError(f"array {k!r} is {a.dtype}: the nnshare Flower adapter codes float arrays")
        out[k] = np.asarray(a, np.float32)
    return out


def array_record(arrays: Mapping[str, np.ndarray]):
    """An ordinary ArrayRecord (numpy serialisation) of name -> array, in the given order."""
    app = flwr()
    return app.ArrayRecord({k: app.Array(np.ascontiguousarray(v)) for k, v in arrays.items()})


def encode_broadcast(arrays: Mapping[str, np.ndarray]) -> bytes:
    """The broadcast as a self-describing nnshare model stream of float32 records (lossless; the
    names and shapes in the header, in ArrayRecord order)."""
    data, _ = write_stream({k: FloatTensor(np.asarray(v, np.float32)) for k, v in arrays.items()}, "self")
    return data


def decode_broadcast(data: bytes) -> dict[str, np.ndarray]:
    """Name -> float32 array of a broadcast stream (in its order); FormatError on a bad stream."""
    s = read_stream(data)
    if s.kind != "model":
        raise FormatError(f"a broadcast must be a model stream, got a {s.kind} stream")
    return {n: s.tensors[n].dequantize().reshape(shape) for n, shape in s.layout}


def cap_norm(update: Mapping[str, np.ndarray], max_norm: float | None) -> tuple[dict[str, np.ndarray], bool]:
    """``update`` scaled so that its global L2 norm is at most ``max_norm`` (None: unchanged);
    also whether it was scaled."""
    upd = {k: np.asarray(v, np.float32) for k, v in update.items()}
    if max_norm is None:
        return upd, False
    norm = float(np.sqrt(sum(float(np.sum(np.square(v, dtype=np.float64))) for v in upd.values())))
    if norm <= max_norm:
        return upd, False
    f = np.float32(max_norm / norm)
    return {k: v * f for k, v in upd.items()}, True
