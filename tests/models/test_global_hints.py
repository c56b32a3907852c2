"""The global-hint adapter: no histogram gives its base model exactly, a histogram moves
the colours towards it, and its histograms match the priors' ones."""

from __future__ import annotations

import numpy as np
import torch

from chromatize import priors
from chromatize.models import create_model
from chromatize.models.global_hints import soft_histogram


def _pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    auto = create_model("effnet_lite0_cls", width=8).eval()
    model = create_model("effnet_lite0_cls_global", width=8)
    missing, unexpected = model.load_state_dict(auto.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("global_adapter.") for k in missing)
    return auto, model.eval()


def _red_histogram() -> torch.Tensor:
    return torch.from_numpy(priors.histogram(np.array([[60.0, 50.0]] * 10))).float()


def test_no_histogram_is_the_base_model_exactly() -> None:
    auto, model = _pair()
    adapter = model.global_adapter
    for layer in (adapter.film, adapter.bias, adapter.strength):  # as if trained
        torch.nn.init.normal_(layer.weight, std=0.1)
    l = torch.rand(2, 1, 64, 64) * 100
    hist = torch.stack([_red_histogram(), torch.zeros(len(priors.bins()))])  # 2nd: no hint
    with torch.no_grad():
        want = auto(l)["logits"]
        assert torch.equal(model(l)["logits"], want)
        got = model(l, hist)["logits"]
    assert torch.equal(got[1], want[1])
    assert not torch.allclose(got[0], want[0])


def test_a_histogram_moves_the_colours_towards_it() -> None:
    auto, model = _pair()
    torch.nn.init.constant_(model.global_adapter.strength.bias, 1.0)  # as if trained
    l = torch.rand(1, 1, 64, 64) * 100
    target = torch.tensor([60.0, 50.0])[:, None, None]
    with torch.no_grad():
        before = (auto(l)["ab"][0] - target).norm(dim=0).mean()
        after = (model(l, _red_histogram()[None])["ab"][0] - target).norm(dim=0).mean()
    assert after < before - 5


def test_only_the_adapter_trains_and_the_base_stays_in_eval() -> None:
    _, model = _pair()
    model.train()
    assert not model.smooth[0][1].training and model.global_adapter.training
    opts = model.configure_optimizers(1e-3)
    trained = {id(p) for g in opts[0].param_groups for p in g["params"]}
    assert trained == {id(p) for p in model.global_adapter.parameters()}


def test_soft_histogram_matches_the_priors_histogram() -> None:
    ab = np.random.default_rng(0).normal(0, 30, (400, 2))
    want = priors.histogram(ab)
    got = soft_histogram(torch.from_numpy(ab)[None], torch.from_numpy(priors.bins()))[0]
    assert np.abs(got.numpy() - want).sum() < 0.05


def test_simulated_histograms_are_histograms_and_true_without_shares() -> None:
    torch.manual_seed(0)
    model = create_model("effnet_lite0_cls_global", width=8)
    ab = torch.randn(6, 2, 8, 8) * 30
    hist = model.cached_hint(ab)
    assert hist.shape == (6, len(priors.bins())) and (hist >= 0).all()
    torch.testing.assert_close(hist.sum(1), torch.ones(6))
    plain = create_model("effnet_lite0_cls_global", width=8, partial=0, palette=0,
                         neighbour=0, unrelated=0, noise=0)
    want = soft_histogram(ab.flatten(2).transpose(1, 2), plain.head.bins)
    torch.testing.assert_close(plain.cached_hint(ab), want)


def test_the_cheap_step_without_film_trains_only_the_logit_terms() -> None:
    from chromatize.training.losses import LOSSES

    torch.manual_seed(0)
    model = create_model("effnet_lite0_cls_global", width=8, film=False, train_cells=16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opts = model.configure_optimizers(1e-2)
    model.train()
    loss_fn = LOSSES.create("rebalanced_ce", model=model, rebalance=False)
    with torch.no_grad():
        feats = model.encode(torch.rand(2, 1, 64, 64) * 100)
    info = model.cached_train_step(feats, torch.randn(2, 2, 16, 16) * 30, loss_fn, opts)
    assert np.isfinite(info["loss"])
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("global_adapter.") for k in changed)
    assert not any(k.startswith("global_adapter.film") for k in changed)
