"""Helpers the command modules share: refusing flags, reading files, one torch thread."""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import UsageError

LINK_HELP = ("802.11 link as key=value pairs: mcs=0-11 (13 for be), bw=20|40|80|160 (320 for be), "
             "nss=1-8, gi=0.8|1.6|3.2, std=ax|be, frag=payload bytes per fragment (defaults "
             "mcs=0,bw=20,nss=1,gi=0.8,std=ax,frag=1500).")


def torch_threads() -> None:
    """One torch thread (call after torch was imported by a command that needs it)."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def fail(msg: str) -> None:
    """Refuse: one error line, exit status 2."""
    raise UsageError(msg)


def refuse_extra(given: dict[str, object], allowed: set[str], what: str) -> None:
    """Refuse flags that ``what`` would ignore. ``given``: flag -> value (None = not given)."""
    extra = [f for f, v in given.items() if v is not None and f not in allowed]
    if extra:
        fail(f"{', '.join(extra)} {'has' if len(extra) == 1 else 'have'} no effect with {what}")


#: Largest stream or state file the CLI reads (1 GiB; the decoder's output cap is 1 GiB too).
MAX_STREAM_FILE_BYTES = 1 << 30


def read_bytes(path: Path, limit: int = MAX_STREAM_FILE_BYTES) -> bytes:
    """The bytes of a stream (or state) file: a regular file of at most ``limit`` bytes (a
    device, FIFO or socket is refused without being opened for reading, so nothing blocks)."""
    import os
    import stat

    from .errors import ModelFileError

    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise ModelFileError(f"{path} is a directory, not a stream file")
        if not stat.S_ISREG(st.st_mode):
            raise ModelFileError(f"{path} is not a regular file (a device, FIFO or socket)")
        if st.st_size > limit:
            raise ModelFileError(f"{path} has {st.st_size:,} bytes, more than the {limit:,} a "
                                 "stream file may have")
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise ModelFileError(f"file not found: {path}") from None
    except OSError as e:
        if isinstance(e, ModelFileError):
            raise
        raise ModelFileError(f"cannot read {path}: {e.strerror}") from None
    if len(data) > limit:
        raise ModelFileError(f"{path} grew past the {limit:,} bytes a stream file may have")
    return data


def check_choice(flag: str, value: str | None, options: tuple[str, ...]) -> None:
    """Refuse a value outside ``options``, naming the flag."""
    if value is not None and value not in options:
        fail(f"{flag} must be one of {', '.join(options)}, got {value!r}")


def model_file(path: Path) -> Path:
    """``path`` itself; a readable message when it does not exist."""
    from .errors import ModelFileError

    if not path.exists():
        raise ModelFileError(f"model file not found: {path}")
    return path
