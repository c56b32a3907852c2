"""Colorization by optimisation (Levin, Lischinski and Weiss 2004).

Neighbouring pixels with similar luminance should have similar colours: each unmarked
pixel r's a (and b) is the weighted mean of its 3x3 neighbours',
``U_r = sum_s w_rs U_s`` with ``w_rs`` proportional to ``exp(-(Y_r - Y_s)^2 / sigma_rs^2)``
and normalised over the window; marked pixels keep their colour (hard constraints).

Weights follow the authors' code: ``sigma_r^2`` is 0.6 times the variance of r's 3x3
window, raised so that r's most similar neighbour keeps a weight of at least 0.01. Here a
pair uses the mean of its two pixels' ``sigma^2``, which makes the affinities symmetric;
multiplying row r by its weight sum then turns the normalised equations into a graph
Laplacian system that is symmetric positive definite once the marked pixels are moved to
the right-hand side, and conjugate gradients apply.

Solver: a coarse-to-fine cascade. The system is rebuilt on a pyramid of 2x area-averaged
levels (a coarse pixel is marked when any of its pixels is, with their mean colour), the
coarsest level (64 to 127 pixels on its short side) is solved directly, and each finer
level starts from the coarser solution upsampled by a guided filter on its L* and runs a
few Jacobi preconditioned conjugate gradient iterations, which fix the fine detail. This
is an approximation: against an exact solve of a 0.25 MP photo with 50 marks the a*b*
differ by about 0.5 Lab units on average (``benchmarks/levin.py --exact``). Speed is why:
on two cores an exact solve (algebraic multigrid) of one megapixel takes several seconds.
Photos above ``max_pixels`` (0.25 MP) are solved at a reduced size and the ab is brought
back to full size by a guided filter on L* (as the network pipeline does), so colour edges
still follow the full-resolution luminance edges; marked pixels get their exact colour
back. This multiresolution path is what meets 1 MP in about a second and 12 MP in a few.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from PIL import Image
from scipy.ndimage import uniform_filter
from scipy.sparse.linalg import spsolve

from chromatize.color import luminance
from chromatize.inference.hints import Marks, MarksError, check_hints, load_marks, pool_hints
from chromatize.inference.upsample import area_resize, fit_guided, render, upsample_ab
from chromatize.io import ImageLike, read_source

# Each unordered neighbour pair once: right, down-left, down, down-right.
_OFFSETS = ((0, 1), (1, -1), (1, 0), (1, 1))
MIN_SIGMA2 = 2e-6
MAX_PIXELS = 250_000
COARSEST_SIDE = 64
ITERATIONS = 10


def _pair_slices(dy: int, dx: int, h: int, w: int) -> tuple[tuple[slice, slice], ...]:
    """Slices (a, b) of an (h, w) array such that b's pixels are a's moved by (dy, dx)."""
    a = (slice(0, h - dy), slice(max(0, -dx), w - max(0, dx)))
    b = (slice(dy, h), slice(max(0, dx), w + min(0, dx)))
    return a, b


def affinity_system(l: np.ndarray, hint_ab: np.ndarray,
                    hint_mask: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """The Levin system ``A x = b`` for both channels.

    l: L* ``(H, W)`` in [0, 100]; hint_ab ``(H, W, 2)`` Lab units; hint_mask ``(H, W)`` bool.
    Returns ``A`` (H*W, H*W) CSR, symmetric positive definite (identity rows and columns
    at marked pixels) and ``b`` ``(H*W, 2)``; the solution is the ab in row-major order.
    """
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

    free = ~hint_mask
    known = np.where(hint_mask[..., None], hint_ab, 0).astype(np.float64)
    degree = np.zeros((h, w))
    rhs = np.zeros((h, w, 2))
    bands, offsets = [degree.ravel()], [0]
    for (dy, dx), (a, b), d2 in zip(_OFFSETS, pairs, diff2):
        wgt = np.exp(-2 * d2 / (sigma2[a] + sigma2[b]))
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
    degree[hint_mask] = 1
    rhs[hint_mask] = known[hint_mask]
    n = h * w
    a_mat = sp.dia_matrix((np.stack(bands), offsets), shape=(n, n)).tocsr()
    a_mat.eliminate_zeros()
    return a_mat, rhs.reshape(n, 2)


def _block_pcg(a_mat: sp.csr_matrix, b: np.ndarray, x: np.ndarray,
               iterations: int) -> np.ndarray:
    """``iterations`` steps of Jacobi-preconditioned conjugate gradients on ``A x = b`` for
    the columns of ``b`` ``(n, k)`` at once, from ``x`` ``(n, k)``; returns the new ``x``."""
    inv_diag = (1 / a_mat.diagonal())[:, None]
    r = b - a_mat @ x
    z = inv_diag * r
    p = z.copy()
    rz = (r * z).sum(0)
    for _ in range(iterations):
        ap = a_mat @ p
        alpha = rz / np.maximum((p * ap).sum(0), 1e-300)
        x += alpha * p
        r -= alpha * ap
        z = inv_diag * r
        rz_new = (r * z).sum(0)
        p = z + rz_new / np.maximum(rz, 1e-300) * p
        rz = rz_new
    return x


def _guided_upsample(l: np.ndarray, l_small: np.ndarray, ab_small: np.ndarray) -> np.ndarray:
    """ab ``(h, w, 2)`` solved on L* ``l_small`` -> ab ``(H, W, 2)`` guided by L* ``l``."""
    ab = torch.from_numpy(np.ascontiguousarray(ab_small, np.float32)).permute(2, 0, 1)
    return upsample_ab(l, fit_guided(l_small, ab))


def solve_levin(l: np.ndarray, hint_ab: np.ndarray, hint_mask: np.ndarray,
                iterations: int = ITERATIONS) -> np.ndarray:
    """Propagate the marks over the whole photo at its own resolution.

    l: L* ``(H, W)`` in [0, 100]; hint_ab ``(H, W, 2)`` Lab units; hint_mask ``(H, W)`` bool
    with at least one mark. ``iterations``: conjugate gradient steps on each pyramid level
    above the coarsest. Returns ab ``(H, W, 2)`` float32.
    """
    levels = [(l, hint_ab, hint_mask)]
    while min(levels[-1][0].shape) >= 2 * COARSEST_SIDE:
        h, w = levels[-1][0].shape
        shape = ((h + 1) // 2, (w + 1) // 2)
        levels.append((area_resize(levels[-1][0], shape), *pool_hints(*levels[-1][1:], shape)))
    ab: np.ndarray | None = None
    l_prev = l
    for l_k, ab_k, mask_k in reversed(levels):
        a_mat, rhs = affinity_system(l_k, ab_k, mask_k)
        if ab is None:
            x = spsolve(a_mat.tocsc(), rhs)
        else:
            x0 = _guided_upsample(l_k, l_prev, ab).astype(np.float64).reshape(-1, 2)
            x0[mask_k.ravel()] = rhs[mask_k.ravel()]
            x = _block_pcg(a_mat, rhs, x0, iterations)
        ab, l_prev = x.reshape(*l_k.shape, 2), l_k
    assert ab is not None
    return ab.astype(np.float32)


def levin_colorize(gray: ImageLike, hint_ab: np.ndarray, hint_mask: np.ndarray,
                   max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Colorize ``gray`` (path, PIL image or array; a colour photo's luminance is used)
    from hints ``(hint_ab (H, W, 2) Lab units, hint_mask (H, W) bool)`` at its size.

    Photos larger than ``max_pixels`` are solved at a reduced size and upsampled with a
    guided filter (see the module docstring). Returns an RGB (RGBA if the input had alpha)
    image of the photo's size whose L* is the photo's and whose marked pixels have the
    marks' a*b* (up to the sRGB gamut). Raises ``MarksError`` (a ``ValueError``) for hints
    of another size or without any mark.
    """
    src, alpha = read_source(gray)
    return _colorize(luminance(src), alpha, hint_ab, hint_mask, max_pixels)


def _colorize(l: np.ndarray, alpha: Image.Image | None, hint_ab: np.ndarray,
              hint_mask: np.ndarray, max_pixels: int) -> Image.Image:
    check_hints(hint_ab, hint_mask, l.shape)
    if not hint_mask.any():
        raise MarksError("no marks: give at least one marked pixel to propagate colour from")
    h, w = l.shape
    if h * w <= max_pixels:
        ab = solve_levin(l, hint_ab, hint_mask)
    else:
        scale = np.sqrt(max_pixels / (h * w))
        shape = (max(1, round(h * scale)), max(1, round(w * scale)))
        l_small = area_resize(l, shape)
        ab_small = solve_levin(l_small, *pool_hints(hint_ab, hint_mask, shape))
        ab = _guided_upsample(l, l_small, ab_small)
        ab[hint_mask] = hint_ab[hint_mask]
    return render(l, ab, alpha)


def levin_colorize_marks(gray: ImageLike, marks: Marks,
                         max_pixels: int = MAX_PIXELS) -> Image.Image:
    """:func:`levin_colorize` with marks read by :func:`chromatize.inference.hints.load_marks` (a
    scribble image or JSON path, a PIL scribble image or a list of points). Raises
    ``MarksError`` for unusable marks and ``PhotoError`` for an unreadable photo."""
    src, alpha = read_source(gray)
    hint_ab, hint_mask = load_marks(marks, src)
    return _colorize(luminance(src), alpha, hint_ab, hint_mask, max_pixels)
