"""Colour marks on top of any model's automatic colours: the correction a few marks make
to the network's a*b*, spread where the network and the photo say it belongs.

A mark says "the colour here is c"; the network said ``p`` there, so the mark asks for a
correction ``c - p``. The correction is made in three steps, all on the network's output
already computed (so new marks never run the network again):

0. **Choosing the network's mode, at its output resolution** (classification models,
   decoded by the annealed mean). Where the network hesitates between colours (a dress
   that may be red or blue), a mark settles it for the pixels like the marked one: each
   pixel's colour distribution is multiplied by ``1 + MODE_ALPHA * sum_k w_k K(bin, c_k)``,
   ``w_k`` its affinity to mark ``k`` (below) and ``K`` a Gaussian of radius
   ``MODE_RADIUS`` around the mark's colour, and decoded again. This is a Bayesian
   update: a pixel keeps the network's colours where the mark's colour is unlikely, and
   far from every mark (``w`` near 0) its distribution does not change.
1. **Non-local, at the network's output resolution.** Each pixel takes a weighted mean of
   what the marks still ask for, the weights falling with the distance in the image, in L*
   and in the network's own prediction (its logits, for classification models: pixels the
   network thinks alike, such as all of the sky, move together even when they do not
   touch). A pixel far from every mark in all three keeps the network's colour (the
   weights compete with ``KAPPA``). This is a kernel regression in the bilateral space of
   Barron and Poole's bilateral solver, with the network's prediction as extra dimensions.
2. **Local, at the working resolution.** What still separates the marks from steps 0-1 is
   spread by Levin et al.'s optimisation (:mod:`chromatize.inference.propagate`) with a
   data term holding the correction to 0 where the network is confident (for
   classification models, the probability mass near the colour it predicted; regression
   models count as moderately confident everywhere). Marked pixels get their exact colour.

A point's *reach* (:data:`chromatize.inference.hints.REACH`) scales every distance steps 0
and 1 weigh for it (image, L*, logits): ``local`` (0.35) keeps its correction near it and
in what looks just like it, ``photo`` (3) carries it across the whole photo; the default,
``object`` (1), is the engine as tuned. Step 2 is the same for every reach.

With no mark the result is the automatic colorization, exactly (the caller short-circuits).
The constants were chosen on training photos (``scripts/tune_marks.py``), never on val;
how, and what each gained, is in docs/hints.md ("How the constants were chosen").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from chromatize.decoder import BinDecoder
from chromatize.decoding import Decoding
from chromatize.inference.hints import pool_hints
from chromatize.inference.propagate import propagate
from chromatize.inference.upsample import area_resize, bilinear_resize

SIGMA_XY = 0.4      # image distance, in units of the photo's sides
SIGMA_L = 10.0      # L* difference
SIGMA_LOGITS = 8.0  # Euclidean distance of the pixel-centred logit vectors
KAPPA = 0.3         # weight of "keep the network's colour" against the marks'
SCREEN = 1e-3       # data term of the local step, times confidence ** CONFIDENCE_POWER
CONFIDENCE_POWER = 2.0
CONFIDENCE_RADIUS = 10.0  # ab distance (Lab units) of "near the predicted colour"
REGRESSION_CONFIDENCE = 0.5
COARSEST_SIDE = 32
MODE_ALPHA = 100.0          # step 0: strength of a mark's vote for the bins near its colour
MODE_RADIUS = 12.0          # step 0: ab distance (Lab units) of "near the mark's colour"
MODE_SIGMA_LOGITS = 12.0    # step 0: logit distance of "alike" (wider than step 1's)
#: Steps 0 and 1 weigh every cell against every marked cell. Beyond 1024 marked cells, or
#: 16 M (cell, marked cell) pairs (a large painted layer at a large working size), they
#: read an evenly spaced subset of the marked cells (at least 64), so memory and time stay
#: bounded. Step 2 still reads every mark, which keeps them exact.
MAX_NONLOCAL_MARKS = 1024
MAX_NONLOCAL_PAIRS = 1 << 24


def confidence(logits: torch.Tensor, ab: torch.Tensor, bins: torch.Tensor,
               radius: float = CONFIDENCE_RADIUS) -> torch.Tensor:
    """Probability mass near the predicted colour: ``sum_q p_q exp(-|bin_q - ab|^2 / 2r^2)``.

    logits ``(Q, h, w)``; ab ``(2, h, w)`` the decoded colour in Lab units; bins ``(Q, 2)``.
    Returns ``(h, w)`` in [0, 1]: near 1 where the network is sure of its colour.
    """
    p = F.softmax(logits, 0)
    dist2 = ((bins * bins).sum(1)[:, None, None] + (ab * ab).sum(0)[None]
             - 2 * torch.einsum("qc,chw->qhw", bins, ab))
    return (p * torch.exp(-dist2.clamp_(min=0) / (2 * radius * radius))).sum(0)


@dataclass(frozen=True)
class Prior:
    """What marks correct, from one network output (see :func:`prepare`): everything in
    it is computed once per photo and decoding, so a re-solve after new marks costs only
    :func:`correct`.

    l_small ``(h, w)`` L* and prior ``(h, w, 2)`` ab at the working size; l_net ``(h', w')``
    L* at the network's output size; features ``(F, h' * w')`` the centred logits (or
    None); screen ``(h, w)`` the local step's data term; head and decoding (resolved):
    the decoding that gave the prior, which step 0 repeats (head None: no step 0)."""

    l_small: np.ndarray
    prior: np.ndarray
    l_net: np.ndarray
    features: np.ndarray | None
    screen: np.ndarray
    head: BinDecoder | None = None
    decoding: Decoding | None = None
    # the local step's pyramid and neighbour weights (propagate's cache), filled on use
    solver: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


def prepare(l_small: np.ndarray, prior: np.ndarray, ab_net: torch.Tensor,
            logits: torch.Tensor | None, bins: torch.Tensor | None,
            head: BinDecoder | None = None, decoding: Decoding | None = None) -> Prior:
    """The mark-independent part of the correction: l_small L* ``(h, w)`` of the copy the
    network saw; prior its ab brought to ``(h, w, 2)``; ab_net ``(2, h', w')`` and logits
    ``(Q, h', w')`` (classification models, else None) at the network's output
    resolution, with ``bins`` ``(Q, 2)``; head: what decoded the logits, whose
    :meth:`~chromatize.decoder.BinDecoder.decode` (with ``decoding``) gave
    ``ab_net`` from the logits, when it did (step 0 runs only then; not for sampled
    colours)."""
    shape, net_shape = l_small.shape, tuple(ab_net.shape[-2:])
    features = None
    if logits is not None:
        z = logits.numpy().reshape(logits.shape[0], -1)
        features = z - z.mean(0, keepdims=True)  # softmax ignores a per-pixel offset
        conf = confidence(logits, ab_net, bins)[None, None]  # type: ignore[arg-type]
        conf = F.interpolate(conf, size=shape, mode="bilinear", align_corners=False)[0, 0]
        screen = SCREEN * conf.numpy() ** CONFIDENCE_POWER
    else:
        screen = np.full(shape, SCREEN * REGRESSION_CONFIDENCE**CONFIDENCE_POWER, np.float32)
    return Prior(l_small, prior, area_resize(l_small, net_shape), features, screen,
                 head if features is not None else None, decoding)


def _marked_cells(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the marked cells of ``mask`` ``(h, w)`` that steps 0 and 1
    read: all of them, or an evenly spaced subset within the limits above."""
    ys, xs = np.nonzero(mask)
    most = min(MAX_NONLOCAL_MARKS, max(64, MAX_NONLOCAL_PAIRS // mask.size))
    if len(ys) > most:
        keep = np.linspace(0, len(ys) - 1, most).round().astype(int)
        ys, xs = ys[keep], xs[keep]
    return ys, xs


def _affinity(l_net: np.ndarray, features: np.ndarray | None, ys: np.ndarray, xs: np.ndarray,
              sigma_logits: float, reach: np.ndarray | None = None) -> np.ndarray:
    """Weights ``(h, w, K)`` in (0, 1] of every pixel of the network's output ``(h, w)``
    to the marked pixels ``(ys, xs)``: Gaussians of the image distance (``SIGMA_XY``), the
    L* difference (``SIGMA_L``) and the distance of centred logits ``features`` ``(F,
    h * w)`` (``sigma_logits``; left out when None), every sigma times the marked
    pixel's ``reach`` ``(h, w)`` (None: 1)."""
    h, w = l_net.shape
    yy, xx = np.mgrid[0:h, 0:w]
    d2 = ((yy[..., None] - ys) / h) ** 2 + ((xx[..., None] - xs) / w) ** 2  # (h, w, K)
    log_w = -d2 / (2 * SIGMA_XY**2)
    log_w -= (l_net[..., None] - l_net[ys, xs]) ** 2 / (2 * SIGMA_L**2)
    if features is not None:
        z = features
        zk = z[:, ys * w + xs]
        dz = (z * z).sum(0)[:, None] + (zk * zk).sum(0)[None] - 2 * z.T @ zk
        log_w -= np.maximum(dz, 0).reshape(h, w, -1) / (2 * sigma_logits**2)
    if reach is not None:
        log_w /= reach[ys, xs] ** 2
    return np.exp(log_w)


def _mode_choice(p: Prior, colours: np.ndarray, mask: np.ndarray,
                 reach: np.ndarray | None = None) -> np.ndarray:
    """Step 0 at the network's resolution ``(h, w)``: colours ``(h, w, 2)`` the marks' a*b*
    at the marked pixels of ``mask``, ``reach`` ``(h, w)`` theirs (or None). Returns the
    change ``(h, w, 2)`` of the network's ab once each pixel's distribution has been
    updated by the marks (0 where no mark is alike)."""
    head, features = p.head, p.features
    assert head is not None and features is not None
    h, w = p.l_net.shape
    ys, xs = _marked_cells(mask)
    wgt = _affinity(p.l_net, features, ys, xs, MODE_SIGMA_LOGITS, reach)
    wgt = torch.from_numpy(wgt).float()
    c = torch.from_numpy(colours[ys, xs]).float()  # (K, 2)
    gain = p.decoding.gain if p.decoding is not None and p.decoding.gain is not None else 1.0
    dist2 = ((gain * torch.as_tensor(head.bins).cpu()[:, None] - c[None]) ** 2).sum(-1)  # (Q, K)
    near = torch.exp(-dist2 / (2 * MODE_RADIUS**2))
    vote = torch.log1p(MODE_ALPHA * torch.einsum("hwk,qk->qhw", wgt, near))
    z = torch.from_numpy(features).float().reshape(-1, h, w)  # decodes as the logits do
    both = head.decode(torch.stack([z, z + vote]), p.decoding)
    return (both[1] - both[0]).permute(1, 2, 0).numpy()


def _nonlocal_correction(l_net: np.ndarray, features: np.ndarray | None,
                         target: np.ndarray, mask: np.ndarray,
                         reach: np.ndarray | None = None) -> np.ndarray:
    """Step 1 at the network's resolution ``(h, w)``: l_net L* ``(h, w)``; features
    ``(F, h * w)`` centred logits or None; target ``(h, w, 2)`` corrections at the marked
    pixels of ``mask``, ``reach`` ``(h, w)`` their reach (or None). Returns the
    corrections ``(h, w, 2)``."""
    ys, xs = _marked_cells(mask)
    wgt = _affinity(l_net, features, ys, xs, SIGMA_LOGITS, reach)
    return (wgt @ target[ys, xs]) / (KAPPA + wgt.sum(-1))[..., None]


def correct(p: Prior, hint_ab: np.ndarray, hint_mask: np.ndarray,
            hint_reach: np.ndarray | None = None) -> np.ndarray:
    """The change the marks ``hint_ab (H, W, 2)``, ``hint_mask (H, W)`` (at the photo's
    size, at least one) make to ``p.prior``, each spreading as far as its ``hint_reach``
    ``(H, W)`` (:data:`~chromatize.inference.hints.REACH` scales; None: all 1):
    ``(h, w, 2)`` float32 in Lab units at the working size, such that ``prior + it`` has
    the marks' colours at the marked pixels."""
    shape, net_shape = p.l_small.shape, p.l_net.shape
    marks_ab, marks = pool_hints(hint_ab, hint_mask, shape)
    target = np.where(marks[..., None], marks_ab - p.prior, 0).astype(np.float32)
    net_target, net_marks = pool_hints(target, marks, net_shape)
    reach = None
    if hint_reach is not None:  # pooled as the marks are, so it has a value where they do
        reach_small = pool_hints(hint_reach[..., None], hint_mask, shape)[0]
        reach = pool_hints(reach_small, marks, net_shape)[0][..., 0]
    coarse = np.zeros((*net_shape, 2), np.float32)
    if p.head is not None:
        coarse = _mode_choice(p, pool_hints(marks_ab, marks, net_shape)[0], net_marks, reach)
        net_target = np.where(net_marks[..., None], net_target - coarse, 0)
    coarse = coarse + _nonlocal_correction(p.l_net, p.features, net_target, net_marks, reach)
    base = bilinear_resize(coarse, shape)
    # The data term keeps this system well conditioned: a small coarsest level will do.
    local = propagate(p.l_small, np.where(marks[..., None], target - base, 0), marks,
                      p.screen, coarsest_side=COARSEST_SIDE, cache=p.solver)
    out = base + local
    # Far from every mark the correction decays below float32's normal range; denormal
    # arithmetic is 10-100x slower on x86, and such values are 0 for any colour.
    out[np.abs(out) < 1e-6] = 0
    return out
