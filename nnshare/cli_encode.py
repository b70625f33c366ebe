"""``nnshare encode``: one command, five modes chosen by the flags given.

- plan: ``--preset`` (default ptq-t8), ``--plan`` or ``--bits``; with ``--mode``, ``--entropy``,
  ``--counters``, ``--plan-out`` (``--bits`` also takes ``--granularity``, ``--group-size``,
  ``--axis``, ``--symmetric/--asymmetric``, ``--range``, ``--scale-dtype``, ``--float-dtype``).
- budget: ``--budget-bits``, ``--budget-bytes`` or ``--airtime`` with ``--link``; with ``--mixed``,
  ``--candidates`` and the spec and plan flags above.
- rate: ``--target-bits``, ``--target-bpp`` or ``--target-sqnr``; with ``--method``, ``--mode``,
  ``--scale-dtype``, ``--counters``.
- task budget: ``--eval pkg.module:function`` and ``--max-drop 0.5%`` (or an absolute drop); with
  ``--lower-is-better``, ``--calib``, ``--sensitivity``, ``--method``, ``--mode``, ``--counters``
  (:mod:`nnshare.cli_compress`).
- update: ``--base`` with ``--target-sqnr`` or ``--target-bpp``; with ``--method``,
  ``--state-in``, ``--state-out``.

A flag the chosen mode would ignore is refused (one line, status 2).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from .cli_util import LINK_HELP, check_choice, fail, model_file, read_bytes, refuse_extra, torch_threads

COMMON = {"--json", "-o"}
PLAN_FLAGS = {"--mode", "--entropy", "--counters", "--plan-out"}
BITS_FLAGS = {"--granularity", "--group-size", "--axis", "--symmetric/--asymmetric", "--range",
              "--scale-dtype", "--float-dtype"}


def register(app: typer.Typer) -> None:
    app.command(name="encode", help=encode.__doc__)(encode)


def encode(
    model: Path = typer.Argument(..., help="Model: .safetensors, a torch state dict (.pt), a "
                                 "sharded index (model.safetensors.index.json) or a model folder."),
    out: Path = typer.Option(..., "-o", "--out", help="Output stream file."),
    preset: str | None = typer.Option(None, help="ptq-t8 (default) | w8-channel | w4-channel | w4-g32"),
    plan: Path | None = typer.Option(None, help="A plan JSON file (see docs/guide.md)."),
    bits: int | None = typer.Option(None, help="Bit width 1-16 for every weight matrix."),
    granularity: str | None = typer.Option(None, help="With --bits: tensor (default) | channel | group"),
    group_size: int | None = typer.Option(None, help="Group size for --granularity group (32)."),
    axis: int | None = typer.Option(None, help="Channel / group axis (0)."),
    symmetric: bool | None = typer.Option(None, "--symmetric/--asymmetric", help="Symmetric (default)."),
    range_method: str | None = typer.Option(None, "--range", help="minmax (default) | mse | percentile"),
    scale_dtype: str | None = typer.Option(None, help="Scales: fp32 (default) | fp16 | bf16."),
    float_dtype: str | None = typer.Option(None, help="Unquantized tensors: fp32 | fp16 | bf16."),
    mode: str | None = typer.Option(None, help="self (names and shapes, default) | agreed (fingerprint)."),
    entropy: str | None = typer.Option(None, help="none (default) | auto (entropy-code when smaller)."),
    budget_bits: int | None = typer.Option(None, help="Mixed precision: whole stream <= N bits."),
    budget_bytes: int | None = typer.Option(None, help="Mixed precision: stream <= N bytes."),
    airtime: float | None = typer.Option(None, help="Mixed precision: airtime of the whole transfer in ms "
                                         "on --link (fragments, A-MPDUs, preambles, Block Acks)."),
    link: str | None = typer.Option(None, "--link", help=LINK_HELP),
    mixed: str | None = typer.Option(None, help="Mixed-precision granularity: channel (default) | tensor."),
    candidates: str | None = typer.Option(None, help="Candidate bit widths for a budget (2,3,4,5,6,8)."),
    target_bits: float | None = typer.Option(None, help="Rate control: codes + scales <= N bits."),
    target_bpp: float | None = typer.Option(None, help="Rate control: bits per parameter."),
    target_sqnr: float | None = typer.Option(None, help="Rate control: SQNR >= DB (dB) over the weights."),
    method: str | None = typer.Option(None, help="Rate control: tcq (default) | tcq4 | rdo | nearest."),
    base: Path | None = typer.Option(None, help="Code the update MODEL - BASE (a model file)."),
    state_in: Path | None = typer.Option(None, help="Update chain state of the previous round."),
    state_out: Path | None = typer.Option(None, help="Where to write this update's chain state."),
    counters: bool | None = typer.Option(None, "--counters", help="Also send num_batches_tracked."),
    plan_out: Path | None = typer.Option(None, help="Save the chosen plan as JSON."),
    eval_fn: str | None = typer.Option(None, "--eval", help="Task budget: pkg.module:function taking a "
                                       "state dict, returning the metric (the module may define "
                                       "model() and load_calib(path))."),
    max_drop: str | None = typer.Option(None, help="Task budget: metric drop allowed, 0.5% of the "
                                        "float model's metric or an absolute 0.01."),
    lower_is_better: bool | None = typer.Option(None, "--lower-is-better",
                                                help="Task budget: the metric is a loss / an error."),
    calib: Path | None = typer.Option(None, help="Task budget: calibration inputs (a tensor file, or "
                                      "what the --eval module's load_calib reads)."),
    sensitivity: str | None = typer.Option(None, help="Task budget with --calib: output (default) | "
                                           "hessian | fisher."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary instead of text."),
) -> None:
    """Quantize a model and write its stream: by preset, plan or bits; under a size budget
    (mixed precision); at a rate / quality target (entropy-coded); or as an update against a
    base. Flags a mode would ignore are refused."""
    given = {
        "--preset": preset, "--plan": plan, "--bits": bits, "--granularity": granularity,
        "--group-size": group_size, "--axis": axis, "--symmetric/--asymmetric": symmetric,
        "--range": range_method, "--scale-dtype": scale_dtype, "--float-dtype": float_dtype,
        "--mode": mode, "--entropy": entropy, "--budget-bits": budget_bits,
        "--budget-bytes": budget_bytes, "--airtime": airtime, "--link": link, "--mixed": mixed,
        "--candidates": candidates, "--target-bits": target_bits, "--target-bpp": target_bpp,
        "--target-sqnr": target_sqnr, "--method": method, "--base": base, "--state-in": state_in,
        "--state-out": state_out, "--counters": counters, "--plan-out": plan_out,
        "--eval": eval_fn, "--max-drop": max_drop, "--lower-is-better": lower_is_better,
        "--calib": calib, "--sensitivity": sensitivity,
    }
    check_choice("--granularity", granularity, ("tensor", "channel", "group"))
    check_choice("--range", range_method, ("minmax", "mse", "percentile"))
    check_choice("--scale-dtype", scale_dtype, ("fp32", "fp16", "bf16"))
    check_choice("--float-dtype", float_dtype, ("fp32", "fp16", "bf16"))
    check_choice("--mode", mode, ("self", "agreed"))
    check_choice("--entropy", entropy, ("none", "auto"))
    check_choice("--mixed", mixed, ("channel", "tensor"))
    check_choice("--method", method, ("tcq", "tcq4", "rdo", "nearest"))
    task = [f for f in ("--eval", "--max-drop") if given[f] is not None]
    if task:
        from .cli_compress import TASK_FLAGS, encode_task

        refuse_extra(given, COMMON | TASK_FLAGS, "a task budget (--eval/--max-drop)")
        encode_task(model, out, given, as_json)
        return
    for f in ("--lower-is-better", "--calib", "--sensitivity"):
        if given[f] is not None:
            fail(f"{f} applies to a task budget: give --eval and --max-drop too")
    for flag in ("--budget-bits", "--budget-bytes", "--airtime", "--target-bits", "--target-bpp"):
        if given[flag] is not None and not given[flag] > 0:
            fail(f"{flag} must be positive, got {given[flag]}")
    if bits is not None and not 1 <= bits <= 16:
        fail(f"--bits must be in 1..16, got {bits}")
    if group_size is not None and group_size < 1:
        fail(f"--group-size must be >= 1, got {group_size}")
    chosen = [f for f in ("--preset", "--plan", "--bits") if given[f] is not None]
    budgets = [f for f in ("--budget-bits", "--budget-bytes", "--airtime") if given[f] is not None]
    targets = [f for f in ("--target-bits", "--target-bpp", "--target-sqnr") if given[f] is not None]
    if len(chosen) + bool(budgets) + bool(targets) > 1 or len(targets) > 1 or len(budgets) > 1:
        fail(f"give only one of --preset, --plan, --bits, a budget and a rate target "
             f"(got {', '.join(chosen + budgets + targets)})")
    if link is not None and airtime is None:
        fail("--link is the link of an --airtime budget: give --airtime MS too")
    if airtime is not None and link is None:
        fail("--airtime needs the link: give --link mcs=M,bw=MHZ,nss=N (see --help)")
    if base is not None:
        refuse_extra(given, COMMON | {"--base", "--target-bpp", "--target-sqnr", "--method",
                                      "--state-in", "--state-out"}, "--base (an update)")
        if target_bpp is None and target_sqnr is None:
            fail("an update (--base) needs --target-sqnr DB or --target-bpp X")
        _encode_update(model, out, base, target_bpp, target_sqnr, method or "tcq", state_in,
                       state_out, as_json)
        return
    for f in ("--state-in", "--state-out"):
        if given[f] is not None:
            fail(f"{f} applies to an update: give --base too")
    if targets:
        refuse_extra(given, COMMON | set(targets) | {"--method", "--mode", "--scale-dtype", "--counters"},
                     f"{targets[0]} (rate control)")
        _encode_rate(model, out, target_bits, target_bpp, target_sqnr, method or "tcq", mode or "self",
                     scale_dtype or "fp32", bool(counters), as_json)
        return
    if method is not None:
        fail("--method applies to a rate target (--target-bits/--target-bpp/--target-sqnr) or --base")
    if budgets:
        refuse_extra(given, COMMON | PLAN_FLAGS | set(budgets) | {
            "--link", "--mixed", "--candidates", "--symmetric/--asymmetric", "--range", "--scale-dtype",
            "--float-dtype"}, f"{budgets[0]} (a budget)")
        from .cli_budget import encode_budget

        encode_budget(model, out, given, as_json)
        return
    extra_ok = COMMON | PLAN_FLAGS | {"--preset", "--plan", "--bits"}
    if bits is not None:
        refuse_extra(given, extra_ok | BITS_FLAGS, "--bits")
        if group_size is not None and granularity != "group":
            fail("--group-size applies to --granularity group")
        if axis is not None and granularity not in ("channel", "group"):
            fail("--axis applies to --granularity channel or group")
    else:
        refuse_extra(given, extra_ok | ({"--float-dtype"} if plan is None else set()),
                     f"{chosen[0] if chosen else '--preset (default ptq-t8)'}")
    p = _plan_from_flags(preset, plan, bits, granularity, group_size, axis, symmetric, range_method,
                         scale_dtype, float_dtype)
    write_encoded(model, out, p, mode or "self", entropy or "none", bool(counters), plan_out, as_json)


def _plan_from_flags(preset, plan, bits, granularity, group_size, axis, symmetric, range_method,
                     scale_dtype, float_dtype):
    from .errors import ModelFileError
    from .format.spec import QuantSpec
    from .plan import MATRIX_ROLES, Plan, Rule
    from .plan import preset as get_preset

    if plan is not None:
        try:
            return Plan.from_json(plan.read_text())
        except OSError as e:
            raise ModelFileError(f"cannot read plan {plan}: {e.strerror}") from None
    if bits is not None:
        gran = granularity or "tensor"
        spec = QuantSpec(bits=bits, granularity=gran, group_size=(group_size or 32) if gran == "group" else 0,
                         axis=axis or 0, symmetric=True if symmetric is None else symmetric,
                         range_method=range_method or "minmax", scale_dtype=scale_dtype or "fp32")
        return Plan(rules=(Rule(spec=spec, min_ndim=2, roles=MATRIX_ROLES),),
                    default_float=float_dtype or "fp32")
    p = get_preset(preset or "ptq-t8")
    return Plan(rules=p.rules, default_float=float_dtype) if float_dtype else p


def load_model(path: Path):
    """A :class:`~nnshare.state.ModelState` from a model file or folder."""
    from .io import load_checkpoint

    st = load_checkpoint(model_file(path))
    torch_threads()
    return st


def write_encoded(model: Path, out: Path, plan, mode: str, entropy: str, counters: bool,
                  plan_out: Path | None, as_json: bool) -> None:
    """Encode with a plan, write the stream (and the plan), print the summary."""
    from .outputs import atomic_write_many
    from .progress import spinner
    from .share import inspect as insp
    from .share.model import encode_model

    st = load_model(model)
    with spinner(f"quantizing {len(st.arrays)} tensors"):
        enc = encode_model(st, plan, mode, entropy=entropy, counters=counters)
    atomic_write_many([(out, enc.data)]
                      + ([(plan_out, plan.to_json().encode())] if plan_out is not None else []))
    rep = insp(enc.data, layout=enc.state.select(enc.tensors).layout() if mode == "agreed" else None)
    summary = {
        "out": str(out), "bytes": len(enc.data), "bits": rep.total_bits,
        "float32_bits": rep.float32_bits, "reduction_percent": round(rep.reduction_percent, 3),
        "quality": enc.quality.to_dict(),
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(
        f"wrote {out}: {len(enc.data):,} bytes ({rep.total_bits:,} bits; float32 {rep.float32_bits:,} "
        f"bits; {rep.reduction_percent:.1f}% smaller); {enc.quality.summary()}"
    )


def _encode_rate(model, out, target_bits, target_bpp, target_sqnr, method, mode, scale_dtype,
                 counters, as_json):
    """Rate control over every float tensor (1-D tensors at their own fine step), entropy-coded."""
    from .progress import spinner
    from .share.model import atomic_write
    from .share.rated import encode_rate

    st = load_model(model)
    with spinner(f"rate control over {len(st.arrays)} tensors"):
        enc = encode_rate(st, bits=target_bits, bits_per_param=target_bpp, sqnr_db=target_sqnr,
                      method=method, mode=mode, scale_dtype=scale_dtype, counters=counters)
    atomic_write(out, enc.data)
    res = enc.result
    n = sum(int(a.size) for a in enc.state.arrays.values())
    summary = {"out": str(out), "bytes": len(enc.data), "bits_per_param": 8 * len(enc.data) / max(n, 1),
               "params": n, "weights_sqnr_db": res.sqnr_db, "weights_mse": res.mse,
               "quality": enc.quality.to_dict()}
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(
        f"wrote {out}: {len(enc.data):,} bytes ({summary['bits_per_param']:.3f} bits/param over "
        f"{n:,} parameters; weights SQNR {res.sqnr_db:.2f} dB, MSE {res.mse:.3g}); "
        f"{enc.quality.summary()}"
    )


def _encode_update(model, out, base, target_bpp, target_sqnr, method, state_in, state_out, as_json):
    """Code NEW - BASE against a base both sides hold (optionally chained to the last update)."""
    from .outputs import atomic_write_many
    from .share.delta import encode_update, load_state

    prev = load_state(read_bytes(state_in)) if state_in is not None else None
    from .progress import spinner

    new_st, base_st = load_model(model), load_model(base)
    with spinner(f"coding the update of {len(new_st.arrays)} tensors"):
        enc = encode_update(new_st.arrays, base_st.arrays, state=prev, sqnr_db=target_sqnr,
                            bits_per_param=target_bpp, method=method)
    atomic_write_many([(out, enc.data)]  # both files or neither
                      + ([(state_out, enc.state.to_bytes())] if state_out is not None else []))
    q = update_quality(new_st, base_st, enc.reconstruction)
    n = sum(a.size for a in enc.reconstruction.values())
    if as_json:
        typer.echo(json.dumps({"out": str(out), "bytes": len(enc.data), "params": n,
                               "bits_per_param": 8 * len(enc.data) / max(n, 1),
                               "state_bytes": enc.state.nbytes, "quality": q.to_dict()}, indent=2))
        return
    typer.echo(f"wrote update {out}: {len(enc.data):,} bytes ({8 * len(enc.data) / max(n, 1):.3f} "
               f"bits/param over {n:,} parameters; chain state {enc.state.nbytes:,} bytes); "
               f"{q.summary()} of the deltas")


def update_quality(new_st, base_st, reconstruction):
    """Per-tensor SQNR of the decoded deltas (new - base) against the true ones; warns about
    deltas that decode to zeros."""
    import numpy as np

    from .share.quality import assess, warn_damage

    true, got = {}, {}
    for k, a in new_st.arrays.items():
        if a.dtype.kind == "f" and k in reconstruction:
            b = base_st.arrays[k].astype(np.float64)
            true[k], got[k] = a.astype(np.float64) - b, reconstruction[k].astype(np.float64) - b
    q = assess(true, got, new_st.roles)
    warn_damage(q)
    return q
