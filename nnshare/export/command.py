"""``nnshare export``: the command-line side of the export targets (called from nnshare.cli)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from .errors import ExportError

TARGETS = ("compressed-tensors", "onnx", "nnr")
#: options each target reads; any other given option is refused
USES = {
    "compressed-tensors": {"fallback", "hf_config"},
    "onnx": {"module", "input_shape"},
    "nnr": {"nncodec_python"},
}
FLAGS = {"fallback": "--fallback", "hf_config": "--hf-config", "module": "--module",
         "input_shape": "--input-shape", "nncodec_python": "--nncodec-python"}


def load_factory(spec: str):
    """``package.module:callable`` -> the nn.Module that callable returns (called with no args)."""
    mod_name, _, attr = spec.partition(":")
    if not mod_name or not attr:
        raise ExportError(f"--module must look like package.module:factory, got {spec!r}")
    try:
        factory = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as e:
        raise ExportError(f"cannot load --module {spec}: {e}") from None
    model = factory()
    if not (hasattr(model, "state_dict") and hasattr(model, "forward")):
        raise ExportError(f"--module {spec} returned {type(model).__name__}, not a torch module")
    return model


def parse_shape(text: str) -> tuple[int, ...]:
    """``1,64`` or ``1x64`` -> (1, 64)."""
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(",") if d.strip())
    except ValueError:
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise ExportError(f"--input-shape must be positive integers like 1,64, got {text!r}")
    return dims


def run_export(data: bytes, to: str, out: Path, layout=None, **options) -> str:
    """Export stream bytes to ``to`` at ``out``; returns the line to print. ``options``: the
    target-specific values (None when not given)."""
    if to not in TARGETS:
        raise ExportError(f"--to must be one of {', '.join(TARGETS)}, got {to!r}")
    given = {k for k, v in options.items() if v is not None}
    stray = sorted(given - USES[to])
    if stray:
        raise ExportError(f"{', '.join(FLAGS[k] for k in stray)} does not apply to --to {to}")
    if to == "compressed-tensors":
        from .compressed_tensors import to_compressed_tensors

        hf = None
        if options.get("hf_config") is not None:
            try:
                hf = json.loads(Path(options["hf_config"]).read_text())
            except (OSError, ValueError) as e:
                raise ExportError(f"cannot read --hf-config {options['hf_config']}: {e}") from None
            if not isinstance(hf, dict):
                raise ExportError("--hf-config must hold a JSON object")
        info = to_compressed_tensors(data, out, layout=layout, hf_config=hf,
                                     fallback=options.get("fallback") or "error")
        return (f"wrote {out}/: model.safetensors {info['bytes']:,} bytes, {len(info['packed'])} packed "
                f"weights in {info['config_groups']} config group(s), {len(info['dense'])} dense")
    if to == "onnx":
        if options.get("module") is None or options.get("input_shape") is None:
            raise ExportError("--to onnx needs --module package.module:factory and --input-shape")
        import torch

        from .onnx_qdq import to_onnx

        model = load_factory(options["module"])
        x = torch.zeros(parse_shape(options["input_shape"]))
        proto = to_onnx(data, model, (x,), out, layout=layout, input_names=["input"],
                        dynamic_shapes=({0: torch.export.Dim("batch")},))
        n = sum(1 for node in proto.graph.node if node.op_type == "DequantizeLinear")
        return f"wrote {out}: {out.stat().st_size:,} bytes, {n} DequantizeLinear weights (opset 21)"
    from ..share.model import atomic_write
    from .nnr import to_nnr

    nnr = to_nnr(data, layout=layout, python=options.get("nncodec_python"))
    atomic_write(out, nnr)
    return f"wrote {out}: {len(nnr):,} bytes NNR bitstream (NNCodec; decodes to the stream's values)"
