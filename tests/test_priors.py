"""Image-level priors: histograms of references and palettes over the ab bins."""

from dataclasses import replace

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


def test_local_offset_gives_each_cell_the_colours_of_the_reference_cells_like_it():
    q = len(priors.bins())
    basis = np.zeros((4, q), np.float32)
    basis[np.arange(4), np.arange(4)] = 1  # the features are the first 4 logits
    # A 2 x 2-cell reference: the top row is of kind 0 and red, the bottom of kind 1, blue.
    ref = np.zeros((q, 2, 2), np.float32)
    ref[0, 0], ref[1, 1] = 4, 4
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0], rgb[1] = (200, 30, 30), (30, 40, 200)
    ex = priors.Exemplar.of(ref, rgb, basis)
    uniform = np.full(q, 1 / q)
    red, blue = (int(np.argmin(((priors.bins() - ab) ** 2).sum(1))) for ab in ex.ab[[0, 2]])
    target = np.zeros((q, 4, 6), np.float32)
    target[0, :2], target[1, 2:] = 4, 4  # kind 0 in the top half, kind 1 below
    prior = replace(priors.from_photos([rgb], 1.0), exemplar=ex)
    off = priors.local_offset(target, prior, basis, uniform)
    assert off.shape == (q, 4, 6) and off.dtype == np.float32
    assert (off[red, :2] > off[blue, :2] + 1).all() and (off[blue, 2:] > off[red, 2:] + 1).all()
    # A photo like none of the reference (another scene) takes no colour from any cell:
    # only its histogram, at FALLBACK of the strength, the same everywhere.
    other = np.zeros((q, 4, 6), np.float32)
    other[2, :2], other[3, 2:] = 4, 4
    got = priors.local_offset(other, prior, basis, uniform)
    want = priors.logit_offset(priors.ImagePrior(prior.hist, priors.FALLBACK), uniform)
    assert np.allclose(got, want[:, None, None], atol=1e-5)
    # Strength 0 takes nothing at all.
    assert not priors.local_offset(target, replace(prior, strength=0.0), basis, uniform).any()
