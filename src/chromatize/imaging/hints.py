"""Colour hints: user marks -> ``(hint_ab, hint_mask)``, and hints pooled to a smaller size.

One module for the hint models and for Levin's propagation.

``hint_ab`` is float32 ``(H, W, 2)`` in Lab units (zero where unmarked) and ``hint_mask``
bool ``(H, W)``, at the photo's size. Marks come in three forms:

* a scribble image the size of the photo, strokes drawn on a copy of it: marked are the
  pixels that differ from the photo by more than ``threshold`` (Delta E in Lab, as Levin
  et al. compare the scribbled image with the gray one); a JPEG's noise stays below it;
* an RGBA layer with some transparency: marked are the pixels with alpha > 0;
* points: a JSON file (``.json``) or a Python list of
  ``{"x": float, "y": float, "color": "#rrggbb" | [r, g, b], "radius": float}`` in image
  pixels (from the top left, 0 <= x < width); ``color`` may also be any name Pillow knows
  (``"red"``); ``radius`` (default 3) makes a disc of the pixels whose centres lie within
  ``radius`` of (x, y); the pixel under (x, y) is always marked (radius 0: only it);
  ``reach`` (optional: ``"local"``, ``"object"``, the default, or ``"photo"``) says how far
  a point's correction may spread (:data:`REACH`). The file may also be a *fix*, the
  object the page downloads: ``{"marks": [points], "boost", "gain", "model", "seed"}``
  (:func:`load_fix`), whose decoding reproduces the page's result.

Only the mark's a*b* is used; the photo's own L* is always kept. :func:`pool_hints`
brings hints to the size the network or a coarser solver works at.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageColor

import chromatize.color as color
from chromatize.decoding import check_number, real
from chromatize.errors import ChromatizeError, UsageError
from chromatize.imaging.upsample import area_resize
from chromatize.io import ImageLike, PhotoError, read_source

DEFAULT_RADIUS = 3
DEFAULT_THRESHOLD = 8.0
_POINT_KEYS = {"x", "y", "color", "radius", "reach"}
#: Inclusive ranges of the numbers in marks, checked before anything is painted (the page
#: reads them from ``/api/health``). ``x`` and ``y`` must besides lie inside the photo
#: (0 <= x < width); their own range only keeps floats finite, whatever --max-pixels
#: allows. A disc of radius 10,000 px covers most of any photo; 10,000 points are far
#: more than anyone clicks, and bound the painting work.
MARK_LIMITS: dict[str, tuple[float, float]] = {
    "x": (0, 1e9), "y": (0, 1e9), "radius": (0, 10_000), "points": (0, 10_000)}
#: Longest integer literal read from a marks JSON: Python refuses to parse integers above
#: 4,300 digits with a ValueError, and no coordinate needs more than a few.
_MAX_DIGITS = 20
#: How far a point's correction spreads: the scale of every distance the engine's
#: affinities weigh (:mod:`chromatize.inference.steer`): ``local`` stays near the point
#: and in what looks just like it, ``object`` (the default, the engine's own reach)
#: follows the object, ``photo`` recolours everything alike across the whole photo.
REACH = {"local": 0.35, "object": 1.0, "photo": 3.0}
DEFAULT_REACH = "object"
#: Decoding settings a fix may carry besides its marks (each checked as the command
#: line's own option is), and what it says for information only.
FIX_SETTINGS = ("boost", "gain", "seed", "strength")
#: ``variant`` of ``k``: the page's chosen version (:mod:`chromatize.inference.variants`);
#: ``reference``: the reference photo's file name (information: the command line is
#: given the file with ``--reference``).
FIX_VERSION = ("variant", "k")
FIX_INFO = ("model", "palette", "restore", "reference", "photo", "version")

Marks = str | os.PathLike[str] | Image.Image | Sequence[dict[str, Any]]


class MarksError(ChromatizeError, ValueError):
    """Marks that cannot be used; the message names the source and the reason."""


def check_hints(hint_ab: np.ndarray, hint_mask: np.ndarray, shape: tuple[int, ...]) -> None:
    """Raise :class:`MarksError` unless the hints are ``(H, W, 2)`` and ``(H, W)`` for a
    photo of ``shape`` ``(H, W, ...)``."""
    h, w = shape[:2]
    if hint_ab.shape != (h, w, 2) or hint_mask.shape != (h, w):
        raise MarksError(f"hints must be (H, W, 2) and (H, W) for a {w}x{h} photo, got "
                         f"{hint_ab.shape} and {hint_mask.shape}")


def _box_cells(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's BOX weights for shrinking ``n_in`` to ``n_out <= n_in`` samples, per input
    sample: the output cell it falls in and its weight there (one over the cell's count),
    both ``(n_in,)``. Mirrors Pillow's ``precompute_coeffs``: the box filter is 1 on
    (-0.5, 0.5] of a cell, so every input sample falls in exactly one cell."""
    scale = n_in / n_out
    centre = (np.arange(n_out) + 0.5) * scale
    x = np.arange(n_in) + 0.5  # input sample centres
    # Cell k holds the samples with (x - centre_k) / scale in (-0.5, 0.5].
    cell = np.clip(np.ceil(x / scale - 1).astype(np.int64), 0, n_out - 1)
    inside = (x - centre[cell]) / scale
    cell = np.where(inside <= -0.5, cell - 1, np.where(inside > 0.5, cell + 1, cell))
    counts = np.bincount(cell, minlength=n_out)
    return cell, (1.0 / counts[cell]).astype(np.float64)


def pool_hints(hint_ab: np.ndarray, hint_mask: np.ndarray,
               shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Hints at a smaller ``shape`` (h, w): a small pixel is marked if any pixel under it
    is, with the mean colour of those marked pixels (areas weighted as
    :func:`~chromatize.imaging.upsample.area_resize` weights them). Returns
    ``(ab (h, w, 2) float32, mask (h, w) bool)`` (``hint_ab`` may have more channels
    than a*b*, such as a point's reach: each is averaged alike).

    When shrinking, only the marked pixels are visited (marks are sparse: a re-solve on a
    12 MP photo must not pay for its size); otherwise the dense area resize."""
    (h_in, w_in), (h, w) = hint_mask.shape, shape
    if h > h_in or w > w_in:
        frac = area_resize(hint_mask.astype(np.float32), shape)
        total = area_resize(np.where(hint_mask[..., None], hint_ab, 0), shape)
    else:
        ys, xs = np.nonzero(hint_mask)
        cy, wy = _box_cells(h_in, h)
        cx, wx = _box_cells(w_in, w)
        cell = cy[ys] * w + cx[xs]
        weight = wy[ys] * wx[xs]
        frac = np.bincount(cell, weight, h * w).reshape(h, w)
        ab = hint_ab[ys, xs].astype(np.float64)
        total = np.stack([np.bincount(cell, weight * ab[:, c], h * w)
                          for c in range(ab.shape[-1])], -1).reshape(h, w, -1)
    mask = frac > 1e-6
    ab = np.where(mask[..., None], total / np.maximum(frac, 1e-6)[..., None], 0)
    return ab.astype(np.float32), mask


def load_marks(marks: Marks, photo: ImageLike,
               threshold: float = DEFAULT_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Read ``marks`` (a path to a scribble image or a JSON file, a PIL scribble image or a
    list of points) for ``photo`` (anything :func:`chromatize.io.read_source` takes).
    Returns ``(hint_ab (H, W, 2) float32, hint_mask (H, W) bool)``; :func:`load_hints`
    also gives the points' reach.

    Raises :class:`MarksError` for marks of another size, outside the photo, with bad
    colours, or with no marked pixel at all.
    """
    hint_ab, hint_mask, _ = load_hints(marks, photo, threshold)
    return hint_ab, hint_mask


def load_hints(marks: Marks, photo: ImageLike, threshold: float = DEFAULT_THRESHOLD,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """:func:`load_marks` and the reach of the points: ``(hint_ab, hint_mask, reach)``,
    ``reach`` float32 ``(H, W)`` the :data:`REACH` scale of the point painted on each
    marked pixel (1 elsewhere), or None when every mark has the default reach."""
    src, _ = read_source(photo)
    h, w = src.shape[:2]
    name = str(marks) if isinstance(marks, (str, os.PathLike)) else "marks"
    if isinstance(marks, (str, os.PathLike)) and Path(marks).suffix.lower() == ".json":
        marks = load_fix(Path(marks)).marks
    reach = None
    if isinstance(marks, (str, os.PathLike, Image.Image)):
        try:
            pixels, alpha = read_source(marks)
        except PhotoError as e:
            raise MarksError(str(e)) from None
        hint_ab, hint_mask = _from_scribble(pixels, alpha, src, threshold, name)
    else:
        hint_ab, hint_mask, reach = _from_points(marks, h, w, name)
    if not hint_mask.any():
        raise MarksError(f"{name}: no marks found (the scribble has no coloured pixel, "
                         "or the list of points is empty)")
    return hint_ab, hint_mask, reach


@dataclass(frozen=True)
class Fix:
    """A fix made on the page: its points (``{"x", "y", "color", "radius", "reach"}``
    dicts, checked when painted) and the decoding that gave the page's result (None:
    not recorded, the model's own). ``seed``: the result is the coloring sampled with this
    seed (an alternative the page made the working result), corrected by the points;
    ``palette`` and ``strength``: an image-level prior (:func:`chromatize.priors.from_palette`);
    ``restore``: the repair of the gray first (``"all"`` or steps, as ``--restore``);
    ``variant`` of ``k``: the result starts from that version (``--variants k``, only
    that one written); ``reference``: the name of the reference photo used (not read)."""

    marks: list[dict[str, Any]]
    boost: float | None = None
    gain: float | None = None
    seed: int | None = None
    strength: float | None = None
    palette: str | None = None
    restore: str | None = None
    model: str | None = None
    variant: int | None = None
    k: int | None = None
    reference: str | None = None


def load_fix(path: str | os.PathLike[str]) -> Fix:
    """Read a JSON file of marks: the page's object ``{"marks": [...], "boost", "gain",
    "seed", "model"}`` (optionally ``"palette"``, ``"strength"`` and ``"restore"``; ``"photo"`` and
    ``"version"`` for information), or a plain list of points. Raises
    :class:`MarksError` naming the file and the reason."""
    path = Path(path)
    data = _read_json(path)
    if isinstance(data, list):
        return Fix(data)
    if not isinstance(data, dict) or not isinstance(data.get("marks"), list):
        raise MarksError(f"{path}: expected a list of points or an object with \"marks\" "
                         "(a list of points)")
    unknown = set(data) - {"marks", *FIX_SETTINGS, *FIX_VERSION, *FIX_INFO}
    if unknown:
        raise MarksError(f"{path}: unknown keys {sorted(unknown)}; a fix has marks, "
                         f"{', '.join(FIX_SETTINGS + FIX_VERSION)} and {', '.join(FIX_INFO)}")
    settings: dict[str, Any] = {}
    for key in FIX_SETTINGS:
        if data.get(key) is not None:
            try:
                settings[key] = check_number(key, data[key])
            except ChromatizeError as e:
                raise MarksError(f"{path}: {e}") from None
    for key in ("model", "palette", "restore", "reference"):
        value = data.get(key)
        if value is not None and not (isinstance(value, str) and value):
            raise MarksError(f"{path}: {key!r} must be a non-empty string, got {value!r}")
    settings.update(_fix_version(path, data))
    return Fix(data["marks"], model=data.get("model"), palette=data.get("palette"),
               restore=data.get("restore"), reference=data.get("reference"), **settings)


def _fix_version(path: Path, data: dict[str, Any]) -> dict[str, int]:
    """A fix's ``variant`` of ``k`` (``k`` default 4), checked; none without a variant."""
    if data.get("variant") is None:
        if data.get("k") is not None:
            raise MarksError(f"{path}: 'k' (the number of versions) needs a 'variant'")
        return {}
    try:
        k = int(check_number("variants", 4 if data.get("k") is None else data["k"]))
    except ChromatizeError as e:
        raise MarksError(f"{path}: k: {e}") from None
    variant = data["variant"]
    if isinstance(variant, bool) or not isinstance(variant, int) or not 1 <= variant <= k:
        raise MarksError(f"{path}: variant must be a whole number from 1 to k ({k}), "
                         f"got {variant!r}")
    if data.get("palette") is not None or data.get("reference") is not None:
        raise MarksError(f"{path}: a version chooses the photo's colours itself: a fix has "
                         "a variant or a reference/palette, not both")
    return {"variant": variant, "k": k}


def _read_json(path: Path) -> Any:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise MarksError(f"{path}: cannot read marks ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise MarksError(f"{path}: not valid JSON ({e})") from None
    return parse_marks_json(text, str(path))


def parse_marks_json(text: str, name: str = "marks") -> Any:
    """JSON text of marks (a list of points, see the module docstring) -> Python objects.
    Raises :class:`MarksError` with one line for text that is not JSON, nested too deep
    for Python's parser, or holding an integer of more than a few digits."""

    def parse_int(digits: str) -> int:
        if len(digits.lstrip("-")) > _MAX_DIGITS:
            raise MarksError(f"{name}: a number of {len(digits.lstrip('-'))} digits; marks "
                             f"hold pixel positions (at most {MARK_LIMITS['x'][1]:g})")
        return int(digits)

    try:
        return json.loads(text, parse_int=parse_int)
    except json.JSONDecodeError as e:
        raise MarksError(f"{name}: not valid JSON ({e})") from None
    except RecursionError:
        raise MarksError(f"{name}: not valid marks (JSON nested too deep); expected a list "
                         'of {"x", "y", "color", "radius"}') from None


def _from_scribble(marks: np.ndarray, alpha: Image.Image | None, src: np.ndarray,
                   threshold: float, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Scribble pixels and alpha (:func:`chromatize.io.to_pixels`) of the photo's size ->
    hints (see the module docstring)."""
    h, w = src.shape[:2]
    if marks.shape[:2] != (h, w):
        raise MarksError(f"{name}: marks are {marks.shape[1]}x{marks.shape[0]} but the photo "
                         f"is {w}x{h}; draw the marks on a copy of the photo")
    layer = None if alpha is None else np.asarray(alpha)
    if layer is not None and layer.min() < 255:  # opaque everywhere: a copy, not a layer
        mask = layer > 0
    else:
        # Lab only where the copy differs from the photo by more than 2 levels: so small a
        # difference is far below any Delta E threshold, and full-size Lab is slow.
        diff = np.abs(_rgb8(marks).astype(np.int16) - _rgb8(src)).max(-1) > 2
        ys, xs = np.nonzero(diff)
        delta = color.source_lab(marks[ys, xs][None]) - color.source_lab(src[ys, xs][None])
        far = np.sqrt((delta[0] ** 2).sum(-1)) > threshold
        mask = np.zeros(diff.shape, bool)
        mask[ys[far], xs[far]] = True
    ys, xs = np.nonzero(mask)
    hint_ab = np.zeros(mask.shape + (2,), np.float32)
    hint_ab[ys, xs] = color.source_lab(marks[ys, xs][None])[0, :, 1:]
    return hint_ab, mask


def _rgb8(pixels: np.ndarray) -> np.ndarray:
    """Source pixels (:func:`chromatize.io.to_pixels`) as 8-bit ``(H, W, 3)`` or
    ``(H, W, 1)``, to compare a scribble with its photo cheaply."""
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    return pixels if pixels.ndim == 3 else pixels[..., None]


def parse_color(value: Any, where: str) -> tuple[int, int, int]:
    """``"#rrggbb"``, ``"#rgb"``, a colour name or ``[r, g, b]`` (0..255 integers) -> RGB."""
    if isinstance(value, str):
        try:
            if value.startswith("#") and len(value) not in (4, 7):  # no "#rgba" forms
                raise ValueError
            rgb = ImageColor.getrgb(value)
        except ValueError:
            raise MarksError(f"{where}: bad colour {value!r} (use \"#rrggbb\", a colour "
                             "name or [r, g, b])") from None
        return rgb[0], rgb[1], rgb[2]
    if (isinstance(value, (list, tuple)) and len(value) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255
                    for v in value)):
        return value[0], value[1], value[2]
    raise MarksError(f"{where}: bad colour {value!r} (use \"#rrggbb\", a colour name or "
                     "[r, g, b] with integers 0..255)")


def _mark_number(point: dict[str, Any], key: str, where: str) -> float:
    """``point[key]`` checked against :data:`MARK_LIMITS` (any real number type: numpy's
    too); :class:`MarksError` with one line otherwise."""
    try:
        return check_number(key, point.get(key, DEFAULT_RADIUS if key == "radius" else None),
                            MARK_LIMITS)
    except UsageError as e:
        raise MarksError(f"{where}: {e}") from None


def _reach_of(point: dict[str, Any], where: str) -> float:
    name = point.get("reach", DEFAULT_REACH)
    if name not in REACH:
        raise MarksError(f"{where}: reach must be one of {', '.join(REACH)}, got {name!r}")
    return REACH[name]


def _from_points(points: Any, h: int, w: int, name: str,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A list of point dicts -> hints and their reach (see :func:`load_hints`); discs
    are painted in list order (later wins)."""
    if not isinstance(points, (list, tuple)):
        raise MarksError(f"{name}: marks must be a list of points "
                         "{\"x\", \"y\", \"color\", \"radius\"}")
    lo, hi = MARK_LIMITS["points"]
    if not lo <= len(points) <= hi:
        raise MarksError(f"{name}: {len(points)} points; at most {hi:g}")
    hint_ab = np.zeros((h, w, 2), np.float32)
    mask = np.zeros((h, w), bool)
    reach = np.ones((h, w), np.float32)
    for i, point in enumerate(points):
        where = f"{name}: point {i}"
        if not isinstance(point, dict):
            raise MarksError(f"{where}: expected an object with x, y, color, got {point!r}")
        unknown = set(point) - _POINT_KEYS
        if unknown or "color" not in point:
            raise MarksError(f"{where}: needs x, y, color (and optional radius, reach)"
                             + (f"; unknown keys {sorted(unknown)}" if unknown else ""))
        x, y = real(point.get("x")), real(point.get("y"))
        if x is not None and y is not None and not (0 <= x < w and 0 <= y < h):
            raise MarksError(f"{where}: ({x:g}, {y:g}) is outside the {w}x{h} photo")
        x, y = _mark_number(point, "x", where), _mark_number(point, "y", where)
        radius = _mark_number(point, "radius", where)
        scale = _reach_of(point, where)
        ab = color.rgb_to_lab_np(np.array(parse_color(point["color"], where)) / 255)[1:]
        # Paint within the disc's bounding box only: full-size masks per point are slow.
        y0, x0 = max(0, int(np.ceil(y - radius))), max(0, int(np.ceil(x - radius)))
        y1, x1 = min(h, int(np.floor(y + radius)) + 1), min(w, int(np.floor(x + radius)) + 1)
        yy, xx = np.ogrid[y0:y1, x0:x1]
        disc = (yy - y) ** 2 + (xx - x) ** 2 <= radius**2
        hint_ab[y0:y1, x0:x1][disc] = ab
        mask[y0:y1, x0:x1] |= disc
        reach[y0:y1, x0:x1][disc] = scale
        hint_ab[int(y), int(x)] = ab
        mask[int(y), int(x)] = True
        reach[int(y), int(x)] = scale
    default = all(not isinstance(p, dict) or p.get("reach", DEFAULT_REACH) == DEFAULT_REACH
                  for p in points)
    return hint_ab, mask, None if default else reach
