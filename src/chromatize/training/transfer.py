"""Carrying an ImageNet encoder over to gray photos: AdaBN and L2-SP.

The pretrained encoder's batch-norm statistics were measured on colour ImageNet photos,
while a colorizer feeds it gray ones (``model.encoder_input``). **AdaBN** (Li et al. 2016,
"Revisiting batch normalization for practical domain adaptation") re-estimates them on
the new inputs without touching a weight: :func:`adapt_batchnorm`
(``model.adabn``). **L2-SP** (Li et al. 2018, "Explicit inductive bias for transfer
learning") lets encoder weights train but pulls them towards their starting values with
``(alpha / 2) * ||w - w_start||^2``, instead of towards zero as weight decay does:
:class:`L2SP` (``model.l2sp``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


@torch.no_grad()
def adapt_batchnorm(module: nn.Module, batches: Iterable[torch.Tensor],
                    forward: Callable[[torch.Tensor], object]) -> int:
    """Replace the running mean and variance of every batch-norm layer of ``module`` by
    their plain averages over ``batches`` (each passed to ``forward``, which must run
    ``module``), without gradients. Weights, momenta and train/eval modes are left as
    they were. Returns the number of samples seen (0 leaves the statistics reset)."""
    norms = [m for m in module.modules() if isinstance(m, _BatchNorm)]
    saved = [(m.momentum, m.training) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches, not an EMA
        m.train()
    seen = 0
    try:
        for x in batches:
            forward(x)
            seen += len(x)
    finally:
        for m, (momentum, training) in zip(norms, saved):
            m.momentum = momentum
            m.train(training)
    return seen


class L2SP(nn.Module):
    """The starting values of a module's parameters (buffers, so they travel with the
    resume state) and the squared distance of the parameters from them."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        for name, p in module.named_parameters():
            self.register_buffer(name.replace(".", "__"), p.detach().clone())

    def distance(self, module: nn.Module) -> torch.Tensor:
        """``sum ||w - w_start||^2`` over the parameters of ``module`` that train now
        (``requires_grad``); a 0-d tensor, 0 when none does."""
        start = dict(self.named_buffers())
        terms = [(p - start[name.replace(".", "__")]).square().sum()
                 for name, p in module.named_parameters() if p.requires_grad]
        return torch.stack(terms).sum() if terms else torch.zeros(())


__all__ = ["L2SP", "adapt_batchnorm"]
