"""The command line: ``nnshare encode | decode | inspect | export | demo | serve | fetch``.

Every usage error and every expected failure prints one line ``error: ...`` to stderr and exits
with status 2; nothing half-written is left behind. Warnings print one line ``warning: ...``.
``inspect``, ``decode`` and ``--help`` never import torch.
"""

from __future__ import annotations

import copy
import os
import sys
import warnings
from pathlib import Path

import typer

from . import cli_decode, cli_encode, cli_export, cli_link
from .cli_util import fail, torch_threads
from .errors import NNShareError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.split("\n\n")[0],
                  rich_markup_mode=None, pretty_exceptions_enable=False)


def _pin_threads() -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"nnshare {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """nnshare: quantize, encode and share neural networks in the fewest bits."""


cli_encode.register(app)
cli_decode.register(app)
cli_export.register(app)
cli_link.register(app)


@app.command()
def demo(
    out: Path = typer.Option(Path("out/demo"), "-o", "--out", help="Report folder."),
    quick: bool = typer.Option(False, help="Small, fast run (CI smoke test)."),
    full: bool = typer.Option(False, help="More seeds, channel model B, the bit-level check and MU-MIMO."),
    digits: bool = typer.Option(False, help="Run the digits MLP bit-width sweep instead."),
) -> None:
    """Run the main story on embedded defaults and write a report."""
    if quick and full:
        fail("give --quick or --full, not both")
    out.mkdir(parents=True, exist_ok=True)
    try:
        from .wlan.demo import run_demo
    except ImportError:
        run_demo = None
    torch_threads()
    if digits or run_demo is None:
        if full:
            fail("--full applies to the 802.11 demo, not --digits")
        from .demo_digits import run_digits_demo

        run_digits_demo(out, quick=quick)
        return
    run_demo(out, quick=quick, full=full, progress=True)


def _click_exceptions():
    try:
        from typer._click import exceptions as ex  # typer >= 0.16 ships its own click
    except ImportError:  # pragma: no cover
        from click import exceptions as ex
    return ex


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    text = " ".join(str(message).split())
    print(f"warning: {text}", file=sys.stderr)


def _one_line(msg: str) -> str:
    """The message on one line, control characters escaped (names come from streams)."""
    from .text import printable

    return printable(" ".join(str(msg).split()))


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that ``finally`` blocks remove temporary files."""


def _on_sigterm(signum, frame):
    raise Terminated()


def _no_such_option(e) -> str:
    near = sorted(getattr(e, "possibilities", None) or ())
    hint = f" (did you mean {', '.join(near)}?)" if near else ""
    return f"No such option: {e.option_name}{hint}"


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; usage errors and nnshare's errors become one line, status 2."""
    import signal

    _pin_threads()
    warnings.showwarning = _show_warning
    ex = _click_exceptions()
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (e.g. called from a test runner's worker)
        previous = None
    try:
        _run(argv, ex)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _app_for(argv: list[str]) -> typer.Typer:
    """The app with only the command ``argv`` names (typer builds the click parameters of every
    registered command on each call: ~10 ms of a CLI start); the whole app otherwise."""
    from typer.main import get_command_name

    name = argv[0] if argv else None
    only = [c for c in app.registered_commands
            if (c.name or get_command_name(c.callback.__name__)) == name]
    if not only:
        return app
    sub = copy.copy(app)
    sub.registered_commands = only
    return sub


def _run(argv, ex) -> None:
    try:
        rc = _app_for(sys.argv[1:] if argv is None else list(argv))(
            args=argv, standalone_mode=False, prog_name="nnshare")
        if isinstance(rc, int) and rc:
            sys.exit(rc)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except ex.NoArgsIsHelpError as e:  # bare `nnshare` / `nnshare CMD` without arguments
        typer.echo(e.ctx.get_help() if e.ctx else str(e))
        sys.exit(2)
    except ex.NoSuchOption as e:  # one wording whichever click/typer is installed (flwr pins typer < 0.21)
        typer.echo(f"error: {_no_such_option(e)}", err=True)
        sys.exit(2)
    except ex.UsageError as e:
        typer.echo(f"error: {_one_line(e.format_message())}", err=True)
        sys.exit(2)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except ex.ClickException as e:
        typer.echo(f"error: {_one_line(e.format_message())}", err=True)
        sys.exit(2)
    except NNShareError as e:
        typer.echo(f"error: {_one_line(e)}", err=True)
        sys.exit(2)
    except OSError as e:
        where = f" {e.filename}:" if getattr(e, "filename", None) else ""
        typer.echo(f"error:{where} {_one_line(e.strerror or e)}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Terminated:
        typer.echo("terminated", err=True)
        sys.exit(143)


if __name__ == "__main__":
    main()
