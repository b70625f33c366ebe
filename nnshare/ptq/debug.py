"""A quantization debug report in the manner of AIMET's QuantAnalyzer: per layer, the task
metric when only that layer's weights are quantized, and when only that layer's input
activation is quantized (everything else in float). Rendered as a markdown table and a bar plot.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..format.errors import SpecError
from . import act_ranges
from .weights import SpecLike, layer_specs, nearest


@dataclass(frozen=True)
class LayerReport:
    """``weight``: metric with only this layer's weight quantized; ``activation``: with only its
    input activation quantized."""

    layer: str
    kind: str
    params: int
    weight: float
    activation: float


def analyze(
    model: nn.Module,
    spec: SpecLike,
    batches,
    metric: Callable[[nn.Module], float],
    *,
    act_bits: int = 8,
    act_method: str = "minmax",
    forward: Callable | None = None,
) -> tuple[float, list[LayerReport]]:
    """(float metric, one row per layer). ``metric(model)`` evaluates a model (higher = better);
    activation ranges are calibrated on ``batches`` with the float model."""
    specs = layer_specs(model, spec)
    if not specs:
        raise SpecError("the spec quantizes no layer of this model")
    base = metric(model)
    sites = [f"{n}:in" for n in specs]
    ranges = act_ranges.calibrate(
        model, batches, bits=act_bits, method=act_method, sites=sites, forward=forward
    )
    rows = []
    for name, sp in specs.items():
        m = copy.deepcopy(model)
        nearest(m, sp, [name])
        w = metric(m)
        m = copy.deepcopy(model)
        act_ranges.attach(m, {f"{name}:in": ranges[f"{name}:in"]})
        a = metric(m)
        mod = model.get_submodule(name)
        rows.append(LayerReport(name, type(mod).__name__, int(mod.weight.numel()), w, a))
    return base, rows


def table(base: float, rows: list[LayerReport], metric_name: str = "metric") -> str:
    """Markdown table, most sensitive layers (lowest of the two metrics) marked."""
    worst = sorted(rows, key=lambda r: min(r.weight, r.activation))[: max(1, len(rows) // 4)]
    lines = [
        f"| layer | type | weights | {metric_name}: weights quantized | {metric_name}: input quantized |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        mark = " **(sensitive)**" if r in worst else ""
        lines.append(f"| `{r.layer}`{mark} | {r.kind} | {r.params} | {r.weight:.4f} | {r.activation:.4f} |")
    lines.append(f"| float | | | {base:.4f} | {base:.4f} |")
    return "\n".join(lines)


def plot(base: float, rows: list[LayerReport], path, metric_name: str = "metric", title: str = "") -> None:
    """Grouped bar chart (weights vs activation) per layer, float metric as a line; PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SpecError("the debug plot needs matplotlib: pip install 'nnshare[plot]'") from None
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(rows) + 2), 3.2))
    ax.bar([i - 0.2 for i in x], [r.weight for r in rows], 0.4, label="weights quantized")
    ax.bar([i + 0.2 for i in x], [r.activation for r in rows], 0.4, label="input activation quantized")
    ax.axhline(base, color="k", lw=1, ls="--", label="float")
    ax.set_xticks(list(x), [r.layer for r in rows], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(metric_name)
    lo = min(min(r.weight, r.activation) for r in rows)
    ax.set_ylim(max(0.0, lo - 0.05 * abs(base)), base + 0.02 * abs(base) + 1e-9)
    ax.set_title(title or "per-layer quantization sensitivity", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
