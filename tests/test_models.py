import pytest
import torch

from chromatize.models import MODELS, create_model
from chromatize.models.base import count_parameters

# Keyword sets that keep every registered family tiny on the CPU.
TINY = {"unet_thesis": {"base": 4, "depth": 2}, "unet_small": {"base": 4},
        "effnet_lite0": {"width": 8}, "effnet_lite0_cls": {"width": 8},
        "effnet_lite0_cls_fusion": {"width": 8}}


def test_unet_thesis_parameter_count():
    assert count_parameters(create_model("unet_thesis")) == 31_389_634


@pytest.mark.parametrize("name", MODELS.names())
def test_forward_backward_shapes(name):
    torch.manual_seed(0)
    model = create_model(name, **TINY.get(name, {}))
    l = torch.rand(2, 1, 64, 96) * 100
    out = model(l)
    s = model.ab_stride
    assert out["ab"].shape == (2, 2, 64 // s, 96 // s)
    assert torch.isfinite(out["ab"]).all() and out["ab"].abs().max() <= 128
    loss = out["ab"].abs().mean() + (out["logits"].mean() if "logits" in out else 0)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
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
