"""Training data: scanning, gray/corrupt filtering, crops, Lab, reproducible order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from chromatize import color
from chromatize.training.config import DataConfig
from chromatize.training.data import (DataError, PhotoCrops, StreamSampler, center_crops, random_crop,
                             scan_photos, train_loader)
from PIL import Image


def test_scan_drops_gray_and_corrupt(photo_tree: Path) -> None:
    photos = scan_photos(str(photo_tree), min_chroma=4.0)
    assert len(photos.paths) == 6  # found recursively
    assert (photos.skipped_gray, photos.skipped_unreadable) == (1, 1)
    assert "broken.jpg" in photos.unreadable[0]
    assert photos.summary()["count"] == 6


def test_scan_of_a_path_list_and_cache(photo_tree: Path, tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("photos/a/p1.png\n# a comment\nphotos/b/deep/p0.png\n")
    photos = scan_photos(str(listing), min_chroma=4.0, cache_short=20)
    assert [p.name for p in photos.paths] == ["p1.png", "p0.png"]
    assert photos.images is not None and min(photos.images[0].shape[:2]) == 20


def test_no_usable_photo_is_a_clear_error(tmp_path: Path) -> None:
    Image.new("RGB", (32, 32), (128, 128, 128)).save(tmp_path / "flat.png")
    with pytest.raises(DataError, match="no usable colour photo.*1 gray"):
        scan_photos(str(tmp_path), min_chroma=4.0)
    with pytest.raises(DataError, match="not a folder"):
        scan_photos(str(tmp_path / "missing"), min_chroma=4.0)


def test_random_crop_keeps_aspect_and_flips() -> None:
    # Left half red, right half blue: a crop covering the whole height of a 2:1 image
    # (scale 1) shows the aspect was kept; a flip swaps the sides.
    rgb = np.zeros((32, 64, 3), np.uint8)
    rgb[:, :32, 0] = 255
    rgb[:, 32:, 2] = 255
    im = Image.fromarray(rgb)
    sides = set()
    for seed in range(20):
        out = random_crop(im, 32, 0.0, True, np.random.default_rng(seed))
        assert out.shape == (32, 32, 3)
        sides.add((out[:, 0, 0].mean() > 128, out[:, -1, 2].mean() > 128))
    assert len(sides) > 1  # different windows / flips


def test_samples_are_lab_and_reproducible(photo_tree: Path) -> None:
    photos = scan_photos(str(photo_tree), min_chroma=4.0)
    ds = PhotoCrops(photos, crop=32, scale_jitter=0.25, seed=3)
    l, ab = ds[(2, 0)]
    assert l.shape == (1, 32, 32) and ab.shape == (2, 32, 32)
    assert l.dtype == ab.dtype == torch.float32
    assert 0 <= l.min() and l.max() <= 100
    assert torch.equal(ds[(2, 0)][1], ab)  # same key, same crop
    assert not torch.equal(ds[(2, 1)][1], ab)  # another epoch, another crop
    rgb = color.lab_to_rgb(torch.cat([l, ab]))
    assert rgb.std() > 0.05


def test_sampler_resumes_mid_stream_and_splits_ranks() -> None:
    full = StreamSampler(10, seed=1)
    stream = [k for _, k in zip(range(25), full)]
    assert sorted(i for i, e in stream if e == 0) == list(range(10))
    later = StreamSampler(10, seed=1, start=13)
    assert [k for _, k in zip(range(12), later)] == stream[13:]
    ranks = [{k[0] for _, k in zip(range(5), StreamSampler(10, 1, r, 2))} for r in range(2)]
    assert not ranks[0] & ranks[1] and len(ranks[0] | ranks[1]) == 10


@pytest.mark.parametrize("workers", [0, 2])
def test_loader_batches_do_not_depend_on_workers(photo_tree: Path, workers: int) -> None:
    photos = scan_photos(str(photo_tree), min_chroma=4.0, cache_short=40)
    cfg = DataConfig(train=str(photo_tree), crop=32, workers=workers, scale_jitter=0.2)
    l, ab = next(iter(train_loader(photos, cfg, batch_size=4, seed=5)))
    ref_l, ref_ab = next(iter(train_loader(photos, DataConfig(train="x", crop=32, workers=0,
                                                               scale_jitter=0.2), 4, seed=5)))
    assert l.shape == (4, 1, 32, 32) and ab.shape == (4, 2, 32, 32)
    assert torch.equal(l, ref_l) and torch.equal(ab, ref_ab)


def test_center_crops(photo_tree: Path) -> None:
    photos = scan_photos(str(photo_tree), min_chroma=4.0)
    l, ab = center_crops(photos, 32, limit=4)
    assert l.shape == (4, 1, 32, 32) and ab.shape == (4, 2, 32, 32)


@pytest.mark.filterwarnings("ignore:DecodingError")  # the broken file, skipped as it should be
def test_webdataset_shards(photo_tree: Path, tmp_path: Path) -> None:
    import tarfile

    shard = tmp_path / "shard-000.tar"
    with tarfile.open(shard, "w") as tar:
        for i, path in enumerate(sorted(photo_tree.rglob("*.*"))):
            tar.add(path, arcname=f"{i:04d}{path.suffix}")
    cfg = DataConfig(train=str(shard), crop=32, workers=0)
    loader = train_loader(str(shard), cfg, batch_size=4, seed=0)
    batches = iter(loader)
    for _ in range(3):  # the stream cycles over the shard, skipping the gray and broken files
        l, ab = next(batches)
        assert l.shape == (4, 1, 32, 32) and ab.shape == (4, 2, 32, 32)
        assert ab.abs().amax(dim=(1, 2, 3)).min() > 5  # no gray photo got through


def test_workers_leave_signals_to_the_trainer() -> None:
    import signal

    from chromatize.training.data import leave_signals_to_trainer

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        leave_signals_to_trainer(0)
        assert all(signal.getsignal(s) is signal.SIG_IGN for s in old)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
