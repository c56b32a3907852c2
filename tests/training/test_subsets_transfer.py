"""Nested subsets of the training photos sharing one feature cache (data.limit /
data.subset_seed), AdaBN (model.adabn) and L2-SP (model.l2sp)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from chromatize.checkpoint import load_checkpoint
from chromatize.training import features, transfer
from chromatize.training.config import ConfigError, load_config
from chromatize.training.data import DataError, nested_subset, scan_photos
from chromatize.training.train import TrainError, Trainer, train

TINY = """
model: {name: effnet_lite0, kwargs: {width: 8}, freeze_encoder_steps: 100}
data: {train: TRAIN, val: null, crop: 32, workers: 0, feature_cache: CACHE, feature_views: 2}
loss: {name: l1}
train: {max_steps: 3, batch_size: 4, lr: 1.0e-3, eval_every: 100, ckpt_every: 2,
        log_every: 1, grid_images: 0, seed: 1}
"""


@pytest.fixture
def tiny_yaml(tmp_path: Path, photo_tree: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.replace("TRAIN", str(photo_tree)).replace("CACHE", str(tmp_path / "cache")))
    return path


def config(path: Path, run: Path, *overrides: str):
    return load_config(path, [f"--run_dir={run}", *overrides])


def test_subsets_are_nested_and_seeded(photo_tree: Path) -> None:
    photos = scan_photos(str(photo_tree), 4.0)
    pool, four = nested_subset(photos, 4, seed=3)
    _, two = nested_subset(photos, 2, seed=3)
    assert sorted(pool.paths) == sorted(photos.paths) and len(four.paths) == 4
    assert two.paths == four.paths[:2] == pool.paths[:2]
    orders = {tuple(nested_subset(photos, None, seed=s)[0].paths) for s in range(6)}
    assert len(orders) > 1  # the seed decides the order
    assert nested_subset(photos, None, None)[1].paths == photos.paths
    with pytest.raises(DataError, match="data.limit 7 exceeds the 6"):
        nested_subset(photos, 7, seed=0)


def test_subsets_share_one_cache_and_read_its_prefix(tiny_yaml: Path, tmp_path: Path) -> None:
    small = Trainer(config(tiny_yaml, tmp_path / "small", "--data.limit=2", "--data.subset_seed=5"))
    cache = tmp_path / "cache"
    meta = json.loads((cache / features.CACHE_JSON).read_text())
    assert meta["photos"] == 6 and meta["done"] < 6  # the pool's order, built as far as needed
    assert len(small.features) == 2 * 2 and len(small.train_data.paths) == 2
    first = np.asarray(small.features.ab[:4]).copy()
    small.fit()
    whole = Trainer(config(tiny_yaml, tmp_path / "whole", "--data.subset_seed=5"))
    meta_after = json.loads((cache / features.CACHE_JSON).read_text())
    assert meta_after["key"] == meta["key"] and meta_after["done"] == 6  # continued, not rebuilt
    assert len(whole.features) == 12
    np.testing.assert_array_equal(np.asarray(whole.features.ab[:4]), first)
    _, info = load_checkpoint(small.run_dir / "model")
    assert info["data"]["train"]["count"] == 2
    with pytest.raises(TrainError, match="data.limit 9 exceeds"):
        Trainer(config(tiny_yaml, tmp_path / "x", "--data.limit=9"))
    with pytest.raises(ConfigError, match="data.limit"):
        config(tiny_yaml, tmp_path / "x", "--data.limit=0")


def test_adapt_batchnorm_takes_plain_averages_and_restores_modes() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 1), nn.BatchNorm2d(3, momentum=0.01)).eval()
    batches = [torch.randn(4, 1, 5, 5) * 3 + 2 for _ in range(3)]
    seen = transfer.adapt_batchnorm(net, batches, net)
    bn = net[1]
    with torch.no_grad():
        acts = [net[0](x) for x in batches]
    want_mean = torch.stack([a.mean((0, 2, 3)) for a in acts]).mean(0)
    want_var = torch.stack([a.var((0, 2, 3), unbiased=True) for a in acts]).mean(0)
    assert seen == 12 and not bn.training and bn.momentum == 0.01
    torch.testing.assert_close(bn.running_mean, want_mean)
    torch.testing.assert_close(bn.running_var, want_var)


def test_adabn_run_changes_encoder_statistics_only(tiny_yaml: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    plain = Trainer(config(tiny_yaml, tmp_path / "plain", "--data.feature_cache=null"))
    adapted = Trainer(config(tiny_yaml, tmp_path / "adabn", "--data.feature_cache=null",
                             "--model.adabn=8"))
    a, b = plain.model.encoder.state_dict(), adapted.model.encoder.state_dict()
    stats = [k for k in a if k.endswith(("running_mean", "running_var"))]
    assert stats and all(not torch.equal(a[k], b[k]) for k in stats)
    assert all(torch.equal(a[k], b[k]) for k in a if k.endswith("weight"))
    assert all(m.momentum == 0.01 for m in adapted.model.encoder.modules()
               if isinstance(m, nn.BatchNorm2d))


def test_l2sp_distance_and_pull(tiny_yaml: Path, tmp_path: Path) -> None:
    net = nn.Linear(3, 2)
    anchor = transfer.L2SP(net)
    assert anchor.distance(net).item() == 0
    with torch.no_grad():
        net.weight.add_(1.0)
    assert anchor.distance(net).item() == pytest.approx(6.0)
    net.weight.requires_grad_(False)
    assert anchor.distance(net).item() == 0  # frozen weights are not pulled

    args = ("--model.freeze_encoder_steps=0", "--model.frozen_blocks=11", "--train.max_steps=6")
    drift = {}
    for alpha in (0, 1000):
        trainer = Trainer(config(tiny_yaml, tmp_path / f"a{alpha}", *args, f"--model.l2sp={alpha}"))
        start = transfer.L2SP(trainer.model.encoder)
        trainer.fit()
        trainer.model.encoder.requires_grad_(True)
        drift[alpha] = start.distance(trainer.model.encoder).item()
    assert 0 < drift[1000] < drift[0] / 2


def test_l2sp_run_resumes_exactly(tiny_yaml: Path, tmp_path: Path) -> None:
    args = ("--model.freeze_encoder_steps=1", "--model.frozen_blocks=11", "--model.l2sp=100",
            "--train.max_steps=4")
    whole = train(config(tiny_yaml, tmp_path / "whole", *args))
    half = train(config(tiny_yaml, tmp_path / "half", *args, "--train.max_steps=3"))
    resumed = train(config(tiny_yaml, tmp_path / "x", *args), resume=half)
    a, b = load_file(whole / "model.safetensors"), load_file(resumed / "model.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    with pytest.raises(ConfigError, match="model.l2sp"):
        Trainer(config(tiny_yaml, tmp_path / "gan", "--model.name=effnet_lite0_cls_gan",
                       "--model.l2sp=1"))
