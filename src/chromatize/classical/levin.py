"""Colorization by optimisation (Levin, Lischinski and Weiss 2004), without a network.

Neighbouring pixels with similar luminance should have similar colours: each unmarked
pixel's a*b* is the weighted mean of its 3x3 neighbours', the weights falling with their
difference in luminance; marked pixels keep their colour (hard constraints). The system
and its fast coarse-to-fine solver live in :mod:`chromatize.imaging.propagate`, which
marks on a network's colours (:mod:`chromatize.inference.steer`) share.

Photos above ``max_pixels`` (0.25 MP) are solved at a reduced size and the ab is brought
back to full size by a guided filter on L* (as the network pipeline does), so colour edges
still follow the full-resolution luminance edges; marked pixels get their exact colour
back. This multiresolution path is what meets 1 MP in about a second and 12 MP in a few.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from chromatize.color import luminance
from chromatize.imaging.hints import Marks, MarksError, check_hints, load_marks, pool_hints
from chromatize.imaging.propagate import (COARSEST_SIDE, ITERATIONS, affinity_system,
                                            propagate)
from chromatize.imaging.upsample import area_resize, fit_guided, render, upsample_ab
from chromatize.io import ImageLike, read_source

MAX_PIXELS = 250_000
__all__ = ["MAX_PIXELS", "affinity_system", "levin_colorize", "levin_colorize_marks",
           "solve_levin"]


def _guided_upsample(l: np.ndarray, l_small: np.ndarray, ab_small: np.ndarray) -> np.ndarray:
    """ab ``(h, w, 2)`` solved on L* ``l_small`` -> ab ``(H, W, 2)`` guided by L* ``l``."""
    ab = np.ascontiguousarray(ab_small.transpose(2, 0, 1), np.float32)
    return upsample_ab(l, fit_guided(l_small, ab))


def solve_levin(l: np.ndarray, hint_ab: np.ndarray, hint_mask: np.ndarray,
                iterations: int = ITERATIONS) -> np.ndarray:
    """Propagate the marks over the whole photo at its own resolution.

    l: L* ``(H, W)`` in [0, 100]; hint_ab ``(H, W, 2)`` Lab units; hint_mask ``(H, W)`` bool
    with at least one mark. ``iterations``: conjugate gradient steps on each pyramid level
    above the coarsest. Returns ab ``(H, W, 2)`` float32.
    """
    return propagate(l, hint_ab, hint_mask, iterations=iterations, coarsest_side=COARSEST_SIDE)


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
    """:func:`levin_colorize` with marks read by :func:`chromatize.imaging.hints.load_marks` (a
    scribble image or JSON path, a PIL scribble image or a list of points). Raises
    ``MarksError`` for unusable marks and ``PhotoError`` for an unreadable photo."""
    src, alpha = read_source(gray)
    hint_ab, hint_mask = load_marks(marks, src)
    return _colorize(luminance(src), alpha, hint_ab, hint_mask, max_pixels)
