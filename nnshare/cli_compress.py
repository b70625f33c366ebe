"""``nnshare encode MODEL -o OUT --eval pkg.module:function --max-drop 0.5%``: the smallest
stream whose measured task metric stays within the drop (:func:`nnshare.compress`).

The ``--eval`` function takes a state dict ``{name: torch.Tensor}`` and returns the metric. Its
module may also define ``model()`` (a fresh ``nn.Module`` of the architecture, needed for the
data-aware sensitivity of ``--calib``) and ``load_calib(path)`` (batches from a file or folder
of samples; by default ``--calib`` is a tensor file: an (N, ...) input tensor, an
``(inputs, targets)`` pair, a ``{"inputs", "targets"}`` dict or a list of batches).
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
from pathlib import Path

import typer

from .cli_util import check_choice, fail

TASK_FLAGS = {"--eval", "--max-drop", "--lower-is-better", "--calib", "--sensitivity", "--method",
              "--mode", "--counters"}
CALIB_BATCH = 32


def parse_drop(text: str) -> tuple[float, bool]:
    """``"0.5%"`` -> (0.005, relative); ``"0.01"`` -> (0.01, absolute)."""
    t = text.strip()
    rel = t.endswith("%")
    num = t[:-1].strip() if rel else t
    try:
        v = float(num)
    except ValueError:
        fail(f"--max-drop must be a percentage such as 0.5% or an absolute number, got {text!r}")
    if not math.isfinite(v) or v < 0:
        fail(f"--max-drop must be >= 0 and finite, got {text!r}")
    if rel and v >= 100:
        fail(f"--max-drop as a percentage must be below 100%, got {text!r}")
    return (v / 100, True) if rel else (v, False)


def load_target(spec: str):
    """The function and its module of ``pkg.module:function`` (the working folder importable)."""
    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        fail(f"--eval must be pkg.module:function, got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        fail(f"--eval: cannot import module {mod_name!r}: {e}")
    except Exception as e:  # noqa: BLE001 - the user's module failed while importing
        fail(f"--eval: importing {mod_name!r} raised {type(e).__name__}: {e}")
    fn = getattr(mod, attr, None)
    if fn is None:
        fail(f"--eval: module {mod_name!r} has no attribute {attr!r}")
    if not callable(fn):
        fail(f"--eval: {spec} is not a function")
    return fn, mod


def load_calib(path: Path, mod, labelled: bool) -> list:
    """Calibration batches from ``path`` (see module docstring)."""
    from .errors import ModelFileError

    if not path.exists():
        raise ModelFileError(f"calibration file not found: {path}")
    reader = getattr(mod, "load_calib", None)
    if reader is not None:
        batches = list(reader(path))
    else:
        if path.is_dir():
            fail(f"--calib {path} is a folder: the --eval module must define load_calib(path) to read it")
        import torch

        try:
            obj = torch.load(path, weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable / non-tensor file
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ModelFileError(f"cannot read calibration tensors from {path}: {msg}") from None
        batches = _batches(obj, path)
    if not batches:
        fail(f"--calib {path} holds no samples")
    if labelled and not all(isinstance(b, tuple | list) and len(b) == 2 for b in batches):
        fail("--sensitivity hessian/fisher needs labelled calibration data: (inputs, targets)")
    return batches


def _batches(obj, path) -> list:
    import torch

    def split(x, y=None):
        out = []
        for i in range(0, len(x), CALIB_BATCH):
            out.append(x[i:i + CALIB_BATCH] if y is None else (x[i:i + CALIB_BATCH], y[i:i + CALIB_BATCH]))
        return out

    if isinstance(obj, dict) and "inputs" in obj:
        x, y = obj["inputs"], obj.get("targets")
        if not isinstance(x, torch.Tensor) or (y is not None and not isinstance(y, torch.Tensor)):
            fail(f"--calib {path}: 'inputs' and 'targets' must be tensors")
        if y is not None and len(y) != len(x):
            fail(f"--calib {path}: {len(x)} inputs but {len(y)} targets")
        return split(x, y)
    if isinstance(obj, torch.Tensor):
        return split(obj)
    if isinstance(obj, tuple) and len(obj) == 2 and all(isinstance(t, torch.Tensor) for t in obj):
        if len(obj[0]) != len(obj[1]):
            fail(f"--calib {path}: {len(obj[0])} inputs but {len(obj[1])} targets")
        return split(*obj)
    if isinstance(obj, list) and obj and all(isinstance(b, torch.Tensor | tuple | list) for b in obj):
        return obj
    fail(f"--calib {path} must hold a tensor, an (inputs, targets) pair, an inputs/targets dict or "
         f"a list of batches, got {type(obj).__name__}")


def encode_task(model: Path, out: Path, given: dict, as_json: bool) -> None:
    """Search the smallest stream within --max-drop of the float metric and write it."""
    for f in ("--eval", "--max-drop"):
        if given[f] is None:
            fail(f"a task budget needs both --eval and --max-drop (missing {f})")
    check_choice("--sensitivity", given["--sensitivity"], ("output", "hessian", "fisher"))
    if given["--sensitivity"] is not None and given["--calib"] is None:
        fail("--sensitivity needs calibration data: give --calib FILE")
    drop, relative = parse_drop(given["--max-drop"])
    fn, mod = load_target(given["--eval"])
    from .cli_encode import load_model
    from .mixed import compress
    from .progress import spinner
    from .share.model import atomic_write

    st = load_model(model)
    state = _torch_state(st)
    target, calib, sens = state, None, None
    if given["--calib"] is not None:
        factory = getattr(mod, "model", None)
        if not callable(factory):
            fail(f"--calib needs the architecture: define model() in {given['--eval'].partition(':')[0]}")
        sens = given["--sensitivity"] or "output"
        calib = load_calib(given["--calib"], mod, labelled=sens != "output")
        net = factory()
        try:
            net.load_state_dict(state)
        except Exception as e:  # noqa: BLE001 - a mismatched architecture
            fail(f"model() of the --eval module does not hold {model}: {str(e).splitlines()[0]}")
        target = net.eval()

    def evaluate(m):
        sd = m.state_dict() if hasattr(m, "state_dict") else m
        try:
            return fn(sd)
        except Exception as e:  # noqa: BLE001 - the user's function failed
            from .errors import SpecError

            raise SpecError(f"--eval {given['--eval']} raised {type(e).__name__}: {e}") from None

    with spinner("searching the smallest stream within the task budget"):
        res = compress(target, evaluate, drop, calib, relative=relative,
                       higher_is_better=not given["--lower-is-better"], sensitivity=sens,
                       method=given["--method"] or "tcq", mode=given["--mode"] or "self",
                       counters=bool(given["--counters"]))
    atomic_write(out, res.data)
    n = sum(int(a.size) for a in st.arrays.values())
    summary = {"out": str(out), "bytes": res.nbytes, "bits_per_param": 8 * res.nbytes / max(n, 1),
               "family": res.family, "metric": res.metric, "float_metric": res.reference,
               "budget": res.budget.describe(), "evaluations": res.evaluations,
               "trace": [{"family": p.family, "bytes": p.bytes, "metric": p.metric, "ok": p.ok}
                         for p in res.trace]}
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"wrote {out}: {res.nbytes:,} bytes ({summary['bits_per_param']:.3f} bits/param, "
               f"{res.family} steps); metric {res.metric:.6g} vs float {res.reference:.6g} "
               f"({res.budget.describe()}); {res.evaluations} evaluations")


def _torch_state(st) -> dict:
    import numpy as np
    import torch

    out = {k: torch.from_numpy(np.array(v)) for k, v in st.arrays.items()}
    for alias, canon in st.ties.items():
        out[alias] = out[canon]
    return out
