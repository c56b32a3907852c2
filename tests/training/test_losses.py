"""Loss registry: L1, L2, smooth L1 on normalised ab, at the model's ab resolution."""

from __future__ import annotations

import pytest
import torch

from chromatize import color
from chromatize.training.losses import LOSSES
from chromatize.models import create_model


def test_registered() -> None:
    assert {"l1", "l2", "smooth_l1"} <= set(LOSSES.names())


@pytest.mark.parametrize("name", ["l1", "l2", "smooth_l1"])
def test_zero_at_truth_and_positive_elsewhere(name: str) -> None:
    loss = LOSSES.create(name, model=None)
    ab = torch.randn(2, 2, 8, 8) * 30
    assert loss({"ab": ab}, ab).item() == 0
    assert loss({"ab": ab + 11}, ab).item() > 0


def test_values_in_normalised_units() -> None:
    ab = torch.zeros(1, 2, 4, 4)
    pred = {"ab": torch.full_like(ab, color.AB_SCALE / 2)}  # 0.5 in network units
    assert LOSSES.create("l1")(pred, ab).item() == pytest.approx(0.5)
    assert LOSSES.create("l2")(pred, ab).item() == pytest.approx(0.25)
    assert LOSSES.create("smooth_l1", beta=0.1)(pred, ab).item() == pytest.approx(0.45)


def test_target_is_area_downsampled_to_strided_output() -> None:
    model = create_model("effnet_lite0", width=8)
    assert model.ab_stride == 4
    target = torch.zeros(1, 2, 8, 8)
    target[..., :4, :4] = 40.0  # one stride-4 cell at 40, three at 0
    pred = {"ab": torch.tensor([[[[40.0, 0], [0, 0]]] * 2])}
    loss = LOSSES.create("l1", model=model)
    assert loss(pred, target).item() == pytest.approx(0, abs=1e-7)
    loss(pred | {"ab": pred["ab"].requires_grad_()}, target).backward()


def test_unknown_loss_lists_known() -> None:
    with pytest.raises(KeyError, match="unknown loss .nope.; known: .*smooth_l1"):
        LOSSES.create("nope")
