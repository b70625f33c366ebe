"""802.11ax HE SU 20 MHz (RU242) tone plan and the compressed-beamforming feedback grids."""

from __future__ import annotations

import numpy as np

from ..format.errors import SpecError

SPACING_HZ = 78_125.0  # HE subcarrier spacing
PILOTS = (-116, -90, -48, -22, 22, 48, 90, 116)


def ru242_tones() -> np.ndarray:
    """The 242 used tone indices of HE 20 MHz: -122..-2 and 2..122."""
    return np.concatenate([np.arange(-122, -1), np.arange(2, 123)])


def data_tones() -> np.ndarray:
    """The 234 data tone indices (RU242 minus the 8 pilots)."""
    t = ru242_tones()
    return t[~np.isin(t, PILOTS)]


def feedback_tones(ng: int) -> np.ndarray:
    """Tone indices reported in an HE 20 MHz compressed beamforming report for grouping ``ng``.

    Ng = 4: -122, -120:4:-4, -2, 2, 4:4:120, 122 (Ns = 64).
    Ng = 16: -122, -116:16:-4, -2, 2, 4:16:116, 122 (Ns = 20).
    """
    if ng == 4:
        inner = np.arange(-120, -3, 4)
    elif ng == 16:
        inner = np.arange(-116, -3, 16)
    else:
        raise SpecError(f"HE 20 MHz subcarrier grouping Ng must be 4 or 16, got {ng}")
    neg = np.concatenate([[-122], inner, [-2]])
    return np.concatenate([neg, -neg[::-1]])


def tone_positions(tones: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Index of each of ``tones`` inside ``grid`` (both sorted tone indices); raises if missing."""
    pos = np.searchsorted(grid, tones)
    if np.any(pos >= grid.size) or np.any(grid[np.minimum(pos, grid.size - 1)] != tones):
        raise SpecError("tone not on the grid")
    return pos
