"""Inference: photo -> L* -> model at a working resolution -> ab -> full-size photo.

The network sees a small copy of the photo (long side ``working_size``, sides rounded to
its ``size_multiple``). Its ab, often at a quarter of that, is brought back to the full
size by a fast guided filter (He and Sun 2015) guided by L*: the filter's linear
coefficients are fitted at low resolution, upsampled bilinearly and applied to the
full-resolution L*, so colour edges follow luminance edges instead of bleeding across
them. The output keeps the photo's own L* untouched (colours that would leave the sRGB
gamut are desaturated at constant luminance), and full-size work runs in strips of rows,
so memory stays bounded for very large photos.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from chromatize import color
from chromatize.checkpoint import CheckpointError, load_checkpoint, read_metadata
from chromatize.io import read_photo
from chromatize.models import ColorizationModel
from chromatize.models.base import count_parameters
from chromatize.models.heads import ClassificationHead, decode_ab, sample_ab

ImageLike = Image.Image | np.ndarray | str | os.PathLike
#: Colour marks as :func:`chromatize.marks.load_marks` reads them.
Marks = str | os.PathLike | Image.Image | Sequence[dict[str, Any]]
STRIP_ROWS = 256
_LUT8 = color.gray_to_l_lut(8)
_LUT16 = color.gray_to_l_lut(16)


def shipped_model_path(name: str = "default") -> Path:
    """Path (without suffix) of a model shipped inside the package."""
    return Path(str(resources.files("chromatize") / "weights" / name))


def resolve_model(path_or_name: str | os.PathLike[str] | None) -> Path:
    """A checkpoint path, or the name of a shipped model (None = ``default``)."""
    if path_or_name is None:
        path_or_name = "default"
    p = Path(path_or_name)
    shipped = shipped_model_path(str(path_or_name))
    if p.suffix not in (".json", ".safetensors") and shipped.with_suffix(".json").is_file():
        return shipped
    if p.exists() or p.with_name(p.name + ".json").exists():
        return p
    if os.sep not in str(path_or_name) and not p.suffix:
        raise CheckpointError(
            f"{path_or_name}: no such model shipped in the package and no checkpoint at this path"
            + ("; the default model has not been shipped yet, pass --model CHECKPOINT"
               if path_or_name == "default" else ""))
    raise CheckpointError(f"{p}: checkpoint not found")


def describe_model(path_or_name: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The metadata of a checkpoint plus its parameter count (loads the weights)."""
    path = resolve_model(path_or_name)
    info = read_metadata(path)
    model, _ = load_checkpoint(path)
    return {"path": str(path), "parameters": count_parameters(model), **info}


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then the CPU."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device not in ("cpu", "cuda", "mps") and not device.startswith("cuda:"):
        raise ValueError(f"device must be cpu, cuda, mps or auto, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available")
    if device == "mps" and not (getattr(torch.backends, "mps", None)
                                and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' asked for, but MPS is not available")
    return torch.device(device)


def to_source(image: Image.Image | np.ndarray) -> tuple[np.ndarray, Image.Image | None]:
    """An image -> (pixels, alpha). Pixels: ``(H, W)`` uint8/uint16 gray or ``(H, W, 3)``
    uint8 RGB, from which :func:`luminance` computes L*."""
    alpha = None
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[..., 0]
        if arr.ndim == 3 and arr.shape[2] == 4:
            alpha = Image.fromarray(np.ascontiguousarray(arr[..., 3]))
            arr = arr[..., :3]
        if arr.dtype.kind == "f":
            arr = (np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8)
        if arr.dtype not in (np.uint8, np.uint16) or arr.ndim not in (2, 3) or (
                arr.ndim == 3 and arr.shape[2] != 3):
            raise ValueError(f"unsupported array: shape {arr.shape}, dtype {arr.dtype}")
        return np.ascontiguousarray(arr), alpha
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        alpha = image.getchannel("A")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(image).astype(np.uint16)
    elif image.mode == "L":
        arr = np.asarray(image)
    else:
        arr = np.asarray(image.convert("RGB"))
    return arr, alpha


def read_source(image: ImageLike) -> tuple[np.ndarray, Image.Image | None]:
    """A path, PIL image or array -> (pixels, alpha) as :func:`to_source` gives them;
    a path is read with :func:`chromatize.io.read_photo` (EXIF orientation, alpha)."""
    if isinstance(image, (str, os.PathLike)):
        photo = read_photo(image)
        src, alpha = to_source(photo.image)
        return src, photo.alpha if photo.alpha is not None else alpha
    return to_source(image)


def lab_to_rgb8(lab: torch.Tensor) -> np.ndarray:
    """Lab ``(3, h, w)`` -> sRGB uint8 ``(h, w, 3)``, desaturated into the gamut at
    constant luminance, so the output keeps the given L*."""
    rgb = color.lab_to_rgb(lab, gamut="preserve_l")
    return (rgb.permute(1, 2, 0) * 255 + 0.5).to(torch.uint8).numpy()


def luminance(src: np.ndarray) -> np.ndarray:
    """L* ``(h, W)`` float32 of source rows (see :func:`to_source`)."""
    if src.ndim == 2:
        return (_LUT16 if src.dtype == np.uint16 else _LUT8)[src]
    return color.luminance_to_l(src.astype(np.float32) / 255)


def working_shape(h: int, w: int, working_size: int, multiple: int) -> tuple[int, int]:
    """Size the network sees: long side about ``working_size`` but never above the
    photo's own (the seed's rule: at most 1000 px for its U-Net), sides rounded to
    multiples of ``multiple`` (at least one multiple)."""
    s = min(working_size, max(h, w)) / max(h, w)
    return (max(multiple, round(h * s / multiple) * multiple),
            max(multiple, round(w * s / multiple) * multiple))


def _small_l(src: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """L* of ``src`` resized to ``shape`` (h, w) with area averaging: float32."""
    h, w = shape
    if src.ndim == 2 and src.dtype == np.uint16:
        small = Image.fromarray(src.astype(np.float32), mode="F").resize((w, h), Image.BOX)
        return _LUT16[np.clip(np.asarray(small) + 0.5, 0, 65535).astype(np.uint16)]
    small = np.asarray(Image.fromarray(src).resize((w, h), Image.BOX, reducing_gap=3.0))
    return luminance(small)


def _bilinear_matrix(n_out: int, n_in: int) -> np.ndarray:
    """``(n_out, n_in)`` weights of bilinear resampling (half-pixel centres, edge clamp)."""
    x = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    x = np.clip(x, 0, n_in - 1)
    i0 = np.floor(x).astype(int)
    i1 = np.minimum(i0 + 1, n_in - 1)
    t = (x - i0).astype(np.float32)
    m = np.zeros((n_out, n_in), np.float32)
    np.add.at(m, (np.arange(n_out), i0), 1 - t)
    np.add.at(m, (np.arange(n_out), i1), t)
    return m


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)


def guided_coefficients(guide: torch.Tensor, src: torch.Tensor, radius: int = 2,
                        eps: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """Guided filter coefficients at low resolution.

    guide: ``(1, 1, h, w)`` L*/100; src: ``(1, C, h, w)``. Returns ``(A, B)`` each
    ``(1, C, h, w)``, already box-averaged, so that ``A * guide_full + B`` (with A and B
    upsampled) is the edge-aware upsampled ``src``.
    """
    radius = max(1, min(radius, (min(guide.shape[-2:]) - 1) // 2)) if min(guide.shape[-2:]) > 2 else 0
    if radius == 0:
        return torch.zeros_like(src), src
    mean_i = _box(guide, radius)
    mean_p = _box(src, radius)
    cov = _box(guide * src, radius) - mean_i * mean_p
    var = _box(guide * guide, radius) - mean_i * mean_i
    a = cov / (var + eps)
    b = mean_p - a * mean_i
    return _box(a, radius), _box(b, radius)


def compose(src: np.ndarray, coef_a: np.ndarray, coef_b: np.ndarray,
            strip_rows: int = STRIP_ROWS,
            extra: tuple[np.ndarray, np.ndarray] | None = None,
            marks: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Full-size sRGB uint8 ``(H, W, 3)`` from the source pixels and low-res guided
    coefficients ``(2, h, w)``: ab = A * L/100 + B, joined with the source's own L*.

    ``extra``: a second pair of coefficients ``(2, h2, w2)`` at another resolution whose
    ab is added (a correction). ``marks``: ``(hint_ab (H, W, 2), hint_mask (H, W))``, whose
    marked pixels get exactly the marks' ab."""
    h_full, w_full = src.shape[:2]
    sets = [(coef_a, coef_b)] + ([extra] if extra is not None else [])
    # Columns first (cheap: h rows), then rows per strip by a small matmul.
    resampled = []
    for a, b in sets:
        rx_t = torch.from_numpy(_bilinear_matrix(w_full, a.shape[2]).T.copy())
        resampled.append((_bilinear_matrix(h_full, a.shape[1]),
                          torch.from_numpy(np.concatenate([a, b])) @ rx_t))  # (4, h, W)
    out = np.empty((h_full, w_full, 3), np.uint8)
    for r0 in range(0, h_full, strip_rows):
        r1 = min(h_full, r0 + strip_rows)
        c = sum(torch.from_numpy(ry[r0:r1]) @ coef for ry, coef in resampled)  # (4, rows, W)
        l = torch.from_numpy(luminance(src[r0:r1]))
        ab = (c[:2] * (l / 100) + c[2:]).clamp_(-110, 110)
        if marks is not None and marks[1][r0:r1].any():
            m = torch.from_numpy(marks[1][r0:r1])
            ab[:, m] = torch.from_numpy(marks[0][r0:r1][marks[1][r0:r1]]).T.float()
        out[r0:r1] = lab_to_rgb8(torch.cat([l[None], ab]))
    return out


def _pool_hints(hint_ab: np.ndarray, hint_mask: np.ndarray, shape: tuple[int, int],
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Full-size hints -> the working size: each small pixel holds the mean colour of the
    marked pixels it covers and is marked if any is. Returns ``(1, 2, h, w)``, ``(1, 1, h, w)``."""
    if hint_ab.shape[:2] != hint_mask.shape or hint_ab.shape[-1] != 2:
        raise ValueError(f"hints must be ab (H, W, 2) and mask (H, W), got {hint_ab.shape} "
                         f"and {hint_mask.shape}")
    m = torch.from_numpy(hint_mask.astype(np.float32))[None, None]
    ab = torch.from_numpy(hint_ab.astype(np.float32)).permute(2, 0, 1)[None] * m
    m_small = F.adaptive_avg_pool2d(m, shape)
    ab_small = F.adaptive_avg_pool2d(ab, shape) / m_small.clamp(min=1e-12)
    return ab_small, (m_small > 0).float()


class SuggestError(ValueError):
    """A colour suggestion that cannot be given; the message says why."""


@dataclass(frozen=True)
class NetworkOutput:
    """The network's output for one photo at one working size (what the cache holds).

    l_small: L* ``(h, w)`` float32 of the copy the network saw; ab ``(2, h', w')`` in Lab
    units as the model decoded it; logits ``(Q, h', w')`` for classification models."""

    l_small: np.ndarray
    ab: torch.Tensor
    logits: torch.Tensor | None


class Colorizer:
    """A loaded colorization model and everything needed to colorize photos with it.

    >>> colorizer = Colorizer.load()                 # the shipped default model
    >>> out = colorizer.colorize("photo.jpg")        # PIL.Image, RGB, same size
    """

    def __init__(self, model: ColorizationModel, info: dict[str, Any] | None = None,
                 device: str = "auto", working_size: int | None = None,
                 boost: float | None = None, cache_size: int = 8) -> None:
        self.info = info or {}
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.working_size = int(working_size or self.info.get("working_size", 256))
        if boost is not None:
            self._check_boost(boost)
            self.model.head.boost = float(boost)  # type: ignore[union-attr]
        # The network's output per (photo, working size), most recent last: new marks, a
        # new boost or suggestions on the same photo reuse it instead of running the network.
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[Any, ...], NetworkOutput] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._cache_hits = self._cache_misses = 0

    @classmethod
    def load(cls, path_or_name: str | os.PathLike[str] | None = None, device: str = "auto",
             working_size: int | None = None, boost: float | None = None,
             cache_size: int = 8) -> Colorizer:
        """Load a checkpoint path, or a model shipped in the package by name
        (None or ``"default"`` = the default model). Raises ``CheckpointError``.

        ``boost`` (classification models) sets how strongly rare, saturated colours are
        favoured when decoding (see :class:`~chromatize.models.heads.ClassificationHead`):
        0 gives the most likely, muted colours; about 0.5-1 vivid ones."""
        model, info = load_checkpoint(resolve_model(path_or_name))
        return cls(model, info, device=device, working_size=working_size, boost=boost,
                   cache_size=cache_size)

    @property
    def takes_hints(self) -> bool:
        """Whether the model takes user colour hints (``colorize(..., hints=...)``)."""
        return bool(getattr(self.model, "hints", False))

    @property
    def can_sample(self) -> bool:
        """Whether the model gives a distribution to sample from (``samples=K``)."""
        return isinstance(getattr(self.model, "head", None), ClassificationHead)

    @torch.inference_mode()
    def predict(self, l: torch.Tensor, hints: tuple[torch.Tensor, torch.Tensor] | None = None,
                ) -> dict[str, torch.Tensor]:
        """L* ``(B, 1, h, w)`` in [0, 100] (sides multiples of ``size_multiple``) -> the
        model's outputs on the CPU: ``ab`` ``(B, 2, h / s, w / s)`` in Lab units, and
        ``logits`` for the classification family. ``hints``: ``(hint_ab (B, 2, h, w),
        hint_mask (B, 1, h, w))`` for models that take user hints."""
        kwargs = {}
        if hints is not None:
            if not self.takes_hints:
                raise ValueError("this model takes no colour hints; use a hint model "
                                 "(e.g. one trained as effnet_lite0_hints) or `chromatize scribble`")
            kwargs = {"hint_ab": hints[0].to(self.device), "hint_mask": hints[1].to(self.device)}
        out = self.model(l.to(self.device), **kwargs)
        return {k: v.float().cpu() for k, v in out.items()}

    def _check_boost(self, boost: float) -> None:
        if not self.can_sample:
            raise ValueError("boost needs a classification model (it reweights the "
                             "colour distribution); this model predicts ab directly")
        if not boost >= 0:
            raise ValueError(f"boost must be >= 0, got {boost}")

    def colorize(self, image: ImageLike, size: int | None = None, samples: int | None = None,
                 seed: int | None = None, marks: Marks | None = None,
                 boost: float | None = None,
                 hints: tuple[np.ndarray, np.ndarray] | None = None,
                 ) -> Image.Image | list[Image.Image]:
        """Colorize one photo: a PIL image, a numpy array (gray ``(H, W)`` or RGB
        ``(H, W, 3)``, uint8/uint16 or float in [0, 1]) or a path.

        Returns an RGB (or RGBA, if the input had alpha) PIL image of the input's size,
        whose L* equals the input's. ``size`` overrides the working resolution (long side).
        With ``samples=K`` returns a list of K different plausible colorings instead
        (classification models only; see :func:`chromatize.models.heads.sample_ab`),
        reproducible with ``seed``. ``boost`` (classification models) overrides the
        model's decoding boost for this call only.

        ``marks``: colour marks in image pixels, as :func:`chromatize.marks.load_marks`
        reads them (a path to a scribble image, a transparent layer or a JSON file, or a
        list of ``{"x", "y", "color", "radius"}`` points); ``hints``: the same already as
        ``(hint_ab (H, W, 2)`` in Lab units, ``hint_mask (H, W)`` bool). Hint models take
        them as input; any other model keeps its colours and the marks correct them
        (:mod:`chromatize.inference.steer`): marked pixels get the marks' colour, which
        spreads over regions of similar lightness. No marks (an empty list) gives the
        automatic result. The network's output is cached (:meth:`cache_info`), so new
        marks or a new ``boost`` on the same photo do not run the network again.
        Raises ``MarksError`` for unusable marks, ``ValueError`` for options the model
        does not allow.
        """
        if samples is not None and samples < 1:
            raise ValueError(f"samples must be at least 1, got {samples}")
        if samples is not None and not self.can_sample:
            raise ValueError("this model gives a single coloring (regression head); "
                             "several samples need a classification model")
        if boost is not None:
            self._check_boost(boost)
        if marks is not None and hints is not None:
            raise ValueError("give marks or hints, not both")
        src, alpha = read_source(image)
        if marks is not None and not (isinstance(marks, (list, tuple)) and len(marks) == 0):
            from chromatize.marks import load_marks  # marks reads photos with this module

            hints = load_marks(marks, src)
        if hints is not None and not hints[1].any():
            hints = None  # no mark: the automatic result, exactly
        if hints is not None and self.takes_hints:
            # Hint networks take the marks as input: the output depends on them, no cache.
            l_small = self._small(src, size)
            out = self.predict(torch.from_numpy(l_small)[None, None],
                               _pool_hints(*hints, l_small.shape))
            net = NetworkOutput(l_small, out["ab"][0], out["logits"][0] if "logits" in out
                                else None)
            return self._render(src, alpha, net, samples, seed, boost, None)
        return self._render(src, alpha, self.network_output(src, size), samples, seed, boost,
                            hints)

    def network_output(self, src: np.ndarray, size: int | None = None) -> NetworkOutput:
        """The network's output for source pixels (see :func:`to_source`) at the working
        size, from the cache when this photo was seen at this size before."""
        shape = working_shape(*src.shape[:2], size or self.working_size,
                              self.model.size_multiple)
        src = np.ascontiguousarray(src)
        key = (hashlib.blake2b(src.data, digest_size=16).hexdigest(), src.shape,
               src.dtype.str, shape)
        with self._cache_lock:
            if key in self._cache:
                self._cache_hits += 1
                self._cache.move_to_end(key)
                return self._cache[key]
            self._cache_misses += 1
        l_small = _small_l(src, shape)
        out = self.predict(torch.from_numpy(l_small)[None, None])
        net = NetworkOutput(l_small, out["ab"][0], out["logits"][0] if "logits" in out else None)
        with self._cache_lock:
            self._cache[key] = net
            while len(self._cache) > max(self.cache_size, 0):
                self._cache.popitem(last=False)
        return net

    def cache_info(self) -> dict[str, int]:
        """Counts of the network-output cache: ``hits``, ``misses`` (network runs),
        ``size`` (entries held) and ``max_size``."""
        with self._cache_lock:
            return {"hits": self._cache_hits, "misses": self._cache_misses,
                    "size": len(self._cache), "max_size": self.cache_size}

    def cache_clear(self) -> None:
        """Forget every cached network output (the counts stay)."""
        with self._cache_lock:
            self._cache.clear()

    def _decoding_logits(self, logits: torch.Tensor, boost: float | None) -> torch.Tensor:
        """Logits ``(B, Q, h, w)`` reweighted by ``boost`` (None: the model's own)."""
        head = self.model.head  # type: ignore[union-attr]
        if boost is None:
            boost = head.boost
        if not boost:
            return logits
        return logits + boost * torch.log(head.class_weights.cpu())[None, :, None, None]

    def _render(self, src: np.ndarray, alpha: Image.Image | None, net: NetworkOutput,
                samples: int | None, seed: int | None, boost: float | None,
                hints: tuple[np.ndarray, np.ndarray] | None,
                ) -> Image.Image | list[Image.Image]:
        """The network's output (decoded with ``boost``, or sampled) -> full-size photos,
        corrected by ``hints`` when given."""
        if samples is None and (boost is None or net.logits is None):
            abs_ = [net.ab]  # the model's own decoding
        else:
            head = self.model.head  # type: ignore[union-attr]
            logits = self._decoding_logits(net.logits[None], boost)  # type: ignore[index]
            if samples is None:
                abs_ = [decode_ab(logits, head.bins.cpu(), head.temperature)[0]]
            else:
                gen = torch.Generator().manual_seed(0 if seed is None else seed)
                abs_ = list(sample_ab(logits, head.bins.cpu(), samples, gen, head.temperature))
        outs = [self._finish(src, alpha, net.l_small, ab, hints, net.logits) for ab in abs_]
        return outs[0] if samples is None else outs

    def suggest(self, image: ImageLike, x: float, y: float, k: int = 6,
                size: int | None = None) -> list[tuple[str, float]]:
        """The ``k`` most likely colours at pixel ``(x, y)`` (image pixels, x to the right):
        ``[("#rrggbb", probability), ...]`` by decreasing probability, from the
        classification head's distribution there (its ab bins, shown with the photo's L*
        at that pixel; bins that look the same in 8-bit sRGB are merged). The
        probabilities sum to at most 1. Uses the cached network output when the photo
        was seen before. Raises :class:`SuggestError` for a point outside the photo,
        a bad ``k`` or a model without a colour distribution (regression head).
        """
        if not self.can_sample:
            raise SuggestError("colour suggestions need a classification model (a colour "
                               "distribution per pixel); this model predicts ab directly")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise SuggestError(f"k must be a positive integer, got {k!r}")
        src, _ = read_source(image)
        h, w = src.shape[:2]
        for name, v, n in (("x", x, w), ("y", y, h)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < n:
                raise SuggestError(f"{name}={v!r} is outside the {w}x{h} photo "
                                   f"(0 <= {name} < {n})")
        net = self.network_output(src, size)
        logits = net.logits[None]  # type: ignore[index]
        # Sample the logits at the point's centre, bilinearly, in grid_sample's [-1, 1].
        at = torch.tensor([[[[(x + 0.5) / w * 2 - 1, (y + 0.5) / h * 2 - 1]]]],
                          dtype=logits.dtype)
        p = F.softmax(F.grid_sample(logits, at, align_corners=False)[0, :, 0, 0], 0)
        bins = self.model.head.bins.cpu()  # type: ignore[union-attr]
        l = float(luminance(src[int(y):int(y) + 1, int(x):int(x) + 1])[0, 0])
        lab = torch.cat([torch.full((1, len(bins), 1), l), bins.T[:, :, None]])
        rgb = lab_to_rgb8(lab.float())[:, 0]  # (Q, 3)
        merged: dict[str, float] = {}
        for (r, g, b), prob in zip(rgb.tolist(), p.tolist()):
            key = f"#{r:02x}{g:02x}{b:02x}"
            merged[key] = merged.get(key, 0.0) + prob
        return sorted(merged.items(), key=lambda kv: -kv[1])[:k]

    def colorize_batch(self, images: Sequence[ImageLike], size: int | None = None,
                       ) -> list[Image.Image]:
        """Colorize several photos; those that share a working size run in one batch."""
        sources = [read_source(image) for image in images]
        small = [self._small(src, size) for src, _ in sources]
        ab: list[torch.Tensor | None] = [None] * len(sources)
        shapes = [s.shape for s in small]
        for shape in dict.fromkeys(shapes):
            idx = [i for i, s in enumerate(shapes) if s == shape]
            batch = torch.from_numpy(np.stack([small[i] for i in idx]))[:, None]
            for i, pred in zip(idx, self.predict(batch)["ab"]):
                ab[i] = pred
        return [self._finish(src, alpha, l_small, ab_i)  # type: ignore[arg-type]
                for (src, alpha), l_small, ab_i in zip(sources, small, ab)]

    def _small(self, src: np.ndarray, size: int | None) -> np.ndarray:
        """L* of the copy the network sees, ``(h, w)`` float32."""
        shape = working_shape(*src.shape[:2], size or self.working_size, self.model.size_multiple)
        return _small_l(src, shape)

    def _finish(self, src: np.ndarray, alpha: Image.Image | None, l_small: np.ndarray,
                ab: torch.Tensor, hints: tuple[np.ndarray, np.ndarray] | None = None,
                logits: torch.Tensor | None = None) -> Image.Image:
        """Low-res ab ``(2, h', w')`` -> the full-size photo, guided by its L*; with
        ``hints`` (full-size marks) corrected by them (see :mod:`chromatize.inference.steer`)."""
        guide = F.adaptive_avg_pool2d(torch.from_numpy(l_small)[None, None] / 100, ab.shape[-2:])
        coef_a, coef_b = guided_coefficients(guide, ab[None])
        extra = None
        if hints is not None:
            from chromatize.inference import steer

            l_t = torch.from_numpy(l_small)[None, None] / 100
            coef = F.interpolate(torch.cat([coef_a, coef_b], 1), size=l_small.shape,
                                 mode="bilinear", align_corners=False)
            prior = (coef[:, :2] * l_t + coef[:, 2:])[0].permute(1, 2, 0).numpy()
            bins = self.model.head.bins.cpu() if logits is not None else None  # type: ignore[union-attr]
            delta = steer.correction(l_small, prior, ab, logits, bins, *hints)
            extra_a, extra_b = guided_coefficients(
                l_t, torch.from_numpy(delta).permute(2, 0, 1)[None])
            extra = (extra_a[0].numpy(), extra_b[0].numpy())
        out = Image.fromarray(compose(src, coef_a[0].numpy(), coef_b[0].numpy(), extra=extra,
                                      marks=hints), "RGB")
        if alpha is not None:
            out.putalpha(alpha)
        return out


__all__ = ["CheckpointError", "Colorizer", "NetworkOutput", "SuggestError",
           "describe_model", "resolve_model"]
