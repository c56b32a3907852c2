"""Resizing, edge-aware upsampling of ab and full-size rendering in strips: the one
implementation shared by the network pipeline and the classical methods.

Downsizing averages areas (:func:`area_resize`, :func:`small_l`). Upsizing ab uses a fast
guided filter (He and Sun 2015) guided by L*: the filter's linear coefficients are fitted
at low resolution (:func:`fit_guided`), upsampled bilinearly and applied to the
full-resolution L*, so colour edges follow luminance edges instead of bleeding across
them. Full-size work runs in strips of rows, so memory stays bounded for very large
photos; the output keeps the photo's own L* (colours that would leave the sRGB gamut are
desaturated at constant luminance).

Coefficients and ab may be numpy arrays or torch tensors: the network pipeline passes
tensors (its ops run on every core), the classical methods numpy arrays, so that
``chromatize scribble`` never imports torch (seconds of a command's wall time).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Union

import numpy as np
from PIL import Image

import chromatize.color as color

if TYPE_CHECKING:
    import torch

Array = Union[np.ndarray, "torch.Tensor"]

STRIP_ROWS = 256


def area_resize(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Area-average float ``(H, W)`` or ``(H, W, C)`` to ``shape`` (h, w): float32."""
    h, w = shape
    H, W = x.shape[:2]
    if H % h == 0 and W % w == 0:  # whole factors (a network's stride): block means, fast
        blocks = np.asarray(x, np.float32).reshape(h, H // h, w, W // w, *x.shape[2:])
        return blocks.mean((1, 3), dtype=np.float32)
    if x.ndim == 3:
        return np.stack([area_resize(x[..., c], shape) for c in range(x.shape[-1])], -1)
    small = Image.fromarray(np.ascontiguousarray(x, np.float32), mode="F")
    return np.array(small.resize((w, h), Image.BOX), np.float32)  # writable, for torch


def small_l(src: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """L* ``(h, w)`` float32 of source pixels (:func:`chromatize.io.to_pixels`) resized to
    ``shape`` by area averaging."""
    if src.ndim == 2 and src.dtype == np.uint16:
        small = area_resize(src, shape)
        return color.luminance(np.clip(small + 0.5, 0, 65535).astype(np.uint16))
    # 8-bit pixels: Pillow's reducing_gap shrinks by whole factors first, which is much
    # faster on large photos and averages areas all the same.
    h, w = shape
    small = np.asarray(Image.fromarray(src).resize((w, h), Image.BOX, reducing_gap=3.0))
    return color.luminance(small)


def bilinear_matrix(n_out: int, n_in: int) -> np.ndarray:
    """``(n_out, n_in)`` weights of bilinear resampling (half-pixel centres, edge clamp):
    :func:`bilinear_taps` written out as a matrix, for BLAS."""
    i0, i1, t = bilinear_taps(n_out, n_in)
    m = np.zeros((n_out, n_in), np.float32)
    np.add.at(m, (np.arange(n_out), i0), 1 - t)
    np.add.at(m, (np.arange(n_out), i1), t)
    return m


def bilinear_resize(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize (half-pixel centres, as :func:`bilinear_matrix`) of ``(H, W)`` or
    ``(H, W, C)`` to ``shape`` (h, w): float32."""
    ry, rx = bilinear_matrix(shape[0], x.shape[0]), bilinear_matrix(shape[1], x.shape[1])
    # Two matrix products (BLAS): rows, then columns.
    rows = np.tensordot(ry, np.asarray(x, np.float32), axes=(1, 0))  # (h, W, ...)
    return np.moveaxis(np.tensordot(rows, rx, axes=(1, 1)), -1, 1)


def _window_mean(x: np.ndarray, r: int, axis: int) -> np.ndarray:
    """Mean over the ``2r+1`` neighbours of each element along ``axis`` that lie inside
    the array, from a running sum (float64, so no cancellation): float32."""
    n = x.shape[axis]
    total = np.cumsum(x, axis=axis, dtype=np.float64)
    total = np.concatenate([np.zeros_like(np.take(total, [0], axis)), total], axis)
    at = np.arange(n)
    hi, lo = np.minimum(at + r + 1, n), np.maximum(at - r, 0)
    shape = [1] * x.ndim
    shape[axis] = n
    mean = (np.take(total, hi, axis) - np.take(total, lo, axis)) / (hi - lo).reshape(shape)
    return mean.astype(np.float32)


def _box(x: Array, r: int) -> Array:
    """Mean over the ``(2r+1)^2`` window of each pixel of ``(1, C, h, w)``, counting only
    the pixels inside the image (as ``avg_pool2d(count_include_pad=False)``; numpy:
    rows then columns, as the window and its count are both separable)."""
    if isinstance(x, np.ndarray):
        return _window_mean(_window_mean(x, r, -2), r, -1)
    import torch.nn.functional as F

    return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)


def guided_coefficients(guide: Array, src: Array, radius: int = 2,
                        eps: float = 1e-3) -> tuple[Array, Array]:
    """Guided filter coefficients at low resolution.

    guide: ``(1, 1, h, w)`` L*/100; src: ``(1, C, h, w)`` (both numpy or both torch).
    Returns ``(A, B)`` each ``(1, C, h, w)``, already box-averaged, so that
    ``A * guide_full + B`` (with A and B upsampled) is the edge-aware upsampled ``src``.
    """
    radius = max(1, min(radius, (min(guide.shape[-2:]) - 1) // 2)) if min(guide.shape[-2:]) > 2 else 0
    if radius == 0:
        return src * 0, src
    mean_i = _box(guide, radius)
    mean_p = _box(src, radius)
    cov = _box(guide * src, radius) - mean_i * mean_p
    var = _box(guide * guide, radius) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return _box(a, radius), _box(b, radius)


def fit_guided(l_small: np.ndarray, ab: Array, radius: int = 2, eps: float = 1e-3) -> Array:
    """Guided filter coefficients ``(4, h', w')`` (A for a*, b*, then B) for low-res ab.

    l_small: L* ``(h, w)`` in [0, 100] of the small copy; ab: ``(2, h', w')`` in Lab units,
    at that size or smaller (a network's output stride): the guide is ``l_small``
    area-averaged to ab's size. A numpy ``ab`` gives numpy coefficients, a tensor a tensor.
    """
    guide = np.asarray(l_small, np.float32)
    if guide.shape != ab.shape[-2:]:
        guide = area_resize(guide, ab.shape[-2:])  # the one area resize, for both kinds
    if isinstance(ab, np.ndarray):
        coef_a, coef_b = guided_coefficients((guide / 100)[None, None],
                                             ab[None].astype(np.float32), radius, eps)
        return np.concatenate([coef_a, coef_b], 1)[0]
    import torch

    guide_t = torch.from_numpy(guide)[None, None] / 100
    # Contiguous: the box filters run 3x slower on a permuted (H, W, C) view.
    coef_a, coef_b = guided_coefficients(guide_t, ab[None].float().contiguous(), radius=radius,
                                         eps=eps)
    return torch.cat([coef_a, coef_b], 1)[0]


def bilinear_taps(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The two taps of each row of :func:`bilinear_matrix`: ``(i0, i1, t)``, each
    ``(n_out,)``, such that output ``k`` is ``(1 - t[k]) * x[i0[k]] + t[k] * x[i1[k]]``."""
    x = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    i0 = np.floor(x).astype(np.int64)
    return i0, np.minimum(i0 + 1, n_in - 1), (x - i0).astype(np.float32)


def _lerp(x: Array, taps: tuple[np.ndarray, np.ndarray, np.ndarray], axis: int) -> Array:
    """Bilinear resampling of ``x`` along ``axis`` by precomputed taps (two gathers and a
    blend: O(output), where a dense resampling matrix costs O(output x input))."""
    i0, i1, t = taps
    shape = [1] * x.ndim
    shape[axis] = -1
    if isinstance(x, np.ndarray):
        a = np.take(x, i0, axis)
        return a + (np.take(x, i1, axis) - a) * t.reshape(shape)
    import torch

    i0_t, i1_t = torch.from_numpy(i0), torch.from_numpy(i1)
    return torch.lerp(x.index_select(axis, i0_t), x.index_select(axis, i1_t),
                      torch.from_numpy(t).view(shape))


def _strips(coef: Array, shape: tuple[int, int]) -> Iterator[tuple[int, int, Array]]:
    """Coefficients ``(4, h', w')`` upsampled bilinearly to ``shape`` (H, W) one strip of
    rows at a time: ``(r0, r1, coefficients (4, r1 - r0, W))``, of ``coef``'s kind."""
    rows = _row_upsampler(coef, shape)
    for r0 in range(0, shape[0], STRIP_ROWS):
        r1 = min(shape[0], r0 + STRIP_ROWS)
        yield r0, r1, rows(r0, r1)


def _row_upsampler(coef: Array, shape: tuple[int, int]) -> Callable[[int, int], Array]:
    """``rows(r0, r1)``: rows ``r0:r1`` of ``coef`` ``(4, h', w')`` upsampled bilinearly to
    ``shape`` (H, W), as ``(4, r1 - r0, W)``; the column pass is done once, here."""
    h_full, w_full = shape
    ry = bilinear_taps(h_full, coef.shape[1])
    coef = coef.astype(np.float32) if isinstance(coef, np.ndarray) else coef.float()
    cols = _lerp(coef, bilinear_taps(w_full, coef.shape[2]), 2)  # (4, h', W): h' rows only
    return lambda r0, r1: _lerp(cols, tuple(a[r0:r1] for a in ry), 1)  # type: ignore[arg-type]


# Photos of fewer strips run them in turn: on a small photo the threads' start-up and
# their torch thread teams cost more than they save (640 x 480 with torch: 52 -> 72 ms).
PARALLEL_STRIPS = 4
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _each_strip(h: int, job: Callable[[int, int], None]) -> None:
    """``job(r0, r1)`` for every strip of ``STRIP_ROWS`` rows of ``h``, on a small shared
    pool of threads: torch and numpy release the GIL, so strips run in parallel without
    waking an intra-op thread pool for every operation (12 MP: 0.58 -> 0.43 s)."""
    global _pool
    starts = range(0, h, STRIP_ROWS)
    if len(starts) < PARALLEL_STRIPS:
        for r0 in starts:
            job(r0, min(h, r0 + STRIP_ROWS))
        return
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1)),
                                       thread_name_prefix="chromatize-strips")
    for future in [_pool.submit(job, r0, min(h, r0 + STRIP_ROWS)) for r0 in starts]:
        future.result()


def _apply(c: Array, l: Array) -> Array:
    """ab ``(2, rows, W)`` = A * L/100 + B, from coefficients ``(4, rows, W)`` and L*."""
    ab = c[:2] * (l / 100) + c[2:]
    return np.clip(ab, -110, 110, out=ab) if isinstance(ab, np.ndarray) else ab.clamp_(-110, 110)


def upsample_ab(l: np.ndarray, coef: Array) -> np.ndarray:
    """Edge-aware ab ``(H, W, 2)`` float32 from the full-size L* ``(H, W)`` in [0, 100] and
    the coefficients of :func:`fit_guided` (numpy or torch)."""
    out = np.empty(l.shape + (2,), np.float32)
    numpy = isinstance(coef, np.ndarray)
    for r0, r1, c in _strips(coef, l.shape):
        rows = np.array(l[r0:r1], np.float32)
        if numpy:
            out[r0:r1] = _apply(c, rows).transpose(1, 2, 0)
        else:
            import torch

            out[r0:r1] = _apply(c, torch.from_numpy(rows)).permute(1, 2, 0).numpy()
    return out


def _image(rgb: np.ndarray, alpha: Image.Image | None) -> Image.Image:
    image = Image.fromarray(rgb, "RGB")
    if alpha is not None:
        image.putalpha(alpha)
    return image


def compose(src: np.ndarray, coef: Array, alpha: Image.Image | None = None,
            marks: tuple[np.ndarray, np.ndarray] | None = None) -> Image.Image:
    """The full-size photo from source pixels (:func:`chromatize.io.to_pixels`) and the
    guided coefficients of :func:`fit_guided` (numpy or torch): ab = A * L/100 + B joined
    with the source's own L*. RGB, or RGBA with ``alpha``.

    ``marks``: ``(hint_ab (H, W, 2), hint_mask (H, W))``, whose marked pixels get exactly
    the marks' ab."""
    numpy = isinstance(coef, np.ndarray)
    if not numpy:
        import torch
    out = np.empty(src.shape[:2] + (3,), np.uint8)
    rows = _row_upsampler(coef, src.shape[:2])

    def strip(r0: int, r1: int) -> None:
        c = rows(r0, r1)
        l_np = color.luminance(src[r0:r1])
        l = l_np if numpy else torch.from_numpy(l_np)
        ab = _apply(c, l)
        if marks is not None and marks[1][r0:r1].any():
            here = marks[1][r0:r1]
            got = marks[0][r0:r1][here].T.astype(np.float32)
            if numpy:
                ab[:, here] = got
            else:
                ab[:, torch.from_numpy(here)] = torch.from_numpy(got)
        out[r0:r1] = color.lab_to_rgb8(np.concatenate([l[None], ab]) if numpy
                                       else torch.cat([l[None], ab]))

    _each_strip(src.shape[0], strip)
    return _image(out, alpha)


def render(l: np.ndarray, ab: np.ndarray, alpha: Image.Image | None = None) -> Image.Image:
    """L* ``(H, W)`` in [0, 100] and ab ``(H, W, 2)`` -> RGB (RGBA with ``alpha``) image
    whose L* is ``l``, converted in strips of rows (numpy only: no torch needed)."""
    out = np.empty(l.shape + (3,), np.uint8)

    def strip(r0: int, r1: int) -> None:
        lab = np.concatenate([l[None, r0:r1], ab[r0:r1].transpose(2, 0, 1)]).astype(np.float32)
        out[r0:r1] = color.lab_to_rgb8(lab)

    _each_strip(l.shape[0], strip)
    return _image(out, alpha)
