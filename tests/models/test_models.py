import math

import pytest
import torch

from chromatize.models import MODELS, create_model
from chromatize.models.base import count_parameters

# Keyword sets that keep every registered family tiny on the CPU.
TINY = {"unet_thesis": {"base": 4, "depth": 2}, "unet_small": {"base": 4},
        "effnet_lite0": {"width": 8}, "effnet_lite0_cls": {"width": 8},
        "effnet_lite0_cls_fusion": {"width": 8}, "effnet_lite0_hints": {"width": 8},
        "effnet_lite0_cls_hints": {"width": 8}, "effnet_lite2_cls": {"width": 8},
        "effnet_lite0_cls_adapters": {"width": 8}, "effnet_lite0_cls_s2": {"width": 8, "fine_width": 4},
        "effnet_lite0_cls_gan": {"width": 8, "d_channels": 4},
        "pix2pix": {"generator": "unet_tiny", "d_channels": 4}}


def test_unet_thesis_parameter_count():
    assert count_parameters(create_model("unet_thesis")) == 31_389_634


@pytest.mark.parametrize("name", MODELS.names())
def test_forward_backward_shapes(name):
    torch.manual_seed(0)
    model = create_model(name, **TINY.get(name, {}))
    l = torch.rand(2, 1, 64, 96) * 100
    if model.hints:  # with hints, so that every hint input gets a gradient
        mask = (torch.rand(2, 1, 64, 96) < 0.05).float()
        out = model(l, torch.randn(2, 2, 64, 96) * 30 * mask, mask)
    else:
        out = model(l)
    s = model.ab_stride
    assert out["ab"].shape == (2, 2, 64 // s, 96 // s)
    assert torch.isfinite(out["ab"]).all() and out["ab"].abs().max() <= 128
    loss = out["ab"].abs().mean() + (out["logits"].mean() if "logits" in out else 0)
    loss.backward()
    # A GAN's critic takes no part in forward; it is checked by its train_step test.
    net = getattr(model, "generator", model)
    grads = [p.grad for n, p in net.named_parameters() if p.requires_grad and not n.startswith("critic.")]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", MODELS.names())
def test_rejects_bad_sizes(name):
    model = create_model(name, **TINY.get(name, {}))
    with pytest.raises(ValueError):
        model(torch.rand(1, 1, 33, 64) * 100)


def test_unknown_model_and_kwargs_fail_loudly():
    with pytest.raises(KeyError, match="unknown model"):
        create_model("nope")
    with pytest.raises(TypeError):
        create_model("unet_tiny", nonsense=1)


@pytest.mark.parametrize("name", [n for n in MODELS.names()
                                  if create_model(n, **TINY.get(n, {})).owns_updates])
def test_own_train_step_updates_weights(name):
    from chromatize.training.losses import LOSSES

    torch.manual_seed(0)
    model = create_model(name, **TINY.get(name, {}))
    opts = model.configure_optimizers(1e-3) or [torch.optim.Adam(model.parameters(), 1e-3)]
    before = [p.detach().clone() for p in model.parameters()]
    l, ab = torch.rand(2, 1, 64, 64) * 100, torch.randn(2, 2, 64, 64) * 20
    logs = model.train_step(l, ab, LOSSES.create("l1", model=model), opts)
    assert all(torch.isfinite(torch.tensor(v)) for v in logs.values())
    changed = [not torch.equal(b, p) for b, p in zip(before, model.parameters())]
    assert sum(changed) > len(changed) // 2


def test_hint_model_uses_hints():
    torch.manual_seed(0)
    model = create_model("effnet_lite0_hints", width=8).eval()
    for p in (model.hint_stem.weight, model.hint_fuse.weight):
        torch.nn.init.normal_(p)  # as after training; zero at start
    l = torch.rand(1, 1, 64, 64) * 100
    hint_ab = torch.zeros(1, 2, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    no_hints = model(l)["ab"]
    assert torch.equal(no_hints, model(l, hint_ab, mask)["ab"])
    hint_ab[..., 20:26, 20:26] = 60
    mask[..., 20:26, 20:26] = 1
    assert not torch.allclose(no_hints, model(l, hint_ab, mask)["ab"])


def test_hint_simulation():
    from chromatize.models.efficientnet import simulate_hints

    torch.manual_seed(0)
    ab = torch.randn(64, 2, 32, 32)
    hint_ab, mask = simulate_hints(ab)
    hinted = mask.flatten(1).amax(1)
    assert 0 < hinted.sum() < 64  # some images get hints, some (about 1/8) none
    assert torch.all(hint_ab[mask.expand_as(hint_ab) == 0] == 0)


def test_pix2pix_trains_stably_on_the_cpu():
    from chromatize.training.losses import LOSSES

    torch.manual_seed(0)
    model = create_model("pix2pix", generator="unet_tiny", d_channels=8)
    opts = model.configure_optimizers(2e-3)
    loss_fn = LOSSES.create("l1", model=model)
    # A learnable mapping: ab is a smooth function of L.
    l = torch.rand(4, 1, 32, 32) * 100
    ab = torch.cat([(l - 50) * 0.6, (50 - l) * 0.3], dim=1)
    logs = [model.train_step(l, ab, loss_fn, opts) for _ in range(60)]
    assert all(all(math.isfinite(v) for v in step.values()) for step in logs)
    assert all(step["loss_d"] < 1.0 for step in logs[10:])  # the critic never blows up
    first, last = logs[0]["loss"], sum(s["loss"] for s in logs[-5:]) / 5
    assert last < 0.6 * first


def test_simulated_hints_carry_patch_means():
    from chromatize.models.efficientnet import simulate_hints

    torch.manual_seed(0)
    ab = torch.zeros(32, 2, 40, 50)
    ab[:, 0, :, 25:] = 30.0  # two flat halves: every hint is 0 or 30, or a mix at the seam
    ab[:, 1] = -12.5
    hint_ab, mask = simulate_hints(ab, p=1 / 4, max_hints=16, max_patch=5)
    assert hint_ab.shape == ab.shape and mask.shape == (32, 1, 40, 50)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert 0 < (mask.flatten(1).sum(1) == 0).sum() < 32  # some images get no hint
    on = mask[:, 0] > 0
    assert torch.all(hint_ab[:, 1][on] == -12.5) and torch.all(hint_ab[:, :, ~on.any(0)] == 0)
    a = hint_ab[:, 0][on]
    assert torch.all((a >= 0) & (a <= 30))
    # a hint far from the seam carries the exact colour of its half
    assert torch.all(hint_ab[:, 0, :, :18][on[:, :, :18]] == 0)
    assert torch.all(hint_ab[:, 0, :, 31:][on[:, :, 31:]] == 30)


def test_lite2_encoder_matches_the_published_shapes():
    model = create_model("effnet_lite2_cls", width=8)
    assert model.splits == {4: 1, 7: 2, 15: 3, 21: 4}
    feats = model.encode(torch.rand(1, 1, 64, 64) * 100)
    assert [f.shape[1] for f in feats] == [24, 48, 120, 352]
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2]


def test_hint_adapters_leave_the_automatic_model_unchanged():
    torch.manual_seed(0)
    auto = create_model("effnet_lite0_cls", width=8).eval()
    model = create_model("effnet_lite0_cls_adapters", width=8)
    missing, unexpected = model.load_state_dict(auto.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("adapters.") for k in missing)
    for adapter in model.adapters:  # as if trained: the adapters now change the features
        torch.nn.init.normal_(adapter.body[-1].weight, std=0.1)
    model.train()  # only the adapters train; the frozen model's batch norms stay in eval
    assert not model.smooth[0][1].training and model.adapters[0].training
    l = torch.rand(2, 1, 64, 64) * 100
    mask = torch.zeros(2, 1, 64, 64)
    mask[0, :, 8:14, 8:14] = 1  # a hint on the first photo only
    hint_ab = torch.full((2, 2, 64, 64), 40.0) * mask
    with torch.no_grad():
        want = auto(l)["logits"]
        assert torch.equal(model(l)["logits"], want)  # no hints: the automatic output
        got = model(l, hint_ab, mask)["logits"]
    assert torch.equal(got[1], want[1])  # the photo without a hint is untouched
    assert not torch.allclose(got[0], want[0])
    opts = model.configure_optimizers(1e-3)
    trained = {id(p) for g in opts[0].param_groups for p in g["params"]}
    assert trained == {id(p) for p in model.adapters.parameters()}
    assert not any(p.requires_grad for n, p in model.named_parameters() if not n.startswith("adapters."))


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_declares_the_contract(name):
    """What the pipeline and the trainer ask a model is declared by the base class, and
    consistent with what the model does."""
    model = create_model(name, **TINY.get(name, {})).eval()
    head = model.classification_head()
    caps = model.capabilities()
    assert caps == {"classification": head is not None, "hints": bool(model.hints)}
    if model.caches_features:
        l = torch.rand(1, 1, 64, 64) * 100
        with torch.no_grad():
            direct, split = model(l), model.decode(model.encode(l))
        torch.testing.assert_close(split["ab"], direct["ab"])
    if model.has_encoder:
        assert model.encoder_module() is not None
    else:
        assert model.encoder_module() is None
        with pytest.raises(NotImplementedError):
            model.encode(torch.zeros(1, 1, 64, 64))
