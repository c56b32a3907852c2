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
from chromatize.training import quantize
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


class RebalancedCrossEntropy(nn.Module):
    """Cross-entropy against soft-encoded ab (Zhang et al. 2016), each pixel weighted by
    the class-rebalancing weight of its most likely true bin.

    ``out["logits"]`` is ``(B, Q, H/s, W/s)``; the target ab is area-downsampled to match,
    then spread over its nearest bins (:func:`chromatize.training.quantize.soft_encode`). The bins
    and weights are read from the model's classification head at each call, so they
    follow the model across devices.
    """

    def __init__(self, head: nn.Module, neighbours: int = 5, sigma: float = 5.0,
                 rebalance: bool = True, l1: float = 0.0) -> None:
        super().__init__()
        self._head = [head]  # a plain list: the head's buffers belong to the model, not here
        self.neighbours, self.sigma, self.rebalance, self.l1 = neighbours, sigma, rebalance, l1

    def forward(self, out: dict[str, torch.Tensor], target_ab: torch.Tensor) -> torch.Tensor:
        head = self._head[0]
        logits = out["logits"].float()
        idx, wts = quantize.soft_encode_sparse(target_at(target_ab, logits.shape[-2:]), head.bins,
                                               self.neighbours, self.sigma)
        # -sum_q t_q log softmax(z)_q = logsumexp(z) - sum_k w_k z_{idx_k}: the dense
        # target and log-softmax over all Q bins are never materialised.
        ce = torch.logsumexp(logits, dim=1) - (wts * logits.gather(1, idx)).sum(dim=1)  # (B, h, w)
        if self.rebalance:
            ce = ce * head.class_weights[idx[:, 0]]
        loss = ce.mean()
        if self.l1:
            # On the decoded (annealed-mean) colour: what the user sees, not just the bins.
            ab = target_at(target_ab, out["ab"].shape[-2:])
            loss = loss + self.l1 * F.l1_loss(color.normalize_ab(out["ab"]), color.normalize_ab(ab))
        return loss


@LOSSES.register("rebalanced_ce")
def rebalanced_ce(model: ColorizationModel | None = None, prior: str | None = None,
                  rebalance: bool = True, lam: float = 0.5, neighbours: int = 5,
                  sigma: float = 5.0, l1: float = 0.0) -> RebalancedCrossEntropy:
    """Classification loss for models with a ``ClassificationHead``.

    ``prior``: a JSON file written by ``chromatize ab-prior TRAIN_DIR`` (the training set's
    ab distribution). Its rebalancing weights (mixed with uniform by ``lam``) are stored
    in the model's head, so the checkpoint carries them. ``rebalance=False`` trains
    without rebalancing (the prior is still recorded when given). ``l1`` > 0 adds that
    weight times the L1 error of the decoded (annealed-mean) ab, normalised.
    """
    head = model.classification_head() if model is not None else None
    if head is None:
        raise ValueError("loss rebalanced_ce needs a model with a classification head "
                         "(e.g. effnet_lite0_cls)")
    if prior is not None:
        p = quantize.read_prior(prior, head.bins.cpu().numpy())
        w = quantize.rebalance_weights(p, head.bins.cpu().numpy(), lam=lam)
        head.prior.copy_(torch.as_tensor(p, dtype=head.prior.dtype))
        head.class_weights.copy_(torch.as_tensor(w, dtype=head.class_weights.dtype))
    elif rebalance:
        raise ValueError("loss rebalanced_ce: set loss.kwargs.prior to a file made by "
                         "`chromatize ab-prior TRAIN_DIR -o prior.json`, or rebalance: false")
    return RebalancedCrossEntropy(head, neighbours, sigma, rebalance, l1)
