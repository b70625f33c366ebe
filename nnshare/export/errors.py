"""The error an export raises when a stream's layout has no equivalent in the target format."""

from __future__ import annotations

from ..errors import SpecError


class ExportError(SpecError):
    """A tensor's quantization (scheme, bits, granularity, axis) cannot be written in the target
    format, or an optional dependency of the target is missing. The message names the tensor, the
    layout and the target."""


def need(module: str, extra: str):
    """Import an optional dependency or raise :class:`ExportError` naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(
            f"{module} is not installed: pip install 'nnshare[{extra}]'"
        ) from None
