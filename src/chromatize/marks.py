"""User colour marks -> the project's hint representation ``(hint_ab, hint_mask)``.

``hint_ab`` is float32 ``(H, W, 2)`` in Lab units (zero where unmarked) and ``hint_mask``
bool ``(H, W)``, at the photo's size. Marks come in three forms:

* a scribble image the size of the photo, strokes drawn on a copy of it: marked are the
  pixels that differ from the photo by more than ``threshold`` (Delta E in Lab, as Levin
  et al. compare the scribbled image with the gray one); a JPEG's noise stays below it;
* an RGBA layer with some transparency: marked are the pixels with alpha > 0;
* points: a JSON file (``.json``) or a Python list of
  ``{"x": float, "y": float, "color": "#rrggbb" | [r, g, b], "radius": float}`` in image
  pixels (x to the right, 0 <= x < width); ``color`` may also be any name Pillow knows
  (``"red"``); ``radius`` (default 3) makes a disc of the pixels whose centres lie within
  ``radius`` of (x, y); the pixel under (x, y) is always marked (radius 0: only it).

Only the mark's a*b* is used; the photo's own L* is always kept.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageColor

from chromatize import color
from chromatize.classical.common import source_lab
from chromatize.io import PhotoError, read_photo
from chromatize.pipeline import to_source

DEFAULT_RADIUS = 3
DEFAULT_THRESHOLD = 8.0
_POINT_KEYS = {"x", "y", "color", "radius"}

Marks = str | os.PathLike[str] | Image.Image | Sequence[dict[str, Any]]


class MarksError(ValueError):
    """Marks that cannot be used; the message names the source and the reason."""


def load_marks(marks: Marks, photo: Image.Image | np.ndarray,
               threshold: float = DEFAULT_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Read ``marks`` (a path to a scribble image or a JSON file, a PIL scribble image or a
    list of points) for ``photo`` (PIL image or array as :func:`chromatize.pipeline.to_source`
    takes). Returns ``(hint_ab (H, W, 2) float32, hint_mask (H, W) bool)``.

    Raises :class:`MarksError` for marks of another size, outside the photo, with bad
    colours, or with no marked pixel at all.
    """
    src, _ = to_source(photo)
    h, w = src.shape[:2]
    name = str(marks) if isinstance(marks, (str, os.PathLike)) else "marks"
    if isinstance(marks, (str, os.PathLike)) and Path(marks).suffix.lower() == ".json":
        marks = _read_json(Path(marks))
    if isinstance(marks, (str, os.PathLike)):
        try:
            photo_marks = read_photo(marks)
        except PhotoError as e:
            raise MarksError(str(e)) from None
        marks = photo_marks.image
        if photo_marks.alpha is not None:
            marks = marks.convert("RGB")
            marks.putalpha(photo_marks.alpha)
    if isinstance(marks, Image.Image):
        hint_ab, hint_mask = _from_scribble(marks, src, threshold, name)
    else:
        hint_ab, hint_mask = _from_points(marks, h, w, name)
    if not hint_mask.any():
        raise MarksError(f"{name}: no marks found (the scribble has no coloured pixel, "
                         "or the list of points is empty)")
    return hint_ab, hint_mask


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise MarksError(f"{path}: cannot read marks ({e.strerror or e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise MarksError(f"{path}: not valid JSON ({e})") from None


def _from_scribble(marks: Image.Image, src: np.ndarray, threshold: float,
                   name: str) -> tuple[np.ndarray, np.ndarray]:
    """A scribble image of the photo's size -> hints (see the module docstring)."""
    h, w = src.shape[:2]
    if marks.size != (w, h):
        raise MarksError(f"{name}: marks are {marks.size[0]}x{marks.size[1]} but the photo "
                         f"is {w}x{h}; draw the marks on a copy of the photo")
    alpha = None
    if marks.mode in ("RGBA", "LA", "PA") or (marks.mode == "P" and "transparency" in marks.info):
        marks = marks.convert("RGBA")
        alpha = np.asarray(marks.getchannel("A"))
        if alpha.min() == 255:  # opaque everywhere: a copy of the photo, not a layer
            alpha = None
    rgb = np.asarray(marks.convert("RGB"))
    if alpha is not None:
        mask = alpha > 0
    else:
        # Lab only where the copy differs from the photo by more than 2 levels: a smaller
        # difference is far below any Delta E threshold, and full-size Lab is slow.
        photo = src[..., None] if src.ndim == 2 else src
        if photo.dtype == np.uint16:
            photo = (photo >> 8).astype(np.uint8)
        diff = np.abs(rgb.astype(np.int16) - photo).max(-1) > 2
        ys, xs = np.nonzero(diff)
        lab_here = color.rgb_to_lab_np(rgb[ys, xs].astype(np.float32) / 255)
        delta = np.sqrt(((lab_here - source_lab(src[ys, xs][None]))[0] ** 2).sum(-1))
        mask = np.zeros(diff.shape, bool)
        mask[ys[delta > threshold], xs[delta > threshold]] = True
    ys, xs = np.nonzero(mask)
    hint_ab = np.zeros(mask.shape + (2,), np.float32)
    hint_ab[ys, xs] = color.rgb_to_lab_np(rgb[ys, xs].astype(np.float32) / 255)[:, 1:]
    return hint_ab, mask


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


def _number_field(point: dict[str, Any], key: str, where: str,
                  default: float | None = None) -> float:
    value = point.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not np.isfinite(value):
        raise MarksError(f"{where}: {key!r} must be a number, got {value!r}")
    return float(value)


def _from_points(points: Any, h: int, w: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A list of point dicts -> hints; discs are painted in list order (later wins)."""
    if not isinstance(points, (list, tuple)):
        raise MarksError(f"{name}: marks must be a list of points "
                         "{\"x\", \"y\", \"color\", \"radius\"}")
    hint_ab = np.zeros((h, w, 2), np.float32)
    mask = np.zeros((h, w), bool)
    for i, point in enumerate(points):
        where = f"{name}: point {i}"
        if not isinstance(point, dict):
            raise MarksError(f"{where}: expected an object with x, y, color, got {point!r}")
        unknown = set(point) - _POINT_KEYS
        if unknown or "color" not in point:
            raise MarksError(f"{where}: needs x, y, color (and optional radius)"
                             + (f"; unknown keys {sorted(unknown)}" if unknown else ""))
        x, y = _number_field(point, "x", where), _number_field(point, "y", where)
        radius = _number_field(point, "radius", where, DEFAULT_RADIUS)
        if not (0 <= x < w and 0 <= y < h):
            raise MarksError(f"{where}: ({x:g}, {y:g}) is outside the {w}x{h} photo")
        if radius < 0:
            raise MarksError(f"{where}: radius must be >= 0, got {radius:g}")
        rgb = np.array(parse_color(point["color"], where), np.float64) / 255
        # Paint within the disc's bounding box only: full-size masks per point are slow.
        y0, x0 = max(0, int(np.ceil(y - radius))), max(0, int(np.ceil(x - radius)))
        y1, x1 = min(h, int(np.floor(y + radius)) + 1), min(w, int(np.floor(x + radius)) + 1)
        yy, xx = np.ogrid[y0:y1, x0:x1]
        disc = (yy - y) ** 2 + (xx - x) ** 2 <= radius**2
        ab = color.rgb_to_lab_np(rgb)[1:]
        hint_ab[y0:y1, x0:x1][disc] = ab
        mask[y0:y1, x0:x1] |= disc
        hint_ab[int(y), int(x)] = ab
        mask[int(y), int(x)] = True
    return hint_ab, mask
