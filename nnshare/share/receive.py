"""The receiver's side of whole-model decoding: a stream back to named numpy arrays.

Imports the numpy-only receiver (:mod:`nnshare.format`) and nothing of the sender side
(quantizers, plans, scipy, numba, torch), so ``nnshare decode`` starts fast; :mod:`.model`
re-exports these names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..format import container
from ..format.forked_decode import decode_tensors
from ..format.meta import read_meta

#: A version-1 update stream's magic (:mod:`.legacy_update`, imported only for such a stream).
LEGACY_UPDATE_MAGIC = b"NNSU"


@dataclass(frozen=True, eq=False)
class Decoded:
    """What a stream rebuilds: float32 / integer arrays (tied aliases included, sharing their
    canonical array), the original dtype of float tensors, and the ties."""

    arrays: dict[str, np.ndarray]
    dtypes: dict[str, str]
    ties: dict[str, str]


def decode_model(data: bytes, layout=None, *, processes: int = 1) -> Decoded:
    """Parse a stream and rebuild every tensor (FormatError on a bad stream). ``processes``:
    decode the records in up to this many processes (the same arrays for any count; see
    :func:`nnshare.format.decode_arrays`)."""
    tensors = decode_tensors(data, layout, processes=processes)
    arrays = {n: t.dequantize() for n, t in tensors.items()}
    dtypes, ties = read_meta(arrays)
    for n, t in tensors.items():
        if n in arrays and n not in dtypes:
            dtypes[n] = {"bf16": "bfloat16", "fp16": "float16"}.get(getattr(t, "dtype", ""), "")
            if not dtypes[n]:
                dtypes[n] = str(arrays[n].dtype)
    for alias, canon in ties.items():
        arrays[alias] = arrays[canon]
        dtypes[alias] = dtypes[canon]
    return Decoded(arrays, dtypes, ties)


def is_update(data: bytes | bytearray | memoryview) -> bool:
    """Whether ``data`` looks like a model update (v2 kind "update", or a v1 ``NNSU`` stream)."""
    return bytes(data[:4]) == LEGACY_UPDATE_MAGIC or container.peek_kind(data) == "update"
