"""What the repair tests share: a smooth gray scene, and cracks drawn over it."""

from __future__ import annotations

import cv2
import numpy as np


def smooth_scene(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A clean gray photo-like scene ``(h, w)`` float32 spanning [0.03, 0.97] (a print
    with its full tone range): a gradient and soft discs, no damage and no grain."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    g = 0.3 + 0.4 * x / w + 0.1 * np.sin(y / 9)
    for _ in range(4):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(8, 20)
        g += rng.uniform(-0.2, 0.2) * (np.hypot(y - cy, x - cx) < r)
    g = cv2.GaussianBlur(g, (0, 0), 2.0)
    return (0.03 + 0.94 * (g - g.min()) / np.ptp(g)).astype(np.float32)


def with_cracks(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bright and dark 1-2 px cracks over ``gray``: (damaged, mask ``(H, W)`` bool)."""
    h, w = gray.shape
    mask = np.zeros((h, w), np.uint8)
    cv2.polylines(mask, [np.array([[5, 10], [40, 30], [70, 25], [120, 60]], np.int32)],
                  False, 1, thickness=2)
    cv2.polylines(mask, [np.array([[20, 90], [60, 70], [100, 85]], np.int32)], False, 2,
                  thickness=1)
    damaged = np.where(mask == 1, 0.97, np.where(mask == 2, 0.05, gray)).astype(np.float32)
    return damaged, mask > 0
