"""Tables of the chosen widths and the Pareto plot (predicted and measured quality vs bits)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..format.errors import SpecError
from .allocation import Allocation, FrontPoint


def _rows(alloc: Allocation) -> list[tuple[str, str, str, str, str]]:
    rows = []
    cands = np.asarray(alloc.candidates)
    table = alloc.sensitivity.channel_loss if alloc.granularity == "channel" else None
    for t in alloc.tensors:
        w = alloc.widths[t.name]
        if w.size == 1:
            bits = f"{int(w[0])}"
        else:
            bits = f"{w.mean():.2f} ({int(w.min())}–{int(w.max())})"
        idx = np.searchsorted(cands, w)
        if table is not None:
            pred = float(table[t.name][np.arange(w.size), idx].sum())
        else:
            pred = float(alloc.sensitivity.tensor_loss[t.name][idx[0]])
        code_bits = int(w.sum()) * (t.numel // w.size)
        shape = "×".join(str(d) for d in t.shape)
        rows.append((t.name, shape, bits, f"{code_bits}", f"{pred:.3g}"))
    return rows


HEADER = ("tensor", "shape", "bits", "code bits", "predicted Δloss")


def bits_table(alloc: Allocation) -> str:
    """Markdown table: tensor, shape, width (mean (min–max) per channel), code bits, predicted."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in _rows(alloc):
        lines.append("| " + " | ".join(r) + " |")
    lines.append(
        f"\nTotal {alloc.total_bits} bits ({alloc.budget.describe()} budget), "
        f"{alloc.mean_bits:.3f} code bits per weight, predicted Δloss {alloc.predicted_loss:.4g}."
    )
    return "\n".join(lines)


def rich_bits_table(alloc: Allocation):
    """The same as a ``rich.table.Table`` (for the CLI)."""
    from rich.table import Table

    tab = Table(title=f"bit widths ({alloc.granularity}), {alloc.total_bits} bits")
    for i, h in enumerate(HEADER):
        tab.add_column(h, justify="left" if i < 2 else "right")
    for r in _rows(alloc):
        tab.add_row(*r)
    return tab


def pareto_plot(
    path,
    front: Sequence[FrontPoint] = (),
    measured: dict[str, Sequence[tuple[float, float]]] | None = None,
    *,
    xscale: float = 1.0,
    xlabel: str = "total bits",
    quality_label: str = "measured quality",
    title: str = "",
) -> None:
    """Two panels sharing the x axis (bits / ``xscale``): the predicted-loss front, and
    measured quality per labelled series of (bits, quality). Writes a PNG to ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SpecError("pareto_plot needs matplotlib: pip install 'nnshare[plot]'") from None
    if not front and not measured:
        raise SpecError("nothing to plot: give a front or measured points")
    n_ax = (1 if front else 0) + (1 if measured else 0)
    fig, axes = plt.subplots(n_ax, 1, figsize=(6.4, 2.6 + 2.2 * n_ax), sharex=True, squeeze=False)
    axes = list(axes[:, 0])
    if front:
        ax = axes.pop(0)
        x = np.array([p.bits for p in front]) / xscale
        y = np.array([p.predicted for p in front])
        ax.plot(x, y, "o-", ms=3, color="tab:gray", label="predicted (Pareto front)")
        if np.all(y > 0):
            ax.set_yscale("log")
        ax.set_ylabel("predicted Δloss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if measured:
        ax = axes.pop(0)
        for label, pts in measured.items():
            pts = sorted(pts)
            ax.plot([p[0] / xscale for p in pts], [p[1] for p in pts], "o-", ms=4, label=label)
        ax.set_ylabel(quality_label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.axes[-1].set_xlabel(xlabel)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
