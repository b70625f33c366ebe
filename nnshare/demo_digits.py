"""The digits demo: train an MLP, share it at 16/8/6/4/3/2 bits, and tabulate bits vs accuracy."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .digits import accuracy, digits_data, digits_mlp, train_classifier
from .plan import uniform
from .share import decode, encode, inspect

BIT_WIDTHS = (16, 8, 6, 4, 3, 2)


def run_digits_demo(out_dir: Path, quick: bool = False, console: Console | None = None) -> dict:
    """Train, encode per bit width (per-tensor and per-channel), decode, measure; write JSON."""
    console = console or Console()
    xtr, ytr, xte, yte = digits_data()
    model = digits_mlp()
    train_classifier(model, xtr, ytr, epochs=15 if quick else 60)
    base_acc = accuracy(model, xte, yte)
    rows = []
    for bits in BIT_WIDTHS:
        for gran in ("tensor", "channel"):
            data = encode(model, uniform(bits, gran), mode="agreed")
            rebuilt = decode(data, into=copy.deepcopy(model))
            rep = inspect(data, into=model)
            rows.append(
                {
                    "bits": bits,
                    "granularity": gran,
                    "stream_bits": rep.total_bits,
                    "shared_bits": rep.shared_bits,
                    "reduction_percent": rep.reduction_percent,
                    "accuracy": accuracy(rebuilt, xte, yte),
                }
            )
    t = Table(title=f"digits MLP 64-64-32-10, float32 accuracy {base_acc:.3f}")
    for c in ("bits", "scales", "stream bits", "vs float32", "accuracy"):
        t.add_column(c, justify="right")
    f32 = rep.float32_bits
    t.add_row("32", "-", f"{f32:,}", "-", f"{base_acc:.3f}")
    for r in rows:
        t.add_row(
            str(r["bits"]),
            r["granularity"],
            f"{r['stream_bits']:,}",
            f"-{r['reduction_percent']:.1f}%",
            f"{r['accuracy']:.3f}",
        )
    console.print(t)
    result = {"float32_bits": f32, "float32_accuracy": base_acc, "rows": rows}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "digits_demo.json"
    path.write_text(json.dumps(result, indent=2))
    console.print(f"report written to {path}")
    return result
