"""The working copy a task-quality search measures its streams on (:mod:`.compress`): what the
receiver rebuilds of each tensor is loaded into one copy of the model, tensor by tensor, and the
caller's ``evaluate`` is called on it.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable

import numpy as np

from ..errors import NNShareWarning, SpecError


class Evaluator:
    """Decodes streams into one working copy of the model and calls ``evaluate`` on it."""

    def __init__(self, model, evaluate: Callable):
        self.evaluate = evaluate
        self.count = 0
        self.is_module = hasattr(model, "load_state_dict")
        self.model = model
        self.work = copy.deepcopy(model) if self.is_module else None
        self.live = None  # the working copy's state dict (its tensors, not copies)
        self.pending: dict = {}  # a state dict model's loaded arrays

    def _call(self, obj) -> float:
        self.count += 1
        v = self.evaluate(obj)
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise SpecError(f"evaluate must return a number, got {type(v).__name__}") from None
        return v

    def reference(self) -> float:
        v = self._call(self.model if self.is_module else _torch_state(self.model, {}))
        if not math.isfinite(v):
            raise SpecError(f"evaluate returned {v} for the float model: a finite metric is needed")
        return v

    def stream(self, data: bytes) -> float:
        from ..share.model import decode

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NNShareWarning)
            if self.is_module:
                return self._call(decode(data, into=self.work))
            return self._call(_torch_state(self.model, decode(data, into=self.model)))

    def tensors(self, tensors: dict) -> float:
        """The metric of what the receiver rebuilds from these tensors (``dequantize()`` is the
        one definition of it), loaded one tensor at a time: no decoded copy of the whole model."""
        for n, t in tensors.items():
            self.load(n, t)
        return self.loaded()

    def load(self, name: str, t) -> None:
        """Put what the receiver rebuilds of tensor ``t`` into the working copy (a state dict's
        is collected until :meth:`loaded`)."""
        if not self.is_module:
            self.pending[name] = t.dequantize()
            return
        import torch

        if self.live is None:
            self.live = self.work.state_dict(keep_vars=True)
        v = self.live.get(name)
        if v is not None:
            with torch.no_grad():
                v.data.copy_(torch.from_numpy(np.asarray(t.dequantize()).reshape(v.shape)).to(v.dtype))

    def loaded(self) -> float:
        """The metric of the working copy as :meth:`load` left it."""
        if not self.is_module:
            arrays, self.pending = self.pending, {}
            return self._call(_torch_state(self.model, arrays))
        return self._call(self.work)

    def release(self) -> None:
        """Drop the working copy (the search is over)."""
        self.work = self.live = None


def _torch_state(original, arrays: dict) -> dict:
    """A {name: torch.Tensor} state dict: decoded arrays, the original's tensors where the stream
    has none (bookkeeping counters), each in the original's dtype."""
    import torch

    out = {}
    for k, v in dict(original).items():
        ref = v if isinstance(v, torch.Tensor) else torch.as_tensor(np.asarray(v))
        a = arrays.get(k)
        out[k] = ref.detach().clone() if a is None else torch.from_numpy(np.array(a)).to(ref.dtype)
    return out
