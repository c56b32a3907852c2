"""Training losses, built by name from :data:`LOSSES`.

A factory is called as ``LOSSES.create(name, model=model, **kwargs)`` and returns an
``nn.Module`` whose ``forward(out, target_ab)`` takes the model's output dict and the true
a*b* ``(B, 2, H, W)`` in Lab units at the crop's resolution, and returns a scalar.
``model`` lets a loss read what the network carries (e.g. its ab bins and class weights);
the regression losses here only read its ``ab_stride``.

Adding a loss: a factory decorated with ``@LOSSES.register("name")``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from chromatize import color
from chromatize.models import ColorizationModel
from chromatize.registry import Registry

LOSSES = Registry("loss")


def target_at(ab: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """True ab ``(B, 2, H, W)`` area-averaged to ``size`` (the model's ab resolution)."""
    if tuple(ab.shape[-2:]) == tuple(size):
        return ab
    return F.adaptive_avg_pool2d(ab, size)


class RegressionLoss(nn.Module):
    """A pointwise loss on normalised ab (``color.normalize_ab``), averaged over pixels.

    ``out["ab"]`` is ``(B, 2, H/s, W/s)``; the target is area-downsampled to match when
    the model predicts chroma at a stride ``s > 1``.
    """

    def __init__(self, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, out: dict[str, torch.Tensor], target_ab: torch.Tensor) -> torch.Tensor:
        pred = out["ab"]
        target = target_at(target_ab, pred.shape[-2:])
        return self.fn(color.normalize_ab(pred), color.normalize_ab(target))


@LOSSES.register("l1")
def l1(model: ColorizationModel | None = None) -> RegressionLoss:
    """Mean absolute error (the seed's L1 run)."""
    return RegressionLoss(F.l1_loss)


@LOSSES.register("l2")
def l2(model: ColorizationModel | None = None) -> RegressionLoss:
    """Mean squared error (the seed's L2 run)."""
    return RegressionLoss(F.mse_loss)


@LOSSES.register("smooth_l1")
def smooth_l1(model: ColorizationModel | None = None, beta: float = 0.05) -> RegressionLoss:
    """Huber-like: quadratic below ``beta`` (normalised units, 0.05 = 5.5 Lab units)."""
    return RegressionLoss(lambda p, t: F.smooth_l1_loss(p, t, beta=beta))
