"""Output heads shared by the model families: regression (tanh ab) and classification
(logits over quantised ab bins, decoded by :mod:`chromatize.decoder`)."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

import chromatize.color as color
from chromatize.decoder import BinDecoder


class RegressionHead(nn.Module):
    """Features ``(B, C, h, w)`` -> ``{"ab": (B, 2, h, w)}`` in Lab units (tanh * 110)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 2, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"ab": color.denormalize_ab(torch.tanh(self.conv(x)))}


class ClassificationHead(nn.Module, BinDecoder):
    """Features ``(B, C, h, w)`` -> ``{"logits": (B, Q, h, w), "ab": (B, 2, h, w)}``.

    ``ab`` is decoded as :class:`~chromatize.decoder.BinDecoder` says (the same maths
    ONNX Runtime's numpy decoding runs), with ``temperature`` (0.38 by default, the
    annealed mean of Zhang et al.), ``boost`` (0 = off) and ``gain`` (1 = off). The bins
    ``(Q, 2)``, the training set's ab ``prior`` ``(Q,)`` and the rebalancing
    ``class_weights`` ``(Q,)`` are buffers, so checkpoints carry the statistics they were
    trained with.
    """

    def __init__(self, channels: int, temperature: float = 0.38, grid: float = color.AB_GRID,
                 boost: float = 0.0, gain: float = 1.0):
        super().__init__()
        bins = torch.as_tensor(color.ab_bins(grid), dtype=torch.float32)
        self.register_buffer("bins", bins)
        q = bins.shape[0]
        self.register_buffer("prior", torch.full((q,), 1.0 / q))
        self.register_buffer("class_weights", torch.ones(q))
        self.conv = nn.Conv2d(channels, bins.shape[0], 1)
        self.temperature = temperature
        self.boost = boost
        if isinstance(gain, bool) or not isinstance(gain, (int, float)) or not 0 < gain < math.inf:
            raise ValueError(f"gain must be a positive number, got {gain!r}")
        self.gain = float(gain)

    def feature_basis(self) -> np.ndarray:
        """``(C, Q)`` float32: the pseudo-inverse of the 1 x 1 convolution, so that
        ``basis @ (logits - bias)`` gives back the features it read (exactly, when its C
        weight columns are independent)."""
        w = self.conv.weight.detach().cpu().double()[:, :, 0, 0]
        return torch.linalg.pinv(w).float().numpy()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.conv(x)
        return {"logits": logits, "ab": self.decode(logits)}
