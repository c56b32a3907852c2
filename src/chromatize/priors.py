"""Image-level colour priors: which colours *this* photo has, given once by a person.

The network knows, per pixel, which colours are possible; it does not know which of them
this photo has. An :class:`ImagePrior` says so for the whole photo as a histogram over the
classification head's ab bins (``color.ab_bins()``, Q = 261), made from a reference photo
(:func:`from_photos`), a palette (:func:`from_palette`) or a version's histogram. Decoding
reweights each pixel's distribution ``p`` by it (:func:`logit_offset`)::

    p'(q) ∝ p(q) * (h(q) / prior(q)) ** strength

where ``prior`` is the training photos' ab distribution the head carries: a colour this
photo has more often than photos in general becomes likelier everywhere the network finds
it possible, and the network still decides where it goes.

A reference photo says more than its histogram: *where* it has each colour. A prior made
from photos keeps small copies of them; a colorizer runs its network on their gray once
(:class:`Exemplar`), and each cell of the photo then takes the colours of the reference
cells whose features are most like its own (:func:`local_offset`), as much as any is
alike: a reference of the same scene gives each thing its own colour, an unrelated one
little. A leaf module: numpy, SciPy and Pillow only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
from PIL import Image

import chromatize.color as color
from chromatize.decoding import check_number
from chromatize.errors import UsageError

#: Gaussian smoothing of a histogram, in a*b* units: a colour also speaks for its
#: neighbours (half a bin either side), so a reference's exact shades need not recur.
SIGMA = 5.0
#: Default strengths (the exponent on ``h / prior``), chosen on val (docs/priors.md): a
#: reference's at REFERENCE_STRENGTH, since a reference of another scene harms more the
#: stronger it is; a palette's (a few colours the user knows) at PALETTE_STRENGTH.
REFERENCE_STRENGTH = 0.4
PALETTE_STRENGTH = 0.75
DEFAULT_STRENGTH = REFERENCE_STRENGTH
#: Floor of a histogram, as a share of the uniform one: a colour the reference lacks is
#: made less likely, never impossible (the reference may not show everything).
FLOOR = 0.02
#: Long side of the copy of a reference photo whose colours are counted.
_PROBE = 256
#: Mean chroma (a*b* units) under which a reference counts as black-and-white.
_MIN_CHROMA = 2.0
#: The fine grid (1 a*b* unit) the histogram is smoothed on, covering every sRGB colour.
_AB_RANGE = (-128, 128)

# Matching a reference's cells (:func:`local_offset`), chosen on training photos
# (docs/priors.md, "Where the reference has each colour").
#: Strength of the matched colours per unit of a reference's strength (0.4 -> 1.0).
LOCAL_GAIN = 2.5
#: Softmax temperature over the cosine similarities of a cell's features to the reference's.
MATCH_TAU = 0.05
#: Gaussian width, in a*b* units, of a matched reference cell's colour over the bins.
MATCH_SIGMA = 3.0
#: Cosine similarity of the best match below which a cell takes nothing from the
#: reference, rising linearly to full at 1.
MATCH_GATE = 0.5
#: The mean best similarity over the photo's cells below which the reference counts as
#: another scene (nothing taken), rising linearly to full at the second value.
SCENE_GATE = (0.65, 0.8)
#: Where the photo is unlike the reference (the scene gate under 1), its histogram pulls
#: every cell at this share of the strength times what the gate leaves.
FALLBACK = 0.5
#: Reference cells kept per photo (beyond it, every other cell each way): bounds the
#: matching's cost.
MAX_CELLS = 1024
#: The photo's cells are matched every TARGET_STEP-th each way, the others taking their
#: kept cell's colours (a quarter of the work; on training photos within 0.02 of every
#: cell, docs/priors.md).
TARGET_STEP = 2


class PriorError(UsageError):
    """A reference, palette or histogram that cannot be used; the message says why."""


@dataclass(frozen=True)
class ImagePrior:
    """A photo-level colour histogram ``hist`` over the Q ab bins (non-negative, sums to
    1, a tuple so the value is hashable and frozen) and the ``strength`` it is decoded
    with (0 = off, at most 3). ``source`` names where it came from, for messages."""

    hist: tuple[float, ...]
    strength: float = DEFAULT_STRENGTH
    source: str = ""
    #: The reference photos' small colour copies ``(h, w, 3)`` uint8 (long side 256), for
    #: matching; empty for a palette or a version.
    photos: tuple[np.ndarray, ...] = field(default=(), compare=False, repr=False)
    #: What a colorizer's network saw in ``photos`` (:meth:`Colorizer.resolve` fills it);
    #: decoding then matches the photo's cells to it (:func:`local_offset`).
    exemplar: Exemplar | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "strength", check_number("strength", self.strength))
        h = np.asarray(self.hist, dtype=np.float64)
        if h.ndim != 1 or len(h) != len(bins()) or not np.isfinite(h).all() or (h < 0).any() \
                or h.sum() <= 0:
            raise PriorError(f"a colour histogram needs {len(bins())} non-negative numbers "
                             f"with a positive sum")
        object.__setattr__(self, "hist", tuple((h / h.sum()).tolist()))

    @classmethod
    def from_array(cls, hist: np.ndarray, strength: float = DEFAULT_STRENGTH,
                   source: str = "") -> ImagePrior:
        return cls(tuple(np.asarray(hist, dtype=np.float64).tolist()), strength, source)

    def array(self) -> np.ndarray:
        """The histogram as float64 ``(Q,)``."""
        return np.asarray(self.hist, dtype=np.float64)


@lru_cache(maxsize=1)
def bins() -> np.ndarray:
    """The classification head's ab bin centres ``(Q, 2)`` (see :func:`color.ab_bins`)."""
    return color.ab_bins(color.AB_GRID)


def histogram(ab: np.ndarray, weights: np.ndarray | None = None,
              sigma: float = SIGMA) -> np.ndarray:
    """a*b* samples ``(N, 2)`` in Lab units (optionally weighted ``(N,)``) -> their
    histogram over the Q bins ``(Q,)``, smoothed by a Gaussian of ``sigma`` units, summing
    to 1 (uniform when there is nothing to count)."""
    from scipy.ndimage import gaussian_filter

    lo, hi = _AB_RANGE
    edges = np.arange(lo, hi + 1, dtype=np.float64) - 0.5
    fine, _, _ = np.histogram2d(ab[:, 0], ab[:, 1], bins=(edges, edges), weights=weights)
    if sigma > 0:
        fine = gaussian_filter(fine, sigma, mode="constant", truncate=3.0)
    idx = np.clip(np.round(bins()).astype(int) - lo, 0, hi - lo - 1)
    h = fine[idx[:, 0], idx[:, 1]]
    total = h.sum()
    return h / total if total > 0 else np.full(len(h), 1.0 / len(h))


def logit_offset(prior: ImagePrior, train_prior: np.ndarray) -> np.ndarray:
    """What decoding adds to each bin's logit, ``(Q,)`` float32:
    ``strength * (log h - log train_prior)``, both floored at :data:`FLOOR` / Q."""
    return (prior.strength * (_log_floored(prior.array())
                              - _log_floored(train_prior))).astype(np.float32)


def _log_floored(h: np.ndarray) -> np.ndarray:
    """``log`` of a histogram ``(Q,)`` floored at :data:`FLOOR` / Q and renormalised:
    float64."""
    h = np.maximum(np.asarray(h, dtype=np.float64), FLOOR / len(h))
    return np.log(h / h.sum())


# ----------------------------------------------------------------------------- matching

@dataclass(frozen=True, eq=False)
class Exemplar:
    """Reference photos as a network saw them, cell by cell: ``features`` ``(R, D)``
    float32 (unit rows, :func:`cell_features`) and the true colour of each cell, ``ab``
    ``(R, 2)`` float32 in Lab units."""

    features: np.ndarray
    ab: np.ndarray

    @cached_property
    def colours(self) -> tuple[np.ndarray, np.ndarray]:
        """Each cell's colour over the bins near any of the cells' colours: the indices of
        those bins ``(S,)`` and a Gaussian of :data:`MATCH_SIGMA` a*b* units over them per
        cell ``(R, S)`` float32, summing to 1 (the other bins are 0). Made once."""
        d2 = ((self.ab[:, None, :] - bins()[None].astype(np.float32)) ** 2).sum(-1)
        g = np.exp(-d2 / (2 * MATCH_SIGMA ** 2))
        g[g < 1e-3 * g.max(axis=1, keepdims=True)] = 0
        g /= np.maximum(g.sum(axis=1, keepdims=True), 1e-12)
        support = np.flatnonzero(g.any(axis=0))
        return support, np.ascontiguousarray(g[:, support], dtype=np.float32)

    @classmethod
    def of(cls, logits: np.ndarray, rgb: np.ndarray, basis: np.ndarray) -> Exemplar:
        """A reference's network logits ``(Q, h, w)`` (of its gray), its colour copy ``rgb``
        ``(H, W, 3)`` uint8 and the head's feature ``basis`` ``(D, Q)`` -> its exemplar;
        beyond :data:`MAX_CELLS` cells, every other cell each way is kept."""
        _, h, w = logits.shape
        feats = cell_features(logits, basis)  # (D, h*w)
        lab = color.rgb_to_lab_np(rgb.astype(np.float64) / 255)
        ab = np.stack([_area_mean(lab[..., c], (h, w)) for c in (1, 2)]).reshape(2, -1)
        while feats.shape[1] > MAX_CELLS and min(h, w) > 1:
            # Every other cell each way: neighbours are alike, and a kept cell's features
            # stay its own (a mean of four is like none of them, and matches less).
            keep = np.zeros((h, w), bool)
            keep[::2, ::2] = True
            feats, ab = feats[:, keep.ravel()], ab[:, keep.ravel()]
            h, w = (h + 1) // 2, (w + 1) // 2
        return cls(np.ascontiguousarray(feats.T), ab.T.astype(np.float32))

    @classmethod
    def join(cls, parts: Sequence[Exemplar]) -> Exemplar:
        """Several references' cells as one exemplar."""
        return cls(np.concatenate([p.features for p in parts]),
                   np.concatenate([p.ab for p in parts]))


def _area_mean(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` -> ``(h, w)`` means over each cell's share of the pixels (a box resize)."""
    im = Image.fromarray(x.astype(np.float32), mode="F")
    return np.asarray(im.resize(shape[::-1], Image.BOX), dtype=np.float64)


def cell_features(logits: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """A photo's logits ``(Q, h, w)`` -> each cell's features ``(D, h*w)`` float32: the
    head's input recovered by its ``basis`` ``(D, Q)`` (the pseudo-inverse of its 1 x 1
    convolution), less the photo's mean, scaled to unit length."""
    q = logits.shape[0]
    f = np.asarray(basis, np.float32) @ np.asarray(logits, np.float32).reshape(q, -1)
    f -= f.mean(axis=1, keepdims=True)
    f /= np.linalg.norm(f, axis=0, keepdims=True) + 1e-9
    return f


def local_offset(logits: np.ndarray, prior: ImagePrior, basis: np.ndarray,
                 train_prior: np.ndarray) -> np.ndarray:
    """What decoding adds to each cell's logits ``(Q, h, w)`` for a reference ``prior``
    whose photos were seen as ``prior.exemplar``: ``s * LOCAL_GAIN * g * (log h_cell -
    log train_prior)`` (``s`` the prior's strength), where ``h_cell`` mixes the colours
    (Gaussians of :data:`MATCH_SIGMA` over the bins) of the reference cells by the softmax
    of their features' cosine similarity to the cell's, and the gate ``g`` in [0, 1] is the
    cell's best similarity (:data:`MATCH_GATE`) times the photo's mean best similarity
    (:data:`SCENE_GATE`). Where the photo is unlike the reference (a gate under 1), its
    histogram pulls every cell instead, at ``s * FALLBACK`` times what the gate leaves:
    a reference of another scene, or a swatch of one colour, still steers a little.
    float32."""
    q, h, w = logits.shape
    exemplar = prior.exemplar
    if exemplar is None:
        raise ValueError("local_offset needs a prior with an exemplar (Colorizer.with_exemplar)")
    feats = cell_features(logits, basis)
    step = TARGET_STEP
    if step > 1:  # every step-th cell each way; the rest copy their nearest kept cell
        feats = feats.reshape(-1, h, w)[:, ::step, ::step]
        feats = np.ascontiguousarray(feats.reshape(len(feats), -1))
    sim = exemplar.features @ feats  # (R, T) cosines
    best = sim.max(axis=0)
    lo, hi = SCENE_GATE
    scene = float(np.clip((best.mean() - lo) / (hi - lo), 0, 1))
    gate = np.clip((best - MATCH_GATE) / (1 - MATCH_GATE), 0, 1) \
        * np.float32(scene * prior.strength * LOCAL_GAIN)
    log_base = _log_floored(train_prior).astype(np.float32)
    off = np.zeros((q, sim.shape[1]), np.float32)
    fallback = (1 - scene) * FALLBACK * prior.strength
    if fallback:  # the histogram, as logit_offset gives it at this strength
        off += (fallback * (_log_floored(prior.array()) - log_base)).astype(np.float32)[:, None]
    if not gate.any():  # another scene, or strength 0: no cell to take colours from
        return _spread(off, q, h, w, step)
    sim -= best
    sim *= np.float32(1 / MATCH_TAU)
    weights = np.exp(sim, out=sim)  # the softmax's numerators, in place
    support, colours = exemplar.colours
    hist = (colours.T @ weights) / weights.sum(axis=0)  # (S, T): 0 for the other bins
    floor = FLOOR / q
    off += np.outer(np.float32(np.log(floor)) - log_base, gate)  # (Q, T)
    off[support] += (np.log(np.maximum(hist, np.float32(floor))) - np.float32(np.log(floor))) * gate
    return _spread(off, q, h, w, step)


def _spread(off: np.ndarray, q: int, h: int, w: int, step: int) -> np.ndarray:
    """Offsets ``(Q, T)`` of every step-th cell each way -> ``(Q, h, w)``, each cell taking
    its kept cell's."""
    if step == 1:
        return off.reshape(q, h, w)
    hs, ws = -(-h // step), -(-w // step)
    full = np.repeat(np.repeat(off.reshape(q, hs, ws), step, axis=1), step, axis=2)
    return np.ascontiguousarray(full[:, :h, :w])


# ----------------------------------------------------------------------------- sources

def parse_region(spec: str) -> tuple[str, tuple[float, float, float, float] | None]:
    """``"photo.jpg"`` or ``"photo.jpg:x0,y0,x1,y1"`` (pixels, or fractions of the photo
    when all are at most 1) -> the path and the region (None = the whole photo)."""
    m = re.fullmatch(r"(.+):(-?[\d.]+),(-?[\d.]+),(-?[\d.]+),(-?[\d.]+)", spec)
    if m is None:
        return spec, None
    x0, y0, x1, y1 = (float(v) for v in m.groups()[1:])
    if not (x1 > x0 >= 0 and y1 > y0 >= 0):
        raise PriorError(f"{m.group(1)}: a region is x0,y0,x1,y1 with x0 < x1 and y0 < y1, "
                         f"got {spec[len(m.group(1)) + 1:]}")
    return m.group(1), (x0, y0, x1, y1)


def photo_ab(rgb: np.ndarray,
             region: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """An sRGB photo ``(H, W, 3)`` uint8 (or ``(H, W)`` gray) -> the a*b* of its pixels
    (of ``region`` only, when given) on a copy with a long side of 256 px: ``(N, 2)``."""
    return _ab(probe_copy(rgb, region))


def _ab(rgb: np.ndarray) -> np.ndarray:
    """An sRGB copy ``(h, w, 3)`` uint8 -> the a*b* of its pixels ``(h*w, 2)``."""
    return color.rgb_to_lab_np(rgb.astype(np.float64) / 255)[..., 1:].reshape(-1, 2)


def probe_copy(rgb: np.ndarray,
               region: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """An sRGB photo ``(H, W, 3)`` uint8 (or ``(H, W)`` gray, or 16-bit) -> its copy (of
    ``region`` only, when given) with a long side of at most 256 px, ``(h, w, 3)`` uint8."""
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    if rgb.dtype != np.uint8:
        rgb = (rgb.astype(np.float64) / np.iinfo(rgb.dtype).max * 255 + 0.5).astype(np.uint8)
    h, w = rgb.shape[:2]
    if region is not None:
        scale = (w, h, w, h) if max(region) <= 1 else (1, 1, 1, 1)
        x0, y0, x1, y1 = (int(round(v * s)) for v, s in zip(region, scale))
        rgb = rgb[min(y0, h - 1):max(min(y1, h), y0 + 1), min(x0, w - 1):max(min(x1, w), x0 + 1)]
    im = Image.fromarray(np.ascontiguousarray(rgb))
    im.thumbnail((_PROBE, _PROBE), Image.BOX)
    return np.asarray(im)


def from_photos(references: Sequence[str | os.PathLike[str] | np.ndarray | Image.Image],
                strength: float = DEFAULT_STRENGTH, max_pixels: int | None = None,
                ) -> ImagePrior:
    """A prior from one or more colour reference photos (paths, optionally with a region
    ``"path:x0,y0,x1,y1"``, PIL images or arrays): the mean of their histograms, each
    photo counting equally; files larger than ``max_pixels`` are refused. Raises
    :class:`PriorError` or ``PhotoError``."""
    from chromatize.io import MAX_PIXELS, read_photo, read_source

    if not references:
        raise PriorError("no reference photo given")
    hists, names, copies = [], [], []
    for ref in references:
        region = None
        if isinstance(ref, str):
            ref, region = parse_region(ref)
            names.append(os.path.basename(ref))
        elif isinstance(ref, os.PathLike):
            names.append(os.path.basename(ref))
        if isinstance(ref, (str, os.PathLike)):
            ref = read_photo(ref, max_pixels or MAX_PIXELS)
        src, _ = read_source(ref)
        small = probe_copy(src, region)
        ab = _ab(small)
        if src.ndim == 2 or float(np.hypot(ab[:, 0], ab[:, 1]).mean()) < _MIN_CHROMA:
            name = names[-1] if names else "the reference"
            raise PriorError(f"{name}: a reference must be a colour photo (this one is "
                             f"black-and-white)")
        hists.append(histogram(ab))
        copies.append(small)
    return ImagePrior(tuple(np.mean(hists, axis=0).tolist()), strength,
                      "reference " + ", ".join(names) if names else "reference", tuple(copies))


_HEX = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")


def parse_palette(text: str) -> list[tuple[tuple[int, int, int], float]]:
    """``'#8b2e2e,#2e4d8b:0.3,d8b48a'`` -> ``[((r, g, b), weight), ...]``; a colour
    without ``:weight`` weighs 1. Raises :class:`PriorError` naming the bad entry."""
    out = []
    for entry in (e.strip() for e in str(text).split(",")):
        if not entry:
            continue
        hexpart, _, weight = entry.partition(":")
        m = _HEX.fullmatch(hexpart.strip())
        if m is None:
            raise PriorError(f"palette colour {entry[:20]!r} is not #rrggbb (or #rgb)")
        digits = m.group(1)
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            w = float("nan")
        if not (np.isfinite(w) and 0 < w <= 1000):
            raise PriorError(f"palette weight in {entry[:20]!r} must be a number above 0 "
                             f"and at most 1000")
        out.append((tuple(int(digits[i:i + 2], 16) for i in (0, 2, 4)), w))
    if not out:
        raise PriorError("a palette needs at least one colour, e.g. '#8b2e2e,#2e4d8b'")
    if len(out) > 64:
        raise PriorError(f"a palette has at most 64 colours, got {len(out)}")
    return out  # type: ignore[return-value]


def from_palette(palette: str | Sequence[tuple[tuple[int, int, int], float]],
                 strength: float = PALETTE_STRENGTH) -> ImagePrior:
    """A prior from a palette (text as :func:`parse_palette` reads it, or its parsed
    list): each colour's a*b* weighted by its weight, smoothed like a photo's."""
    entries = parse_palette(palette) if isinstance(palette, str) else list(palette)
    rgb = np.array([c for c, _ in entries], dtype=np.float64) / 255
    ab = color.rgb_to_lab_np(rgb)[:, 1:]
    w = np.array([wt for _, wt in entries], dtype=np.float64)
    label = ",".join("#%02x%02x%02x" % c for c, _ in entries)
    return ImagePrior.from_array(histogram(ab, w), strength, f"palette {label}")


def image_prior(reference: Any = None, palette: Any = None,
                strength: float | None = None, max_pixels: int | None = None,
                ) -> ImagePrior | None:
    """The prior a user gives: a ``reference`` (one colour photo or a list, as
    :func:`from_photos` takes them), a ``palette`` (text or parsed), both (their
    histograms averaged, at the reference's strength) or neither (None); ``strength``
    None takes :data:`REFERENCE_STRENGTH` or :data:`PALETTE_STRENGTH`. Raises
    :class:`PriorError` for a ``strength`` without either."""
    if reference is None and palette is None:
        if strength is not None:
            raise PriorError("strength needs a reference photo or a palette")
        return None
    parts = []
    if reference is not None:
        refs = reference if isinstance(reference, (list, tuple)) else [reference]
        parts.append(from_photos(refs, REFERENCE_STRENGTH if strength is None else strength,
                                 max_pixels))
    if palette is not None:
        parts.append(from_palette(palette, PALETTE_STRENGTH if strength is None else strength))
    if len(parts) == 1:
        return parts[0]
    return ImagePrior.from_array(np.mean([p.array() for p in parts], axis=0), parts[0].strength,
                                 " + ".join(p.source for p in parts))


__all__ = ["image_prior", "DEFAULT_STRENGTH", "PALETTE_STRENGTH", "REFERENCE_STRENGTH",
           "Exemplar", "ImagePrior", "PriorError", "bins", "cell_features", "from_palette",
           "from_photos", "histogram", "local_offset", "logit_offset", "parse_palette",
           "parse_region", "photo_ab", "probe_copy"]
