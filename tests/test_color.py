import io
import warnings

import numpy as np
import pytest
import skimage.color as skc
import torch
from PIL import Image, ImageFilter

from chromatize import color
from conftest import make_color_photo


def _extreme_rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    corners = np.array([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)], float)
    return np.concatenate([corners, rng.random((500, 3)), [[0.04045, 0.0031308, 1e-6]]])


def test_rgb_to_lab_matches_skimage():
    rgb = _extreme_rgb()
    assert np.abs(color.rgb_to_lab_np(rgb) - skc.rgb2lab(rgb)).max() < 1e-3


def test_lab_to_rgb_matches_skimage_including_out_of_gamut():
    rng = np.random.default_rng(1)
    lab = np.stack([rng.uniform(0, 100, 2000), rng.uniform(-128, 127, 2000),
                    rng.uniform(-128, 127, 2000)], -1)
    lab[:3] = [[0, 127, -128], [100, -128, 127], [50, 0, 0]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = skc.lab2rgb(lab)
    ours = color.lab_to_rgb_np(lab)
    assert np.abs(ours - ref).max() < 1e-5
    assert ours.min() >= 0 and ours.max() <= 1


def test_round_trip():
    rgb = _extreme_rgb()
    assert np.abs(color.lab_to_rgb_np(color.rgb_to_lab_np(rgb)) - rgb).max() < 1e-6


def test_preserve_l_gamut_keeps_lightness_and_fits():
    rng = np.random.default_rng(2)
    lab = np.stack([rng.uniform(1, 99, 1000), rng.uniform(-110, 110, 1000),
                    rng.uniform(-110, 110, 1000)], -1)
    rgb = color.lab_to_rgb_np(lab, gamut="preserve_l")
    assert rgb.min() >= 0 and rgb.max() <= 1
    assert np.abs(skc.rgb2lab(rgb)[:, 0] - lab[:, 0]).max() < 1e-3
    # In-gamut colours are untouched.
    inside = color.lab_to_rgb_np(color.rgb_to_lab_np(_extreme_rgb()), gamut="preserve_l")
    assert np.abs(inside - _extreme_rgb()).max() < 1e-6


def test_gradcheck():
    x = (torch.rand(1, 3, 3, 3, dtype=torch.float64) * 0.9 + 0.05).requires_grad_()
    assert torch.autograd.gradcheck(color.rgb_to_lab, (x,))
    lab = color.rgb_to_lab(x.detach()).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: color.lab_to_rgb(t), (lab,))


def test_bad_shapes_raise():
    with pytest.raises(ValueError):
        color.rgb_to_lab(torch.zeros(2, 4, 4))
    with pytest.raises(TypeError):
        color.rgb_to_lab(np.zeros((3, 4, 4)))


def test_gray_lut_and_normalisation():
    lut = color.gray_to_l_lut(8)
    ref = skc.rgb2lab(np.repeat(np.linspace(0, 1, 256)[:, None], 3, 1))[:, 0]
    assert np.abs(lut - ref).max() < 1e-3
    l = torch.tensor([0.0, 50.0, 100.0])
    assert torch.allclose(color.normalize_l(l), torch.tensor([-1.0, 0.0, 1.0]))
    ab = torch.tensor([-110.0, 55.0])
    assert torch.allclose(color.denormalize_ab(color.normalize_ab(ab)), ab)


def test_ab_bins_cover_the_gamut():
    bins = color.ab_bins()
    assert 250 <= len(bins) <= 320
    rgb = _extreme_rgb()
    ab = color.rgb_to_lab_np(rgb)[:, 1:]
    nearest = np.abs(ab[:, None] - bins[None]).max(-1).min(1)
    assert nearest.max() <= 5 + 1e-6


# ----------------------------------------------------------------------------- toned photos

SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])


def _jpeg(rgb: np.ndarray, quality: int) -> Image.Image:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return Image.open(buf).convert("RGB")


def test_sepia_and_tinted_jpegs_are_black_and_white_colour_photos_are_not():
    """The README's promise: toned prints are colorized, not skipped as colour photos.
    The classic sepia matrix clips in the highlights (the hue turns yellow) and JPEG
    smears its tint strength across edges; both must still read as one tone."""
    rng = np.random.default_rng(0)
    cells = Image.fromarray(rng.integers(0, 256, (15, 20)).astype(np.uint8))
    soft = cells.resize((160, 120), Image.NEAREST).filter(ImageFilter.GaussianBlur(0.7))
    gray = np.asarray(soft, np.float64)[..., None].repeat(3, -1)
    sepia = np.clip(gray @ SEPIA.T, 0, 255).astype(np.uint8)
    assert (sepia[..., 0] == 255).any()  # the clipped highlights are part of the case
    tinted = np.clip(gray * [0.85, 0.95, 1.1], 0, 255).astype(np.uint8)
    assert not color.is_color(_jpeg(sepia, 80))
    assert not color.is_color(_jpeg(tinted, 75))
    colour = np.asarray(make_color_photo(120, 160, seed=3), np.float64)
    textured = np.clip(colour + rng.normal(0, 12, colour.shape), 0, 255).astype(np.uint8)
    assert color.is_color(_jpeg(textured, 80))


def test_lab_to_rgb8_table_matches_the_formulas_within_one_level():
    torch.manual_seed(0)
    lab = torch.stack([torch.rand(64, 200) * 100, torch.randn(64, 200) * 40,
                       torch.randn(64, 200) * 40])
    want = (color.lab_to_rgb(lab, gamut="preserve_l").permute(1, 2, 0) * 255 + 0.5).to(torch.uint8)
    got = color.lab_to_rgb8(lab)
    diff = np.abs(got.astype(int) - want.numpy().astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.002
