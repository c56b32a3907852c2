"""Output heads shared by the model families: regression (tanh ab) and classification
(logits over quantised ab bins, decoded by the annealed mean, Zhang et al. 2016)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from chromatize import color


class RegressionHead(nn.Module):
    """Features ``(B, C, h, w)`` -> ``{"ab": (B, 2, h, w)}`` in Lab units (tanh * 110)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 2, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"ab": color.denormalize_ab(torch.tanh(self.conv(x)))}


class ClassificationHead(nn.Module):
    """Features ``(B, C, h, w)`` -> ``{"logits": (B, Q, h, w), "ab": (B, 2, h, w)}``.

    ``ab`` is decoded with :func:`decode_ab` using ``temperature`` (0.38 by default, the
    annealed mean of Zhang et al.); the bins are a buffer, so checkpoints carry them.
    """

    def __init__(self, channels: int, temperature: float = 0.38, grid: float = color.AB_GRID):
        super().__init__()
        bins = torch.as_tensor(color.ab_bins(grid), dtype=torch.float32)
        self.register_buffer("bins", bins)
        self.conv = nn.Conv2d(channels, bins.shape[0], 1)
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.conv(x)
        return {"logits": logits, "ab": decode_ab(logits, self.bins, self.temperature)}


def decode_ab(logits: torch.Tensor, bins: torch.Tensor, temperature: float = 0.38) -> torch.Tensor:
    """Logits ``(B, Q, h, w)`` over ``bins`` ``(Q, 2)`` -> ab ``(B, 2, h, w)`` in Lab units.

    ``temperature`` 1 gives the mean of the distribution, values towards 0 its mode (0
    itself takes the arg-max bin); Zhang et al.'s annealed mean uses 0.38.
    """
    if temperature <= 0:
        idx = logits.argmax(dim=1)  # (B, h, w)
        return bins[idx].permute(0, 3, 1, 2)
    p = F.softmax(logits / temperature, dim=1)
    return torch.einsum("bqhw,qc->bchw", p, bins)
