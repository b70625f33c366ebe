"""Plans: ordered rules that map each tensor (by name, regex, module type, rank) to a QuantSpec.

The first rule that matches a tensor decides; tensors no rule quantizes stay in float, sent in the
rule's (or the plan's default) float dtype.
"""

from __future__ import annotations

import dataclasses
import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .format.errors import SpecError
from .format.spec import FLOAT_DTYPES, FloatTensor, QuantSpec, RawTensor
from .quant.affine import as_float_array, quantize


@dataclass(frozen=True)
class Rule:
    """Match tensors and say how they are sent.

    - ``name``: regular expression that must match the whole tensor name (None: any name).
    - ``module_type``: class name of the module owning the tensor, e.g. ``"Linear"``, ``"Conv2d"``,
      ``"Embedding"`` (needs the model, not just a state dict).
    - ``min_ndim``: only tensors with at least this many dimensions (2 = weights, not biases).
    - ``spec``: the QuantSpec to use; None keeps the tensor in float as ``float_dtype``.
    """

    spec: QuantSpec | None = None
    name: str | None = None
    module_type: str | None = None
    min_ndim: int = 0
    float_dtype: str = "fp32"

    def __post_init__(self) -> None:
        if self.spec is not None and not isinstance(self.spec, QuantSpec):
            raise SpecError(f"rule spec must be a QuantSpec or None, got {type(self.spec).__name__}")
        if self.float_dtype not in FLOAT_DTYPES:
            raise SpecError(f"float_dtype must be one of {', '.join(FLOAT_DTYPES)}")
        if isinstance(self.min_ndim, bool) or not isinstance(self.min_ndim, int):
            raise SpecError(f"min_ndim must be an integer, got {self.min_ndim!r}")
        for key in ("name", "module_type"):
            if getattr(self, key) is not None and not isinstance(getattr(self, key), str):
                raise SpecError(f"rule {key} must be a string, got {getattr(self, key)!r}")
        if self.name is not None:
            try:
                re.compile(self.name)
            except re.error as e:
                raise SpecError(f"bad regular expression {self.name!r}: {e}") from None

    def matches(self, name: str, ndim: int, module_type: str | None) -> bool:
        if ndim < self.min_ndim:
            return False
        if self.name is not None and re.fullmatch(self.name, name) is None:
            return False
        if self.module_type is not None and module_type != self.module_type:
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["spec"] = None if self.spec is None else self.spec.to_dict()
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
        return cls(spec=None if spec is None else QuantSpec.from_dict(spec), **d)


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
    ) -> dict[str, QuantSpec | str]:
        """For each tensor name, its QuantSpec or the float dtype ("fp32"/"fp16"/"bf16") it is sent in.

        ``module_types`` maps tensor names to the class name of their owning module.
        Raises SpecError when a name rule matches no tensor or the plan quantizes nothing.
        """
        module_types = module_types or {}
        out: dict[str, QuantSpec | str] = {}
        used = [False] * len(self.rules)
        for tname, shape in shapes.items():
            choice: QuantSpec | str = self.default_float
            for i, rule in enumerate(self.rules):
                if rule.matches(tname, len(shape), module_types.get(tname)):
                    used[i] = True
                    choice = rule.spec if rule.spec is not None else rule.float_dtype
                    break
            out[tname] = choice
        for rule, u in zip(self.rules, used, strict=True):
            if rule.name is not None and not u:
                raise SpecError(f"plan rule for name {rule.name!r} matches no tensor of the model")
        if self.rules and any(r.spec is not None for r in self.rules):
            if not any(isinstance(v, QuantSpec) for v in out.values()):
                raise SpecError("the plan quantizes no tensor of this model")
        return out

    def apply(
        self, arrays: Mapping[str, np.ndarray], module_types: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """The one path from a plan to what the encoder sends: {name: QuantizedTensor |
        FloatTensor | RawTensor}, in the order of ``arrays``.

        Float arrays the plan quantizes become QuantizedTensors (stochastic rounding gets an
        independent seed per tensor), other float arrays FloatTensors in their rule's dtype,
        integer and bool arrays RawTensors (exact). A spec that names an integer tensor is an error.
        """
        choices = self.resolve({n: tuple(np.shape(a)) for n, a in arrays.items()}, module_types)
        out: dict[str, Any] = {}
        for name, arr in arrays.items():
            arr = np.asarray(arr)
            choice = choices[name]
            if arr.dtype.kind != "f":
                if isinstance(choice, QuantSpec) and arr.dtype.kind in "iu":
                    raise SpecError(f"tensor {name!r} is integer ({arr.dtype}); it cannot be quantized")
                out[name] = RawTensor(np.asarray(arr, order="C"))
            elif isinstance(choice, QuantSpec):
                if choice.rounding == "stochastic":  # independent rounding noise per tensor
                    seed = (choice.seed ^ zlib.crc32(name.encode("utf-8"))) & 0x7FFFFFFF
                    choice = dataclasses.replace(choice, seed=seed)
                try:
                    out[name] = quantize(arr, choice)
                except SpecError as e:
                    raise SpecError(f"tensor {name!r}: {e}") from None
            else:
                out[name] = FloatTensor(as_float_array(arr), choice)
        return out

    @classmethod
    def from_choices(cls, choices: Mapping[str, QuantSpec | str]) -> Plan:
        """A plan of one exact-name rule per entry of {name: QuantSpec | float dtype}; tensors not
        named stay in fp32."""
        rules = []
        for name, c in choices.items():
            if isinstance(c, QuantSpec):
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
    """Quantize every tensor of rank >= 2 with one spec; keep the rest (biases, norms) in fp32."""
    axis = kw.pop("axis", 0)
    spec = QuantSpec(bits=bits, granularity=granularity, symmetric=symmetric, axis=axis, **kw)
    return Plan(rules=(Rule(spec=spec, min_ndim=2),))


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
