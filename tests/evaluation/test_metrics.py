import math

import numpy as np
import pytest
from conftest import make_color_photo

from chromatize import color
from chromatize.evaluation import metrics


def _rgb8(lab: np.ndarray) -> np.ndarray:
    return (color.lab_to_rgb_np(lab) * 255 + 0.5).astype(np.uint8)


def _two_tone(h: int = 40, w: int = 40) -> np.ndarray:
    """Lab: dark blue left half, light orange right half (a strong L* edge in the middle)."""
    lab = np.empty((h, w, 3))
    lab[:, : w // 2] = (30, 10, -40)
    lab[:, w // 2:] = (75, 20, 50)
    return lab


def test_psnr_of_a_known_mse():
    true = np.full((8, 8, 3), 100, np.uint8)
    # Every value off by 5: MSE = 25, PSNR = 10 log10(255^2 / 25) = 34.1514 dB.
    assert metrics.psnr(true + 5, true) == pytest.approx(34.1514, abs=1e-4)
    assert metrics.psnr(true, true) == math.inf


def test_ssim_identical_is_one_and_noise_lowers_it_even_on_tiny_images():
    rgb = np.asarray(make_color_photo(5, 6))
    assert metrics.ssim(rgb, rgb) == pytest.approx(1.0)
    noise = np.random.default_rng(0).normal(0, 1, rgb.shape)
    scores = [metrics.ssim(np.clip(rgb + s * noise, 0, 255).astype(np.uint8), rgb)
              for s in (10, 30, 60)]
    assert 1 > scores[0] > scores[1] > scores[2]


def test_ab_rmse_in_lab_units_and_normalised():
    true = np.zeros((4, 4, 3))
    pred = true + (7, 3, 4)  # L* error ignored; a off by 3, b by 4
    assert metrics.ab_rmse(pred, true) == pytest.approx(math.sqrt((9 + 16) / 2))
    assert metrics.ab_rmse_normalised(pred, true) == pytest.approx(math.sqrt(12.5) / 110)


def test_ciede2000_matches_sharma_2005_published_pairs():
    # Sharma, Wu and Dalal (2005), test data pairs 1 and 17.
    true = np.array([[[50, 2.6772, -79.7751], [50, 2.5, 0]]])
    pred = np.array([[[50, 0, -82.7485], [73, 25, -18]]])
    assert metrics.ciede2000(pred, true) == pytest.approx((2.0425 + 27.1492) / 2, abs=1e-4)


def test_colorfulness_hand_computed():
    # Pixels red (255,0,0) and blue (0,0,255): rg = {255, 0}, yb = {127.5, -255};
    # sd = (127.5, 191.25), means = (127.5, -63.75):
    # M = sqrt(127.5^2 + 191.25^2) + 0.3 sqrt(127.5^2 + 63.75^2) = 229.854 + 42.765.
    rgb = np.array([[[255, 0, 0], [0, 0, 255]]], np.uint8)
    assert metrics.colorfulness(rgb) == pytest.approx(272.6187, abs=1e-3)
    assert metrics.colorfulness(np.full((3, 3, 3), 90, np.uint8)) == 0


def test_ab_histogram_intersection():
    a = np.zeros((10, 10, 3)) + (50, 40, 0)
    b = np.zeros((10, 10, 3)) + (50, -40, 0)
    assert metrics.ab_histogram_intersection(a, a) == pytest.approx(1.0)
    assert metrics.ab_histogram_intersection(a, b) == 0.0
    half = a.copy()
    half[:5] = b[:5]
    assert metrics.ab_histogram_intersection(half, a) == pytest.approx(0.5)


def test_l_preservation():
    lab = np.zeros((3, 3, 3)) + (60, 10, 10)
    assert metrics.l_preservation(lab, np.full((3, 3), 58.0)) == pytest.approx(2.0)


def test_colour_photo_check():
    rgb = np.asarray(make_color_photo())
    assert color.is_color(rgb, min_chroma=metrics.MIN_MEAN_CHROMA)
    gray = np.repeat(rgb[..., :1], 3, -1)
    assert not color.is_color(gray, min_chroma=metrics.MIN_MEAN_CHROMA)


def test_border_band_width():
    band = metrics.border_band((50, 50))  # 8% of 50 -> 4 pixels
    assert band.sum() == 50 * 50 - 42 * 42
    assert band[0].all() and not band[4:46, 4:46].any()


def test_failure_scores_respond_to_their_failure():
    true_lab = _two_tone()
    truth = _rgb8(true_lab)
    l = true_lab[..., 0]
    good = metrics.image_metrics(truth, truth, l)
    assert good["psnr"] == math.inf and good["colorfulness_ratio"] == pytest.approx(1.0)
    assert good["bleeding"] == good["edge_pollution"] == good["inconsistency"] == 0

    faded = true_lab.copy()
    faded[..., 1:] *= 0.3
    assert metrics.image_metrics(_rgb8(faded), truth, l)["colorfulness_ratio"] < 0.5

    # Colour leaking 3 px across the edge raises bleeding, not the uniform-shift control.
    bled = true_lab.copy()
    bled[:, 17:23, 1:] = true_lab[:, 19:20, 1:] * 0.5 + true_lab[:, 21:22, 1:] * 0.5
    shifted = true_lab + (0, 8, 8)
    assert metrics.image_metrics(_rgb8(bled), truth, l)["bleeding"] > 5
    assert metrics.image_metrics(_rgb8(shifted), truth, l)["bleeding"] < 1

    # A grayed frame pollutes the border; a uniform shift does not.
    framed = true_lab.copy()
    framed[metrics.border_band(l.shape), 1:] = 0
    assert metrics.image_metrics(_rgb8(framed), truth, l)["edge_pollution"] > 10
    assert abs(metrics.image_metrics(_rgb8(shifted), truth, l)["edge_pollution"]) < 1

    # Blotches of different wrong colours are inconsistent; one wrong colour is not.
    blotchy = true_lab.copy()
    y, x = np.mgrid[:40, :20]
    blotchy[:, :20, 1] += 30 * ((y // 4 + x // 4) % 2)
    assert metrics.image_metrics(_rgb8(blotchy), truth, l)["inconsistency"] > 3
    assert metrics.image_metrics(_rgb8(shifted), truth, l)["inconsistency"] < 1
