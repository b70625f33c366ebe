"""What the entropy model's sender side remembers between calls on the same codes: the model a
cost estimate chose, the models it fitted and what the candidate models derived from the codes.
A rate search estimates the same codes again (its
last step) and the writer then codes them; remembering never changes a result, only its time.

Keys start with a 16-byte BLAKE2b digest of the codes; only arrays of at most
:data:`MAX_CODES` codes are remembered (bigger ones choose on a sample and fit one model
anyway), and the fitted models held are bounded by the codes they cover.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np

MAX_CODES = 1 << 18
_MAX_CHOICES = 4096
_MAX_FITTED_CODES = 1 << 21

_MAX_SHARED_CODES = 1 << 20

_shared: OrderedDict = OrderedDict()  # (digest, dtype, n, qmin, qmax, row_len) -> (codes, derived)
_choices: OrderedDict = OrderedDict()  # (digest, n, qmin, qmax, models, row_len) -> model name
_fitted: OrderedDict = OrderedDict()  # (digest, n, qmin, qmax, flags, row_len, coder) -> fit or None


def digest(codes: np.ndarray) -> bytes | None:
    """The key of a code array, or None when it is too big to remember."""
    if codes.size > MAX_CODES:
        return None
    a = np.ascontiguousarray(codes, np.int64)  # the same key for int32 and int64 codes
    return hashlib.blake2b(a.data, digest_size=16).digest()


def choice(key: tuple) -> str | None:
    return _choices.get(key)


def remember_choice(key: tuple, name: str) -> None:
    _choices[key] = name
    _choices.move_to_end(key)
    while len(_choices) > _MAX_CHOICES:
        _choices.popitem(last=False)


def fitted(key: tuple) -> tuple[bool, object]:
    """(known, the fitted model or None if it did not suit the coder)."""
    if key not in _fitted:
        return False, None
    _fitted.move_to_end(key)
    return True, _fitted[key]


def keep_fitted(key: tuple, setup) -> None:
    _fitted[key] = setup
    held = sum(k[1] for k in _fitted)
    while len(_fitted) > 1 and held > _MAX_FITTED_CODES:
        held -= _fitted.popitem(last=False)[0][1]


def shared(key: tuple, codes: np.ndarray) -> tuple[np.ndarray, dict]:
    """(codes, derived) first seen under ``key`` (a digest, dtype, size, code range and row
    length), made now from a read-only copy of ``codes`` if new: ``derived`` holds what the
    model candidates of one array share (spans, trellis levels, medians, thresholds, row/column
    classes, the families' histograms), all pure functions of the codes. The caller goes on
    with the returned codes (entries keyed by array identity stay valid while it holds them)."""
    hit = _shared.get(key)
    if hit is not None:
        _shared.move_to_end(key)
        return hit
    kept = np.array(codes)  # a read-only copy: the caller's array may change later
    kept.flags.writeable = False
    entry = _shared[key] = (kept, {})
    total = sum(k[2] for k in _shared)
    while len(_shared) > 1 and total > _MAX_SHARED_CODES:
        total -= _shared.popitem(last=False)[0][2]
    return entry


def clear() -> None:
    """Forget everything remembered."""
    _choices.clear()
    _fitted.clear()
    _shared.clear()


def held() -> int:
    """Entries remembered (choices + fits + shared derivations)."""
    return len(_choices) + len(_fitted) + len(_shared)
