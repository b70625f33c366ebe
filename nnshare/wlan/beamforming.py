"""Sounding, SVD, 802.11 compressed beamforming (Givens angles), interpolation and SGCS.

Conventions: H is (..., Nr, Nt) (STA antennas x AP antennas); V is (..., Nt, Nss) with columns
ordered by singular value and, after :func:`phase_normalise`, a real non-negative last row (the
802.11 convention). Angles: phi in [0, 2 pi), psi in [0, pi / 2].
"""

from __future__ import annotations

import numpy as np

from ..format.errors import SpecError

SNR_BITS_PER_STREAM = 8  # average SNR of each space-time stream in the report (bits)


def noisy_estimate(h: np.ndarray, snr_db, noise: np.ndarray) -> np.ndarray:
    """LS channel estimate ``h + sqrt(N0) * noise`` with N0 = 10^(-snr_db/10) per entry.

    ``noise`` has h's shape and unit-variance CN(0, 1) entries; ``snr_db`` broadcasts against
    h's leading axes (e.g. shape (n_channels, 1, 1, 1)).
    """
    n0 = 10.0 ** (-np.asarray(snr_db, dtype=np.float64) / 10.0)
    return h + np.sqrt(n0) * noise


def smooth_tones(h: np.ndarray, width: int) -> np.ndarray:
    """Moving average of a channel estimate over ``width`` (odd) adjacent tones (axis -3 of
    (..., K, Nr, Nt)); the window shrinks symmetrically at the band edges. Frequency-domain
    smoothing: noise variance / width for a channel flat over the window."""
    if isinstance(width, bool) or not isinstance(width, int) or width < 1 or width % 2 == 0:
        raise SpecError(f"smoothing width must be an odd number of tones >= 1, got {width!r}")
    if width == 1:
        return np.array(h, copy=True)
    k = h.shape[-3]
    half = width // 2
    c = np.cumsum(np.concatenate([np.zeros_like(h[..., :1, :, :]), h], axis=-3), axis=-3)
    idx = np.arange(k)
    r = np.minimum(np.minimum(idx, k - 1 - idx), half)  # symmetric window radius per tone
    return (c[..., idx + r + 1, :, :] - c[..., idx - r, :, :]) / (2 * r + 1)[:, None, None]


def phase_normalise(v: np.ndarray) -> np.ndarray:
    """Multiply each column by a phase so that its last entry is real and >= 0."""
    last = v[..., -1:, :]
    ph = np.where(np.abs(last) > 0, last.conj() / np.maximum(np.abs(last), 1e-300), 1.0)
    return v * ph


def svd_v(h: np.ndarray, nss: int = 2) -> np.ndarray:
    """Right singular vectors V (..., Nt, nss) of H (..., Nr, Nt), phase-normalised."""
    _, _, vh = np.linalg.svd(h, full_matrices=False)
    return phase_normalise(vh[..., :nss, :].conj().swapaxes(-1, -2))


def n_angles(nr: int, nc: int) -> int:
    """Number of Givens angles (phi plus psi) for a V with ``nr`` rows and ``nc`` columns."""
    if not 1 <= nc <= nr:
        raise SpecError(f"need 1 <= columns <= rows, got {nr}x{nc}")
    return sum(2 * (nr - i) for i in range(1, min(nc, nr - 1) + 1))


def givens_decompose(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(phi (..., Nphi), psi (..., Npsi)) of phase-normalised V (..., M, N), in 802.11 order.

    Order: for i = 1..min(N, M-1): phi_{i,i} .. phi_{M-1,i}, then psi_{i+1,i} .. psi_{M,i}.
    """
    x = np.array(v, dtype=np.complex128, copy=True)
    m, n = x.shape[-2:]
    phis, psis = [], []
    for i in range(min(n, m - 1)):
        ph = np.angle(x[..., i : m - 1, i])  # (..., m-1-i)
        phis.append(np.mod(ph, 2 * np.pi))
        x[..., i : m - 1, :] *= np.exp(-1j * ph)[..., :, None]
        for l in range(i + 1, m):
            a = x[..., i, i].real
            b = x[..., l, i].real
            psi = np.arctan2(b, a)
            psis.append(psi[..., None])
            c, s = np.cos(psi)[..., None], np.sin(psi)[..., None]
            ri, rl = x[..., i, :].copy(), x[..., l, :].copy()
            x[..., i, :] = c * ri + s * rl
            x[..., l, :] = -s * ri + c * rl
    return np.concatenate(phis, -1), np.concatenate(psis, -1)


def givens_reconstruct(phi: np.ndarray, psi: np.ndarray, m: int, n: int) -> np.ndarray:
    """V (..., m, n) = prod_i [D_i prod_l G_{l,i}^T] I_{m x n} from the angles."""
    batch = phi.shape[:-1]
    x = np.zeros(batch + (m, n), np.complex128)
    for j in range(n):
        x[..., j, j] = 1.0
    # Apply the factors right to left: the last (i, l) rotation first.
    steps = []
    pi = qi = 0
    for i in range(min(n, m - 1)):
        k = m - 1 - i
        steps.append(("D", i, phi[..., pi : pi + k]))
        pi += k
        for l in range(i + 1, m):
            steps.append(("G", (i, l), psi[..., qi]))
            qi += 1
    # V = D_1 G_21^T G_31^T ... D_2 G_32^T ... I: apply from the rightmost factor to the left.
    for kind, idx, val in reversed(steps):
        if kind == "D":
            i = idx
            x[..., i : m - 1, :] *= np.exp(1j * val)[..., :, None]
        else:
            i, l = idx
            c, s = np.cos(val)[..., None], np.sin(val)[..., None]
            ri, rl = x[..., i, :].copy(), x[..., l, :].copy()
            # G^T rotates rows (i, l) by [[c, -s], [s, c]]
            x[..., i, :] = c * ri - s * rl
            x[..., l, :] = s * ri + c * rl
    return x


def quantize_angles(phi: np.ndarray, psi: np.ndarray, bphi: int, bpsi: int) -> tuple[np.ndarray, np.ndarray]:
    """Angles on the 802.11 codebooks:
    phi = k pi / 2^(bphi-1) + pi / 2^bphi, psi = k pi / 2^(bpsi+1) + pi / 2^(bpsi+2)."""
    sphi = np.pi / 2 ** (bphi - 1)
    spsi = np.pi / 2 ** (bpsi + 1)
    kphi = np.clip(np.floor(np.mod(phi, 2 * np.pi) / sphi), 0, 2**bphi - 1)
    kpsi = np.clip(np.floor(psi / spsi), 0, 2**bpsi - 1)
    return kphi * sphi + sphi / 2, kpsi * spsi + spsi / 2


def givens_report_bits(ns: int, nt: int = 4, nss: int = 2, bphi: int = 6, bpsi: int = 4) -> int:
    """Bits of an SU compressed beamforming report: Ns * (Na/2) * (bphi + bpsi) + 8 * Nss.

    (The MIMO control field that precedes the report is not counted.)
    """
    return ns * (n_angles(nt, nss) // 2) * (bphi + bpsi) + SNR_BITS_PER_STREAM * nss


def givens_feedback(v: np.ndarray, bphi: int, bpsi: int) -> np.ndarray:
    """V after Givens decomposition, angle quantization and reconstruction (same shape)."""
    m, n = v.shape[-2:]
    phi, psi = givens_decompose(v)
    qphi, qpsi = quantize_angles(phi, psi, bphi, bpsi)
    return givens_reconstruct(qphi, qpsi, m, n)


def orthonormalise(a: np.ndarray) -> np.ndarray:
    """Orthonormal columns by modified Gram-Schmidt, column 0 first (a: (..., M, N))."""
    out = np.array(a, dtype=np.complex128, copy=True)
    for j in range(out.shape[-1]):
        col = out[..., :, j]
        for i in range(j):
            q = out[..., :, i]
            col = col - np.sum(q.conj() * col, axis=-1, keepdims=True) * q
        out[..., :, j] = col / np.maximum(np.linalg.norm(col, axis=-1, keepdims=True), 1e-300)
    return out


def interpolate(v_grid: np.ndarray, grid: np.ndarray, tones: np.ndarray) -> np.ndarray:
    """V on ``tones`` from V on the sorted feedback ``grid`` (axis -3 of v_grid).

    Each target tone between two grid tones gets the linear interpolation of the two V, the
    right one phase-aligned column by column to the left one, then re-orthonormalised
    (Gram-Schmidt); the same rule serves every feedback scheme. Tones outside the grid take
    the nearest grid V; tones on the grid keep their V.
    """
    pos = np.clip(np.searchsorted(grid, tones, side="right") - 1, 0, grid.size - 2)
    left, right = grid[pos], grid[pos + 1]
    t = np.clip((tones - left) / (right - left), 0.0, 1.0)[:, None, None]
    va = v_grid[..., pos, :, :]
    vb = v_grid[..., pos + 1, :, :]
    inner = np.sum(va.conj() * vb, axis=-2, keepdims=True)
    align = inner.conj() / np.maximum(np.abs(inner), 1e-300)
    out = orthonormalise((1 - t) * va + (t * align) * vb)
    on_left = t[:, 0, 0] == 0
    on_right = t[:, 0, 0] == 1
    out[..., on_left, :, :] = va[..., on_left, :, :]
    out[..., on_right, :, :] = vb[..., on_right, :, :]
    return out


def sgcs(v: np.ndarray, v_hat: np.ndarray) -> np.ndarray:
    """Squared generalised cosine similarity per stream, |v^H v_hat|^2 / (|v|^2 |v_hat|^2),
    averaged over streams: shape (...) for inputs (..., Nt, Nss). 1 means equal up to phase."""
    num = np.abs(np.sum(v.conj() * v_hat, axis=-2)) ** 2
    den = np.sum(np.abs(v) ** 2, axis=-2) * np.sum(np.abs(v_hat) ** 2, axis=-2)
    return np.mean(num / np.maximum(den, 1e-300), axis=-1)
