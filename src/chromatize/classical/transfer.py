"""Colour transfer from a reference photo: Reinhard et al. 2001 and Welsh et al. 2002.

Both work in CIE Lab (Reinhard et al. used l-alpha-beta, a close relative). Apart from
Reinhard on a colour target, the output keeps the target's own L*; only a*b* come from the
reference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image
from scipy.ndimage import uniform_filter
from scipy.spatial import cKDTree

from chromatize.color import is_color, source_lab
from chromatize.errors import UsageError
from chromatize.imaging.upsample import render
from chromatize.io import ImageLike, read_source

Rect = tuple[int, int, int, int]  # x0, y0, x1, y1 (x1, y1 excluded), in pixels
COLOR_CHROMA = 2.0  # mean chroma from which a target counts as a colour photo
_EPS = 1e-6


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over all pixels of ``(..., C)``: two ``(C,)`` arrays."""
    flat = x.reshape(-1, x.shape[-1]).astype(np.float64)
    return flat.mean(0), flat.std(0)


def reinhard_transfer(target: ImageLike, reference: ImageLike) -> Image.Image:
    """Give ``target`` the colour statistics of ``reference`` (paths, PIL images or arrays).

    * Colour target (mean chroma above 2): classic Reinhard, each Lab channel is shifted
      and scaled to the reference's mean and deviation, L* included.
    * Gray target: L* is kept. A gray photo has no colour deviation to scale, so the
      deviation comes from its luminance: with z the target's standardised L*, each
      channel c of a*, b* becomes ``mean_c + s_c * std_c * z``, where ``s_c`` is the sign of
      the correlation of L* and c in the reference (e.g. bright parts yellower when the
      reference's bright parts are). The output's a*, b* then have exactly the reference's
      means and deviations (a flat target gets the mean colour only).

    Returns an RGB (RGBA if the target had alpha) image of the target's size.
    """
    src, alpha = read_source(target)
    lab_t = source_lab(src)
    lab_r = source_lab(read_source(reference)[0])
    mean_r, std_r = _stats(lab_r)
    mean_t, std_t = _stats(lab_t)
    if is_color(src, min_chroma=COLOR_CHROMA):
        out = (lab_t - mean_t) / np.maximum(std_t, _EPS) * std_r + mean_r
        return render(np.clip(out[..., 0], 0, 100).astype(np.float32),
                      out[..., 1:].astype(np.float32), alpha)
    l_t = lab_t[..., 0]
    z = (l_t - mean_t[0]) / max(std_t[0], _EPS)
    flat_r = lab_r.reshape(-1, 3).astype(np.float64)
    cov = ((flat_r - mean_r) * (flat_r[:, :1] - mean_r[0])).mean(0)
    sign = np.where(cov[1:] < 0, -1.0, 1.0)
    ab = mean_r[1:] + sign * std_r[1:] * z[..., None]
    return render(l_t, ab.astype(np.float32), alpha)


def _features(l: np.ndarray, window: int) -> np.ndarray:
    """Welsh's matching features ``(H, W, 2)``: L* and its deviation over a window."""
    l = l.astype(np.float64)
    mean = uniform_filter(l, window, mode="reflect")
    var = uniform_filter(l * l, window, mode="reflect") - mean * mean
    return np.stack([l, np.sqrt(np.maximum(var, 0))], -1)


def _remap(l_src: np.ndarray, l_to: np.ndarray) -> np.ndarray:
    """Shift and scale ``l_src`` to the mean and deviation of ``l_to`` (luminance remapping)."""
    return (l_src - l_src.mean()) / max(float(l_src.std()), _EPS) * l_to.std() + l_to.mean()


def _jittered(feat: np.ndarray, ab: np.ndarray, n: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """About ``n`` samples on a jittered grid: one random pixel in each grid cell.
    feat ``(h, w, 2)``, ab ``(h, w, 2)`` -> ``(features (m, 2), ab (m, 2))``."""
    h, w = feat.shape[:2]
    rows = int(np.clip(round(np.sqrt(n * h / w)), 1, h))
    cols = int(np.clip(round(n / rows), 1, w))
    y_edges = np.linspace(0, h, rows + 1)
    x_edges = np.linspace(0, w, cols + 1)
    ys = (y_edges[:-1, None] + rng.random((rows, cols)) * np.diff(y_edges)[:, None]).astype(int)
    xs = (x_edges[None, :-1] + rng.random((rows, cols)) * np.diff(x_edges)[None, :]).astype(int)
    ys, xs = np.minimum(ys, h - 1).ravel(), np.minimum(xs, w - 1).ravel()
    return feat[ys, xs], ab[ys, xs]


def _nearest_ab(query: np.ndarray, feat: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """ab of the nearest sample in feature space (L* and deviation weighted equally)."""
    _, idx = cKDTree(feat).query(query.reshape(-1, 2), workers=-1)
    return ab[idx].reshape(query.shape[:-1] + (2,))


def parse_rect_pair(text: str) -> tuple[Rect, Rect]:
    """``"x0,y0,x1,y1:x0,y0,x1,y1"`` (target:reference) -> two rectangles. Raises
    :class:`~chromatize.errors.UsageError`."""
    try:
        target, reference = (tuple(int(v) for v in part.split(",")) for part in text.split(":"))
    except ValueError:
        target = reference = ()
    if len(target) != 4 or len(reference) != 4:
        raise UsageError(f"--rect {text!r}: expected x0,y0,x1,y1:x0,y0,x1,y1 (target:reference)")
    return target, reference  # type: ignore[return-value]


def _check_rect(rect: Rect, shape: tuple[int, ...], what: str) -> tuple[slice, slice]:
    x0, y0, x1, y1 = rect
    h, w = shape[:2]
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise UsageError(f"{what} rectangle {tuple(rect)} is empty or outside the {w}x{h} "
                         "image (x0, y0, x1, y1 with x0 < x1 <= width, y0 < y1 <= height)")
    return slice(y0, y1), slice(x0, x1)


def welsh_transfer(target: ImageLike, reference: ImageLike, samples: int = 200,
                   window: int = 5, rects: Sequence[tuple[Rect, Rect]] | None = None,
                   seed: int = 0) -> Image.Image:
    """Colour ``target`` by matching its pixels against samples of ``reference`` (Welsh et al.).

    The reference's L* is remapped to the target's mean and deviation; about ``samples``
    reference pixels are taken on a jittered grid, each described by its L* and the
    deviation of L* over a ``window`` x ``window`` neighbourhood. Every target pixel takes
    the a*b* of the sample nearest in (L*, deviation), both weighted 1/2.

    ``rects``: pairs ``((x0, y0, x1, y1) in the target, (x0, y0, x1, y1) in the reference)``.
    Each target rectangle is first coloured from its reference rectangle alone (remapped to
    that target rectangle's L* statistics); then the rest of the target is matched, with
    the same features, against samples of the coloured target rectangles (the paper's
    second phase, with its neighbourhood L2 distance replaced by these features).

    Returns an RGB (RGBA if the target had alpha) image whose L* is the target's.
    """
    if samples < 1 or window < 1:
        raise UsageError(f"samples and window must be >= 1, got {samples} and {window}")
    rng = np.random.default_rng(seed)
    src, alpha = read_source(target)
    l_t = source_lab(src)[..., 0]
    lab_r = source_lab(read_source(reference)[0])
    feat_t = _features(l_t, window)
    if not rects:
        feat_r = _features(_remap(lab_r[..., 0], l_t), window)
        ab = _nearest_ab(feat_t, *_jittered(feat_r, lab_r[..., 1:], samples, rng))
        return render(l_t, ab, alpha)
    ab = np.zeros(l_t.shape + (2,), np.float32)
    done = np.zeros(l_t.shape, bool)
    pool_feat, pool_ab = [], []
    for rect_t, rect_r in rects:
        st = _check_rect(rect_t, l_t.shape, "target")
        sr = _check_rect(rect_r, lab_r.shape, "reference")
        feat_r = _features(_remap(lab_r[sr][..., 0], l_t[st]), window)
        ab[st] = _nearest_ab(feat_t[st], *_jittered(feat_r, lab_r[sr][..., 1:], samples, rng))
        done[st] = True
        feat_s, ab_s = _jittered(feat_t[st], ab[st], samples, rng)
        pool_feat.append(feat_s)
        pool_ab.append(ab_s)
    ab[~done] = _nearest_ab(feat_t[~done], np.concatenate(pool_feat), np.concatenate(pool_ab))
    return render(l_t, ab, alpha)
