"""Model files in and out, safely: safetensors files (read and written with numpy alone, bf16
included), sharded safetensors indexes, model folders, and PyTorch state-dict files (read with
``torch.load(weights_only=True)``, never unpickling objects).

Float tensors are held as float32 with their original dtype beside them (a bf16 checkpoint is
written back as bf16); tensors a deduplicating writer (``safetensors.torch.save_model``) dropped
come back as ties.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .errors import ModelFileError, OutputError
from .state import ModelState, model_state

#: safetensors dtype -> (numpy dtype of the stored bytes, nnshare dtype name)
ST_DTYPES = {
    "F64": ("<f8", "float64"), "F32": ("<f4", "float32"), "F16": ("<f2", "float16"),
    "BF16": ("<u2", "bfloat16"), "I64": ("<i8", "int64"), "I32": ("<i4", "int32"),
    "I16": ("<i2", "int16"), "I8": ("i1", "int8"), "U8": ("u1", "uint8"), "BOOL": ("?", "bool"),
}
NAME_TO_ST = {name: code for code, (_, name) in ST_DTYPES.items()}
WEIGHT_FILES = ("model.safetensors.index.json", "model.safetensors", "pytorch_model.bin.index.json",
                "pytorch_model.bin")
MAX_HEADER = 100 * 1024 * 1024


def load_checkpoint(path: str | os.PathLike) -> ModelState:
    """Every tensor of a model file or folder, classified (:func:`nnshare.state.model_state`).

    ``path``: a ``.safetensors`` file, a torch state-dict file (``.pt``, ``.pth``, ``.bin``), a
    sharded index (``*.index.json``), or a folder holding one of :data:`WEIGHT_FILES` (a Hugging
    Face model folder) or exactly one ``.safetensors`` file.
    """
    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"model file not found: {p}")
    if p.is_dir():
        p = weights_file(p)
    if p.name.endswith(".index.json"):
        return _load_index(p)
    with open(p, "rb") as f:
        head = f.read(16)
    if p.suffix == ".safetensors" or (len(head) >= 9 and head[8:9] == b"{"):
        arrays, dtypes, ties = read_safetensors(p)
        return model_state(arrays, dtypes=dtypes, ties=ties)
    return model_state(_load_torch(p))


def load_state(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Named numpy arrays of a model file or folder (floats float32; tied aliases share arrays)."""
    st = load_checkpoint(path)
    out = dict(st.arrays)
    for alias, canon in st.ties.items():
        out[alias] = out[canon]
    return out


def weights_file(folder: Path) -> Path:
    """The weights of a model folder: an index, ``model.safetensors``, ``pytorch_model.bin``, or
    its only ``.safetensors`` file."""
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    found = sorted(folder.glob("*.safetensors"))
    if len(found) == 1:
        return found[0]
    what = f"{len(found)} .safetensors files" if found else "no weights file"
    raise ModelFileError(f"{folder} is a folder with {what} (expected one of {', '.join(WEIGHT_FILES)})")


def _load_index(p: Path) -> ModelState:
    try:
        index = json.loads(p.read_text())
        weight_map = index["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise ModelFileError(f"{p} is not a sharded checkpoint index (no weight_map)") from None
    arrays: dict[str, np.ndarray] = {}
    dtypes: dict[str, str] = {}
    ties: dict[str, str] = {}
    torch_shards = {}
    for shard in shards:
        sp = p.parent / shard
        if Path(shard).name != shard or not sp.is_file():
            raise ModelFileError(f"{p}: shard {shard!r} not found beside the index")
        if sp.suffix == ".safetensors":
            a, d, t = read_safetensors(sp)
            arrays.update(a)
            dtypes.update(d)
            ties.update(t)
        else:
            torch_shards.update(_load_torch(sp))
    if torch_shards:
        return model_state(torch_shards)
    missing = [n for n in weight_map if n not in arrays and n not in ties]
    if missing:
        raise ModelFileError(f"{p}: tensors listed in the index are in no shard: {missing[:3]}")
    return model_state(arrays, dtypes=dtypes, ties=ties)


def read_safetensors(p: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str], dict[str, str]]:
    """(arrays, dtypes, ties) of a safetensors file, numpy only: floats widened to float32
    exactly, integers as stored; ``ties`` from the alias metadata ``save_model`` writes."""
    p = Path(p)
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if size < 8 or n > min(size - 8, MAX_HEADER):
                raise ValueError("header length out of range")
            header = json.loads(f.read(n))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        data = np.memmap(p, dtype=np.uint8, mode="r", offset=8 + n) if size > 8 + n else np.zeros(0, np.uint8)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ModelFileError(f"cannot read safetensors file {p}: {e}") from None
    meta = header.pop("__metadata__", None) or {}
    arrays, dtypes = {}, {}
    for name, info in header.items():
        try:
            code, shape, (lo, hi) = info["dtype"], [int(d) for d in info["shape"]], info["data_offsets"]
            np_dtype, dname = ST_DTYPES[code]
        except (KeyError, TypeError, ValueError):
            raise ModelFileError(f"{p}: tensor {name!r} has an unsupported or malformed entry") from None
        count = int(np.prod(shape, dtype=np.int64))
        if not (0 <= lo <= hi <= data.size) or hi - lo != count * np.dtype(np_dtype).itemsize:
            raise ModelFileError(f"{p}: tensor {name!r} has data offsets outside the file")
        raw = np.frombuffer(data[lo:hi].tobytes(), dtype=np_dtype).reshape(shape)
        if code == "BF16":
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        elif code in ("F16", "F64"):
            raw = raw.astype(np.float32)
        arrays[name] = np.ascontiguousarray(raw) if raw.ndim else raw.copy()
        dtypes[name] = dname
    ties = {k: v for k, v in meta.items() if isinstance(v, str) and v in arrays and k not in arrays}
    return arrays, dtypes, ties


def _load_torch(p: Path) -> dict:
    import torch

    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception:
        raise ModelFileError(
            f"cannot read {p}: not a safetensors file or a torch state dict of plain tensors"
        ) from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise ModelFileError(f"{p} does not hold a dict of tensors (a state dict)")
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise ModelFileError(f"{p}: entry {k!r} is not a named tensor")
    return {k: v.detach() for k, v in obj.items()}


def to_dtype_bytes(a: np.ndarray, dtype: str) -> bytes:
    """Little-endian bytes of float32 / integer ``a`` in ``dtype`` (bf16 rounded to nearest even)."""
    if dtype == "bfloat16":
        from .format.spec import round_float

        return (round_float(a, "bf16").view(np.uint32) >> 16).astype("<u2").tobytes()
    np_dtype = ST_DTYPES[NAME_TO_ST[dtype]][0]
    return np.ascontiguousarray(a, dtype=np_dtype).tobytes()


def safetensors_bytes(arrays: dict[str, np.ndarray], dtypes: dict[str, str] | None = None,
                      metadata: dict[str, str] | None = None) -> bytes:
    """A safetensors file of ``arrays`` (each in ``dtypes[name]``, default its own dtype)."""
    header: dict = {}
    if "__metadata__" in arrays:
        raise OutputError("tensor name '__metadata__' is reserved by the safetensors format: "
                          "cannot write it")
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs, off = [], 0
    for name, a in arrays.items():
        a = np.asarray(a)
        dname = (dtypes or {}).get(name) or str(a.dtype)
        if dname not in NAME_TO_ST:
            raise ModelFileError(f"tensor {name!r}: dtype {dname} cannot be written to safetensors")
        b = to_dtype_bytes(a, dname)
        header[name] = {"dtype": NAME_TO_ST[dname], "shape": list(a.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    return len(head).to_bytes(8, "little") + head + b"".join(blobs)


def save_safetensors(arrays: dict[str, np.ndarray], path: str | os.PathLike,
                     dtypes: dict[str, str] | None = None, metadata: dict[str, str] | None = None) -> None:
    """Write arrays as a safetensors file atomically (numpy only; bf16 supported)."""
    from .share.model import atomic_write

    atomic_write(path, safetensors_bytes(arrays, dtypes, metadata))
