"""Global hints as an input (Zhang et al. 2017): the shipped automatic model, frozen, plus a
zero-initialised adapter that reads an image-level colour histogram.

The decoding-time way (:func:`chromatize.priors.logit_offset`) reweights every pixel's
distribution by one fixed rule, ``p * (h / prior) ** strength``. The learned way gives the
network the same histogram ``h`` (``(B, Q)`` over the head's Q = 261 ab bins, what an
:class:`~chromatize.priors.ImagePrior` holds) as an input and lets it learn what to do with
it: which features to shift at each decoder level (FiLM, Perez et al. 2018), which bins
to favour, and how strongly to trust the histogram at each pixel. Trained with true,
partial, noised, palette-like, a neighbour's and unrelated histograms, it should use an
approximate prior well and a wrong one little.

Every output layer of the adapter starts at zero and a photo without a histogram skips it,
so without a histogram the output *is* the automatic model's, exactly; only the adapter
trains (:class:`~chromatize.models.efficientnet.AdapterTraining`), from cached encoder
features, with histograms simulated from each crop's cached chroma (:meth:`cached_hint`).

In the pipeline, ``Colorizer.infer`` gives such a model the decoding's prior as its input,
and the decoding applies that prior again at its strength: ``colorize(reference=...,
strength=0)`` gives the input alone, which measured best on val (docs/ablation.md, round 7).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import chromatize.priors as priors
from chromatize.models.base import MODELS, optimize
from chromatize.models.efficientnet import AdapterTraining, EffNetColorizer


def soft_histogram(ab: torch.Tensor, bins: torch.Tensor, sigma: float = priors.SIGMA,
                   weights: torch.Tensor | None = None) -> torch.Tensor:
    """a*b* samples ``(B, N, 2)`` in Lab units (optionally weighted ``(B, N)``) -> their
    histograms over ``bins`` ``(Q, 2)``, smoothed by a Gaussian of ``sigma`` units, each
    summing to 1: ``(B, Q)``. The torch twin of :func:`chromatize.priors.histogram` (which
    smooths on a 1-unit grid and reads it at the bin centres) for batches in training.
    The bins lie on a grid, so the Gaussian splits into an a* and a b* factor and the
    histogram over the grid is one batched product ``(B, A, N) @ (B, N, B*)``."""
    a_vals, a_idx = torch.unique(bins[:, 0], return_inverse=True)
    b_vals, b_idx = torch.unique(bins[:, 1], return_inverse=True)
    ab = ab.float()
    ka = torch.exp(-(ab[..., 0:1] - a_vals.float()) ** 2 / (2 * sigma * sigma))  # (B, N, A)
    kb = torch.exp(-(ab[..., 1:2] - b_vals.float()) ** 2 / (2 * sigma * sigma))  # (B, N, B*)
    if weights is not None:
        ka = ka * weights[..., None].float()
    h = (ka.transpose(1, 2) @ kb)[:, a_idx, b_idx]  # (B, Q)
    return h / h.sum(1, keepdim=True).clamp(min=1e-12)


class GlobalHintAdapter(nn.Module):
    """A histogram ``(B, Q)`` -> what the decoder adds: FiLM scales and shifts for each of
    ``levels`` decoder levels (``(B, width)`` each), a logit bias per bin ``(B, Q)`` and a
    strength of the histogram's log-ratio to the training prior, global ``(B,)`` plus a
    per-pixel part read from the decoder's last features. All output layers start at zero,
    but the global strength's bias may start at ``start_strength`` (the decoding-time rule
    at that strength, from which training departs)."""

    def __init__(self, q: int, width: int, levels: int = 4, hidden: int = 256,
                 start_strength: float = 0.0) -> None:
        super().__init__()
        self.width, self.levels = width, levels
        self.mlp = nn.Sequential(nn.Linear(q, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, hidden), nn.ReLU(inplace=True))
        self.film = nn.Linear(hidden, levels * 2 * width)
        self.bias = nn.Linear(hidden, q)
        self.strength = nn.Linear(hidden, 1)
        self.local = nn.Conv2d(width, 1, 1)  # where to trust the histogram more or less
        for layer in (self.film, self.bias, self.strength, self.local):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        nn.init.constant_(self.strength.bias, start_strength)

    def forward(self, ratio: torch.Tensor) -> dict[str, torch.Tensor]:
        """``ratio``: ``log(h / prior)`` ``(B, Q)`` -> ``film`` ``(B, levels, 2, width)``,
        ``bias`` ``(B, Q)``, ``strength`` ``(B, 1)``."""
        g = self.mlp(ratio / 4)  # log-ratios span about +-8; keep the first layer's input small
        film = self.film(g).view(-1, self.levels, 2, self.width)
        return {"film": film, "bias": self.bias(g), "strength": self.strength(g)}


class GlobalHintColorizer(AdapterTraining, EffNetColorizer):
    """The automatic classification model, unchanged, plus a :class:`GlobalHintAdapter`.

    Input: L ``(B, 1, H, W)`` in [0, 100]; optional ``global_hint`` ``(B, Q)``: a colour
    histogram per photo over the head's bins (non-negative; a row of zeros, or None, means
    no hint for that photo). Output as :class:`EffNetColorizer`. ``film=False`` leaves the
    decoder's features alone and changes only the logits (bias and strength): the frozen
    decoder then runs once without a backward pass and the loss is taken on
    ``train_cells`` random cells of each crop, several times cheaper to train on a CPU.
    ``start_strength``: see :class:`GlobalHintAdapter`; a photo without a histogram still
    skips the adapter. ``partial``,
    ``palette``, ``neighbour``, ``unrelated``, ``noise``: shares of the simulated
    histograms in training (:meth:`cached_hint`; the rest are true ones). No share is
    needed for a dropped hint: a photo without one skips the adapter, so it is exactly the
    automatic model, which training cannot change.
    """

    added_inputs = ("global_adapter.",)
    hints_enter_encoder = False
    global_hint = True

    def __init__(self, partial: float = 0.3, palette: float = 0.15, neighbour: float = 0.15,
                 unrelated: float = 0.1, noise: float = 0.1, film: bool = True,
                 start_strength: float = 0.0, train_cells: int = 256, **kw: object) -> None:
        super().__init__(**{"head": "classification", **kw})  # type: ignore[arg-type]
        self.film, self.train_cells = film, train_cells
        if self.fusion is not None:
            raise ValueError("global hints are not made for the fusion variant")
        shares = (partial, palette, neighbour, unrelated, noise)
        if min(shares) < 0 or sum(shares) > 1:
            raise ValueError(f"hint shares must be >= 0 and sum to at most 1, got {shares}")
        self.shares = shares
        width = self.lateral[0].out_channels
        self.global_adapter = GlobalHintAdapter(len(self.head.bins), width,
                                                start_strength=start_strength)

    def forward(self, l: torch.Tensor, global_hint: torch.Tensor | None = None,
                ) -> dict[str, torch.Tensor]:
        self.check_input(l)
        return self.decode(self.encode(l), global_hint)

    def decode(self, feats: list[torch.Tensor], hint: torch.Tensor | None = None,
               ) -> dict[str, torch.Tensor]:
        """Feature maps from :meth:`encode` and histograms ``(B, Q)`` (or None) -> the
        output dict. Photos without a histogram get the automatic output exactly."""
        if hint is None:
            return super().decode(feats)
        read = self._read(hint)
        film = read["film"] * read["gate"][:, None, None, None] if self.film else None
        logits = self._logits(self.trunk(feats, film), read)
        return {"logits": logits, "ab": self.head.decode(logits)}

    def _read(self, hint: torch.Tensor) -> dict[str, torch.Tensor]:
        """The adapter's reading of histograms ``(B, Q)``, with their ``ratio`` (log h /
        prior) and ``gate`` ``(B,)`` (0 for a row of zeros)."""
        ratio = self._log_ratio(hint)
        return {**self.global_adapter(ratio), "ratio": ratio, "gate": (hint.sum(1) > 0).float()}

    def _logits(self, x: torch.Tensor, read: dict[str, torch.Tensor]) -> torch.Tensor:
        """The head's logits for decoder features ``x`` ``(B, width, h, w)`` plus what the
        histogram adds: ``strength * log(h / prior) + bias``, gated."""
        strength = read["strength"][:, :, None, None] + self.global_adapter.local(x)
        extra = strength * read["ratio"][:, :, None, None] + read["bias"][:, :, None, None]
        return self.head.conv(x) + extra * read["gate"][:, None, None, None]

    def _inject(self, level: int, x: torch.Tensor, film: torch.Tensor | None) -> torch.Tensor:
        """FiLM ``(B, 4, 2, width)`` (gated) into decoder level ``level``."""
        if film is None:
            return x
        scale, shift = film[:, level, 0, :, None, None], film[:, level, 1, :, None, None]
        return x * (1 + scale.to(x.dtype)) + shift.to(x.dtype)

    def _log_ratio(self, hist: torch.Tensor) -> torch.Tensor:
        """``log(h / prior)`` ``(B, Q)``, both floored as :func:`priors.logit_offset` does
        (a row of zeros gives finite values; its gate is 0)."""
        q = hist.shape[1]
        floor = priors.FLOOR / q
        h = hist.float() / hist.float().sum(1, keepdim=True).clamp(min=1e-12)
        h = h.clamp(min=floor)
        base = self.head.prior.float().clamp(min=floor)
        return torch.log(h / h.sum(1, keepdim=True)) - torch.log(base / base.sum())

    # ------------------------------------------------------------------ training

    def cached_train_step(self, feats: list[torch.Tensor], ab: torch.Tensor, loss_fn: nn.Module,
                          optimizers: list[torch.optim.Optimizer]) -> dict[str, float]:
        """One update from cached encoder maps and targets ``ab`` ``(B, 2, h, w)`` with
        simulated histograms. Without FiLM the frozen decoder runs once, without a
        graph, and the loss is taken on ``train_cells`` random cells."""
        read = self._read(self.cached_hint(ab))
        if self.film:
            film = read["film"] * read["gate"][:, None, None, None]
            out, target = {"logits": self._logits(self.trunk(feats, film), read)}, ab
        else:
            with torch.no_grad():
                x = self.trunk(feats)
            cells = torch.randperm(x.shape[-2] * x.shape[-1])[:self.train_cells]
            x = x.flatten(2)[:, :, cells, None]
            target = ab.flatten(2)[:, :, cells, None]
            out = {"logits": self._logits(x, read)}
        loss = loss_fn(out, target)
        optimize(loss, optimizers)
        return {"loss": loss.item()}

    @torch.no_grad()
    def cached_hint(self, ab: torch.Tensor) -> torch.Tensor:
        """Simulated histograms ``(B, Q)`` for cached targets ``ab`` ``(B, 2, h, w)`` (Lab
        units, at the chroma stride), each photo's drawn from its own colours as a user's
        would be: the whole crop (true), a random window of 15-60% of it (a reference of
        part of the scene), 5 k-means colours of equal weight (a palette), the most similar
        histogram of another photo in the batch (a neighbour's), a random other photo's
        (unrelated), or the true one with noise on every bin."""
        b = ab.shape[0]
        pts = ab.float().flatten(2).transpose(1, 2)  # (B, N, 2)
        bins = self.head.bins.float()
        true = soft_histogram(pts, bins)
        shares = torch.tensor([1 - sum(self.shares), *self.shares], dtype=torch.float32)
        kind = torch.multinomial(shares.clamp(min=0), b, replacement=True)
        out = true.clone()
        if b > 1:
            other = (torch.arange(b) + torch.randint(1, b, (b,))) % b
            dist = torch.cdist(true.sqrt(), true.sqrt()) + torch.eye(b) * 1e9  # Hellinger
            out[kind == 3] = true[dist.argmin(1)][kind == 3]
            out[kind == 4] = true[other][kind == 4]
        part = kind == 1
        if part.any():
            out[part] = soft_histogram(pts[part], bins, weights=_window(ab[part]))
        if (kind == 2).any():
            centres = _kmeans(pts[kind == 2], 5)
            out[kind == 2] = soft_histogram(centres, bins)
        noisy = kind == 5
        if noisy.any():
            h = true[noisy] * torch.exp(0.7 * torch.randn_like(true[noisy]))
            out[noisy] = h / h.sum(1, keepdim=True)
        return out


def _window(ab: torch.Tensor) -> torch.Tensor:
    """Weights ``(B, h * w)``: 1 inside a random window covering 15-60% of each crop."""
    b, _, h, w = ab.shape
    area = 0.15 + 0.45 * torch.rand(b)
    aspect = torch.exp((torch.rand(b) - 0.5) * math.log(4))  # width / height, 1/2 to 2
    wh = (area * aspect).sqrt().clamp(max=1)
    hh = (area / wh).clamp(max=1)
    x0, y0 = torch.rand(b) * (1 - wh), torch.rand(b) * (1 - hh)
    xs = (torch.arange(w) + 0.5) / w
    ys = (torch.arange(h) + 0.5) / h
    inx = (xs[None] >= x0[:, None]) & (xs[None] <= (x0 + wh)[:, None])  # (B, w)
    iny = (ys[None] >= y0[:, None]) & (ys[None] <= (y0 + hh)[:, None])  # (B, h)
    mask = (iny[:, :, None] & inx[:, None, :]).float().flatten(1)
    mask[mask.sum(1) == 0] = 1  # a window too thin to hold a cell: the whole crop
    return mask


def _kmeans(pts: torch.Tensor, k: int, iters: int = 8) -> torch.Tensor:
    """Batched Lloyd's k-means of points ``(B, N, 2)`` from ``k`` random points -> the
    centres ``(B, k, 2)`` (an empty cluster keeps its centre)."""
    b, n, _ = pts.shape
    centres = pts.gather(1, torch.randint(0, n, (b, k, 1)).expand(-1, -1, 2))
    for _ in range(iters):
        assign = torch.cdist(pts, centres).argmin(2)  # (B, N)
        onehot = F.one_hot(assign, k).float()  # (B, N, k)
        count = onehot.sum(1)[..., None]
        mean = onehot.transpose(1, 2) @ pts / count.clamp(min=1)
        centres = torch.where(count > 0, mean, centres)
    return centres


@MODELS.register("effnet_lite0_cls_global")
def effnet_lite0_cls_global(**kw: object) -> GlobalHintColorizer:
    """The automatic classification model plus a global-hint adapter reading an image-level
    colour histogram; see :class:`GlobalHintColorizer`."""
    return GlobalHintColorizer(**kw)  # type: ignore[arg-type]
