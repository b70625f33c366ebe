"""What the entropy model's sender side remembers between calls on the same codes: the model a
cost estimate chose and the models it fitted. A rate search estimates the same codes again (its
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


def clear() -> None:
    """Forget everything remembered."""
    _choices.clear()
    _fitted.clear()


def held() -> int:
    """Entries remembered (choices + fits)."""
    return len(_choices) + len(_fitted)
