"""The model contract shared by every colorization network.

A model takes raw L* ``(B, 1, H, W)`` in [0, 100] and returns a dict:

* ``"ab"``: ``(B, 2, H / s, W / s)`` a*b* in Lab units, where ``s = model.ab_stride``;
* ``"logits"``: ``(B, Q, H / s, W / s)`` for the classification family (``Q`` ab bins).

``H`` and ``W`` must be multiples of ``model.size_multiple``. Normalisation of L and ab
happens inside the model through :mod:`chromatize.color`, never in the caller.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from chromatize.registry import Registry

MODELS = Registry("model")


class ColorizationModel(nn.Module):
    """Base class: subclasses set ``size_multiple`` and ``ab_stride`` and implement forward."""

    size_multiple: int = 32
    ab_stride: int = 1

    def forward(self, l: torch.Tensor) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def check_input(self, l: torch.Tensor) -> None:
        if l.dim() != 4 or l.shape[1] != 1:
            raise ValueError(f"expected L shaped (B, 1, H, W), got {tuple(l.shape)}")
        h, w = l.shape[-2:]
        m = self.size_multiple
        if h % m or w % m:
            raise ValueError(f"input sides must be multiples of {m}, got {h}x{w}")


def create_model(name: str, **kwargs: Any) -> ColorizationModel:
    """Build the registered model ``name`` with ``kwargs`` (unknown kwargs raise TypeError)."""
    return MODELS.create(name, **kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
