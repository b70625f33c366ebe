"""802.11ax HE SU tone plans (full-band RU at 20/40/80/160 MHz) and the compressed-beamforming
feedback grids of every bandwidth and grouping Ng.

Used tones (802.11ax-2021 27.3.2): RU242 -122:-2, 2:122 (20 MHz); RU484 -244:-3, 3:244 (40);
RU996 -500:-3, 3:500 (80); 2x996 = the 80 MHz plan shifted by -512 and +512 (160). Pilots: 8 / 16
/ 16 / 32 (the 80 MHz ones shifted by +-512 at 160 MHz). Feedback subcarriers (the HE SU report's
scidx(), 802.11ax-2021 Table 9-91a/b), Ns at Ng = 4 / 16: 64 / 20, 122 / 32, 250 / 64, 500 / 128.
"""

from __future__ import annotations

import numpy as np

from ..format.errors import SpecError

SPACING_HZ = 78_125.0  # HE subcarrier spacing
PILOTS = (-116, -90, -48, -22, 22, 48, 90, 116)
_PILOTS_40 = (10, 36, 78, 104, 144, 170, 212, 238)
_PILOTS_80 = (24, 92, 158, 226, 266, 334, 400, 468)
BANDWIDTHS = (20, 40, 80, 160)
GROUPINGS = (4, 16)
RU = {20: "RU242", 40: "RU484", 80: "RU996", 160: "2xRU996"}


def _check_bw(bw: int) -> None:
    if bw not in BANDWIDTHS:
        raise SpecError(f"HE bandwidth must be one of {BANDWIDTHS} MHz, got {bw!r}")


def _sym(pos: np.ndarray) -> np.ndarray:
    """Sorted -pos[::-1] then pos."""
    return np.concatenate([-pos[::-1], pos])


def used_tones(bw: int = 20) -> np.ndarray:
    """Used (data + pilot) tone indices of the full-band RU at ``bw`` MHz."""
    _check_bw(bw)
    if bw == 160:
        t80 = used_tones(80)
        return np.concatenate([t80 - 512, t80 + 512])
    lo, hi = {20: (2, 122), 40: (3, 244), 80: (3, 500)}[bw]
    return _sym(np.arange(lo, hi + 1))


def pilot_tones(bw: int = 20) -> np.ndarray:
    """Pilot tone indices of the full-band RU at ``bw`` MHz."""
    _check_bw(bw)
    if bw == 160:
        p80 = pilot_tones(80)
        return np.concatenate([p80 - 512, p80 + 512])
    if bw == 20:
        return np.asarray(PILOTS)
    return _sym(np.asarray(_PILOTS_40 if bw == 40 else _PILOTS_80))


def ru242_tones() -> np.ndarray:
    """The 242 used tone indices of HE 20 MHz: -122..-2 and 2..122."""
    return used_tones(20)


def data_tones(bw: int = 20) -> np.ndarray:
    """Data tone indices (used tones minus pilots): 234 / 468 / 980 / 1960."""
    t = used_tones(bw)
    return t[~np.isin(t, pilot_tones(bw))]


def feedback_tones(ng: int, bw: int = 20) -> np.ndarray:
    """Tone indices reported in an HE compressed beamforming report at grouping ``ng``.

    20 MHz, Ng = 4: -122, -120:4:-4, -2, 2, 4:4:120, 122 (Ns = 64); Ng = 16: -122, -116:16:-4,
    -2, 2, 4:16:116, 122 (Ns = 20). 40 MHz: -244:4:-4, 4:4:244 (122); -244, -228:16:-4,
    4:16:228, 244 (32). 80 MHz: -500:4:-4, 4:4:500 (250); -500, -484:16:-4, 4:16:484, 500 (64).
    160 MHz: the 80 MHz set shifted by -512 and +512 (500; 128).
    """
    if ng not in GROUPINGS:
        raise SpecError(f"HE subcarrier grouping Ng must be 4 or 16, got {ng!r}")
    _check_bw(bw)
    if bw == 160:
        f80 = feedback_tones(ng, 80)
        return np.concatenate([f80 - 512, f80 + 512])
    if bw == 20:
        inner = np.arange(-120, -3, 4) if ng == 4 else np.arange(-116, -3, 16)
        neg = np.concatenate([[-122], inner, [-2]])
        return np.concatenate([neg, -neg[::-1]])
    edge = 244 if bw == 40 else 500
    if ng == 4:
        return _sym(np.arange(4, edge + 1, 4))
    return _sym(np.concatenate([np.arange(4, edge - 15, 16), [edge]]))


def tone_positions(tones: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Index of each of ``tones`` inside ``grid`` (both sorted tone indices); raises if missing."""
    pos = np.searchsorted(grid, tones)
    if np.any(pos >= grid.size) or np.any(grid[np.minimum(pos, grid.size - 1)] != tones):
        raise SpecError("tone not on the grid")
    return pos
