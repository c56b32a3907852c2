"""data.device_cache: crops cut on the training device match the loader's crops."""

import numpy as np
import pytest
import torch

from chromatize.training import data as D


def _photos() -> D.PhotoSet:
    imgs = []
    for i, (h, w) in enumerate([(176, 200), (176, 176), (230, 176), (190, 190)]):
        y, x = np.mgrid[:h, :w]
        imgs.append(np.stack([128 + 100 * np.sin(x / 17 + i), 128 + 100 * np.cos(y / 23),
                              128 + 60 * np.sin((x + y) / 31)], -1).astype(np.uint8))
    return D.PhotoSet("mem", [f"p{i}" for i in range(4)], imgs, [176] * 4)


def test_device_crops_cut_the_loaders_windows():
    photos = _photos()
    crops = D.PhotoCrops(photos, 160, 0.1, True, seed=3)
    batches = D.DeviceCrops(photos, 160, 0.1, True, 4, 3, torch.device("cpu"))
    keys = iter(D.StreamSampler(4, 3))
    for _ in range(3):
        l, ab = next(batches)
        assert l.shape == (4, 1, 160, 160) and ab.shape == (4, 2, 160, 160)
        for j in range(4):
            l2, ab2 = crops[next(keys)]
            # the same window, resampled by grid_sample instead of Pillow
            assert (l[j] - l2).abs().mean() < 0.2 and (ab[j] - ab2).abs().mean() < 0.4


def test_device_crops_resume_exactly():
    photos = _photos()
    run = D.DeviceCrops(photos, 64, 0.1, True, 3, 0, torch.device("cpu"))
    first = [next(run) for _ in range(4)]
    resumed = D.DeviceCrops(photos, 64, 0.1, True, 3, 0, torch.device("cpu"), start=2 * 3)
    for want in first[2:]:
        got = next(resumed)
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_device_crops_need_cached_photos():
    photos = _photos()
    photos.images = None
    with pytest.raises(D.DataError, match="cache"):
        D.DeviceCrops(photos, 64, 0.0, True, 2, 0, torch.device("cpu"))
