"""Plans: ordered rules that map each tensor (by name, regex, module type, role, rank) to a QuantSpec.

The first rule that matches a tensor decides; tensors no rule quantizes stay in float, sent in the
rule's (or the plan's default) float dtype. Rules match float tensors only: integer and bool
tensors (counters, position ids, masks) are always sent raw and exact. :meth:`Plan.apply` is the
one path from a model and a plan to the tensors the encoder writes.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import SpecError
from .format.spec import FLOAT_DTYPES, QuantSpec
from .state import INTEGER_ROLES, MATRIX_ROLES, ROLES


def is_config(x: Any) -> bool:
    """True for a QuantSpec or any registered scheme's sender config (it has a ``scheme``)."""
    if isinstance(x, QuantSpec):
        return True
    if isinstance(x, str) or not hasattr(x, "scheme") or not hasattr(x, "wire"):
        return False
    from .quant.registry import entry_for

    try:
        entry_for(x)
    except SpecError:
        return False
    return True


@dataclass(frozen=True)
class Rule:
    """Match tensors and say how they are sent.

    - ``name``: regular expression that must match the whole tensor name (None: any name).
    - ``module_type``: class name of the module owning the tensor, e.g. ``"Linear"``, ``"Conv2d"``,
      ``"Embedding"`` (needs the model, not just a state dict).
    - ``min_ndim``: only tensors with at least this many dimensions (2 = weights, not biases).
    - ``roles``: only tensors of these roles (:data:`nnshare.state.ROLES`, e.g. ``("weight",
      "embedding")``); empty = any float role.
    - ``spec``: the QuantSpec to use; None keeps the tensor in float as ``float_dtype``.
    """

    spec: QuantSpec | None = None
    name: str | None = None
    module_type: str | None = None
    min_ndim: int = 0
    float_dtype: str = "fp32"
    roles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.spec is not None and not is_config(self.spec):
            raise SpecError(
                f"rule spec must be a QuantSpec, another registered scheme's config, or None; "
                f"got {type(self.spec).__name__}"
            )
        if self.float_dtype not in FLOAT_DTYPES:
            raise SpecError(f"float_dtype must be one of {', '.join(FLOAT_DTYPES)}")
        if isinstance(self.min_ndim, bool) or not isinstance(self.min_ndim, int):
            raise SpecError(f"min_ndim must be an integer, got {self.min_ndim!r}")
        for key in ("name", "module_type"):
            if getattr(self, key) is not None and not isinstance(getattr(self, key), str):
                raise SpecError(f"rule {key} must be a string, got {getattr(self, key)!r}")
        if isinstance(self.roles, str) or not all(isinstance(r, str) for r in self.roles):
            raise SpecError(f"rule roles must be a list of role names, got {self.roles!r}")
        object.__setattr__(self, "roles", tuple(self.roles))
        bad = [r for r in self.roles if r not in ROLES or r in INTEGER_ROLES]
        if bad:
            floats = [r for r in ROLES if r not in INTEGER_ROLES]
            raise SpecError(f"unknown rule role(s) {bad}; rules match the float roles {floats}")
        if self.name is not None:
            try:
                re.compile(self.name)
            except re.error as e:
                raise SpecError(f"bad regular expression {self.name!r}: {e}") from None

    def matches(self, name: str, ndim: int, module_type: str | None, role: str | None = None) -> bool:
        if ndim < self.min_ndim:
            return False
        if self.roles and role not in self.roles:
            return False
        if self.name is not None and re.fullmatch(self.name, name) is None:
            return False
        if self.module_type is not None and module_type != self.module_type:
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["spec"] = None if self.spec is None else self.spec.to_dict()
        d["roles"] = list(self.roles)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rule:
        if not isinstance(d, dict):
            raise SpecError(f"a plan rule must be a JSON object, got {type(d).__name__}")
        d = dict(d)
        spec = d.pop("spec", None)
        names = {f.name for f in dataclasses.fields(cls)}
        bad = set(d) - names
        if bad:
            raise SpecError(f"unknown Rule field(s): {', '.join(sorted(bad))}")
        if "roles" in d:
            if not isinstance(d["roles"], list | tuple):
                raise SpecError("rule roles must be a list of role names")
            d["roles"] = tuple(d["roles"])
        from .quant.registry import config_from_dict

        return cls(spec=None if spec is None else config_from_dict(spec), **d)


@dataclass(frozen=True)
class Plan:
    """Ordered rules; ``default_float`` is the float dtype of tensors no rule names."""

    rules: tuple[Rule, ...] = field(default_factory=tuple)
    default_float: str = "fp32"

    def __post_init__(self) -> None:
        if self.default_float not in FLOAT_DTYPES:
            raise SpecError(f"default_float must be one of {', '.join(FLOAT_DTYPES)}")
        if not all(isinstance(r, Rule) for r in self.rules):
            raise SpecError("plan rules must be Rule objects")

    def resolve(
        self,
        shapes: dict[str, tuple[int, ...]],
        module_types: dict[str, str] | None = None,
        roles: dict[str, str] | None = None,
    ) -> dict[str, QuantSpec | str]:
        """For each tensor name, its QuantSpec, the float dtype ("fp32"/"fp16"/"bf16") it is sent
        in, or ``"raw"`` for an integer / bool tensor (no rule applies to those).

        ``module_types`` maps tensor names to the class name of their owning module; ``roles`` to
        their role (default: :func:`nnshare.state.role_of` from name and shape, as floats).
        Raises SpecError when a name rule matches no tensor or the plan quantizes nothing.
        """
        from .state import role_of

        module_types = module_types or {}
        if roles is None:
            sib = frozenset(shapes)
            roles = {n: role_of(n, s, "f", module_types.get(n), False, sib) for n, s in shapes.items()}
        out: dict[str, QuantSpec | str] = {}
        used = [False] * len(self.rules)
        for tname, shape in shapes.items():
            choice: QuantSpec | str = self.default_float
            if roles.get(tname) in INTEGER_ROLES:
                out[tname] = "raw"
                continue
            for i, rule in enumerate(self.rules):
                if rule.matches(tname, len(shape), module_types.get(tname), roles.get(tname)):
                    used[i] = True
                    choice = rule.spec if rule.spec is not None else rule.float_dtype
                    break
            out[tname] = choice
        for rule, u in zip(self.rules, used, strict=True):
            if rule.name is not None and not u:
                ints = [n for n in shapes if roles.get(n) in INTEGER_ROLES and re.fullmatch(rule.name, n)]
                if ints:
                    raise SpecError(
                        f"plan rule for name {rule.name!r} matches only integer tensors "
                        f"({ints[0]!r}); those are always sent raw and exact"
                    )
                raise SpecError(f"plan rule for name {rule.name!r} matches no tensor of the model")
        if self.rules and any(r.spec is not None for r in self.rules):
            if not any(is_config(v) for v in out.values()):
                raise SpecError("the plan quantizes no tensor of this model")
        return out

    def apply(self, model_or_state: Any, module_types: Mapping[str, str] | None = None, *,
              counters: bool = False) -> dict[str, Any]:
        """The tensors the encoder writes for this plan: QuantizedTensor / FloatTensor /
        RawTensor by name (the one path from a plan to quantized tensors).

        ``model_or_state``: ``nn.Module``, mapping of tensors, or :class:`~nnshare.state.ModelState`
        (``module_types``: extra name -> module class names for a plain mapping).
        Integer and bool tensors are sent raw in their own dtype; bookkeeping counters
        (``num_batches_tracked``) only with ``counters=True``; tied aliases once (as their
        canonical tensor). Float tensors kept in float are sent in the narrower of the plan's
        dtype and their own (a bf16 tensor is never widened to fp32). Specs are made sane for
        each shape (:func:`nnshare.quant.granularity.effective_spec`); what deserves a note
        (short group axes, side information above its saving) is warned as NNShareWarning.
        """
        import warnings
        import zlib

        from .errors import NNShareWarning
        from .format.spec import FloatTensor, RawTensor
        from .quant.affine import as_float_array, quantize
        from .quant.granularity import effective_spec
        from .state import model_state

        st = model_state(model_or_state)
        if module_types:
            st = dataclasses.replace(st, module_types={**st.module_types, **module_types})
        if not counters:
            st = st.without_counters()
        choices = self.resolve(st.shapes, st.module_types, st.roles)
        out: dict[str, Any] = {}
        for name, arr in st.arrays.items():
            choice = choices[name]
            if choice == "raw" or arr.dtype.kind != "f":
                out[name] = RawTensor(np.asarray(arr, order="C"))
            elif isinstance(choice, QuantSpec):
                spec, notes = effective_spec(arr.shape, choice, repr(name))
                for note in notes:
                    warnings.warn(note, NNShareWarning, stacklevel=2)
                if spec.rounding == "stochastic":  # independent rounding noise per tensor
                    seed = (spec.seed ^ zlib.crc32(name.encode("utf-8"))) & 0x7FFFFFFF
                    spec = dataclasses.replace(spec, seed=seed)
                try:
                    out[name] = quantize(arr, spec)
                except SpecError as e:
                    raise SpecError(f"tensor {name!r}: {e}") from None
            elif is_config(choice):  # any other registered scheme (codebook, minifloat, ...)
                from .quant.registry import quantize as quantize_any

                try:
                    out[name] = quantize_any(arr, choice)
                except SpecError as e:
                    raise SpecError(f"tensor {name!r}: {e}") from None
            else:
                own = {"bfloat16": "bf16", "float16": "fp16"}.get(st.dtypes.get(name, ""))
                if choice == "fp32" and own is not None:
                    choice = own
                out[name] = FloatTensor(as_float_array(arr), choice)
        return out

    @classmethod
    def from_choices(cls, choices: Mapping[str, QuantSpec | str]) -> Plan:
        """A plan of one exact-name rule per entry of {name: QuantSpec | float dtype}; tensors not
        named stay in fp32."""
        rules = []
        for name, c in choices.items():
            if is_config(c):
                rules.append(Rule(spec=c, name=re.escape(name)))
            elif isinstance(c, str) and c in FLOAT_DTYPES:
                rules.append(Rule(spec=None, name=re.escape(name), float_dtype=c))
            else:
                raise SpecError(f"tensor {name!r}: expected a QuantSpec or a float dtype, got {c!r}")
        return cls(rules=tuple(rules))

    def to_json(self) -> str:
        return json.dumps(
            {"rules": [r.to_dict() for r in self.rules], "default_float": self.default_float},
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> Plan:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError(f"plan is not valid JSON: {e}") from None
        if not isinstance(d, dict) or not isinstance(d.get("rules"), list):
            raise SpecError("plan JSON must be an object with a 'rules' list")
        return cls(
            rules=tuple(Rule.from_dict(r) for r in d["rules"]),
            default_float=d.get("default_float", "fp32"),
        )


def uniform(bits: int, granularity: str = "tensor", symmetric: bool = True, **kw: Any) -> Plan:
    """Quantize every weight matrix, conv kernel and embedding (float, rank >= 2) with one spec;
    keep the rest (biases, norms, BatchNorm statistics) in float and integers raw."""
    axis = kw.pop("axis", 0)
    spec = QuantSpec(bits=bits, granularity=granularity, symmetric=symmetric, axis=axis, **kw)
    return Plan(rules=(Rule(spec=spec, min_ndim=2, roles=MATRIX_ROLES),))


PRESETS: dict[str, Plan] = {
    # The seed's scheme (IEEE 802.11-23/0756r1): 8-bit symmetric per-tensor weights, one fp32
    # scale per weight tensor, biases in float32.
    "ptq-t8": uniform(8),
    "w8-channel": uniform(8, "channel"),
    "w4-channel": uniform(4, "channel"),
    "w4-g32": uniform(4, "group", group_size=32, axis=1),
}


def preset(name: str) -> Plan:
    """A named plan (see ``PRESETS``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise SpecError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None
