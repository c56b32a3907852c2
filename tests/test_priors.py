"""Image-level priors: histograms of references and palettes over the ab bins."""

import numpy as np
import pytest

from chromatize import color, priors
from chromatize.priors import ImagePrior, PriorError


def test_palette_histogram_peaks_at_its_colours():
    p = priors.from_palette("#c03020,#2040c0:0.5")
    h = p.array()
    assert h.sum() == pytest.approx(1.0)
    ab = color.rgb_to_lab_np(np.array([[0xc0, 0x30, 0x20]]) / 255)[0, 1:]
    nearest = np.argmin(((priors.bins() - ab) ** 2).sum(1))
    assert h[nearest] > 20 / len(h)       # far above uniform
    green = np.argmin(((priors.bins() - [-60, 50]) ** 2).sum(1))
    assert h[green] < 1e-6                # a colour the palette lacks


def test_reference_photo_histogram_and_region(tmp_path):
    img = np.zeros((40, 80, 3), np.uint8)
    img[:, :40] = (200, 30, 30)   # red left half
    img[:, 40:] = (30, 60, 200)   # blue right half
    path = tmp_path / "ref.png"
    from PIL import Image
    Image.fromarray(img).save(path)
    whole = priors.from_photos([str(path)]).array()
    left = priors.from_photos([f"{path}:0,0,0.5,1"]).array()
    red = color.rgb_to_lab_np(np.array([[200, 30, 30]]) / 255)[0, 1:]
    blue = color.rgb_to_lab_np(np.array([[30, 60, 200]]) / 255)[0, 1:]
    ir = np.argmin(((priors.bins() - red) ** 2).sum(1))
    ib = np.argmin(((priors.bins() - blue) ** 2).sum(1))
    assert whole[ir] > 0.01 and whole[ib] > 0.01
    assert left[ir] > 2 * whole[ir] * 0.9 and left[ib] < 1e-6


def test_bad_sources_are_one_line(tmp_path):
    for text in ("#zzzzzz", "", "#123456:0", "#123456:abc"):
        with pytest.raises(PriorError):
            priors.from_palette(text)
    gray = np.full((20, 20), 128, np.uint8)
    with pytest.raises(PriorError, match="colour photo"):
        priors.from_photos([gray])
    with pytest.raises(PriorError):
        ImagePrior((1.0, 2.0))


def test_logit_offset_favours_the_photos_colours():
    p = priors.from_palette("#c03020", strength=1.0)
    uniform = np.full(len(priors.bins()), 1 / len(priors.bins()))
    off = priors.logit_offset(p, uniform)
    assert off.argmax() == p.array().argmax()
    assert np.all(np.isfinite(off))
    assert np.allclose(priors.logit_offset(ImagePrior(p.hist, 0.0), uniform), 0)
