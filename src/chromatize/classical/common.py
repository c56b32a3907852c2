"""What the classical methods share: a photo's Lab, edge-aware upsampling
of ab, and turning (L*, ab) back into an image that keeps the photo's L*."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from chromatize import color
from chromatize.pipeline import STRIP_ROWS, guided_coefficients, lab_to_rgb8, luminance


def source_lab(src: np.ndarray) -> np.ndarray:
    """Lab ``(H, W, 3)`` float32 of source pixels (a gray source has a* = b* = 0)."""
    if src.ndim == 3:
        return color.rgb_to_lab_np(src.astype(np.float32) / 255).astype(np.float32)
    lab = np.zeros(src.shape + (3,), np.float32)
    lab[..., 0] = luminance(src)
    return lab


def guided_upsample(l_full: np.ndarray, l_small: np.ndarray, ab_small: np.ndarray,
                    radius: int = 2, eps: float = 1e-3) -> np.ndarray:
    """Edge-aware upsampling of ab (as :mod:`chromatize.pipeline` does for networks).

    l_full ``(H, W)`` and l_small ``(h, w)`` L* in [0, 100]; ab_small ``(h, w, 2)``.
    The guided filter's coefficients are fitted at ``(h, w)``, upsampled bilinearly and
    applied to the full-size L*. Returns ab ``(H, W, 2)`` float32 in Lab units.
    """
    guide = torch.from_numpy(np.array(l_small, np.float32))[None, None] / 100
    src = torch.from_numpy(np.array(ab_small, np.float32)).permute(2, 0, 1)[None]
    coef_a, coef_b = guided_coefficients(guide, src, radius=radius, eps=eps)
    coef = F.interpolate(torch.cat([coef_a, coef_b], 1), size=l_full.shape, mode="bilinear",
                         align_corners=False)[0]
    ab = coef[:2] * torch.from_numpy(np.array(l_full, np.float32))[None] / 100 + coef[2:]
    return ab.clamp_(-110, 110).permute(1, 2, 0).numpy()


def render(l: np.ndarray, ab: np.ndarray, alpha: Image.Image | None = None) -> Image.Image:
    """L* ``(H, W)`` in [0, 100] and ab ``(H, W, 2)`` -> RGB (RGBA with ``alpha``) image.

    Colours outside sRGB are desaturated at constant luminance, so the output's L* is
    ``l``. Converted in strips of rows so that memory stays bounded on large photos.
    """
    h, w = l.shape
    out = np.empty((h, w, 3), np.uint8)
    for r0 in range(0, h, STRIP_ROWS):
        r1 = min(h, r0 + STRIP_ROWS)
        lab = np.concatenate([l[r0:r1, :, None], ab[r0:r1]], -1).astype(np.float32)
        out[r0:r1] = lab_to_rgb8(torch.from_numpy(lab).permute(2, 0, 1))
    image = Image.fromarray(out, "RGB")
    if alpha is not None:
        image.putalpha(alpha)
    return image
