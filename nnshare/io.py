"""Reading model files safely: safetensors and PyTorch state-dict files (never unpickling objects)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .format.errors import NNShareError


class ModelFileError(NNShareError, OSError):
    """A model file is missing, unreadable or not a flat dict of tensors."""


def load_state(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Named numpy arrays from a ``.safetensors`` file or a torch state-dict file (``.pt``,
    ``.pth``, ``.bin``), the latter read with ``torch.load(weights_only=True)``."""
    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"model file not found: {p}")
    if not p.is_file():
        raise ModelFileError(f"not a file: {p}")
    with open(p, "rb") as f:
        head = f.read(16)
    if p.suffix == ".safetensors" or (len(head) >= 9 and head[8:9] == b"{"):
        return _load_safetensors(p)
    return _load_torch(p)


def _load_safetensors(p: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        return dict(load_file(str(p)))
    except Exception:  # dtypes numpy lacks (bf16, fp8) or a damaged file: let torch try
        pass
    try:
        from safetensors.torch import load_file as load_torch

        out = {}
        for k, v in load_torch(str(p)).items():
            out[k] = (v.float() if v.is_floating_point() else v).numpy()
        return out
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelFileError(f"cannot read safetensors file {p}: {msg}") from None


def _load_torch(p: Path) -> dict[str, np.ndarray]:
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
    out = {}
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise ModelFileError(f"{p}: entry {k!r} is not a named tensor")
        v = v.detach()
        out[k] = (v.float() if v.is_floating_point() else v).numpy()
    return out


def save_safetensors(arrays: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    """Write arrays as a safetensors file atomically."""
    from safetensors.numpy import save

    from .share.model import atomic_write

    data = save({k: np.asarray(v, order="C") for k, v in arrays.items()})
    atomic_write(path, data)
