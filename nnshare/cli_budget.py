"""``nnshare encode`` under a size budget: mixed precision from a model file (data-free
weight-error sensitivity, exact solve)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .cli_util import fail


def encode_budget(model: Path, out: Path, given: dict, as_json: bool) -> None:
    """Solve the bit widths for the budget, write the stream (and --plan-out), print the table."""
    from .cli_encode import load_model
    from .format.spec import QuantSpec
    from .link import parse_link
    from .mixed import Budget, rich_bits_table, search
    from .mixed.plans import plan_stream
    from .outputs import atomic_write_many
    from .progress import spinner
    from .share.quality import warn_damage

    cands_text = given["--candidates"] or "2,3,4,5,6,8"
    try:
        cands = tuple(int(c) for c in cands_text.split(","))
    except ValueError:
        fail(f"--candidates must be comma-separated integers, got {cands_text!r}")
    budget = Budget(bits=given["--budget-bits"], bytes=given["--budget-bytes"],
                    airtime_ms=given["--airtime"],
                    link=parse_link(given["--link"]) if given["--airtime"] is not None else None)
    mode, entropy = given["--mode"] or "self", given["--entropy"] or "none"
    counters = bool(given["--counters"])
    st = load_model(model)
    if not counters:
        st = st.without_counters()
    sym = given["--symmetric/--asymmetric"]
    base = QuantSpec(granularity="channel", symmetric=True if sym is None else sym,
                     range_method=given["--range"] or "minmax", scale_dtype=given["--scale-dtype"] or "fp32")
    with spinner(f"mixed precision under {budget.describe()}"):
        alloc = search(st, budget, "weight", granularity=given["--mixed"] or "channel", candidates=cands,
                       base=base, mode=mode, float_dtype=given["--float-dtype"] or "fp32", entropy=entropy)
        data, quality = plan_stream(st, alloc.plan, mode, entropy=entropy, counters=counters)
    warn_damage(quality)
    plan_out = given["--plan-out"]
    atomic_write_many([(out, data)]  # both files or neither
                      + ([(plan_out, alloc.plan.to_json().encode())] if plan_out is not None else []))
    if as_json:
        typer.echo(json.dumps({
            "out": str(out), "bytes": len(data), "bits": 8 * len(data),
            "budget_bits": budget.total_bits, "mean_bits": alloc.mean_bits,
            "widths": {n: [int(x) for x in w] for n, w in alloc.widths.items()},
            "quality": quality.to_dict(),
        }, indent=2))
        return
    from rich.console import Console

    console = Console()
    console.print(rich_bits_table(alloc))
    console.print(f"wrote {out}: {len(data):,} bytes ({8 * len(data):,} bits; budget "
                  f"{budget.describe()}); {quality.summary()}")
