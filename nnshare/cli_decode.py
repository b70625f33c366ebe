"""``nnshare decode`` and ``nnshare inspect`` (torch is never imported: the receiver's path).

``decode -o FILE.safetensors`` writes one safetensors file; ``decode -o DIR`` (any path without
the ``.safetensors`` suffix) writes a model folder: ``DIR/model.safetensors`` plus, when
``--like`` is a model folder, every other file of it (config, tokenizer, pooling...), so
``AutoModel.from_pretrained(DIR)`` / ``SentenceTransformer(DIR)`` load it offline.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import typer

from .cli_util import LINK_HELP, check_choice, fail, model_file, read_bytes, refuse_extra

DTYPE_FLAGS = {"keep": None, "fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def register(app: typer.Typer) -> None:
    app.command(name="decode", help=decode.__doc__)(decode)
    app.command(name="inspect", help=inspect.__doc__)(inspect)


def _layout(like: Path | None, counters: bool = False):
    if like is None:
        return None
    from .io import load_checkpoint

    st = load_checkpoint(model_file(like))
    return (st if counters else st.without_counters()).layout()


def _read_stream(data: bytes, like: Path | None, processes: int = 1):
    """Decode with the layout of ``like`` (retrying with its counters for agreed streams), in up
    to ``processes`` processes."""
    from .errors import FormatError
    from .share.receive import decode_model

    try:
        return decode_model(data, _layout(like), processes=processes)
    except FormatError as e:
        if like is None or "fingerprint mismatch" not in str(e):
            raise
        return decode_model(data, _layout(like, counters=True), processes=processes)


def decode(
    stream: Path = typer.Argument(..., help="Stream file written by `nnshare encode`."),
    out: Path = typer.Option(..., "-o", "--out", help="Output .safetensors file, or a folder."),
    like: Path | None = typer.Option(None, help="The original model (file or folder): its layout "
                                     "for agreed mode, its config/tokenizer files for a folder."),
    dtype: str = typer.Option("keep", help="Floats as: keep (original dtype) | fp32 | bf16 | fp16."),
    base: Path | None = typer.Option(None, help="The base model an update was coded against."),
    state_in: Path | None = typer.Option(None, help="Update chain state of the previous round."),
    state_out: Path | None = typer.Option(None, help="Where to write this update's chain state."),
    processes: int = typer.Option(1, "--processes", help="Decode a model stream in up to N "
                                  "processes (forked; the same file for any N)."),
) -> None:
    """Decode a stream (or a model update, with --base) into a safetensors file or a model
    folder; float tensors come back in their original dtype unless --dtype says otherwise."""
    from .io import safetensors_bytes
    from .outputs import Staged, atomic_write
    from .share.receive import is_update

    check_choice("--dtype", dtype, tuple(DTYPE_FLAGS))
    if processes < 1:
        fail(f"--processes must be a positive integer, got {processes}")
    data = read_bytes(stream)
    to_dir = out.suffix != ".safetensors"
    state_bytes = None
    if is_update(data):
        refuse_extra({"--like": like}, set(), "an update stream (it carries no layout; give --base)")
        refuse_extra({"--processes": processes if processes != 1 else None}, set(),
                     "an update stream (it decodes in one process)")
        arrays, dtypes, ties, new_state = _decode_update(data, base, state_in)
        state_bytes = new_state.to_bytes() if state_out is not None else None
        what = "base + update"
    else:
        refuse_extra({"--base": base, "--state-in": state_in, "--state-out": state_out}, set(),
                     "a model stream (these apply to updates)")
        dec = _read_stream(data, like, processes)
        arrays, dtypes, ties = dec.arrays, dec.dtypes, dec.ties
        what = "tensors"
    if DTYPE_FLAGS[dtype] is not None:
        dtypes = {n: DTYPE_FLAGS[dtype] if arrays[n].dtype.kind == "f" else d for n, d in dtypes.items()}
    canon = {n: a for n, a in arrays.items() if n not in ties}
    meta = {"format": "pt", **ties}
    blob = safetensors_bytes(canon, dtypes, meta)  # refuses names safetensors reserves
    # all outputs or none: the state's temporary file first, renamed once the model is written
    state = Staged(state_out, state_bytes) if state_bytes is not None else None
    try:
        if to_dir:
            _write_folder(out, blob, like)
            target = out / "model.safetensors"
        else:
            atomic_write(out, blob)
            target = out
        if state is not None:
            state.commit()
    finally:
        if state is not None:
            state.discard()
    typer.echo(f"wrote {target}: {len(canon)} {what}" + (f" ({len(ties)} tied)" if ties else ""))


def _decode_update(data, base, state_in):
    from .io import load_checkpoint
    from .share.delta import decode_update, load_state

    if base is None:
        fail("this is a model update: give --base, the model it was coded against")
    prev = load_state(read_bytes(state_in)) if state_in is not None else None
    bst = load_checkpoint(model_file(base))
    arrays, new_state = decode_update(data, bst.arrays, state=prev)
    for alias, canon in bst.ties.items():
        arrays[alias] = arrays[canon]
    return arrays, dict(bst.dtypes), dict(bst.ties), new_state


def _write_folder(out: Path, blob: bytes, like: Path | None) -> None:
    """A model folder: the original's non-weight files (when ``like`` is a folder), new weights
    ``blob`` (a safetensors file)."""
    import os

    from .errors import OutputError

    if out.exists() and not out.is_dir():
        raise OutputError(f"cannot write folder {out}: a file of that name exists")
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        if like is not None and like.is_dir():
            shutil.copytree(like, tmp, ignore=_weights_ignored)
        else:
            tmp.mkdir(parents=True)
        (tmp / "model.safetensors").write_bytes(blob)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except OSError as e:
        raise OutputError(f"cannot write folder {out}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _weights_ignored(folder, names):
    return [n for n in names if n.endswith((".safetensors", ".bin", ".index.json", ".pt", ".pth"))
            or n.startswith(".")]


def inspect(
    stream: Path = typer.Argument(..., help="Stream file."),
    like: Path | None = typer.Option(None, help="Model file or folder with the architecture (agreed mode)."),
    base: Path | None = typer.Option(None, help="An update's base model (gives its layout)."),
    state_in: Path | None = typer.Option(None, help="Chain state a chained update continues."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (structured per-tensor fields)."),
    airtime: bool = typer.Option(False, "--airtime", help="Also the transfer airtime on --link."),
    link: str | None = typer.Option(None, "--link", help=LINK_HELP),
) -> None:
    """Account for every bit of a stream of any kind (model, update, features, chain state):
    per tensor, header, total (and, with --airtime, its airtime on an 802.11 link)."""
    from .errors import FormatError
    from .share import inspect as insp

    if link is not None and not airtime:
        fail("--link is the link of --airtime: give --airtime too")
    if airtime and link is None:
        fail("--airtime needs the link: give --link mcs=M,bw=MHZ,nss=N (see --help)")
    lk = None
    if airtime:
        from .link import parse_link

        lk = parse_link(link)
    data = read_bytes(stream)
    if data[:4] == b"NNSU":
        fail(f"{stream} is a version-1 model update (NNSU, {len(data):,} bytes): decode it with "
             "--base")
    refuse_extra({"--like": like} if base is not None else {}, set(), "--base (give one of them)")
    chain = None
    if state_in is not None:
        from .share.delta import load_state

        chain = load_state(read_bytes(state_in))
    shape_from = like if like is not None else base
    try:
        rep = insp(data, layout=_layout(shape_from), chain=chain)
    except FormatError as e:
        if shape_from is None or "fingerprint mismatch" not in str(e):
            raise
        rep = insp(data, layout=_layout(shape_from, counters=True), chain=chain)
    if as_json:
        d = rep.to_dict()
        if lk is not None:
            d["airtime"] = {"link": lk.describe(), **lk.transfer(len(data)).to_dict()}
        typer.echo(json.dumps(d, indent=2))
        return
    from .report import inspection_table

    inspection_table(rep)
    if lk is not None:
        from .link.report import airtime_lines

        for line in airtime_lines(lk, lk.transfer(len(data))):
            typer.echo(line)
