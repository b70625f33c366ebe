"""Writing output files safely: atomically, all-or-nothing across several files, and never
leaving a temporary file behind (on an error, or on SIGTERM: the CLI turns it into an exception
so the cleanup below runs).

A file is first written to ``.NAME.tmpPID`` in its own folder (fsync'd), then renamed over the
target. :func:`atomic_write_many` writes every temporary file first and renames only when all
were written, so an unwritable second output (``--state-out``) fails before the first one
exists."""

from __future__ import annotations

import os

from .errors import OutputError


class Staged:
    """One output written to its temporary file; :meth:`commit` renames it into place,
    :meth:`discard` removes it (both idempotent)."""

    def __init__(self, path: str | os.PathLike, data: bytes) -> None:
        self.path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(self.path))
        self.tmp = os.path.join(folder, f".{os.path.basename(self.path)}.tmp{os.getpid()}")
        if os.path.isdir(self.path):
            raise OutputError(f"cannot write {self.path}: it is a directory")
        try:
            with open(self.tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            self.discard()
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from None
        except BaseException:
            self.discard()
            raise

    def commit(self) -> None:
        try:
            os.replace(self.tmp, self.path)
        except OSError as e:
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from None
        finally:
            self.discard()

    def discard(self) -> None:
        try:
            os.unlink(self.tmp)
        except OSError:
            pass


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes to ``path`` via a temporary file in the same folder and a rename."""
    atomic_write_many([(path, data)])


def atomic_write_many(files) -> None:
    """Write every (path, bytes) pair, or none: all temporary files first, then the renames."""
    staged: list[Staged] = []
    try:
        for path, data in files:
            staged.append(Staged(path, data))
        for s in staged:
            s.commit()
    finally:
        for s in staged:
            s.discard()
