"""Edge-aware upsampling of ab and full-size rendering in strips, shared by the network
pipeline and the classical methods.

A fast guided filter (He and Sun 2015) guided by L*: the filter's linear coefficients are
fitted at low resolution, upsampled bilinearly and applied to the full-resolution L*, so
colour edges follow luminance edges instead of bleeding across them. Full-size work runs
in strips of rows, so memory stays bounded for very large photos.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from chromatize import color

STRIP_ROWS = 256


def _small_l(src: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """L* of ``src`` resized to ``shape`` (h, w) with area averaging: float32."""
    h, w = shape
    if src.ndim == 2 and src.dtype == np.uint16:
        small = Image.fromarray(src.astype(np.float32), mode="F").resize((w, h), Image.BOX)
        return color._LUT16[np.clip(np.asarray(small) + 0.5, 0, 65535).astype(np.uint16)]
    small = np.asarray(Image.fromarray(src).resize((w, h), Image.BOX, reducing_gap=3.0))
    return color.luminance(small)


def _bilinear_matrix(n_out: int, n_in: int) -> np.ndarray:
    """``(n_out, n_in)`` weights of bilinear resampling (half-pixel centres, edge clamp)."""
    x = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    x = np.clip(x, 0, n_in - 1)
    i0 = np.floor(x).astype(int)
    i1 = np.minimum(i0 + 1, n_in - 1)
    t = (x - i0).astype(np.float32)
    m = np.zeros((n_out, n_in), np.float32)
    np.add.at(m, (np.arange(n_out), i0), 1 - t)
    np.add.at(m, (np.arange(n_out), i1), t)
    return m


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)


def guided_coefficients(guide: torch.Tensor, src: torch.Tensor, radius: int = 2,
                        eps: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Guided filter coefficients at low resolution.

    guide: ``(1, 1, h, w)`` L*/100; src: ``(1, C, h, w)``. Returns ``(A, B)`` each
    ``(1, C, h, w)``, already box-averaged, so that ``A * guide_full + B`` (with A and B
    upsampled) is the edge-aware upsampled ``src``.
    """
    radius = max(1, min(radius, (min(guide.shape[-2:]) - 1) // 2)) if min(guide.shape[-2:]) > 2 else 0
    if radius == 0:
        return torch.zeros_like(src), src
    mean_i = _box(guide, radius)
    mean_p = _box(src, radius)
    cov = _box(guide * src, radius) - mean_i * mean_p
    var = _box(guide * guide, radius) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return _box(a, radius), _box(b, radius)


def compose(src: np.ndarray, coef_a: np.ndarray, coef_b: np.ndarray,
            strip_rows: int = STRIP_ROWS) -> np.ndarray:
    """Full-size sRGB uint8 ``(H, W, 3)`` from the source pixels and low-res guided
    coefficients ``(2, h, w)``: ab = A * L/100 + B, joined with the source's own L*."""
    h_full, w_full = src.shape[:2]
    _, h, w = coef_a.shape
    ry = _bilinear_matrix(h_full, h)
    rx_t = torch.from_numpy(_bilinear_matrix(w_full, w).T.copy())
    # Columns first (cheap: h rows), then rows per strip by a small matmul.
    coef = torch.from_numpy(np.concatenate([coef_a, coef_b])) @ rx_t  # (4, h, W)
    out = np.empty((h_full, w_full, 3), np.uint8)
    for r0 in range(0, h_full, strip_rows):
        r1 = min(h_full, r0 + strip_rows)
        c = torch.from_numpy(ry[r0:r1]) @ coef  # (4, rows, W)
        l = torch.from_numpy(color.luminance(src[r0:r1]))
        ab = (c[:2] * (l / 100) + c[2:]).clamp_(-110, 110)
        out[r0:r1] = color.lab_to_rgb8(torch.cat([l[None], ab]))
    return out
