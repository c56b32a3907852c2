"""Quantised ab for the classification family (Zhang et al. 2016).

The bins themselves come from :func:`chromatize.color.ab_bins`. Here: soft-encoding of
true ab onto the bins, the empirical prior over a photo collection, and the class
rebalancing weights derived from it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

import chromatize.color as color


def soft_encode(ab: torch.Tensor, bins: torch.Tensor, neighbours: int = 5,
                sigma: float = 5.0) -> torch.Tensor:
    """ab ``(B, 2, H, W)`` in Lab units -> soft targets ``(B, Q, H, W)`` summing to 1.

    Each pixel spreads over its ``neighbours`` nearest bins ``(Q, 2)`` with Gaussian
    weights of width ``sigma`` (Lab units) on the distance.
    """
    b, _, h, w = ab.shape
    pix = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    dist = torch.cdist(pix, bins.to(pix))  # (N, Q)
    d, idx = dist.topk(neighbours, dim=1, largest=False)
    wts = torch.exp(-(d**2) / (2 * sigma**2))
    wts = wts / wts.sum(dim=1, keepdim=True)
    target = torch.zeros_like(dist).scatter_(1, idx, wts)
    return target.reshape(b, h, w, -1).permute(0, 3, 1, 2)


_LUT_RANGE = 110  # ab beyond this is clamped for the look-up (the sRGB gamut ends sooner)
_LUT_CANDIDATES = 8
_luts: dict[tuple[int, bytes], torch.Tensor] = {}


def _candidates(bins: torch.Tensor) -> torch.Tensor:
    """For each point of a 1-unit grid over [-110, 110]^2: its nearest bins,
    ``(221, 221, 8)`` int64, computed once per set of bins."""
    key = (bins.shape[0], bins.detach().cpu().numpy().tobytes())
    if key not in _luts:
        g = torch.arange(-_LUT_RANGE, _LUT_RANGE + 1, dtype=torch.float32)
        grid = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
        k = min(_LUT_CANDIDATES, bins.shape[0])
        idx = torch.cdist(grid, bins.detach().cpu().float()).topk(k, dim=1, largest=False).indices
        _luts[key] = idx.reshape(len(g), len(g), k)
    return _luts[key]


def soft_encode_sparse(ab: torch.Tensor, bins: torch.Tensor, neighbours: int = 5,
                       sigma: float = 5.0) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`soft_encode` without the dense ``(B, Q, H, W)`` tensor: the ``neighbours``
    nearest bins of each pixel and their weights, ``idx`` ``(B, k, H, W)`` int64 (nearest
    first) and ``w`` ``(B, k, H, W)`` summing to 1 over k.

    The nearest bins are found among 8 candidates looked up on a 1-unit ab grid, not by a
    distance to all Q bins (the training loss's hot spot on a CPU): the same bins and
    weights except for about one pixel in ten thousand, where the 5th-nearest bin is a
    near tie and another one, also at a weight below 1%, takes its place."""
    b, _, h, w = ab.shape
    pix = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    cell = (pix.detach().round().clamp(-_LUT_RANGE, _LUT_RANGE) + _LUT_RANGE).long()
    cand = _candidates(bins).to(ab.device)[cell[:, 0], cell[:, 1]]  # (N, 8)
    d2 = (pix[:, None, :] - bins.to(pix)[cand]).square().sum(-1)  # (N, 8)
    d2, order = d2.topk(min(neighbours, cand.shape[1]), dim=1, largest=False)
    idx = cand.gather(1, order)
    wts = torch.softmax(-d2 / (2 * sigma**2), dim=1)
    return (idx.reshape(b, h, w, -1).permute(0, 3, 1, 2),
            wts.reshape(b, h, w, -1).permute(0, 3, 1, 2))


def nearest_bin(ab: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """ab ``(B, 2, H, W)`` -> index of the nearest bin ``(B, H, W)`` (int64)."""
    b, _, h, w = ab.shape
    pix = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    return torch.cdist(pix, bins.to(pix)).argmin(dim=1).reshape(b, h, w)


def empirical_prior(ab_batches: Iterable[torch.Tensor], bins: torch.Tensor) -> np.ndarray:
    """Frequency of each bin ``(Q,)`` (sums to 1) over ab batches ``(B, 2, H, W)``."""
    counts = torch.zeros(len(bins), dtype=torch.float64)
    for ab in ab_batches:
        counts += torch.bincount(nearest_bin(ab, bins).flatten(), minlength=len(bins)).double()
    if counts.sum() == 0:
        raise ValueError("no pixels to compute the ab prior from")
    return (counts / counts.sum()).numpy()


def rebalance_weights(prior: np.ndarray, bins: np.ndarray, lam: float = 0.5,
                      sigma: float = 5.0) -> np.ndarray:
    """Class weights ``(Q,)`` of Zhang et al.: w ~ 1 / ((1 - lam) * p_smooth + lam / Q),
    normalised so that the expected weight under ``p_smooth`` is 1.

    ``p_smooth`` is ``prior`` blurred by a Gaussian of ``sigma`` Lab units over the ab
    plane (the bins lie on a grid of ``color.AB_GRID``).
    """
    grid = color.AB_GRID
    ij = np.round(bins / grid).astype(int)
    ij -= ij.min(axis=0)
    plane = np.zeros(ij.max(axis=0) + 1)
    plane[ij[:, 0], ij[:, 1]] = prior
    smooth = gaussian_filter(plane, sigma / grid, mode="constant")[ij[:, 0], ij[:, 1]]
    smooth = smooth / smooth.sum()
    w = 1.0 / ((1 - lam) * smooth + lam / len(prior))
    return w / (smooth * w).sum()


def write_prior(path: str | Path, prior: np.ndarray, bins: np.ndarray, meta: dict) -> None:
    """Save a prior ``(Q,)`` with its bins ``(Q, 2)`` and provenance as JSON (atomically)."""
    from chromatize.io import atomic_write_bytes

    doc = {"bins": bins.tolist(), "prior": prior.tolist(), **meta}
    atomic_write_bytes(Path(path), json.dumps(doc).encode())


def read_prior(path: str | Path, bins: np.ndarray) -> np.ndarray:
    """Read a prior written by :func:`write_prior`; its bins must equal ``bins``."""
    try:
        doc = json.loads(Path(path).read_text())
        prior, their_bins = np.asarray(doc["prior"], float), np.asarray(doc["bins"], float)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not an ab prior file ({e})") from None
    if their_bins.shape != bins.shape or np.abs(their_bins - bins).max() > 1e-6:
        raise ValueError(f"{path}: the prior was computed for other ab bins")
    return prior


def prior_from_photos(images: Iterable[np.ndarray], bins: np.ndarray) -> np.ndarray:
    """Empirical prior ``(Q,)`` over uint8 RGB photos ``(H, W, 3)``."""
    bins_t = torch.as_tensor(bins, dtype=torch.float32)

    def batches() -> Iterable[torch.Tensor]:
        for rgb in images:
            t = torch.from_numpy(np.array(rgb)).permute(2, 0, 1).float() / 255
            yield color.rgb_to_lab(t)[None, 1:]

    return empirical_prior(batches(), bins_t)


def compute_prior_file(source: str | list[str], out: str | Path, side: int = 64,
                       min_chroma: float = 4.0) -> dict:
    """The ab prior of training sources (folders or .txt lists, one or several), written
    to ``out``.

    Photos are shrunk to a short side of ``side`` (colour statistics barely depend on
    resolution); gray and unreadable photos are dropped as in training. Returns a summary.
    """
    from chromatize.training.config import DataConfig
    from chromatize.training.data import open_source

    photos = open_source(source, DataConfig(crop=side, cache=True, min_chroma=min_chroma))
    bins = color.ab_bins()
    prior = prior_from_photos(photos.images or [], bins)
    summary = {**photos.summary(), "bins": len(bins), "side": side}
    write_prior(out, prior, bins, {"data": summary})
    return summary
