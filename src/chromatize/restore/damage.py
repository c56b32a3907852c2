"""Damage of old prints: find it (a mask), then fill the masked pixels from around them.

Two detectors give the same thing, a mask ``(2, H, W)`` of lines (cracks, scratches,
hairs) and specks (dust, spots), from a gray photo ``(H, W)`` float32 in [0, 1]:

* :func:`detect_morph`, classical: white and black top-hats (what is brighter or darker
  than its surroundings and thinner than the structuring element), thresholded against
  the photo's own noise, then sorted into lines and specks by their shape;
* :class:`chromatize.restore.net.Detector`, a small network trained on synthetic damage
  (:mod:`chromatize.training.damage`), which tells damage from texture far better
  (``docs/restore.md`` has both measured).

:func:`inpaint` then changes only the masked pixels, by OpenCV's Telea (default) or
Navier-Stokes method.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

#: Structuring element of the top-hats (px): marks up to about this wide are found.
TOPHAT_SIZE = 9
#: A top-hat response counts when it is this many noise sigmas above the photo's and at
#: least MIN_CONTRAST (gray units).
TOPHAT_SIGMAS = 6.0
MIN_CONTRAST = 0.12
TEXTURE_RATIO = 2.0
#: A connected mark whose bounding box's long side is at least this many times its area's
#: square root is a line, else a speck.
LINE_ELONGATION = 2.5
INPAINT_METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}
INPAINT_RADIUS = 3


def _block_rms(gray: np.ndarray, block: int) -> np.ndarray:
    """RMS of gray's second difference (Immerkaer's kernel, which cancels planes) per
    whole ``block`` x ``block`` block, flattened; the whole residual's RMS (one value)
    when gray is smaller than a block."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    r = cv2.filter2D(np.asarray(gray, np.float32), -1, kernel, borderType=cv2.BORDER_REFLECT)
    h, w = (r.shape[0] // block) * block, (r.shape[1] // block) * block
    if h == 0 or w == 0:
        return np.sqrt(np.mean(r**2, keepdims=True)).ravel()
    return np.sqrt((r[:h, :w] ** 2).reshape(h // block, block, w // block, block)
                   .mean((1, 3))).ravel()


def noise_floor(gray: np.ndarray | Sequence[np.ndarray], block: int = 16,
                ) -> tuple[float, float]:
    """The photo's noise sigma (gray units) and how evenly it lies, from its flattest
    parts: a second-difference kernel that cancels planes (Immerkaer 1996), its RMS per
    ``block`` x ``block`` block, and the 10th percentile of those, so that edges and
    texture (which raise the response) hardly count. The evenness (0-1) is the 2nd
    percentile over the 10th: grain lies over the whole photo, so its flattest blocks
    all show about as much (0.8-0.95); a photo that is texture everywhere (bark, grass,
    a carpet) has its few flat patches far below the rest (mostly under 0.7).

    ``gray``: the photo ``(H, W)`` in [0, 1], or bands of whole neighbouring rows from it
    (a sample of a large photo): each is measured alone, then all blocks together."""
    bands = [gray] if isinstance(gray, np.ndarray) else list(gray)
    rms = np.concatenate([_block_rms(b, block) for b in bands])
    p2, p10 = np.percentile(rms, [2, 10])
    return float(p10 / 6.0), float(p2 / p10) if p10 > 0 else 1.0


def noise_sigma(gray: np.ndarray, block: int = 16) -> float:
    """Robust estimate of the photo's noise sigma (gray units): see :func:`noise_floor`."""
    return noise_floor(gray, block)[0]


def _local_std(x: np.ndarray, size: int) -> np.ndarray:
    mean = cv2.blur(x, (size, size))
    return np.sqrt(np.maximum(cv2.blur(x * x, (size, size)) - mean * mean, 0))


def detect_morph(gray: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Classical damage mask ``(2, H, W)`` bool (lines, specks) of gray ``(H, W)`` in
    [0, 1] by white and black top-hats; ``sigma``: the noise (default: estimated).

    A pixel is damage when it stands out from the photo with the marks taken away (an
    opening for bright marks, a closing for dark ones) by more than TOPHAT_SIGMAS noise
    sigmas, MIN_CONTRAST, and TEXTURE_RATIO times that background's own local spread:
    dust on a smooth sky is found, a highlight in foliage is not."""
    g = np.asarray(gray, np.float32)
    sigma = noise_sigma(g) if sigma is None else sigma
    se = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (TOPHAT_SIZE, TOPHAT_SIZE))
    found = np.zeros(g.shape, bool)
    for op, sign in ((cv2.MORPH_OPEN, 1), (cv2.MORPH_CLOSE, -1)):
        background = cv2.morphologyEx(g, op, se)
        response = sign * (g - background)
        floor = np.maximum(max(TOPHAT_SIGMAS * sigma, MIN_CONTRAST),
                           TEXTURE_RATIO * _local_std(g, 2 * TOPHAT_SIZE + 1))
        found |= response > floor
    n, labels, stats, _ = cv2.connectedComponentsWithStats(found.astype(np.uint8), connectivity=8)
    long_side = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    is_line = long_side >= LINE_ELONGATION * np.sqrt(np.maximum(stats[:, cv2.CC_STAT_AREA], 1))
    is_line[0] = False
    lines = is_line[labels] & found
    return np.stack([lines, found & ~lines])


def grow(mask: np.ndarray, pixels: int = 1) -> np.ndarray:
    """``mask`` ``(H, W)`` bool grown by ``pixels`` (3x3 steps): a mark's soft edge is
    filled with it."""
    if pixels <= 0:
        return mask
    return cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=pixels) > 0


def inpaint(gray: np.ndarray, mask: np.ndarray, method: str = "telea",
            radius: int = INPAINT_RADIUS) -> np.ndarray:
    """Fill the pixels of ``mask`` ``(H, W)`` bool from their surroundings; every other
    pixel of gray ``(H, W)`` float32 in [0, 1] is returned exactly as it was."""
    g = np.asarray(gray, np.float32)
    if not mask.any():
        return g.copy()
    # OpenCV's float inpainting misbehaves on [0, 1] values (it works in 8-bit units).
    filled = cv2.inpaint(g * 255, mask.astype(np.uint8), radius, INPAINT_METHODS[method]) / 255
    return np.where(mask, np.clip(filled, 0, 1), g).astype(np.float32)
