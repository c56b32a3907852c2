"""Colour hints for guided colorization, and the hint-sweep protocol of Zhang et al. (2017).

A set of hints is ``(hint_ab, hint_mask)``: ``hint_ab`` float32 ``(H, W, 2)`` in Lab units
(zero where there is no hint) and ``hint_mask`` bool ``(H, W)``, True where a hint is
given. User marks (scribbles, points) and simulated patches both become this pair.

The sweep gives each photo N random 6 x 6 patches of its true colour (N in 0, 1, 2, 5, 10,
20, 50, 100) and reports the mean PSNR of the guided method's output for each N.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

import chromatize.color as color
from chromatize.evaluation import metrics
from chromatize.evaluation.evaluate import gray_input, load_truth

#: A guided method: (L* ``(H, W)`` float in [0, 100], hint_ab, hint_mask)
#: -> sRGB ``(H, W, 3)`` uint8.
HintMethod = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

SWEEP_NS = (0, 1, 2, 5, 10, 20, 50, 100)


def sample_hints(true_lab: np.ndarray, n: int, rng: np.random.Generator,
                 patch: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """``n`` hints, each a ``patch`` x ``patch`` square at a uniform random position filled
    with the mean true ab of that square (patches may overlap; later ones win).

    ``true_lab``: ``(H, W, 3)``. Returns ``(hint_ab, hint_mask)`` as described above.
    Positions are drawn one after another, so for one seed the hints of a smaller ``n`` are
    the first hints of a larger one.
    """
    h, w = true_lab.shape[:2]
    p = min(patch, h, w)
    hint_ab = np.zeros((h, w, 2), np.float32)
    hint_mask = np.zeros((h, w), bool)
    for _ in range(n):
        y, x = rng.integers(0, h - p + 1), rng.integers(0, w - p + 1)
        hint_ab[y:y + p, x:x + p] = true_lab[y:y + p, x:x + p, 1:].mean((0, 1))
        hint_mask[y:y + p, x:x + p] = True
    return hint_ab, hint_mask


def paint_hints(l: np.ndarray, hint_ab: np.ndarray, hint_mask: np.ndarray) -> np.ndarray:
    """The floor of guided methods: hint colours where given, gray elsewhere (no spreading)."""
    lab = np.zeros((*l.shape, 3))
    lab[..., 0] = l
    lab[hint_mask, 1:] = hint_ab[hint_mask]
    return (color.lab_to_rgb_np(lab, gamut="preserve_l") * 255 + 0.5).astype(np.uint8)


def _square(photo: np.ndarray | str | os.PathLike[str], size: int) -> np.ndarray:
    if isinstance(photo, np.ndarray):
        return np.asarray(Image.fromarray(photo).resize((size, size), Image.Resampling.BICUBIC))
    return load_truth(photo, size)


def hint_sweep(method: HintMethod, photos: Sequence[np.ndarray | str | os.PathLike[str]],
               ns: Sequence[int] = SWEEP_NS, seed: int = 0, size: int = 256,
               ) -> dict[int, float]:
    """Mean PSNR (dB) of ``method`` over ``photos`` for each number of hints in ``ns``.

    Photos (sRGB uint8 arrays or paths) are resized to ``size`` x ``size``; the method gets
    the L* of the gray input (as :func:`chromatize.evaluation.evaluate.gray_input` makes it) and the
    hints of :func:`sample_hints`, drawn with a generator seeded by (``seed``, photo index).
    """
    totals = dict.fromkeys(ns, 0.0)
    for i, photo in enumerate(photos):
        truth = _square(photo, size)
        true_lab = metrics.to_lab(truth)
        _, l = gray_input(true_lab[..., 0])
        for n in ns:
            hint_ab, hint_mask = sample_hints(true_lab, n, np.random.default_rng([seed, i]))
            totals[n] += metrics.psnr(method(l, hint_ab, hint_mask), truth)
    return {n: total / max(len(photos), 1) for n, total in totals.items()}
