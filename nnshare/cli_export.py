"""``nnshare export``: a stream in a runtime format (compressed-tensors, ONNX QDQ, MPEG NNR)."""

from __future__ import annotations

from pathlib import Path

import typer

from .cli_util import read_bytes


def register(app: typer.Typer) -> None:
    app.command(name="export", help=export.__doc__)(export)


def export(
    stream: Path = typer.Argument(..., help="Stream file written by `nnshare encode`."),
    to: str = typer.Option(..., "--to", help="compressed-tensors | onnx | nnr"),
    out: Path = typer.Option(..., "-o", "--out", help="Output folder (compressed-tensors) or file."),
    like: Path | None = typer.Option(None, help="Model file with the architecture (agreed mode)."),
    fallback: str | None = typer.Option(None, help="compressed-tensors: error | dense for tensors "
                                        "it cannot pack."),
    hf_config: Path | None = typer.Option(None, help="compressed-tensors: config.json to extend."),
    module: str | None = typer.Option(None, help="onnx: package.module:factory returning the model."),
    input_shape: str | None = typer.Option(None, help="onnx: example input shape, e.g. 1,64."),
    nncodec_python: Path | None = typer.Option(None, help="nnr: Python with nncodec==2.1.3."),
) -> None:
    """Write a stream in a runtime format: a compressed-tensors folder, an ONNX QDQ model or an
    MPEG NNR bitstream; layouts the target cannot hold are refused by name."""
    from .cli_decode import _layout
    from .cli_util import torch_threads
    from .export.command import run_export

    data = read_bytes(stream)
    torch_threads()
    typer.echo(run_export(data, to, out, _layout(like), fallback=fallback, hf_config=hf_config,
                          module=module, input_shape=input_shape, nncodec_python=nncodec_python))
