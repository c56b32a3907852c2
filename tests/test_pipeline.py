import numpy as np
import pytest
import skimage.color as skc
from PIL import Image

from chromatize.checkpoint import CheckpointError
from chromatize.pipeline import Colorizer, guided_coefficients, resolve_model


def _l_star(im: Image.Image) -> np.ndarray:
    return skc.rgb2lab(np.asarray(im.convert("RGB")) / 255)[..., 0]


@pytest.mark.parametrize("size", [(1, 1), (37, 23), (300, 200)])
def test_output_keeps_input_lightness_at_any_size(tiny_checkpoint, color_photo, size):
    gray = color_photo.convert("L").resize(size)
    out = Colorizer.load(tiny_checkpoint, device="cpu").colorize(gray)
    assert out.size == gray.size and out.mode == "RGB"
    assert np.abs(_l_star(out) - _l_star(gray)).max() <= 1.0


def test_inputs_array_path_alpha_and_batch(tiny_checkpoint, color_photo, tmp_path):
    c = Colorizer.load(tiny_checkpoint, device="cpu")
    gray = color_photo.convert("L")
    from_pil = np.asarray(c.colorize(gray))
    assert np.array_equal(np.asarray(c.colorize(np.asarray(gray))), from_pil)
    gray.save(tmp_path / "g.png")
    assert np.array_equal(np.asarray(c.colorize(tmp_path / "g.png")), from_pil)
    la = gray.convert("LA")
    la.putalpha(Image.new("L", gray.size, 77))
    out = c.colorize(la)
    assert out.mode == "RGBA" and np.asarray(out)[..., 3].max() == 77
    batch = c.colorize_batch([gray, gray.resize((20, 30)), gray])
    assert np.array_equal(np.asarray(batch[0]), from_pil)
    assert batch[1].size == (20, 30)


def test_sixteen_bit_gray(tiny_checkpoint, color_photo):
    arr16 = (np.asarray(color_photo.convert("L")).astype(np.uint16) * 257)
    out = Colorizer.load(tiny_checkpoint, device="cpu").colorize(arr16)
    ref = _l_star(color_photo.convert("L"))
    assert np.abs(_l_star(out) - ref).max() <= 1.0


def test_guided_upsampling_follows_luminance_edges():
    import torch

    # Low-res ab is a blurry ramp; the guide has a sharp edge: the upsampled ab should
    # be nearly constant on each side of the edge (colour does not bleed across it).
    h, w = 16, 16
    guide = torch.zeros(1, 1, h, w)
    guide[..., w // 2:] = 1.0
    ab = torch.linspace(-40, 40, w).expand(1, 2, h, w).clone()
    a, b = guided_coefficients(guide, ab, radius=2, eps=1e-4)
    out = a * guide + b
    step = 80 / (w - 1)
    jump = (out[..., w // 2] - out[..., w // 2 - 1]).abs().mean()
    assert jump > 2.5 * step
    inner = out[..., 1 : w // 2 - 3]
    assert inner.std() < ab[..., 1 : w // 2 - 3].std()


def test_default_model_missing_is_a_clear_error(monkeypatch, tmp_path):
    import chromatize.pipeline as p

    monkeypatch.setattr(p, "shipped_model_path", lambda name="default": tmp_path / name)
    with pytest.raises(CheckpointError, match="default"):
        resolve_model(None)
