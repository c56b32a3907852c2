"""Versions to choose from: image-level priors from the colour photos most like this one.

An :class:`Index` holds, for each of many colour photos, an embedding of its gray copy
and its colour histogram (:func:`chromatize.priors.histogram`). The embedding is what the
network already says about the gray photo: the mean over its pixels of the classification
head's distribution over the Q ab bins (:func:`embedding`), read from the
:class:`~chromatize.inference.pipeline.NetworkOutput` the photo is colorized from, so
finding the neighbours costs no second network run. For a photo,

* :func:`versions` gives K versions: the automatic result first (no prior), then K - 1
  from :func:`variant_priors`: the histograms of its nearest indexed photos, clustered
  into groups by k-means (in Hellinger space), each group's mean histogram (for many
  versions, its most similar photo's) one :class:`~chromatize.priors.ImagePrior`, the
  largest group first. Each version reweights
  every pixel by the same histogram, so it is coherent over the whole photo. The automatic
  result is one of them because a person choosing among K does best so (docs/priors.md:
  the best of the automatic result and 7 priors beats the best of 8 priors);
* :func:`automatic_prior` gives the mean histogram of the nearest photos (issue 23's 7c:
  measured on val, off by default; docs/priors.md).

An index is a NumPy ``.npz`` file (``chromatize index PHOTOS -o town.index``) with a
JSON file beside it (``town.index.json``) naming the photos it was built from and their
terms, as weights carry theirs. Each model ships one beside its weights
(``weights/default.index``), loaded on first use.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chromatize.errors import UsageError
from chromatize.priors import ImagePrior, histogram, photo_ab

if TYPE_CHECKING:
    from chromatize.inference.pipeline import Colorizer, NetworkOutput

#: Format name and version written into every index.
FORMAT = "chromatize-index"
FORMAT_VERSION = 1
#: How many of the nearest indexed photos the versions are clustered from.
NEIGHBOURS = 64
#: Strength the versions are decoded with (measured on val: docs/priors.md).
VARIANT_STRENGTH = 1.0
#: A version's histogram is its group's mean for up to MEDOID_FROM priors (4 versions with
#: the automatic one) and its group's most similar photo's from MEDOID_FULL (8 versions),
#: blended between: on val the mean did better for 4 versions and the photo for 8
#: (docs/priors.md).
MEDOID_FROM, MEDOID_FULL = 3, 7
#: The automatic prior: how many neighbours, and at what strength (0 = off by default,
#: because it did not win on val on both counts: docs/priors.md).
AUTO_NEIGHBOURS = 16
AUTO_STRENGTH = 0.0
_KMEANS_STEPS = 12
#: Photos of a lower mean chroma (a*b* units) are left out, as the training loader does.
MIN_CHROMA = 4.0


class IndexFileError(UsageError):
    """An index file that cannot be used; the message names it and says why."""


@dataclass(frozen=True)
class Index:
    """Embeddings ``(N, Q)`` float32 (unit rows) and histograms ``(N, Q)`` float32 (rows
    summing to 1) of N colour photos, and ``meta``: what they are (``photos``,
    ``terms``, ``model``...)."""

    embeddings: np.ndarray
    hists: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    def __len__(self) -> int:
        return len(self.hists)

    def nearest(self, emb: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``m`` (at most N) photos nearest to ``emb`` ``(Q,)``: their rows ``(m,)``
        and cosine similarities ``(m,)`` in [0, 1], nearest first."""
        sims = self.embeddings @ np.asarray(emb, dtype=np.float32)
        m = min(m, len(sims))
        idx = np.argpartition(-sims, m - 1)[:m] if m < len(sims) else np.arange(len(sims))
        idx = idx[np.argsort(-sims[idx], kind="stable")]
        return idx, np.clip(sims[idx], 0, 1)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the index (8-bit square roots of the rows, compressed) and its JSON."""
        from chromatize.io import atomic_write_bytes, atomic_write_file

        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **self.meta,
                "count": len(self)}
        atomic_write_file(path, lambda tmp: _write_npz(tmp, self.embeddings, self.hists))
        atomic_write_bytes(meta_path(path), (json.dumps(meta, indent=1) + "\n").encode())


def _quantize(rows: np.ndarray) -> np.ndarray:
    """Non-negative rows -> uint8 of their square roots, each row scaled to its maximum."""
    r = np.sqrt(np.maximum(rows, 0))
    return np.round(255 * r / np.maximum(r.max(axis=1, keepdims=True), 1e-12)).astype(np.uint8)


def _write_npz(tmp: Path, embeddings: np.ndarray, hists: np.ndarray) -> None:
    with open(tmp, "wb") as f:
        np.savez_compressed(f, embeddings=_quantize(embeddings ** 2), hists=_quantize(hists))


def meta_path(path: str | os.PathLike[str]) -> Path:
    """The JSON beside an index: ``town.index`` -> ``town.index.json``."""
    p = Path(path)
    return p.with_name(p.name + ".json")


@lru_cache(maxsize=4)
def _load_cached(path: str, stamp: tuple[int, int]) -> Index:
    name = os.path.basename(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            emb, hist = z["embeddings"], z["hists"]
    except FileNotFoundError:
        raise IndexFileError(f"{name}: no such index file") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        raise IndexFileError(f"{name}: not a chromatize index (not a readable .npz file)") from None
    from chromatize.priors import bins

    q = len(bins())
    if emb.dtype != np.uint8 or hist.dtype != np.uint8 or emb.ndim != 2 \
            or emb.shape != hist.shape or emb.shape[1] != q or len(emb) == 0:
        raise IndexFileError(f"{name}: not a chromatize index (needs two uint8 arrays of "
                          f"shape (N, {q}) with N >= 1)")
    e = (emb.astype(np.float32) / 255)
    e /= np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    h = (hist.astype(np.float32) / 255) ** 2
    h /= np.maximum(h.sum(axis=1, keepdims=True), 1e-12)
    meta: dict[str, Any] = {}
    mp = meta_path(path)
    if mp.is_file():
        try:
            meta = json.loads(mp.read_text())
        except (OSError, ValueError):
            raise IndexFileError(f"{mp.name}: not valid JSON") from None
    return Index(e, h, meta)


def load_index(path: str | os.PathLike[str]) -> Index:
    """Read an index file (cached until the file changes). Raises :class:`IndexFileError`
    with one line naming the file."""
    p = os.path.abspath(os.fspath(path))
    try:
        st = os.stat(p)
    except OSError:
        raise IndexFileError(f"{os.path.basename(p)}: no such index file") from None
    if not os.path.isfile(p):
        raise IndexFileError(f"{os.path.basename(p)}: not a file")
    return _load_cached(p, (st.st_mtime_ns, st.st_size))


def shipped_index(model_path: str | os.PathLike[str]) -> Path | None:
    """The index shipped beside a model's weights (``default.safetensors`` ->
    ``default.index``), or None."""
    p = Path(model_path).with_suffix(".index")
    return p if p.is_file() else None


# ----------------------------------------------------------------------- embedding

def embedding(logits: Any) -> np.ndarray:
    """Logits ``(Q, h, w)`` of one photo (numpy or a CPU tensor) -> its embedding ``(Q,)``
    float32: the square root of the mean distribution over its pixels, a unit vector
    (cosine similarity of two is their Bhattacharyya coefficient)."""
    z = np.asarray(logits, dtype=np.float32).reshape(len(logits), -1)
    p = np.exp(z - z.max(0, keepdims=True))
    p = (p / p.sum(0, keepdims=True)).mean(1)
    e = np.sqrt(p).astype(np.float32)
    return e / max(float(np.linalg.norm(e)), 1e-12)


def output_embedding(output: NetworkOutput) -> np.ndarray:
    """The embedding of a network output (kept in its memo). Raises :class:`UsageError`
    for a model without a colour distribution."""
    if output.logits is None:
        raise UsageError("versions need a classification model (a colour distribution per "
                         "pixel); this model predicts ab directly")
    if "embedding" not in output.memo:
        output.memo["embedding"] = embedding(output.logits)
    return output.memo["embedding"]


# ----------------------------------------------------------------------- priors

def versions(index: Index, emb: np.ndarray, k: int, strength: float = VARIANT_STRENGTH,
             neighbours: int = NEIGHBOURS) -> list[ImagePrior | None]:
    """The priors of ``k`` versions of a photo of embedding ``emb`` ``(Q,)``: None (the
    automatic result) first, then ``k - 1`` of :func:`variant_priors`."""
    return [None, *variant_priors(index, emb, k - 1, strength, neighbours)] if k > 1 else [None]


def variant_priors(index: Index, emb: np.ndarray, k: int,
                   strength: float = VARIANT_STRENGTH,
                   neighbours: int = NEIGHBOURS) -> list[ImagePrior]:
    """``k`` image-level priors for a photo of embedding ``emb`` ``(Q,)``: k-means of
    its ``neighbours`` nearest photos' histograms, each cluster's similarity-weighted
    mean (``k`` up to :data:`MEDOID_FROM`), its most similar photo's histogram (``k`` from
    :data:`MEDOID_FULL`) or a blend of the two between, the heaviest cluster first.
    Raises :class:`UsageError` when the index holds fewer than ``k`` photos."""
    if len(index) < k:
        raise UsageError(f"the index holds {len(index)} photos; {k} versions need at least {k}")
    idx, sims = index.nearest(emb, max(neighbours, k))
    hists = index.hists[idx].astype(np.float64)
    weights = np.maximum(sims.astype(np.float64), 1e-6)
    labels = _kmeans(np.sqrt(hists), weights, k)
    # Few versions: each stands for its whole group (its mean); many: each may be one real
    # photo's colours (the group's most similar photo), more distinct from the others.
    t = float(np.clip((k - MEDOID_FROM) / (MEDOID_FULL - MEDOID_FROM), 0, 1))
    groups = []
    for c in range(k):
        members = labels == c
        w = weights[members]
        mean = (hists[members] * w[:, None]).sum(0) / w.sum()
        groups.append((float(w.sum()), (1 - t) * mean + t * hists[members][np.argmax(w)]))
    groups.sort(key=lambda g: -g[0])
    return [ImagePrior.from_array(h, strength, f"version {i} of {k}")
            for i, (_, h) in enumerate(groups, start=1)]


def _kmeans(x: np.ndarray, w: np.ndarray, k: int) -> np.ndarray:
    """Weighted k-means of rows ``x`` ``(m, D)`` into ``k`` non-empty clusters: labels
    ``(m,)``. Deterministic: the first centre is the nearest photo, each next one the
    row farthest from the centres so far."""
    centres = [x[0]]
    d = ((x - x[0]) ** 2).sum(1)
    for _ in range(1, k):
        j = int(np.argmax(d))
        centres.append(x[j])
        d = np.minimum(d, ((x - x[j]) ** 2).sum(1))
    c = np.stack(centres)
    labels = np.zeros(len(x), dtype=int)
    for _ in range(_KMEANS_STEPS):
        dist = (x ** 2).sum(1)[:, None] - 2 * x @ c.T + (c ** 2).sum(1)[None]
        labels = dist.argmin(1)
        # A centre left without rows takes the row farthest from its own centre.
        for j in range(k):
            if not (labels == j).any():
                far = int(np.argmax(dist[np.arange(len(x)), labels]))
                labels[far] = j
        new = np.stack([np.average(x[labels == j], axis=0, weights=w[labels == j])
                        for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    return labels


def automatic_prior(index: Index, emb: np.ndarray, strength: float,
                    neighbours: int = AUTO_NEIGHBOURS) -> ImagePrior:
    """The similarity-weighted mean histogram of the ``neighbours`` nearest photos."""
    idx, sims = index.nearest(emb, neighbours)
    w = np.maximum(sims.astype(np.float64), 1e-6)
    h = (index.hists[idx] * w[:, None]).sum(0) / w.sum()
    return ImagePrior.from_array(h, strength, "automatic")


# ----------------------------------------------------------------------- building

def build_index(photos: Sequence[str | os.PathLike[str]], colorizer: Colorizer,
                terms: str = "", progress: Callable[[int, int], None] | None = None,
                ) -> tuple[Index, list[tuple[Path, str]]]:
    """An index of colour ``photos`` (paths) for ``colorizer``'s model: each photo's gray
    copy colorized once for its embedding, its own colours counted for its histogram.
    Returns the index and the photos left out, with why (unreadable, black-and-white).
    Raises :class:`UsageError` when no photo is usable."""
    from chromatize.io import PhotoError, read_photo, read_source

    embs, hists, names, skipped = [], [], [], []
    for i, path in enumerate(map(Path, photos)):
        try:
            rgb, _ = read_source(read_photo(path))
            ab = photo_ab(rgb)
            if rgb.ndim == 2 or float(np.hypot(ab[:, 0], ab[:, 1]).mean()) < MIN_CHROMA:
                raise PhotoError("nearly black-and-white: too few colours to count")
        except PhotoError as e:
            skipped.append((path, str(e).removeprefix(f"{path}: ")))
        else:
            output = colorizer.infer(colorizer.prepare(rgb), cache=False)
            embs.append(output_embedding(output))
            hists.append(histogram(ab))
            names.append(path.name)
        if progress is not None:
            progress(i + 1, len(photos))
    if not names:
        raise UsageError("no colour photo to index among the inputs")
    meta = {"photos": names, "terms": terms,
            "model": colorizer.info.get("model", {}).get("name", ""),
            "working_size": colorizer.working_size}
    return Index(np.stack(embs), np.stack(hists).astype(np.float32), meta), skipped


def write_index(photos: Sequence[str | os.PathLike[str]], output: str | os.PathLike[str],
                colorizer: Colorizer, terms: str = "", overwrite: bool = False,
                progress: Callable[[int, int], None] | None = None,
                ) -> tuple[Index, list[tuple[Path, str]]]:
    """:func:`build_index` of ``photos`` saved to ``output`` (and its JSON beside it);
    an existing ``output`` is kept unless ``overwrite``. Returns what it built and what
    it left out."""
    if Path(output).exists() and not overwrite:
        raise UsageError(f"{output}: exists (pass --overwrite to replace it)")
    index, skipped = build_index(photos, colorizer, terms, progress)
    index.save(output)
    return index, skipped


__all__ = ["AUTO_STRENGTH", "Index", "IndexFileError", "NEIGHBOURS", "VARIANT_STRENGTH",
           "automatic_prior", "build_index", "embedding", "load_index", "meta_path",
           "output_embedding", "shipped_index", "variant_priors", "write_index"]
