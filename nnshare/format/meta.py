"""What a self-describing stream tells the receiver beyond the tensors: original float dtypes
(bf16 comes back bf16) and tied aliases (coded once, restored shared).

Carried, only when there is something to say, as one raw uint8 tensor named :data:`META_NAME`
holding compact JSON ``{"dtypes": {name: "bfloat16" | "float16" | "float64"}, "ties":
{alias: canonical}}`` (float32 dtypes and integer dtypes, which their records keep, are left
out). Agreed-mode streams never carry it: the receiver's own model says both.
"""

from __future__ import annotations

import json

import numpy as np

from .errors import FormatError
from .spec import RawTensor

META_NAME = "__nnshare_meta__"
FLOAT_DTYPES = ("bfloat16", "float16", "float64")


def meta_tensor(dtypes: dict[str, str], ties: dict[str, str]) -> RawTensor | None:
    """The meta record for these dtypes / ties, or None when there is nothing to say."""
    d = {n: t for n, t in dtypes.items() if t in FLOAT_DTYPES}
    body = {}
    if d:
        body["dtypes"] = dict(sorted(d.items()))
    if ties:
        body["ties"] = dict(sorted(ties.items()))
    if not body:
        return None
    text = json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return RawTensor(np.frombuffer(text, np.uint8).copy())


def read_meta(arrays: dict[str, np.ndarray]) -> tuple[dict[str, str], dict[str, str]]:
    """Pop the meta record from decoded arrays; (dtypes, ties). FormatError when malformed."""
    raw = arrays.pop(META_NAME, None)
    if raw is None:
        return {}, {}
    try:
        body = json.loads(np.asarray(raw, np.uint8).tobytes().decode("utf-8"))
        dtypes, ties = dict(body.get("dtypes", {})), dict(body.get("ties", {}))
    except (ValueError, UnicodeDecodeError, TypeError, AttributeError):
        raise FormatError("malformed nnshare meta record (dtypes / ties)") from None
    for n, t in dtypes.items():
        if n not in arrays or t not in FLOAT_DTYPES:
            raise FormatError(f"meta record: bad dtype entry {n!r}: {t!r}")
    for a, c in ties.items():
        if c not in arrays or a in arrays or not isinstance(a, str):
            raise FormatError(f"meta record: bad tie {a!r} -> {c!r}")
    return dtypes, ties


def with_meta(tensors: dict, mode: str, dtypes: dict[str, str] | None = None,
              ties: dict[str, str] | None = None) -> dict:
    """``tensors`` plus the meta record a ``mode`` stream carries for these dtypes / ties."""
    if META_NAME in tensors:
        raise FormatError(f"{META_NAME!r} is a reserved tensor name")
    meta = meta_tensor(dict(dtypes or {}), dict(ties or {})) if mode == "self" else None
    return tensors if meta is None else {**tensors, META_NAME: meta}
