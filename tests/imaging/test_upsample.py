"""The one upsampler: resizing, the guided filter and composing, numpy and torch alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chromatize import color
from chromatize.imaging import upsample


@pytest.mark.parametrize("n_out, n_in", [(12, 3), (7, 5), (3, 12), (1, 4), (9, 9)])
def test_bilinear_matrix_is_torchs_bilinear(n_out, n_in):
    """One bilinear: the matrix, its taps and torch's ``interpolate`` (half-pixel centres,
    edge clamp) agree."""
    x = np.random.default_rng(0).random((n_in, 4)).astype(np.float32)
    want = torch.nn.functional.interpolate(torch.from_numpy(x.T)[None], size=n_out,
                                           mode="linear", align_corners=False)[0].numpy().T
    np.testing.assert_allclose(upsample.bilinear_matrix(n_out, n_in) @ x, want, atol=1e-6)
    i0, i1, t = upsample.bilinear_taps(n_out, n_in)
    np.testing.assert_allclose(x[i0] * (1 - t[:, None]) + x[i1] * t[:, None], want, atol=1e-6)


def test_area_resize_averages_areas():
    x = np.arange(36, dtype=np.float32).reshape(6, 6)
    np.testing.assert_allclose(upsample.area_resize(x, (2, 3)),
                               x.reshape(2, 3, 3, 2).mean((1, 3)), atol=1e-5)
    # a constant stays itself at any ratio
    np.testing.assert_allclose(upsample.area_resize(np.full((7, 5), 3.0), (3, 2)), 3.0, atol=1e-5)


@pytest.mark.parametrize("shape, ab_shape", [((64, 96), (16, 24)), ((40, 56), (13, 17))])
def test_guided_filter_numpy_and_torch_agree(shape, ab_shape):
    rng = np.random.default_rng(1)
    l_small = (rng.random(shape) * 100).astype(np.float32)
    ab = (rng.standard_normal((2, *ab_shape)) * 20).astype(np.float32)
    coef_np = upsample.fit_guided(l_small, ab)
    coef_t = upsample.fit_guided(l_small, torch.from_numpy(ab)).numpy()
    np.testing.assert_allclose(coef_np, coef_t, atol=2e-3)
    src = (rng.random((120, 180)) * 255).astype(np.uint8)
    a = np.asarray(upsample.compose(src, coef_np)).astype(int)
    b = np.asarray(upsample.compose(src, torch.from_numpy(coef_np))).astype(int)
    assert np.abs(a - b).max() <= 1


def test_compose_keeps_l_and_follows_edges():
    """Colour edges follow luminance edges: a half-red, half-blue low-res ab over a photo
    whose edge is sharp comes out sharp at full size, and L* is the photo's."""
    src = np.zeros((64, 64), np.uint8)
    src[:, :32], src[:, 32:] = 90, 170
    l_small = upsample.small_l(src, (16, 16))
    ab = np.zeros((2, 16, 16), np.float32)
    ab[0, :, :8], ab[1, :, 8:] = 30, -30
    out = np.asarray(upsample.compose(src, upsample.fit_guided(l_small, ab)))
    lab = color.rgb_to_lab_np(out / 255)
    assert np.abs(lab[..., 0] - color.luminance(src)).max() < 0.6
    assert lab[:, 29, 1].min() > 20 and lab[:, 34, 2].max() < -20  # 2 px from the edge: its side


def test_marks_are_exact_in_compose():
    src = np.full((20, 30), 128, np.uint8)
    coef = np.zeros((4, 5, 8), np.float32)
    hint_ab = np.zeros((20, 30, 2), np.float32)
    mask = np.zeros((20, 30), bool)
    hint_ab[5, 7], mask[5, 7] = (25, -10), True
    out = np.asarray(upsample.compose(src, coef, marks=(hint_ab, mask)))
    lab = color.rgb_to_lab_np(out[5:6, 7:8] / 255)[0, 0]
    assert abs(lab[1] - 25) < 1.5 and abs(lab[2] + 10) < 1.5


def test_guided_filter_gives_the_same_coefficients_in_numpy_and_torch():
    """ONNX Runtime's outputs are upsampled by the numpy filter, PyTorch's by the tensor
    one: the same coefficients (box means counting only pixels inside the image)."""
    rng = np.random.default_rng(0)
    l_small = (rng.random((64, 96)) * 100).astype(np.float32)
    # The network's output stride divides the working shape, as here.
    for shape in ((16, 24), (64, 96), (2, 3)):
        ab = ((rng.random((2, *shape)) - 0.5) * 80).astype(np.float32)
        got = upsample.fit_guided(l_small, ab)
        want = upsample.fit_guided(l_small, torch.from_numpy(ab)).numpy()
        assert isinstance(got, np.ndarray) and got.shape == want.shape == (4, *shape)
        np.testing.assert_allclose(got, want, atol=2e-3, rtol=1e-4)
