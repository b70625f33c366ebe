"""The one way from a module or a state dict to named arrays, dtypes, module types, roles and ties.

Every path (plans, encode, mixed precision, QAT, updates) asks :func:`model_state`, so a tensor is
classified once, from its owning module's type, its name and its dtype:

| role        | what                                             | how it is sent by default         |
|-------------|--------------------------------------------------|-----------------------------------|
| ``weight``  | float matrix / conv kernel (rank >= 2)           | quantized by presets              |
| ``embedding`` | rows of an Embedding                           | quantized by presets              |
| ``bias``    | 1-D float bias                                   | float (own fine step in rate control) |
| ``norm``    | scale and shift of BatchNorm / LayerNorm / ...   | float, never zeroed               |
| ``bn_stat`` | BatchNorm ``running_mean`` / ``running_var``     | float, never zeroed               |
| ``vector``  | any other float tensor of rank < 2 (PReLU, scalars) | float                          |
| ``buffer``  | other float buffers                              | float                             |
| ``counter`` | integer bookkeeping (``num_batches_tracked``)    | not sent unless asked; raw, exact |
| ``index``   | integer / bool buffers (position ids, masks)     | raw and exact in their own dtype  |

Float arrays are held as float32 (bf16 / fp16 widened exactly); ``dtypes`` keeps the original so
a bf16 model comes back bf16. ``ties`` maps a tensor that shares its storage with an earlier one
(tied embeddings) to that one: it is coded once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import SpecError

ROLES = ("weight", "embedding", "bias", "norm", "bn_stat", "vector", "buffer", "counter", "index")
#: Roles presets quantize.
MATRIX_ROLES = ("weight", "embedding")
#: Float roles of rank < 2 that rate control and update coding give their own, finer step.
FINE_ROLES = ("bias", "norm", "bn_stat", "vector", "buffer")
#: Roles sent raw and exact, in their own dtype.
INTEGER_ROLES = ("counter", "index")

_BN = re.compile(r"(Sync)?BatchNorm\dd|LazyBatchNorm\dd")
_NORM = re.compile(r".*(Norm|norm)\w*")
_NORM_NAME = re.compile(r"(^|[._])(layer_?norm|LayerNorm|ln\w*|norm\w*|bn\w*|rms_?norm\w*)\.", re.I)
_EMBED_NAME = re.compile(r"embed", re.I)

#: numpy dtype name -> the name used in files and streams (safetensors spelling, lower case).
DTYPE_NAMES = {
    "float32": "float32", "float16": "float16", "bfloat16": "bfloat16", "float64": "float64",
    "int64": "int64", "int32": "int32", "int16": "int16", "int8": "int8", "uint8": "uint8",
    "bool": "bool",
}


@dataclass(frozen=True, eq=False)
class ModelState:
    """Named arrays of a model plus what nnshare needs to know about each.

    - ``arrays``: name -> numpy array (floats float32, integers / bool as they are), in state-dict
      order, tied aliases left out.
    - ``dtypes``: name -> original dtype (``"float32"``, ``"bfloat16"``, ``"int64"``, ...).
    - ``module_types``: name -> class name of the owning module (empty for a plain mapping).
    - ``roles``: name -> one of :data:`ROLES`.
      (``module_types`` and ``roles`` also name the tied aliases.)
    - ``ties``: alias name -> canonical name (the alias shares the canonical tensor's storage).
    """

    arrays: dict[str, np.ndarray]
    dtypes: dict[str, str]
    module_types: dict[str, str] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    ties: dict[str, str] = field(default_factory=dict)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {n: tuple(int(d) for d in a.shape) for n, a in self.arrays.items()}

    def layout(self) -> list[tuple[str, tuple[int, ...]]]:
        """Ordered (name, shape): what agreed mode fingerprints."""
        return list(self.shapes.items())

    def select(self, names) -> ModelState:
        """The same state restricted to ``names`` (ties to dropped tensors go too)."""
        keep = [n for n in self.arrays if n in set(names)]
        ties = {a: c for a, c in self.ties.items() if c in keep}
        every = [*keep, *ties]
        return ModelState(
            {n: self.arrays[n] for n in keep},
            {n: self.dtypes[n] for n in keep},
            {n: self.module_types[n] for n in every if n in self.module_types},
            {n: self.roles[n] for n in every},
            ties,
        )

    def without_counters(self) -> ModelState:
        """Drop the integer bookkeeping counters (``num_batches_tracked``)."""
        return self.select([n for n in self.arrays if self.roles[n] != "counter"])


def role_of(name: str, shape: tuple[int, ...], kind: str, module_type: str | None = None,
            is_buffer: bool = False, siblings: frozenset[str] = frozenset()) -> str:
    """The role of one tensor (see the module docstring). ``kind``: numpy dtype kind ("f", "i",
    "u", "b"); ``siblings``: every tensor name of the model (finds BatchNorm without modules)."""
    leaf = name.rsplit(".", 1)[-1]
    prefix = name[: -len(leaf)]
    ndim = len(shape)
    if kind != "f":
        return "counter" if leaf == "num_batches_tracked" or ndim == 0 and kind in "iu" else "index"
    is_bn = (module_type is not None and _BN.fullmatch(module_type) is not None) or (
        module_type is None and f"{prefix}running_mean" in siblings
    )
    if leaf in ("running_mean", "running_var") and (is_bn or module_type is None):
        return "bn_stat"
    is_norm = is_bn or (
        _NORM.fullmatch(module_type) is not None if module_type is not None
        else ndim <= 1 and _NORM_NAME.search("." + name) is not None
    )
    if is_norm and ndim <= 1:
        return "norm"
    if ndim >= 2:
        if module_type in ("Embedding", "EmbeddingBag") or (
            module_type is None and ndim == 2 and _EMBED_NAME.search(prefix) is not None
        ):
            return "embedding"
        return "buffer" if is_buffer else "weight"
    if leaf == "bias" or leaf.startswith("bias_"):
        return "bias"
    return "buffer" if is_buffer else "vector"


def _dtype_name(v: Any) -> str:
    s = str(getattr(v, "dtype", np.asarray(v).dtype)).replace("torch.", "")
    if s not in DTYPE_NAMES:
        raise SpecError(f"unsupported dtype {s}")
    return DTYPE_NAMES[s]


def _to_numpy(v: Any) -> np.ndarray:
    if hasattr(v, "detach"):  # a torch tensor
        v = v.detach().cpu()
        if v.is_floating_point():
            v = v.float()
        return v.numpy()
    a = np.asarray(v)
    if a.dtype.kind == "f" and a.dtype != np.float32:
        a = a.astype(np.float32)
    return a


def _storage_key(v: Any):
    """Identity of a tensor's memory (pointer, dtype, shape, strides); None when empty."""
    if hasattr(v, "data_ptr"):
        if v.numel() == 0:
            return None
        return (v.data_ptr(), str(v.dtype), tuple(v.shape), tuple(v.stride()))
    a = np.asarray(v)
    if a.size == 0 or not isinstance(v, np.ndarray):
        return None
    return (a.__array_interface__["data"][0], str(a.dtype), a.shape, a.strides)


def model_state(model_or_state: Any, *, dtypes: Mapping[str, str] | None = None,
                ties: Mapping[str, str] | None = None) -> ModelState:
    """Classify every tensor of an ``nn.Module`` (its state dict), a mapping of tensors / arrays,
    or an existing :class:`ModelState` (returned as is).

    ``dtypes`` / ``ties``: what a file loader knows and the arrays cannot say (bf16 read as
    float32; aliases a deduplicating writer dropped). Raises SpecError for unsupported input.
    """
    if isinstance(model_or_state, ModelState):
        return model_or_state
    module_types: dict[str, str] = {}
    buffers: set[str] = set()
    if hasattr(model_or_state, "state_dict") and hasattr(model_or_state, "named_modules"):
        for mname, mod in model_or_state.named_modules(remove_duplicate=False):
            own = [(p, False) for p, _ in mod.named_parameters(recurse=False)]
            own += [(b, True) for b, _ in mod.named_buffers(recurse=False)]
            for pname, is_buf in own:
                full = f"{mname}.{pname}" if mname else pname
                module_types.setdefault(full, type(mod).__name__)
                if is_buf:
                    buffers.add(full)
        state = model_or_state.state_dict(keep_vars=False)
    elif isinstance(model_or_state, Mapping):
        state = model_or_state
    else:
        raise SpecError(
            f"expected an nn.Module or a mapping of tensors, got {type(model_or_state).__name__}"
        )
    arrays: dict[str, np.ndarray] = {}
    names: dict[str, str] = {}
    tied: dict[str, str] = dict(ties or {})
    seen: dict[Any, str] = {}
    for name, v in state.items():
        if not isinstance(name, str):
            raise SpecError(f"tensor names must be strings, got {name!r}")
        try:
            dname = (dtypes or {}).get(name) or _dtype_name(v)
        except SpecError as e:
            raise SpecError(f"tensor {name!r}: {e}") from None
        key = _storage_key(v)
        if key is not None and key in seen:
            tied[name] = seen[key]
            continue
        if key is not None:
            seen[key] = name
        arrays[name] = _to_numpy(v)
        names[name] = dname
    for alias, canon in list(tied.items()):
        arrays.pop(alias, None)
        names.pop(alias, None)
        if canon not in arrays:
            raise SpecError(f"tensor {alias!r} is tied to {canon!r}, which the model does not have")
    if not arrays:
        raise SpecError("the model has no tensors to encode")
    siblings = frozenset(arrays)
    roles = {
        n: role_of(n, a.shape, a.dtype.kind, module_types.get(n), n in buffers, siblings)
        for n, a in arrays.items()
    }
    for alias, canon in tied.items():  # aliases: the canonical tensor's role
        roles[alias] = roles[canon]
    mtypes = {n: module_types[n] for n in [*arrays, *tied] if n in module_types}
    return ModelState(arrays, names, mtypes, roles, tied)
