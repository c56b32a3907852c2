"""Image-level colour priors: which colours *this* photo has, given once by a person.

The network knows, per pixel, which colours are possible; it does not know which of them
this photo has. An :class:`ImagePrior` says so for the whole photo as a histogram over the
classification head's ab bins (``color.ab_bins()``, Q = 261), made from a reference photo
(:func:`from_photos`), a palette (:func:`from_palette`) or a version's histogram. Decoding
reweights each pixel's distribution ``p`` by it (:func:`logit_offset`)::

    p'(q) ∝ p(q) * (h(q) / prior(q)) ** strength

where ``prior`` is the training photos' ab distribution the head carries: a colour this
photo has more often than photos in general becomes likelier everywhere the network finds
it possible, and the network still decides where it goes. A leaf module: numpy, SciPy and
Pillow only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
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
    q = len(train_prior)
    floor = FLOOR / q
    h = np.maximum(prior.array(), floor)
    base = np.maximum(np.asarray(train_prior, dtype=np.float64), floor)
    return (prior.strength * (np.log(h / h.sum()) - np.log(base / base.sum()))).astype(np.float32)


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
    lab = color.rgb_to_lab_np(np.asarray(im, dtype=np.float64) / 255)
    return lab[..., 1:].reshape(-1, 2)


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
    hists, names = [], []
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
        ab = photo_ab(src, region)
        if src.ndim == 2 or float(np.hypot(ab[:, 0], ab[:, 1]).mean()) < _MIN_CHROMA:
            name = names[-1] if names else "the reference"
            raise PriorError(f"{name}: a reference must be a colour photo (this one is "
                             f"black-and-white)")
        hists.append(histogram(ab))
    return ImagePrior.from_array(np.mean(hists, axis=0), strength,
                                 "reference " + ", ".join(names) if names else "reference")


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
           "ImagePrior", "PriorError", "bins", "from_palette", "from_photos", "histogram",
           "logit_offset", "parse_palette", "parse_region", "photo_ab"]
