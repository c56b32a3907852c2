"""Edge-aware propagation of colour marks: the sparse system of Levin, Lischinski and Weiss
(2004), with an optional data term, and its fast approximate solver.

Neighbouring pixels with similar luminance should have similar values: the energy

    E(u) = sum_{r~s} w_rs (u_r - u_s)^2 + sum_r screen_r u_r^2,   u = target at marks,

over the 8-neighbour pairs r~s, with ``w_rs = exp(-(Y_r - Y_s)^2 / sigma_rs^2)``. Without
``screen`` this is Levin's colorization (``u`` is a*b*; each free pixel ends up the weighted
mean of its neighbours). With ``screen`` (a "screened" Laplacian) ``u`` decays towards 0
away from the marks, faster where ``screen`` is large: :class:`chromatize.Colorizer`
propagates the *correction* a mark makes to the network's colours this way, so the
network's colours stay where it is confident and far from marks.

Weights follow Levin et al.'s code: ``sigma_r^2`` is 0.6 times the variance of r's 3x3
window, raised so that r's most similar neighbour keeps a weight of at least 0.01. A pair
uses the mean of its two pixels' ``sigma^2``, which makes the affinities symmetric: the
system is a graph Laplacian (plus a diagonal), symmetric positive definite once the marked
pixels are moved to the right-hand side, and conjugate gradients apply.

Solver: a coarse-to-fine cascade. The system is rebuilt on a pyramid of 2x area-averaged
levels (a coarse pixel is marked when any of its pixels is, with their mean target; the
screen is scaled by 4 per level, as the area a coarse pixel stands for), the coarsest level
(64 to 127 pixels on its short side) is solved directly, and each finer level starts from
the coarser solution upsampled bilinearly and runs a few Jacobi-preconditioned conjugate
gradient iterations, which fix the fine detail. This is an approximation (about 0.5 a*b*
units from an exact solve on 0.25 MP, ``benchmarks/levin.py --exact``) that takes a
fraction of the time of an exact one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.ndimage import uniform_filter
from scipy.sparse.linalg import spsolve

from chromatize.imaging.hints import pool_hints
from chromatize.imaging.upsample import area_resize, bilinear_resize

# Each unordered neighbour pair once: right, down-left, down, down-right.
_OFFSETS = ((0, 1), (1, -1), (1, 0), (1, 1))
MIN_SIGMA2 = 2e-6
COARSEST_SIDE = 64
ITERATIONS = 10


def _pair_slices(dy: int, dx: int, h: int, w: int) -> tuple[tuple[slice, slice], ...]:
    """Slices (a, b) of an (h, w) array such that b's pixels are a's moved by (dy, dx)."""
    a = (slice(0, h - dy), slice(max(0, -dx), w - max(0, dx)))
    b = (slice(dy, h), slice(max(0, dx), w + min(0, dx)))
    return a, b


def neighbour_weights(l: np.ndarray) -> list[np.ndarray]:
    """The affinity of each neighbour pair of L* ``(H, W)`` in [0, 100], one array per
    offset of ``_OFFSETS`` (shaped like that offset's overlap): what
    :func:`affinity_system` needs from the photo alone, so it can be kept between solves
    with other marks."""
    h, w = l.shape
    y = l.astype(np.float64) / 100
    mean = uniform_filter(y, 3, mode="nearest")
    var = np.maximum(uniform_filter(y * y, 3, mode="nearest") - mean * mean, 0)
    pairs = [_pair_slices(dy, dx, h, w) for dy, dx in _OFFSETS]
    diff2 = [(y[a] - y[b]) ** 2 for a, b in pairs]
    nearest = np.full((h, w), np.inf)  # squared difference to the most similar neighbour
    for (a, b), d2 in zip(pairs, diff2):
        np.minimum(nearest[a], d2, out=nearest[a])
        np.minimum(nearest[b], d2, out=nearest[b])
    sigma2 = np.maximum(np.maximum(0.6 * var, nearest / np.log(100)), MIN_SIGMA2)
    return [np.exp(-2 * d2 / (sigma2[a] + sigma2[b])) for (a, b), d2 in zip(pairs, diff2)]


def affinity_system(l: np.ndarray, target: np.ndarray, mask: np.ndarray,
                    screen: np.ndarray | None = None,
                    weights: list[np.ndarray] | None = None) -> tuple[sp.csr_matrix, np.ndarray]:
    """The system ``A x = b`` minimising the energy of the module docstring.

    l: L* ``(H, W)`` in [0, 100]; target ``(H, W, C)`` (used at marked pixels); mask
    ``(H, W)`` bool, the marked pixels; screen ``(H, W)`` >= 0 or None; weights: ``l``'s
    :func:`neighbour_weights` if already known. Returns ``A`` (H*W, H*W) CSR, symmetric
    positive definite (identity rows and columns at marked pixels), and ``b`` ``(H*W, C)``;
    the solution is ``u`` in row-major order.
    """
    h, w = l.shape
    if weights is None:
        weights = neighbour_weights(l)
    pairs = [_pair_slices(dy, dx, h, w) for dy, dx in _OFFSETS]
    free = ~mask
    known = np.where(mask[..., None], target, 0).astype(np.float64)
    degree = np.zeros((h, w)) if screen is None else screen.astype(np.float64).copy()
    rhs = np.zeros((h, w, target.shape[-1]))
    bands, offsets = [degree.ravel()], [0]
    for (dy, dx), (a, b), wgt in zip(_OFFSETS, pairs, weights):
        degree[a] += wgt
        degree[b] += wgt
        rhs[a] += wgt[..., None] * known[b]  # known is zero at free pixels
        rhs[b] += wgt[..., None] * known[a]
        band = np.zeros((h, w))
        band[a] = -wgt * (free[a] & free[b])
        k = dy * w + dx
        # DIA storage: column j of the band at offset d holds A[j - d, j].
        upper = np.zeros(h * w)
        upper[k:] = band.ravel()[: h * w - k]
        bands += [upper, band.ravel()]
        offsets += [k, -k]
    degree[mask] = 1
    rhs[mask] = known[mask]
    n = h * w
    a_mat = sp.dia_matrix((np.stack(bands), offsets), shape=(n, n)).tocsr()
    a_mat.eliminate_zeros()
    return a_mat, rhs.reshape(n, -1)


def _pcg(a_mat: sp.csr_matrix, b: np.ndarray, x: np.ndarray, iterations: int) -> np.ndarray:
    """``iterations`` steps of Jacobi-preconditioned conjugate gradients on ``A x = b``
    from ``x``, for each column of ``b`` ``(n, k)``; returns the new ``x`` ``(n, k)``.
    Columns are solved one after another as contiguous vectors: strided ``(n, k)``
    reductions were most of the time."""
    inv_diag = 1 / a_mat.diagonal()
    out = np.empty_like(x)
    for c in range(b.shape[1]):
        xc = np.ascontiguousarray(x[:, c])
        r = b[:, c] - a_mat @ xc
        z = inv_diag * r
        p = z.copy()
        rz = r @ z
        for _ in range(iterations):
            ap = a_mat @ p
            alpha = rz / max(p @ ap, 1e-300)
            xc += alpha * p
            r -= alpha * ap
            z = inv_diag * r
            rz_new = r @ z
            p = z + rz_new / max(rz, 1e-300) * p
            rz = rz_new
        out[:, c] = xc
    return out


def propagate(l: np.ndarray, target: np.ndarray, mask: np.ndarray,
              screen: np.ndarray | None = None, iterations: int = ITERATIONS,
              coarsest_side: int = COARSEST_SIDE,
              cache: dict[Any, Any] | None = None) -> np.ndarray:
    """Spread ``target`` from the marked pixels over the photo (see the module docstring).

    l: L* ``(H, W)`` in [0, 100]; target ``(H, W, C)`` (only its marked pixels count);
    mask ``(H, W)`` bool with at least one mark; screen ``(H, W)`` >= 0 or None (pure
    Levin). ``iterations``: conjugate gradient steps on each pyramid level above the
    coarsest, whose short side is ``coarsest_side`` to twice that. ``cache``: a dict kept
    between solves on the same ``l`` and ``screen`` (other marks): the pyramid of L* and
    screen and the neighbour weights of each level are computed once. Returns
    ``(H, W, C)`` float32, equal to ``target`` at marked pixels.
    """
    cache = {} if cache is None else cache
    if ("pyramid", coarsest_side) not in cache:
        pyramid = [(l, screen)]
        while min(pyramid[-1][0].shape) >= 2 * coarsest_side:
            l_k, s_k = pyramid[-1]
            shape = ((l_k.shape[0] + 1) // 2, (l_k.shape[1] + 1) // 2)
            pyramid.append((area_resize(l_k, shape),
                            None if s_k is None else 4 * area_resize(s_k, shape)))
        cache[("pyramid", coarsest_side)] = [(l_k, s_k, neighbour_weights(l_k))
                                             for l_k, s_k in pyramid]
    pyramid = cache[("pyramid", coarsest_side)]
    marks = [(target, mask)]
    for l_k, _, _ in pyramid[1:]:
        marks.append(pool_hints(*marks[-1], l_k.shape))
    u: np.ndarray | None = None
    for (l_k, s_k, w_k), (t_k, m_k) in zip(reversed(pyramid), reversed(marks)):
        a_mat, rhs = affinity_system(l_k, t_k, m_k, s_k, weights=w_k)
        if u is None:
            x = spsolve(a_mat.tocsc(), rhs)
        else:
            x0 = bilinear_resize(u, l_k.shape).astype(np.float64).reshape(rhs.shape)
            marked = m_k.ravel()
            x0[marked] = rhs[marked]
            x = _pcg(a_mat, rhs, x0, iterations)
        u = x.reshape(*l_k.shape, -1)
    assert u is not None
    return u.astype(np.float32)
