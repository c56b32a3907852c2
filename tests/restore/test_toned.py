"""Toned scans count as black-and-white however strong the tone; colour photos, faded or
not, do not (:func:`chromatize.color.is_color`). Tones are made here over scikit-image's
sample photos: a chroma that follows lightness, with a hue that may drift with it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from chromatize import color

data = pytest.importorskip("skimage.data")

#: Hue (degrees) in the shadows and in the highlights.
TONES = {"sepia": (55, 85), "cyanotype": (260, 250), "selenium": (10, -30),
         "yellowed": (90, 95)}


def scanned(rgb: np.ndarray, seed: int = 0) -> Image.Image:
    """A scan: a little noise, then JPEG at quality 80 (chroma at half resolution)."""
    noisy = rgb + np.random.default_rng(seed).normal(0, 3, rgb.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=80)
    return Image.open(buf).convert("RGB")


def toned(gray: np.ndarray, chroma: float, hues: tuple[float, float]) -> np.ndarray:
    """A toned print of ``gray`` (uint8): chroma strongest in the mid-tones, hue moving
    from ``hues[0]`` in the shadows to ``hues[1]`` in the highlights."""
    lum = color.luminance(gray).astype(np.float64)
    t = np.clip(lum / 100, 0, 1)
    c = chroma * np.sin(np.pi * t) ** 0.7
    h = np.deg2rad(hues[0] + (hues[1] - hues[0]) * t)
    lab = np.stack([lum, c * np.cos(h), c * np.sin(h)], -1)
    return (np.clip(color.lab_to_rgb_np(lab), 0, 1) * 255 + 0.5).astype(np.uint8)


def faded(rgb: np.ndarray, amount: float) -> np.ndarray:
    """A faded colour print: ``amount`` of its saturation gone, contrast lost, yellowed."""
    f = rgb / 255.0
    mean = f.mean(-1, keepdims=True)
    f = 0.15 + 0.75 * (mean + (f - mean) * (1 - amount))
    return (np.clip(f * [1.0, 0.95, 0.8], 0, 1) * 255).astype(np.uint8)


def gray_of(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).convert("L"))


@pytest.mark.parametrize("tone", TONES)
@pytest.mark.parametrize("photo", ["camera", "astronaut"])
def test_toned_scans_are_black_and_white_from_weak_to_very_strong(tone, photo):
    image = getattr(data, photo)()
    gray = image if image.ndim == 2 else gray_of(image)
    for chroma in (3, 8, 15, 25, 40, 60):
        scan = scanned(toned(gray, chroma, TONES[tone]))
        assert not color.is_color(scan), (tone, chroma, color.tone_spread(scan))


@pytest.mark.parametrize("photo", ["astronaut", "coffee"])
def test_colour_photos_faded_or_not_are_colour(photo):
    rgb = getattr(data, photo)()
    for amount in (0.0, 0.5, 0.7):
        scan = scanned(faded(rgb, amount))
        assert color.is_color(scan), (amount, color.tone_spread(scan))
    assert color.is_color(scanned(rgb))
