"""Score colorization models on a folder of colour photos and write a report.

Each colour photo becomes a gray input (its own L* with a* = b* = 0, as 8-bit gray), every
model colorizes it, and :func:`chromatize.evaluation.metrics.image_metrics` compares the output with
the photo. Two baselines are always scored beside the models:

- ``gray``: the gray input itself (no colour at all);
- ``mean-colour``: the input's L* with one constant ab, the mean ab of the evaluated photos.
  The training set's mean colour is unknown here, so this baseline has seen the test
  photos' average colour: it is a mild upper bound for "one colour everywhere".

Outputs in ``out_dir``: ``metrics.json`` (settings, counts, mean and median per method),
``per_image.csv`` (one row per photo and method) and ``report.html`` (see
:mod:`chromatize.evaluation.report`).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import chromatize.color as color
from chromatize.evaluation import metrics
from chromatize.io import PhotoError, atomic_write_bytes, folder_problem, list_photos, read_photo
from chromatize.inference.pipeline import Colorizer
from chromatize.evaluation.report import render_report
from chromatize.errors import ChromatizeError

#: A colorization method: gray input ``(H, W)`` uint8 -> sRGB ``(H, W, 3)`` uint8.
Method = Callable[[np.ndarray], np.ndarray]

GRAY, MEAN_COLOUR = "gray", "mean-colour"
OUTPUT_FILES = ("metrics.json", "per_image.csv", "report.html")
THUMB_SIDE = 192
_CHECK_SIDE = 64  # the mean ab runs on a copy this small: fast, and enough
_LUT8 = color.gray_to_l_lut(8)


class EvaluationError(ChromatizeError, ValueError):
    """Evaluation cannot run: no photos, an output exists, or similar (message says which)."""


def list_images(data_dir: Path) -> list[Path]:
    """Image files directly in ``data_dir`` (by suffix), sorted by name."""
    if not data_dir.is_dir():
        raise EvaluationError(f"{data_dir}: not a folder")
    return list_photos(data_dir, recursive=False)


def load_truth(path: Path, size: int | None = None) -> np.ndarray:
    """A photo as sRGB ``(H, W, 3)`` uint8, resized to ``size`` x ``size`` if given
    (the 256 x 256 protocol of Zhang et al. and DDColor). Raises ``PhotoError``."""
    image = read_photo(path).image.convert("RGB")
    if size:
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(image)


def gray_input(true_l: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The gray input of a colour photo from its L* ``(H, W)``: (8-bit gray ``(H, W)`` of the
    nearest L* level, that gray's L* ``(H, W)`` float32). Gray R = G = B has a* = b* = 0."""
    hi = np.clip(np.searchsorted(_LUT8, true_l), 1, 255)
    gray = np.where(_LUT8[hi] - true_l < true_l - _LUT8[hi - 1], hi, hi - 1).astype(np.uint8)
    return gray, _LUT8[gray]


def select_photos(paths: Sequence[Path], size: int | None, limit: int | None, seed: int,
                  ) -> tuple[list[Path], dict[str, list[str]], np.ndarray]:
    """Pick the colour photos to evaluate.

    With ``limit``, paths are visited in a ``seed``-shuffled order until ``limit`` colour
    photos are found (the pick is returned sorted). Returns (photos, skipped names by
    reason: ``not_colour``/``unreadable``/``too_small`` (short side under
    :data:`~chromatize.evaluation.metrics.MIN_SIDE`), mean ab ``(2,)`` of the photos
    picked).
    """
    order = list(paths)
    if limit is not None:
        random.Random(seed).shuffle(order)
    picked: list[Path] = []
    skipped: dict[str, list[str]] = {"not_colour": [], "unreadable": [], "too_small": []}
    ab_means = []
    for path in order:
        if limit is not None and len(picked) >= limit:
            break
        try:
            image = Image.fromarray(load_truth(path, size))
        except PhotoError:
            skipped["unreadable"].append(path.name)
            continue
        if min(image.size) < metrics.MIN_SIDE:
            skipped["too_small"].append(path.name)
            continue
        if not color.is_color(image, min_chroma=metrics.MIN_MEAN_CHROMA):
            skipped["not_colour"].append(path.name)
            continue
        picked.append(path)
        image.thumbnail((_CHECK_SIDE, _CHECK_SIDE), Image.Resampling.BOX)
        lab = metrics.to_lab(np.asarray(image))
        ab_means.append(lab[..., 1:].reshape(-1, 2).mean(0))
    mean_ab = np.mean(ab_means, 0) if ab_means else np.zeros(2)
    return sorted(picked), skipped, mean_ab


def constant_colour(ab: np.ndarray) -> Method:
    """A method that gives every pixel the input's L* and the constant ``ab`` ``(2,)``."""
    def colorize(gray: np.ndarray) -> np.ndarray:
        lab = np.empty((*gray.shape, 3))
        lab[..., 0] = _LUT8[gray]
        lab[..., 1:] = ab
        return (color.lab_to_rgb_np(lab, gamut="preserve_l") * 255 + 0.5).astype(np.uint8)
    return colorize


def model_method(model: str, device: str = "cpu") -> Method:
    """A checkpoint path or shipped model name as a :data:`Method`; raises ``CheckpointError``."""
    colorizer = Colorizer.load(model, device=device)
    return lambda gray: np.asarray(colorizer.colorize(gray).convert("RGB"))


def thumbnail(rgb: np.ndarray, side: int = THUMB_SIDE) -> bytes:
    """A small JPEG of ``rgb`` (long side ``side``) for the report."""
    image = Image.fromarray(rgb)
    image.thumbnail((side, side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=88)
    return buf.getvalue()


def summarise(rows: Sequence[dict[str, Any]], methods: Sequence[str],
              ) -> dict[str, dict[str, dict[str, float]]]:
    """Mean and median of every metric per method: ``{method: {metric: {mean, median}}}``.
    Non-finite values (an infinite PSNR of an exact match) are left out."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for method in methods:
        mine = [r for r in rows if r["model"] == method]
        out[method] = {}
        for key in metrics.SUMMARY_METRICS:
            v = np.array([r[key] for r in mine], np.float64)
            v = v[np.isfinite(v)]
            out[method][key] = {"mean": float(v.mean()) if v.size else math.nan,
                                "median": float(np.median(v)) if v.size else math.nan}
    return out


def _json_safe(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_json_safe(v) for v in x]
    return x


def _csv_bytes(rows: Sequence[dict[str, Any]]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in r.items()}
                     for r in rows)
    return buf.getvalue().encode()


def _check_outputs(out: Path, models: Sequence[str], overwrite: bool) -> None:
    """Raise ``EvaluationError`` before any work for a report folder that cannot be
    written or already holds a report, and for models named like the baselines."""
    problem = folder_problem(out)
    if problem is not None:
        raise EvaluationError(f"{out}: report folder {problem}")
    existing = [name for name in OUTPUT_FILES if (out / name).exists()]
    if existing and not overwrite:
        raise EvaluationError(
            f"{out / existing[0]}: already exists (use --overwrite to replace it)")
    if len(set(models)) != len(models) or {GRAY, MEAN_COLOUR} & set(models):
        raise EvaluationError(f"models must be distinct and not named {GRAY!r} or "
                              f"{MEAN_COLOUR!r} (the baselines are always scored)")


def _score(photos: Sequence[Path], methods: dict[str, Method], shown: set[str],
           size: int | None, progress: Callable[[int, int], None] | None,
           ) -> tuple[list[dict[str, Any]], dict[str, dict[str, bytes]]]:
    """Every method on every photo made gray: the per-image metric rows, and thumbnails
    (input, truth and the ``shown`` methods') for the report."""
    rows: list[dict[str, Any]] = []
    thumbs: dict[str, dict[str, bytes]] = {}
    for i, path in enumerate(photos):
        truth = load_truth(path, size)
        true_lab = metrics.to_lab(truth)
        gray, input_l = gray_input(true_lab[..., 0])
        thumbs[path.name] = {"input": thumbnail(gray), "truth": thumbnail(truth)}
        for name, method in methods.items():
            pred = method(gray)
            rows.append({"image": path.name, "model": name,
                         **metrics.image_metrics(pred, truth, input_l, true_lab)})
            if name in shown:
                thumbs[path.name][name] = thumbnail(pred)
        if progress:
            progress(i + 1, len(photos))
    return rows, thumbs


def evaluate(models: Sequence[str], data_dir: str | os.PathLike[str],
             out_dir: str | os.PathLike[str], size: int | None = None,
             limit: int | None = None, seed: int = 0, device: str = "cpu",
             overwrite: bool = False,
             progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Evaluate ``models`` (checkpoint paths or shipped names) on the colour photos of
    ``data_dir`` and write the outputs to ``out_dir``; returns the ``metrics.json`` content.

    ``size``: resize every photo to size x size first (default: full size). ``limit``: at
    most this many photos, picked at random with ``seed`` (which also picks the report's
    examples). ``progress(done, total)`` is called after each photo. Raises
    ``EvaluationError`` and ``CheckpointError``.
    """
    data_dir, out = Path(data_dir), Path(out_dir)
    _check_outputs(out, models, overwrite)
    methods: dict[str, Method] = {m: model_method(m, device) for m in models}
    photos, skipped, mean_ab = select_photos(list_images(data_dir), size, limit, seed)
    if not photos:
        raise EvaluationError(f"{data_dir}: no colour photos to evaluate "
                              f"({sum(map(len, skipped.values()))} skipped)")
    methods[GRAY] = lambda gray: np.repeat(gray[..., None], 3, -1)
    methods[MEAN_COLOUR] = constant_colour(mean_ab)
    rows, thumbs = _score(photos, methods, set(models), size, progress)

    result = {
        "data_dir": str(data_dir), "size": size, "limit": limit, "seed": seed,
        "models": list(models), "baselines": [GRAY, MEAN_COLOUR],
        "mean_colour_ab": [round(float(v), 3) for v in mean_ab],
        "evaluated": len(photos), "skipped": {k: len(v) for k, v in skipped.items()},
        "skipped_files": skipped,
        "metrics": summarise(rows, list(methods)),
    }
    files = {"metrics.json": json.dumps(_json_safe(result), indent=2).encode(),
             "per_image.csv": _csv_bytes(rows),
             "report.html": render_report(result, rows, thumbs, list(models), seed).encode()}
    for name, data in files.items():
        try:
            atomic_write_bytes(out / name, data)
        except OSError as e:  # the folder changed or filled up during the run
            raise EvaluationError(f"{out / name}: cannot write ({e.strerror or e})") from None
    return result
