"""The command line: ``nnshare encode | decode | inspect | demo``.

Every expected failure prints one line ``error: ...`` and exits with status 2.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from .format.errors import NNShareError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)


def _pin_threads() -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


def fail(msg: str) -> None:
    """Print one error line and exit 2."""
    typer.echo(f"error: {msg}", err=True)
    raise typer.Exit(2)


def _layout(like: Path | None):
    if like is None:
        return None
    from .io import load_state

    return [(n, tuple(a.shape)) for n, a in load_state(like).items()]


@app.command()
def encode(
    model: Path = typer.Argument(..., help="Model file: .safetensors or a torch state dict (.pt)."),
    out: Path = typer.Option(..., "-o", "--out", help="Output stream file."),
    preset: str | None = typer.Option(None, help="ptq-t8 | w8-channel | w4-channel | w4-g32"),
    plan: Path | None = typer.Option(None, help="A plan JSON file (see Plan.to_json)."),
    bits: int | None = typer.Option(None, help="Bit width 1-16 for every weight (rank >= 2)."),
    granularity: str = typer.Option("tensor", help="tensor | channel | group"),
    group_size: int = typer.Option(32, help="Group size for --granularity group."),
    axis: int = typer.Option(0, help="Channel / group axis."),
    symmetric: bool = typer.Option(True, "--symmetric/--asymmetric"),
    range_method: str = typer.Option("minmax", "--range", help="minmax | mse | percentile"),
    scale_dtype: str = typer.Option("fp32", help="Precision of scales: fp32 | fp16 | bf16."),
    float_dtype: str = typer.Option("fp32", help="Precision of unquantized tensors."),
    mode: str = typer.Option("self", help="self (names and shapes) | agreed (fingerprint only)."),
    entropy: str = typer.Option("none", help="none | auto (entropy-code codes when smaller)."),
    budget_bits: int | None = typer.Option(None, help="Mixed precision: whole stream <= N bits."),
    budget_bytes: int | None = typer.Option(None, help="Mixed precision: stream <= N bytes."),
    airtime: float | None = typer.Option(None, help="Mixed precision: airtime budget in ms."),
    rate: float | None = typer.Option(None, help="Link rate in Mbit/s for --airtime."),
    mixed: str = typer.Option("channel", help="Mixed-precision granularity: tensor | channel."),
    candidates: str = typer.Option("2,3,4,5,6,8", help="Candidate bit widths for a budget."),
    target_bits: float | None = typer.Option(None, help="Rate control: codes + scales <= N bits."),
    target_bpp: float | None = typer.Option(None, help="Rate control: bits per parameter."),
    target_sqnr: float | None = typer.Option(None, help="Rate control: SQNR >= DB (dB)."),
    method: str = typer.Option("tcq", help="Rate control: tcq | tcq4 | rdo | nearest."),
    base: Path | None = typer.Option(None, help="Code the update NEW - BASE (a model file)."),
    state_in: Path | None = typer.Option(None, help="Update chain state of the previous round."),
    state_out: Path | None = typer.Option(None, help="Where to write this update's chain state."),
) -> None:
    """Quantize a model file and write its stream: by preset, plan or bits; under a size budget
    (mixed precision); at a rate / quality target (entropy-coded); or as an update against a
    base."""
    from .format.spec import QuantSpec
    from .io import load_state
    from .plan import Plan, Rule
    from .plan import preset as get_preset
    from .share import encode as enc
    from .share import inspect as insp
    from .share.model import atomic_write

    chosen = [x is not None for x in (preset, plan, bits)]
    budgeted = any(x is not None for x in (budget_bits, budget_bytes, airtime))
    targets = [x for x in (target_bits, target_bpp, target_sqnr) if x is not None]
    if sum(chosen) + budgeted + bool(targets) > 1 or len(targets) > 1:
        fail("give only one of --preset, --plan, --bits, a budget and a rate target")
    if base is not None:
        _encode_update(model, out, base, target_bpp, target_sqnr, method, state_in, state_out)
        return
    if targets:
        _encode_rate(model, out, target_bits, target_bpp, target_sqnr, method, mode, scale_dtype)
        return
    if budgeted:
        _encode_budget(model, out, budget_bits, budget_bytes, airtime, rate, mixed, candidates,
                       symmetric, range_method, scale_dtype, float_dtype, mode, entropy)
        return
    if plan is not None:
        try:
            p = Plan.from_json(plan.read_text())
        except OSError as e:
            fail(f"cannot read plan {plan}: {e.strerror}")
    elif bits is not None:
        spec = QuantSpec(
            bits=bits,
            granularity=granularity,
            group_size=group_size if granularity == "group" else 0,
            axis=axis,
            symmetric=symmetric,
            range_method=range_method,
            scale_dtype=scale_dtype,
        )
        p = Plan(rules=(Rule(spec=spec, min_ndim=2),), default_float=float_dtype)
    else:
        p = get_preset(preset or "ptq-t8")
        if float_dtype != "fp32":
            p = Plan(rules=p.rules, default_float=float_dtype)
    state = load_state(model)
    data = enc(state, p, mode=mode, entropy=entropy)
    atomic_write(out, data)
    rep = insp(data, layout=[(n, a.shape) for n, a in state.items()])
    typer.echo(
        f"wrote {out}: {len(data):,} bytes ({rep.total_bits:,} bits; float32 {rep.float32_bits:,} "
        f"bits; {rep.reduction_percent:.1f}% smaller)"
    )


def _encode_rate(model, out, target_bits, target_bpp, target_sqnr, method, mode, scale_dtype):
    """Rate control over every float tensor, then an entropy-coded stream."""
    from .format.container import write_stream
    from .format.spec import RawTensor
    from .io import load_state
    from .quant.rate import rate_control
    from .share.model import atomic_write

    state = load_state(model)
    floats = {k: v for k, v in state.items() if v.dtype.kind == "f"}
    res = rate_control(floats, bits=target_bits, bits_per_param=target_bpp, sqnr_db=target_sqnr,
                       method=method, scale_dtype=scale_dtype)
    tensors = {k: res.tensors[k] if k in res.tensors else RawTensor(v) for k, v in state.items()}
    data, _ = write_stream(tensors, mode, entropy="auto")
    atomic_write(out, data)
    typer.echo(
        f"wrote {out}: {len(data):,} bytes ({8 * len(data) / max(res.numel, 1):.3f} bits/param "
        f"over {res.numel:,} parameters; SQNR {res.sqnr_db:.2f} dB, MSE {res.mse:.3g})"
    )


def _encode_update(model, out, base, target_bpp, target_sqnr, method, state_in, state_out):
    """Code NEW - BASE against a base both sides hold (optionally chained to the last update)."""
    from .io import load_state
    from .share.delta import UpdateState, encode_update
    from .share.model import atomic_write

    if target_bpp is None and target_sqnr is None:
        fail("an update needs --target-sqnr DB or --target-bpp X")
    prev = UpdateState.from_bytes(_read(state_in)) if state_in is not None else None
    enc = encode_update(load_state(model), load_state(base), state=prev, sqnr_db=target_sqnr,
                        bits_per_param=target_bpp, method=method)
    atomic_write(out, enc.data)
    if state_out is not None:
        atomic_write(state_out, enc.state.to_bytes())
    n = sum(c.size for c in enc.state.codes.values())
    typer.echo(f"wrote update {out}: {len(enc.data):,} bytes ({8 * len(enc.data) / max(n, 1):.3f} "
               f"bits/param over {n:,} parameters)")


def _encode_budget(model, out, budget_bits, budget_bytes, airtime, rate, mixed, candidates,
                   symmetric, range_method, scale_dtype, float_dtype, mode, entropy) -> None:
    """Mixed precision from a model file: data-free (weight-error) sensitivity, exact solve."""
    from rich.console import Console

    from .format.spec import QuantSpec
    from .io import load_state
    from .mixed import Budget, rich_bits_table, search
    from .share import encode as enc
    from .share.model import atomic_write

    if sum(x is not None for x in (budget_bits, budget_bytes, airtime)) > 1:
        fail("give one budget: --budget-bits, --budget-bytes or --airtime with --rate")
    try:
        cands = tuple(int(c) for c in candidates.split(","))
    except ValueError:
        fail(f"--candidates must be comma-separated integers, got {candidates!r}")
    budget = Budget(bits=budget_bits, bytes=budget_bytes, airtime_ms=airtime, rate_mbps=rate)
    state = load_state(model)
    base = QuantSpec(granularity="channel", symmetric=symmetric, range_method=range_method,
                     scale_dtype=scale_dtype)
    alloc = search(state, budget, "weight", granularity=mixed, candidates=cands, base=base,
                   mode=mode, float_dtype=float_dtype, entropy=entropy)
    data = enc(state, alloc.plan, mode=mode, entropy=entropy)
    atomic_write(out, data)
    console = Console()
    console.print(rich_bits_table(alloc))
    console.print(
        f"wrote {out}: {len(data):,} bytes ({8 * len(data):,} bits; budget {budget.total_bits:,} bits)"
    )


@app.command()
def decode(
    stream: Path = typer.Argument(..., help="Stream file written by `nnshare encode`."),
    out: Path = typer.Option(..., "-o", "--out", help="Output .safetensors file."),
    like: Path | None = typer.Option(None, help="Model file with the architecture (agreed mode)."),
    base: Path | None = typer.Option(None, help="The base model an update was coded against."),
    state_in: Path | None = typer.Option(None, help="Update chain state of the previous round."),
    state_out: Path | None = typer.Option(None, help="Where to write this update's chain state."),
) -> None:
    """Decode a stream (or a model update, with --base) into a safetensors file of float32
    tensors."""
    from .format import decode_arrays
    from .io import load_state, save_safetensors
    from .share.delta import MAGIC as UPDATE_MAGIC
    from .share.delta import UpdateState, decode_update
    from .share.model import atomic_write

    data = _read(stream)
    if data[:4] == UPDATE_MAGIC:
        prev = UpdateState.from_bytes(_read(state_in)) if state_in is not None else None
        arrays, new_state = decode_update(data, load_state(base) if base else None, state=prev)
        save_safetensors(arrays, out)
        if state_out is not None:
            atomic_write(state_out, new_state.to_bytes())
        typer.echo(f"wrote {out}: {len(arrays)} tensors (base + update)")
        return
    arrays = decode_arrays(data, _layout(like))
    save_safetensors(arrays, out)
    typer.echo(f"wrote {out}: {len(arrays)} tensors")


@app.command()
def inspect(
    stream: Path = typer.Argument(..., help="Stream file."),
    like: Path | None = typer.Option(None, help="Model file with the architecture (agreed mode)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Account for every bit of a stream: per tensor, header, total."""
    from .report import inspection_table
    from .share import inspect as insp

    data = _read(stream)
    if data[:4] == b"NNSU":
        fail(f"{stream} is a model update (NNSU, {len(data):,} bytes): decode it with --base")
    rep = insp(data, layout=_layout(like))
    if as_json:
        typer.echo(json.dumps(rep.to_dict(), indent=2))
    else:
        inspection_table(rep)


@app.command()
def demo(
    out: Path = typer.Option(Path("out/demo"), "-o", "--out", help="Report folder."),
    quick: bool = typer.Option(False, help="Small, fast run (CI smoke test)."),
    full: bool = typer.Option(False, help="More seeds, channel model B and the bit-level check."),
    digits: bool = typer.Option(False, help="Run the digits MLP bit-width sweep instead."),
) -> None:
    """Run the main story on embedded defaults and write a report."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        from .wlan.demo import run_demo
    except ImportError:
        run_demo = None
    if digits or run_demo is None:
        from .demo_digits import run_digits_demo

        run_digits_demo(out, quick=quick)
        return
    run_demo(out, quick=quick, full=full, progress=True)


def _read(path: Path) -> bytes:
    from .io import ModelFileError

    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"file not found: {path}") from None
    except OSError as e:
        raise ModelFileError(f"cannot read {path}: {e.strerror}") from None


def main() -> None:
    """Entry point: run the app; turn nnshare's errors into one line and exit status 2."""
    _pin_threads()
    try:
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except NNShareError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except OSError as e:
        where = f" {e.filename}" if getattr(e, "filename", None) else ""
        typer.echo(f"error:{where} {e.strerror or e}", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as e:  # click usage errors
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(2)
        raise


if __name__ == "__main__":
    main()
