"""Output heads shared by the model families: regression (tanh ab) and classification
(logits over quantised ab bins, decoded by the annealed mean, Zhang et al. 2016)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from chromatize import color, priors
from chromatize.decoding import Decoding
from chromatize.registry import Registry


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
    annealed mean of Zhang et al.). The bins ``(Q, 2)``, the training set's ab ``prior``
    ``(Q,)`` and the rebalancing ``class_weights`` ``(Q,)`` are buffers, so checkpoints
    carry the statistics they were trained with.

    ``boost`` rebalances at decoding time instead of (or besides) training time: the
    distribution is reweighted to ``p * class_weights ** boost`` before decoding, which
    lifts rare, saturated colours that an unweighted loss learns to avoid. 0 = off.
    ``gain`` scales the decoded ab (a saturation gain that keeps every hue; the annealed
    mean of a spread distribution is duller than any of its colours). 1 = off.
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

    def defaults(self) -> dict[str, float]:
        """The checkpoint's decoding settings, which a :class:`~chromatize.decoding.Decoding`
        left at None takes: ``boost``, ``gain`` and ``temperature``."""
        return {"boost": float(self.boost), "gain": float(self.gain),
                "temperature": float(self.temperature)}

    def decoding_logits(self, logits: torch.Tensor, decoding: Decoding | None = None,
                        ) -> torch.Tensor:
        """Logits ``(B, Q, h, w)`` reweighted as ``decoding`` says (the checkpoint's boost
        when it says nothing): ``+ boost * log(class_weights)`` and, with an image-level
        prior, ``+ strength * log(h / prior)`` (:func:`chromatize.priors.logit_offset`).
        The logits may be on another device than the head (the pipeline keeps network
        outputs on the CPU)."""
        d = (decoding or Decoding()).resolved(self.defaults())
        if d.boost:
            weights = torch.log(self.class_weights.to(logits.device))
            logits = logits + d.boost * weights[None, :, None, None]
        if d.prior is not None and d.prior.strength:
            offset = priors.logit_offset(d.prior, self.prior.cpu().numpy())
            logits = logits + torch.from_numpy(offset).to(logits)[None, :, None, None]
        return logits

    def decode(self, logits: torch.Tensor, decoding: Decoding | None = None) -> torch.Tensor:
        """Logits ``(B, Q, h, w)`` -> ab ``(B, 2, h, w)`` in Lab units, decoded by
        ``decoding`` (its strategy, temperature, boost, prior and gain; the checkpoint's
        settings where it gives none). Also used by runtimes that compute the logits
        elsewhere, such as :class:`chromatize.inference.onnx.OnnxModel`."""
        d = (decoding or Decoding()).resolved(self.defaults())
        bins = self.bins.to(logits.device)
        ab = DECODERS.get(d.strategy)(self.decoding_logits(logits, d), bins, d.temperature)
        return _gained(ab, d.gain)

    def sample(self, logits: torch.Tensor, samples: int, generator: torch.Generator,
               decoding: Decoding | None = None) -> torch.Tensor:
        """``samples`` plausible colorings ``(samples, 2, h, w)`` of logits ``(1, Q, h, w)``
        (:func:`sample_ab`), reweighted and gained as :meth:`decode` does."""
        d = (decoding or Decoding()).resolved(self.defaults())
        bins = self.bins.to(logits.device)
        ab = sample_ab(self.decoding_logits(logits, d), bins, samples, generator,
                       d.temperature)
        return _gained(ab, d.gain)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.conv(x)
        return {"logits": logits, "ab": self.decode(logits)}


def _gained(ab: torch.Tensor, gain: float | None) -> torch.Tensor:
    return ab * gain if gain is not None and gain != 1 else ab


#: How a distribution over the bins becomes one colour per pixel: ``fn(logits (B, Q, h, w),
#: bins (Q, 2), temperature) -> ab (B, 2, h, w)``. A new strategy (say, the colour of least
#: expected CIEDE2000) is one function plus one line here and in ``decoding.STRATEGIES``.
DECODERS = Registry("decoding strategy")


@DECODERS.register("annealed_mean")
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


def sample_ab(logits: torch.Tensor, bins: torch.Tensor, samples: int, generator: torch.Generator,
              temperature: float = 0.38, scale: float = 1.0, cell: int = 8) -> torch.Tensor:
    """Several plausible colorings from logits ``(1, Q, h, w)``: ``(samples, 2, h, w)``.

    Each sample perturbs the logits with Gumbel noise and decodes the annealed mean.
    Independent noise per pixel would give salt-and-pepper colours, so the noise is drawn
    on a coarse grid (one value per ``cell`` x ``cell`` pixels and bin) and upsampled
    bilinearly: neighbouring pixels make the same choice and each sample colours whole
    regions consistently, differently from the others. ``scale`` sets the diversity.
    """
    _, q, h, w = logits.shape
    gh, gw = max(1, -(-h // cell)), max(1, -(-w // cell))
    u = torch.rand((samples, q, gh, gw), generator=generator).clamp_(1e-6, 1 - 1e-6)
    gumbel = -torch.log(-torch.log(u)).to(logits)
    noise = F.interpolate(gumbel, size=(h, w), mode="bilinear", align_corners=False)
    return decode_ab(logits + scale * noise, bins, temperature)
