import numpy as np
from conftest import make_color_photo

from chromatize.evaluation import metrics
from chromatize.evaluation.hint_sweep import SWEEP_NS, hint_sweep, paint_hints, sample_hints


def test_sample_hints_are_patch_means_and_nested():
    lab = metrics.to_lab(np.asarray(make_color_photo(32, 40)))
    ab, mask = sample_hints(lab, 0, np.random.default_rng(0))
    assert ab.shape == (32, 40, 2) and ab.dtype == np.float32 and not mask.any()
    ab, mask = sample_hints(lab, 1, np.random.default_rng(0))
    assert mask.sum() == 36
    ys, xs = np.nonzero(mask)
    patch = lab[ys.min():ys.max() + 1, xs.min():xs.max() + 1, 1:]
    assert np.allclose(ab[mask], patch.mean((0, 1)), atol=1e-4)
    _, mask5 = sample_hints(lab, 5, np.random.default_rng(0))
    assert mask5[mask].all() and mask5.sum() > 36


def test_sweep_psnr_rises_with_the_number_of_hints():
    photos = [np.asarray(make_color_photo(48, 48, seed=s)) for s in range(3)]
    result = hint_sweep(paint_hints, photos, size=48)
    assert list(result) == list(SWEEP_NS)
    psnr = list(result.values())
    assert psnr[0] < psnr[3] < psnr[5] < psnr[-1]  # 0 < 5 < 20 < 100 hints
    assert all(b >= a - 0.05 for a, b in zip(psnr, psnr[1:]))
