"""Fast CPU training: cached encoder features, a frozen encoder prefix, bf16, several
sources, and the sparse soft-encoding of the loss."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from chromatize import color
from chromatize.checkpoint import load_checkpoint
from chromatize.models import create_model
from chromatize.training import features, quantize
from chromatize.training.config import ConfigError, load_config
from chromatize.training.data import open_source
from chromatize.training.losses import LOSSES
from chromatize.training.train import Trainer, train

TINY = """
model: {name: effnet_lite0, kwargs: {width: 8}, freeze_encoder_steps: 2, frozen_blocks: 5,
        encoder_lr_scale: 0.5}
data: {train: TRAIN, val: TRAIN, crop: 32, workers: 0, val_limit: 2, feature_cache: CACHE,
       feature_views: 2}
loss: {name: l1}
train: {max_steps: 4, batch_size: 4, lr: 1.0e-3, eval_every: 100, ckpt_every: 2,
        log_every: 1, grid_images: 0, seed: 1}
"""


@pytest.fixture
def cached_yaml(tmp_path: Path, photo_tree: Path) -> Path:
    path = tmp_path / "cached.yaml"
    path.write_text(TINY.replace("TRAIN", str(photo_tree)).replace("CACHE", str(tmp_path / "cache")))
    return path


def config(path: Path, run: Path, *overrides: str):
    return load_config(path, [f"--run_dir={run}", *overrides])


def test_encode_decode_split_is_the_forward_pass() -> None:
    torch.manual_seed(0)
    model = create_model("effnet_lite0_cls", width=8).eval()
    l = torch.rand(2, 1, 64, 96) * 100
    with torch.no_grad():
        maps = model.encode(l)
        torch.testing.assert_close(model.decode(maps)["logits"], model(l)["logits"])
        for blocks, n in ((3, 1), (5, 2), (11, 3), (16, 4)):
            rest = model.encode_rest(maps[:n], blocks)
            for a, b in zip(rest, maps):
                torch.testing.assert_close(a, b)
        with pytest.raises(ValueError, match="frozen_blocks"):
            model.encode_rest(maps[:1], 5)


def test_cached_training_resumes_exactly_and_reuses_the_cache(cached_yaml: Path,
                                                               tmp_path: Path) -> None:
    whole = train(config(cached_yaml, tmp_path / "whole"))
    cache = tmp_path / "cache"
    meta = json.loads((cache / features.CACHE_JSON).read_text())
    assert meta["done"] == meta["photos"] == 6  # the usable photos of photo_tree
    stamp = (cache / "f0.npy").stat().st_mtime_ns
    half = train(config(cached_yaml, tmp_path / "half", "--train.max_steps=3"))
    assert (cache / "f0.npy").stat().st_mtime_ns == stamp  # reused, not rebuilt
    resumed = train(config(cached_yaml, tmp_path / "x"), resume=half)
    a, b = load_file(whole / "model.safetensors"), load_file(resumed / "model.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    assert load_checkpoint(resumed / "model")[1]["step"] == 4


def test_frozen_prefix_stays_and_the_rest_of_the_encoder_trains(cached_yaml: Path,
                                                                 tmp_path: Path) -> None:
    trainer = Trainer(config(cached_yaml, tmp_path / "run", "--model.freeze_encoder_steps=0"))
    enc = trainer.model.encoder
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    trainer.fit()
    after = enc.state_dict()
    prefix = [k for k in before if k.startswith(("_conv_stem", "_bn0"))
              or (k.startswith("_blocks.") and int(k.split(".")[1]) < 5)]
    deep = [k for k in before if k.startswith("_blocks.") and int(k.split(".")[1]) >= 5
            and k.endswith("weight")]
    assert prefix and all(torch.equal(before[k], after[k]) for k in prefix)
    assert any(not torch.equal(before[k], after[k]) for k in deep)


def test_an_interrupted_cache_build_continues(photo_tree: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("effnet_lite0", width=8)
    photos = open_source(str(photo_tree), load_config(None, [f"--data.train={photo_tree}",
                                                            "--run_dir=x", "--train.max_steps=1",
                                                            "--data.crop=32"]).data)

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    args = (photos, 32, 0.1, True, 32, 7)  # 32 views: two photos per encoder pass
    with pytest.raises(KeyboardInterrupt):
        features.build(model, photos, tmp_path / "a", *args[1:], progress=stop)
    assert json.loads((tmp_path / "a" / features.CACHE_JSON).read_text())["done"] == 2
    resumed = features.build(model, photos, tmp_path / "a", *args[1:])
    fresh = features.build(model, photos, tmp_path / "b", *args[1:])
    for x, y in zip([*resumed.feats, resumed.ab], [*fresh.feats, fresh.ab]):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    # Batches: a stream restarted at any sample draws what the whole stream drew.
    stream = iter(features.FeatureBatches(fresh, 5, seed=3))
    first = [next(stream)[1] for _ in range(40)]  # several passes over 192 entries
    later = iter(features.FeatureBatches(fresh, 5, seed=3, start=5 * 37))
    torch.testing.assert_close(next(later)[1], first[37])


def test_several_sources_and_new_settings(photo_tree: Path, tmp_path: Path) -> None:
    base = ["--run_dir=r", "--train.max_steps=1", "--data.crop=32"]
    both = open_source([str(photo_tree / "a"), str(photo_tree / "b")],
                       load_config(None, base + [f"--data.train={photo_tree}"]).data)
    assert len(both.paths) == 6
    for bad, key in (("--train.precision=fp8", "train.precision"),
                     ("--train.max_minutes=0", "train.max_minutes"),
                     ("--data.feature_views=0", "data.feature_views")):
        with pytest.raises(ConfigError, match=key):
            load_config(None, base + [f"--data.train={photo_tree}", bad])


def test_bf16_channels_last_and_a_time_budget(cached_yaml: Path, tmp_path: Path) -> None:
    run = train(config(cached_yaml, tmp_path / "bf16", "--train.precision=bf16",
                       "--train.channels_last=true", "--train.max_steps=1000",
                       "--train.max_minutes=0.02"))
    _, info = load_checkpoint(run / "model")
    assert 0 < info["step"] < 1000  # stopped by the budget, saved
    model, _ = load_checkpoint(run / "model")
    out = model(torch.full((1, 1, 32, 32), 50.0))["ab"]
    assert torch.isfinite(out).all()


def test_sparse_soft_encoding_equals_the_dense_one() -> None:
    bins = torch.as_tensor(color.ab_bins(), dtype=torch.float32)
    gen = torch.Generator().manual_seed(0)
    ab = (torch.rand(2, 2, 24, 24, generator=gen) - 0.5) * 160
    dense = quantize.soft_encode(ab, bins)
    idx, w = quantize.soft_encode_sparse(ab, bins)
    sparse = torch.zeros_like(dense).scatter_(1, idx, w)
    # Equal but where the 5th-nearest bin is a near tie: then it differs, at a weight < 1%.
    assert ((sparse - dense).abs() > 1e-5).float().mean() < 1e-3
    torch.testing.assert_close(sparse, dense, atol=0.01, rtol=0)
    # The loss built on it equals the dense cross-entropy.
    model = create_model("effnet_lite0_cls", width=8)
    loss = LOSSES.create("rebalanced_ce", model=model, rebalance=False)
    logits = torch.randn(2, len(bins), 24, 24, generator=gen)
    want = -(dense * torch.log_softmax(logits, 1)).sum(1).mean()
    torch.testing.assert_close(loss({"logits": logits, "ab": ab}, ab), want, atol=1e-4, rtol=0)


def _train_from_automatic(tmp_path: Path, photo_tree: Path, name: str,
                          kwargs: str = "{width: 8}") -> tuple[torch.nn.Module, Path]:
    """A tiny automatic checkpoint, then model ``name`` (``kwargs``) started from it and
    trained a few steps from cached features with the encoder frozen. Returns (the
    automatic model, the run folder)."""
    from chromatize.checkpoint import save_checkpoint

    torch.manual_seed(0)
    auto = create_model("effnet_lite0_cls", width=8)
    save_checkpoint(tmp_path / "auto", auto, "effnet_lite0_cls", {"width": 8})
    path = tmp_path / f"{name}.yaml"
    path.write_text(TINY.replace("TRAIN", str(photo_tree)).replace("CACHE", str(tmp_path / "cache"))
                    .replace("name: effnet_lite0,", f"name: {name}, init: {tmp_path / 'auto'},")
                    .replace("{width: 8}", kwargs)
                    .replace("freeze_encoder_steps: 2, frozen_blocks: 5,", "freeze_encoder_steps: 100,")
                    .replace("loss: {name: l1}", "loss: {name: rebalanced_ce, kwargs: {rebalance: false}}"))
    return auto, train(config(path, tmp_path / "run", "--data.val=null"))


def test_hint_adapters_train_alone_from_cached_features(tmp_path: Path, photo_tree: Path) -> None:
    """A hint-adapter model starts from an automatic checkpoint, trains from the feature
    cache with simulated hints, and changes nothing but its adapters."""
    auto, run = _train_from_automatic(tmp_path, photo_tree, "effnet_lite0_cls_adapters")
    model, info = load_checkpoint(run / "model")
    assert info["model"]["name"] == "effnet_lite0_cls_adapters"
    before, after = auto.state_dict(), model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(v.abs().sum() > 0 for k, v in after.items() if k.startswith("adapters.") and ".body.2." in k)


def test_global_hint_adapter_trains_alone_from_cached_features(tmp_path: Path,
                                                               photo_tree: Path) -> None:
    """A global-hint model starts from an automatic checkpoint, trains from the feature
    cache with histograms simulated from the cached chroma, and changes only its adapter."""
    auto, run = _train_from_automatic(tmp_path, photo_tree, "effnet_lite0_cls_global")
    model, info = load_checkpoint(run / "model")
    assert info["model"]["name"] == "effnet_lite0_cls_global"
    before, after = auto.state_dict(), model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert any(v.abs().sum() > 0 for k, v in after.items()
               if k.startswith("global_adapter.") and k.endswith(("film.weight", "bias.weight")))


def test_stride2_decoder_trains_from_its_own_cache(tmp_path: Path, photo_tree: Path) -> None:
    """The stride-2 candidate caches the encoder's stride-2 map and targets at stride 2,
    trains from them, and its encoder prefix can train on after the frozen phase."""
    path = tmp_path / "s2.yaml"
    path.write_text(TINY.replace("TRAIN", str(photo_tree)).replace("CACHE", str(tmp_path / "cache"))
                    .replace("name: effnet_lite0,", "name: effnet_lite0_cls_s2,")
                    .replace("{width: 8}", "{width: 8, fine_width: 4}")
                    .replace("loss: {name: l1}", "loss: {name: rebalanced_ce, kwargs: {rebalance: false}}"))
    run = train(config(path, tmp_path / "run", "--data.val=null"))
    meta = json.loads((tmp_path / "cache" / features.CACHE_JSON).read_text())
    assert meta["maps"] == 5
    assert np.load(tmp_path / "cache" / "ab.npy", mmap_mode="r").shape[-2:] == (16, 16)
    assert np.load(tmp_path / "cache" / "f0.npy", mmap_mode="r").shape[-3:] == (16, 16, 16)
    model, _ = load_checkpoint(run / "model")
    out = model.eval()(torch.rand(1, 1, 64, 96) * 100)
    assert out["ab"].shape == (1, 2, 32, 48)
    with torch.no_grad():  # the split still holds with the extra map
        maps = model.encode(torch.rand(1, 1, 64, 64) * 100)
        rest = model.encode_rest(maps[:model.splits[5]], 5)
    assert all(torch.equal(a, b) for a, b in zip(rest, maps))


def test_gan_finetune_trains_decoder_and_critic_from_the_cache(tmp_path: Path,
                                                              photo_tree: Path) -> None:
    """The short GAN fine-tune starts from an automatic checkpoint, updates its decoder and
    its critic from cached features, and leaves the frozen encoder as it was."""
    auto, run = _train_from_automatic(tmp_path, photo_tree, "effnet_lite0_cls_gan",
                                      "{width: 8, d_channels: 4, d_layers: 1}")
    log = (run / "log.csv").read_text()
    model, info = load_checkpoint(run / "model")
    assert info["model"]["name"] == "effnet_lite0_cls_gan"
    before, after = auto.state_dict(), model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("encoder."))
    assert not torch.equal(before["head.conv.weight"], after["head.conv.weight"])
    assert "train_loss" in log


def test_gan_finetune_step_updates_the_decoder_and_the_critic() -> None:
    torch.manual_seed(0)
    model = create_model("effnet_lite0_cls_gan", width=8, d_channels=4, d_layers=1)
    model.encoder.requires_grad_(False)
    with torch.no_grad():
        maps = model.encode(torch.rand(2, 1, 32, 32) * 100)
    ab = torch.randn(2, 2, 8, 8) * 20
    before = {k: v.clone() for k, v in model.state_dict().items()}
    logs = model.cached_train_step(maps, ab, LOSSES.create("rebalanced_ce", model=model, rebalance=False),
                                   model.configure_optimizers(1e-3))
    after = model.state_dict()
    assert set(logs) == {"loss", "loss_g_adv", "loss_d"} and all(np.isfinite(list(logs.values())))
    assert not torch.equal(before["head.conv.weight"], after["head.conv.weight"])
    assert not torch.equal(before["critic.net.0.weight"], after["critic.net.0.weight"])
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("encoder.") and "weight" in k)
