"""Grain and fading: a denoiser that keeps detail, and tone levels from the photo's own
histogram. Both leave a clean photo alone: they act only when the photo measures noisy
(:data:`GRAIN_SIGMA`) or faded (:data:`FADED_BLACK`, :data:`FADED_RANGE`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from chromatize.restore.damage import noise_floor

#: Noise sigma (gray units, as :func:`chromatize.restore.damage.noise_floor` measures it)
#: above which a photo is denoised: 37 of 40 clean val photos measure under 0.012, the
#: noisiest 0.022; the generator's grain of sigma 0.02 / 0.04 measures 0.013 / 0.024.
GRAIN_SIGMA = 0.015
#: ... and the evenness above which that noise is grain, not texture. Chosen on 800
#: training photos: clean ones taken for grainy fall from 5.9% to 0.9%, while grain of
#: sigma 0.03 / 0.04 is still found in 93% / 99% of them (was 95% / 100%;
#: ``docs/restore.md``, "Where grainy starts").
GRAIN_EVENNESS = 0.7
#: Strength of non-local means per unit of noise sigma (OpenCV's ``h`` = this x sigma x
#: 255); chosen on synthetic grain (``docs/restore.md``).
NLM_STRENGTH = 1.5
NLM_TEMPLATE = 7
NLM_SEARCH = 21

#: Percentiles (of 100) that stand for the photo's black and white points: robust to a
#: few specular highlights and deep shadows.
LOW_PERCENTILE = 0.2
HIGH_PERCENTILE = 99.8
#: A photo is faded when its black point is lifted to at least FADED_BLACK and its
#: black-to-white span (those percentiles) is under FADED_RANGE: a dark (low-key) photo
#: keeps its deep blacks and is left alone. At 0.1 rather than 0.06, 39 rather than 54 of
#: 600 clean training photos are taken for faded, and every fade of 0.2 or more towards
#: mid-gray is still caught (``docs/restore.md``, "Fading").
FADED_BLACK = 0.1
FADED_RANGE = 0.8
#: Where the black and white points go: not 0 and 1, so that nothing is clipped away.
TARGET = (0.01, 0.99)
#: The most the contrast is raised (a blank wall stays a wall, not noise).
MAX_GAIN = 3.0


def grain_sigma(gray: np.ndarray | Sequence[np.ndarray]) -> float:
    """The grain of gray ``(H, W)`` in [0, 1] (or bands of its rows: see
    :func:`~chromatize.restore.damage.noise_floor`) to take out (noise sigma, gray
    units), or 0.0 when the photo is not grainy: its noise is too low (GRAIN_SIGMA) or
    what the flattest parts show is texture rather than grain (GRAIN_EVENNESS)."""
    sigma, evenness = noise_floor(gray)
    return sigma if sigma > GRAIN_SIGMA and evenness > GRAIN_EVENNESS else 0.0


def denoise(gray: np.ndarray, sigma: float) -> np.ndarray:
    """Non-local means (OpenCV) on gray ``(H, W)`` float32 in [0, 1] with noise ``sigma``
    (gray units); returns float32 in [0, 1]."""
    u8 = np.clip(gray * 255 + 0.5, 0, 255).astype(np.uint8)
    h = NLM_STRENGTH * sigma * 255
    out = cv2.fastNlMeansDenoising(u8, None, h, NLM_TEMPLATE, NLM_SEARCH)
    return out.astype(np.float32) / 255


@dataclass(frozen=True)
class Levels:
    """A tone mapping: ``low`` -> TARGET[0], ``high`` -> TARGET[1], linear between (gray
    units); :meth:`identity` when the photo is not faded."""

    low: float = 0.0
    high: float = 1.0

    @property
    def identity(self) -> bool:
        return self.low == 0.0 and self.high == 1.0

    def __call__(self, gray: np.ndarray) -> np.ndarray:
        """Apply to gray ``(...)`` float32 in [0, 1]."""
        if self.identity:
            return gray
        scale = (TARGET[1] - TARGET[0]) / (self.high - self.low)
        return np.clip((gray - self.low) * scale + TARGET[0], 0, 1).astype(np.float32)


def measure_levels(sample: np.ndarray) -> Levels:
    """The levels that undo fading, from gray values ``sample`` (any shape, [0, 1]; a
    subsample of the photo is enough); identity unless the photo is faded."""
    low, high = np.percentile(sample, [LOW_PERCENTILE, HIGH_PERCENTILE])
    if low < FADED_BLACK or high - low >= FADED_RANGE:
        return Levels()
    # Never lower the contrast, never raise it beyond MAX_GAIN: widen the span around its
    # middle when it is too narrow to stretch that far.
    span = max(high - low, (TARGET[1] - TARGET[0]) / MAX_GAIN)
    mid = (low + high) / 2
    return Levels(float(mid - span / 2), float(mid + span / 2))
