"""``nnshare serve`` and ``nnshare fetch``: one stream over UDP on the loopback interface, with
the fragments and Block Ack window of ``nnshare.link`` (see docs/link.md). Never imports torch."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .cli_util import fail, read_bytes


def register(app: typer.Typer) -> None:
    app.command(name="serve", help=serve.__doc__)(serve)
    app.command(name="fetch", help=fetch.__doc__)(fetch)


def serve(
    stream: Path = typer.Argument(..., help="Stream file to serve."),
    port: int = typer.Option(..., "--port", help="UDP port on 127.0.0.1 (0 = any free port)."),
    loss: float = typer.Option(0.0, help="Injected fragment loss probability (tests)."),
    reorder: bool = typer.Option(False, help="Send each burst in a random order (tests)."),
    corrupt: float = typer.Option(0.0, help="Injected bit-flip probability per fragment (tests)."),
    seed: int = typer.Option(0, help="Seed of the injected impairments."),
    fragment: int = typer.Option(1400, help="Payload bytes per fragment."),
    window: int = typer.Option(256, help="Block Ack window (fragments per burst)."),
    timeout: float = typer.Option(60.0, help="Give up after this many seconds."),
) -> None:
    """Serve one stream to one `nnshare fetch` over UDP on the loopback interface (127.0.0.1)."""
    from .link.udp import Impairments
    from .link.udp import serve as udp_serve

    if not 0 <= port <= 65535:
        fail(f"--port must be 0..65535, got {port}")
    imp = Impairments(loss=loss, reorder=reorder, corrupt=corrupt, seed=seed)
    data = read_bytes(stream)

    def ready(p: int) -> None:
        typer.echo(f"serving {stream} ({len(data):,} bytes) on 127.0.0.1:{p}")
        sys.stdout.flush()

    rep = udp_serve(data, port, fragment_bytes=fragment, window=window, impair=imp, timeout_s=timeout,
                    ready=ready)
    typer.echo(f"served {rep.fragments} fragments in {rep.bursts} bursts: {rep.sent} sent, "
               f"{rep.dropped} dropped and {rep.corrupted} corrupted by injection")


def fetch(
    address: str = typer.Argument(..., help="HOST:PORT of `nnshare serve` (loopback only)."),
    out: Path = typer.Option(..., "-o", "--out", help="Where to write the stream."),
    timeout: float = typer.Option(30.0, help="Give up after this many seconds."),
    resume: bool = typer.Option(False, help="Resume from OUT.part left by an interrupted fetch."),
) -> None:
    """Fetch a served stream over UDP; bit-exact or an error (the partial transfer is kept in
    OUT.part for --resume)."""
    from .format.wire import crc32
    from .link.blockack import DeliveryError
    from .link.fragment import load_state, save_state
    from .link.udp import fetch as udp_fetch
    from .share.model import atomic_write

    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) <= 65535:
        fail(f"fetch needs HOST:PORT, got {address!r}")
    part = out.with_name(out.name + ".part")
    receiver = load_state(read_bytes(part)) if resume and part.exists() else None
    if resume and receiver is None:
        fail(f"--resume: no partial transfer {part}")
    try:
        data, rep = udp_fetch(host, int(port), timeout_s=timeout, receiver=receiver)
    except DeliveryError as e:
        if e.receiver is not None and e.receiver.count is not None:
            atomic_write(part, save_state(e.receiver))
            fail(f"{e}; partial transfer kept in {part} (fetch again with --resume)")
        raise
    atomic_write(out, data)
    if part.exists():
        part.unlink()
    typer.echo(f"wrote {out}: {len(data):,} bytes, bit-exact (CRC-32 {crc32(data):08x}); {rep.summary()}")

