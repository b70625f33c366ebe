"""Whole-model encode / decode: state dict -> plan -> quantized tensors -> stream, and back."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..format import container
from ..format.errors import FormatError, NNShareError, SpecError
from ..format.records import Tensor
from ..format.spec import QuantSpec
from ..plan import Plan, preset

PlanLike = Plan | str | Mapping[str, "QuantSpec | str"]


def tensors_of(model_or_state: Any) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Named numpy arrays of an ``nn.Module`` (its state_dict) or a mapping of tensors/arrays,
    plus the class name of each tensor's owning module (empty for a plain mapping)."""
    module_types: dict[str, str] = {}
    if hasattr(model_or_state, "state_dict") and hasattr(model_or_state, "named_modules"):
        mods = dict(model_or_state.named_modules())
        state = model_or_state.state_dict()
        for name in state:
            owner = name.rsplit(".", 1)[0] if "." in name else ""
            if owner in mods:
                module_types[name] = type(mods[owner]).__name__
    elif isinstance(model_or_state, Mapping):
        state = model_or_state
    else:
        raise SpecError(
            f"expected an nn.Module or a mapping of tensors, got {type(model_or_state).__name__}"
        )
    out: dict[str, np.ndarray] = {}
    for name, v in state.items():
        if not isinstance(name, str):
            raise SpecError(f"tensor names must be strings, got {name!r}")
        if hasattr(v, "detach"):
            v = v.detach().cpu()
            if v.dtype.is_floating_point:
                v = v.float()
            v = v.numpy()
        arr = np.asarray(v)
        if arr.dtype.kind == "c" or arr.dtype.kind not in "fiub":
            raise SpecError(f"tensor {name!r} has unsupported dtype {arr.dtype}")
        out[name] = arr
    if not out:
        raise SpecError("the model has no tensors to encode")
    return out, module_types


def as_plan(plan: PlanLike, names) -> Plan:
    """A Plan from a Plan, a preset name or an explicit {name: spec | float dtype}."""
    if isinstance(plan, str):
        return preset(plan)
    if isinstance(plan, Plan):
        return plan
    if isinstance(plan, Mapping):
        unknown = set(plan) - set(names)
        if unknown:
            raise SpecError(f"plan names tensors the model does not have: {sorted(unknown)[:5]}")
        return Plan.from_choices(plan)
    raise SpecError(f"plan must be a Plan, a preset name or a mapping, got {type(plan).__name__}")


def resolve_plan(plan: PlanLike, shapes, module_types) -> dict[str, QuantSpec | str]:
    """Per-tensor choices from a Plan, a preset name or an explicit {name: spec | float dtype}."""
    return as_plan(plan, shapes).resolve(shapes, module_types)


def quantize_model(model_or_state: Any, plan: PlanLike = "ptq-t8") -> dict[str, Tensor]:
    """Quantize every tensor the plan names; the rest become float (or raw integer) tensors
    (:meth:`Plan.apply`, the one path from a plan to quantized tensors)."""
    arrays, module_types = tensors_of(model_or_state)
    return as_plan(plan, arrays).apply(arrays, module_types)


def encode_tensors(
    tensors: Mapping[str, Tensor],
    mode: str = "self",
    *,
    entropy: str = "none",
    base_fingerprint: int | None = None,
) -> bytes:
    """Serialise already-quantized tensors (e.g. from QAT's convert or an allocator)."""
    if mode not in ("self", "agreed"):
        raise SpecError(f"mode must be 'self' or 'agreed', got {mode!r}")
    if entropy not in ("none", "auto"):
        raise SpecError(f"entropy must be 'none' or 'auto', got {entropy!r}")
    data, _ = container.write_stream(
        dict(tensors), mode, entropy=entropy, base_fingerprint=base_fingerprint
    )
    return data


def encode(
    model_or_state: Any, plan: PlanLike = "ptq-t8", mode: str = "self", *, entropy: str = "none"
) -> bytes:
    """Quantize a model (``nn.Module`` or state dict) with ``plan`` and return the stream bytes.

    ``mode``: "self" (names and shapes in the header) or "agreed" (a 32-bit architecture
    fingerprint only; the receiver must hold the same architecture).
    """
    return encode_tensors(quantize_model(model_or_state, plan), mode, entropy=entropy)


def layout_of(model_or_state: Any) -> list[tuple[str, tuple[int, ...]]]:
    """Ordered (name, shape) of a model or state dict: what agreed mode fingerprints."""
    arrays, _ = tensors_of(model_or_state)
    return [(n, tuple(a.shape)) for n, a in arrays.items()]


def decode(data: bytes, into: Any = None, *, layout=None, state_dict: bool = False):
    """Rebuild tensors from a stream.

    - ``into=None``: returns ``{name: numpy array}`` (float32 for quantized and float tensors),
      or with ``state_dict=True`` a ``{name: torch.Tensor}`` state dict.
    - ``into=nn.Module``: loads the tensors into it (strict) and returns the module.
    - ``into=`` a state dict: used for its layout (agreed mode); returns the arrays.
    Agreed-mode streams need ``into`` or ``layout``. Raises FormatError on a bad stream.
    """
    if layout is None and into is not None:
        layout = layout_of(into)
    stream = container.read_stream(data, layout)
    arrays = {n: t.dequantize() for n, t in stream.tensors.items()}
    if into is None or not hasattr(into, "load_state_dict"):
        if state_dict:
            import torch

            return {n: torch.from_numpy(a) for n, a in arrays.items()}
        return arrays
    import torch

    current = into.state_dict()
    missing = set(current) - set(arrays)
    if missing:
        raise FormatError(f"stream lacks tensors the model needs: {sorted(missing)[:5]}")
    extra = set(arrays) - set(current)
    if extra:
        raise FormatError(f"stream holds tensors the model does not have: {sorted(extra)[:5]}")
    new_state = {}
    for name, ref in current.items():
        arr = arrays[name]
        if tuple(arr.shape) != tuple(ref.shape):
            raise FormatError(
                f"tensor {name!r}: stream shape {arr.shape}, model {tuple(ref.shape)}"
            )
        new_state[name] = torch.from_numpy(np.asarray(arr, order="C").copy()).to(ref.dtype)
    into.load_state_dict(new_state, strict=True)
    return into


class OutputError(NNShareError, OSError):
    """An output file cannot be written."""


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes to ``path`` via a temporary file in the same folder and a rename."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp{os.getpid()}")
    if os.path.isdir(path):
        raise OutputError(f"cannot write {path}: it is a directory")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise OutputError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
