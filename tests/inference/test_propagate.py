"""Levin et al.'s propagation, directly: marks spread within a region, not across an edge."""

from __future__ import annotations

import numpy as np

from chromatize.inference.propagate import propagate


def test_a_mark_fills_its_region_and_stops_at_an_edge():
    l = np.full((40, 60), 30.0, np.float32)
    l[:, 30:] = 80.0  # a strong luminance edge down the middle
    target = np.zeros((40, 60, 2), np.float32)
    mask = np.zeros((40, 60), bool)
    target[20, 5], mask[20, 5] = (40, 10), True
    target[20, 55], mask[20, 55] = (-20, -30), True
    ab = propagate(l, target, mask)
    assert np.abs(ab[:, :28] - (40, 10)).max() < 2      # the left region takes the left mark
    assert np.abs(ab[:, 32:] - (-20, -30)).max() < 2    # the right one the right mark
    assert np.allclose(ab[20, 5], (40, 10), atol=1e-3)  # marks keep their colour


def test_a_data_term_keeps_far_pixels_near_zero():
    l = np.full((30, 200), 50.0, np.float32)
    target = np.zeros((30, 200, 2), np.float32)
    mask = np.zeros((30, 200), bool)
    target[15, 2], mask[15, 2] = (30, 30), True
    screen = np.full((30, 200), 0.05, np.float32)  # "keep 0 where confident"
    ab = propagate(l, target, mask, screen)
    assert np.abs(ab[:, 150:]).max() < 3 and ab[15, 3, 0] > 10
    free = propagate(l, target, mask)  # without the data term the mark fills everything
    assert np.abs(free[:, 150:] - (30, 30)).max() < 2
