"""The stream errors, re-exported from :mod:`nnshare.errors` (which imports nothing, so the
receiver stays numpy-only)."""

from ..errors import FormatError, NNShareError, SpecError

__all__ = ["FormatError", "NNShareError", "SpecError"]
