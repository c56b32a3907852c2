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

import contextlib
import hashlib
import math
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from chromatize.checkpoint import load_checkpoint, pick_device, resolve_model
from chromatize.errors import UsageError
from chromatize import color
from chromatize.inference.hints import Marks, check_hints, load_hints, pool_hints
from chromatize.inference.upsample import compose, fit_guided, small_l
from chromatize.io import ImageLike, read_source
from chromatize.models import ColorizationModel
from chromatize.models.heads import ClassificationHead


#: Most colorings one call gives (``samples``): each is a full-size photo held in memory
#: until written (about 10 MB for a 3-megapixel photo), so 64 stay under a gigabyte.
MAX_SAMPLES = 64
_threads_lock = threading.Lock()
_threads_users = 0
_threads_saved = 1


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block with one torch intra-op thread: for the many small tensor operations
    of a re-solve, waking the thread pool after numpy/SciPy work costs more than it
    saves. Re-entrant and thread-safe (the setting is per process: the last block to
    leave restores it; other threads' work meanwhile only runs on one thread too)."""
    global _threads_users, _threads_saved
    with _threads_lock:
        if _threads_users == 0:
            _threads_saved = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_saved)
#: Largest ``boost``: the colour distribution is reweighted by class weight ** boost, and
#: beyond this only the rarest colours are left.
MAX_BOOST = 3.0
#: Largest chroma ``gain`` (the decoded a*b* times it; 1 leaves the model's colours).
MAX_GAIN = 3.0


def working_shape(h: int, w: int, working_size: int, multiple: int) -> tuple[int, int]:
    """Size the network sees: long side about ``working_size`` but never above the
    photo's own (the seed's rule: at most 1000 px for its U-Net), sides rounded to
    multiples of ``multiple`` (at least one multiple)."""
    s = min(working_size, max(h, w)) / max(h, w)
    return (max(multiple, round(h * s / multiple) * multiple),
            max(multiple, round(w * s / multiple) * multiple))


class SuggestError(UsageError):
    """A colour suggestion that cannot be given (a point outside the photo, a model
    without a colour distribution); the message says why."""


@dataclass(frozen=True)
class NetworkOutput:
    """The network's output for one photo at one working size (what the cache holds).

    l_small: L* ``(h, w)`` float32 of the copy the network saw; ab ``(2, h', w')`` in Lab
    units as the model decoded it; logits ``(Q, h', w')`` for classification models."""

    l_small: np.ndarray
    ab: torch.Tensor
    logits: torch.Tensor | None
    # What marks reuse from this output (pipeline's _steer_prior), filled on first use.
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


class Colorizer:
    """A loaded colorization model and everything needed to colorize photos with it.

    >>> colorizer = Colorizer.load()                 # the shipped default model
    >>> out = colorizer.colorize("photo.jpg")        # PIL.Image, RGB, same size
    """

    def __init__(self, model: ColorizationModel, info: dict[str, Any] | None = None,
                 device: str = "auto", working_size: int | None = None,
                 boost: float | None = None, cache_size: int = 8,
                 gain: float | None = None) -> None:
        self.info = info or {}
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.working_size = (working_size if working_size is not None
                             else self.info.get("working_size", 256))
        self.check(size=self.working_size)
        if boost is not None:
            self.check(boost=boost)
            self.model.head.boost = float(boost)  # type: ignore[union-attr]
        if gain is not None:
            self.check(gain=gain)
            self.model.head.gain = float(gain)  # type: ignore[union-attr]
        # The network's output per (photo, working size), most recent last: new marks, a
        # new boost or suggestions on the same photo reuse it instead of running the network.
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[Any, ...], NetworkOutput] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._cache_hits = self._cache_misses = 0

    @classmethod
    def load(cls, path_or_name: str | os.PathLike[str] | None = None, device: str = "auto",
             working_size: int | None = None, boost: float | None = None,
             backend: str = "auto", cache_size: int = 8,
             gain: float | None = None) -> Colorizer:
        """Load a checkpoint path, an exported ``.onnx`` graph (run with ONNX Runtime,
        see :mod:`chromatize.inference.onnx`), or a model shipped in the package by name
        (None or ``"default"`` = the default model). Raises ``CheckpointError``.

        ``boost`` (classification models) sets how strongly rare, saturated colours are
        favoured when decoding (see :class:`~chromatize.models.heads.ClassificationHead`):
        0 gives the most likely, muted colours; about 0.5-1 vivid ones. ``gain``
        (classification models) multiplies the decoded a*b*: more saturated colours with
        every hue kept (1.2-1.35 are about as vivid as boost 0.3-0.45, at a smaller colour
        error on val: docs/ablation.md).

        ``backend`` runs a checkpoint in ``torch``, in ``onnx`` (ONNX Runtime, its graph
        exported once and cached) or, with ``auto``, in ONNX Runtime when it is installed
        and the device is the CPU (see :func:`chromatize.inference.onnx.select_backend`)."""
        path = resolve_model(path_or_name)
        if path.suffix.lower() == ".onnx":  # an exported graph, run by ONNX Runtime
            from chromatize.inference.onnx import load_onnx

            model, info = load_onnx(path)
        else:
            from chromatize.inference.onnx import select_backend

            model, info = load_checkpoint(path)
            model = select_backend(model, info, path, backend, pick_device(device))
        return cls(model, info, device=device, working_size=working_size, boost=boost,
                   cache_size=cache_size, gain=gain)

    @property
    def takes_hints(self) -> bool:
        """Whether the model takes user colour hints (``colorize(..., hints=...)``)."""
        return bool(getattr(self.model, "hints", False))

    @property
    def can_sample(self) -> bool:
        """Whether the model gives a distribution to sample from (``samples=K``)."""
        return isinstance(getattr(self.model, "head", None), ClassificationHead)

    def check(self, samples: int | None = None, boost: float | None = None,
              size: int | None = None, gain: float | None = None) -> None:
        """Raise :class:`~chromatize.errors.UsageError` unless this model can give
        ``samples`` colorings (1 to :data:`MAX_SAMPLES`), be
        ``boost``-ed (a finite number from 0 to :data:`MAX_BOOST`), take a chroma ``gain``
        (above 0, at most :data:`MAX_GAIN`) and work at ``size`` pixels (a positive whole
        number): the one place that knows what each model can do."""
        if size is not None and (isinstance(size, bool) or not isinstance(size, int)
                                 or size < 1):
            raise UsageError(f"working size must be a positive whole number of pixels, "
                             f"got {size!r}")
        if samples is not None and not 1 <= samples <= MAX_SAMPLES:
            raise UsageError(f"samples must be from 1 to {MAX_SAMPLES}, got {samples}")
        if boost is not None and not (math.isfinite(boost) and 0 <= boost <= MAX_BOOST):
            raise UsageError(f"boost must be a number from 0 to {MAX_BOOST:g}, got {boost}")
        if gain is not None and (isinstance(gain, bool) or not isinstance(gain, (int, float))
                                 or not (math.isfinite(gain) and 0 < gain <= MAX_GAIN)):
            raise UsageError(f"gain must be a number above 0 and at most {MAX_GAIN:g}, "
                             f"got {gain}")
        if gain is not None and not self.can_sample:
            raise UsageError("gain needs a classification model (it scales the decoded "
                             "colour); this model predicts ab directly")
        if samples is not None and not self.can_sample:
            raise UsageError("this model gives a single coloring (regression head); sampling "
                             "(--samples) needs a classification model")
        if boost is not None and not self.can_sample:
            raise UsageError("boost needs a classification model (it reweights the colour "
                             "distribution); this model predicts ab directly")

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
                raise UsageError("this model takes no colour hints as input; "
                                 "colorize(marks=...) corrects any model's colours")
            kwargs = {"hint_ab": hints[0].to(self.device), "hint_mask": hints[1].to(self.device)}
        out = self.model(l.to(self.device), **kwargs)
        return {k: v.float().cpu() for k, v in out.items()}

    def colorize(self, image: ImageLike, size: int | None = None, samples: int | None = None,
                 seed: int | None = None, marks: Marks | None = None,
                 boost: float | None = None,
                 hints: tuple[np.ndarray, ...] | None = None,
                 gain: float | None = None) -> Image.Image | list[Image.Image]:
        """Colorize one photo: a PIL image, a numpy array (gray ``(H, W)`` or RGB
        ``(H, W, 3)``, uint8/uint16 or float in [0, 1]) or a path.

        Returns an RGB (or RGBA, if the input had alpha) PIL image of the input's size,
        whose L* equals the input's. ``size`` overrides the working resolution (long side).
        With ``samples=K`` returns a list of K different plausible colorings instead
        (classification models only; see :func:`chromatize.models.heads.sample_ab`),
        reproducible with ``seed`` (``samples=1``: the one coloring sampled with this
        seed). ``boost`` and ``gain`` (classification models) override the model's
        decoding boost and chroma gain for this call only.

        ``marks``: colour marks in image pixels, as
        :func:`chromatize.inference.hints.load_marks` reads them (a path to strokes drawn
        on a copy, a transparent layer or a JSON file, or a list of ``{"x", "y", "color",
        "radius", "reach"}`` points); ``hints``: the same already as ``(hint_ab (H, W, 2)``
        in Lab units, ``hint_mask (H, W)`` bool``[, hint_reach (H, W)])`` (see
        :func:`~chromatize.inference.hints.load_hints`). Hint models take them as input;
        any other model keeps its colours and the marks correct them
        (:mod:`chromatize.inference.steer`): marked pixels get the marks' colour, which
        spreads over regions of similar lightness. No marks (an empty list) gives the automatic result, exactly. The
        network's output is cached (:meth:`cache_info`), so new marks, a new ``boost`` or
        :meth:`suggest` on the same photo do not run the network again. Raises
        ``MarksError`` for unusable marks and ``UsageError`` for options the model does
        not allow.
        """
        self.check(samples=samples, boost=boost, size=size, gain=gain)
        if marks is not None and hints is not None:
            raise UsageError("give marks or hints, not both")
        src, alpha = read_source(image)
        if marks is not None and not (isinstance(marks, (list, tuple)) and len(marks) == 0):
            hint_ab, hint_mask, reach = load_hints(marks, src)
            hints = (hint_ab, hint_mask) if reach is None else (hint_ab, hint_mask, reach)
        if hints is not None:
            check_hints(hints[0], hints[1], src.shape)
            if not hints[1].any():
                hints = None  # no mark: the automatic result, exactly
        if hints is not None and self.takes_hints:
            # Hint networks take the marks as input: the output depends on them, no cache.
            l_small = self._small(src, size)
            out = self.predict(torch.from_numpy(l_small)[None, None],
                               self._small_hints(src, hints, l_small.shape))
            net = NetworkOutput(l_small, out["ab"][0],
                                out["logits"][0] if "logits" in out else None)
            # ...and are then corrected by them like any model, so marks stay exact.
            return self._render(src, alpha, net, samples, seed, boost, hints, gain)
        return self._render(src, alpha, self.network_output(src, size), samples, seed, boost,
                            hints, gain)

    def network_output(self, src: np.ndarray, size: int | None = None) -> NetworkOutput:
        """The network's output for source pixels (:func:`chromatize.io.to_pixels`) at the
        working size, from the cache when these pixels were seen at this size before."""
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
        l_small = small_l(src, shape)
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

    def _render(self, src: np.ndarray, alpha: Image.Image | None, net: NetworkOutput,
                samples: int | None, seed: int | None, boost: float | None,
                hints: tuple[np.ndarray, ...] | None, gain: float | None = None,
                ) -> Image.Image | list[Image.Image]:
        """The network's output (decoded with ``boost`` and ``gain``, or sampled) ->
        full-size photos, corrected by ``hints`` when given."""
        if samples is None and (boost is None and gain is None or net.logits is None):
            abs_ = [net.ab]  # the model's own decoding
        else:
            head = self.model.head  # type: ignore[union-attr]
            logits = net.logits[None]  # type: ignore[index]
            if samples is None:
                abs_ = [head.decode(logits, boost, gain)[0]]
            else:
                gen = torch.Generator().manual_seed(0 if seed is None else seed)
                abs_ = list(head.sample(logits, samples, gen, boost, gain))
        outs = [self._finish(src, alpha, net.l_small, ab, hints, net.logits, net.memo,
                             annealed=samples is None, boost=boost, gain=gain)
                for ab in abs_]
        return outs[0] if samples is None else outs

    def suggest(self, image: ImageLike, x: float, y: float, k: int = 6,
                size: int | None = None) -> list[tuple[str, float]]:
        """The ``k`` most likely colours at pixel ``(x, y)`` (image pixels from the top
        left, x to the right): ``[("#rrggbb", probability), ...]`` by decreasing
        probability, from the classification head's distribution there (its ab bins,
        shown with the photo's L* at that pixel; bins that look the same in 8-bit sRGB are
        merged). The probabilities sum to at most 1. Uses the cached network output when
        the photo was seen before. Raises :class:`SuggestError` for a point outside the
        photo, a bad ``k`` or a model without a colour distribution (regression head).
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
        logits = self.network_output(src, size).logits[None]  # type: ignore[index]
        # The logits at the pixel's centre, bilinearly, in grid_sample's [-1, 1] units.
        at = torch.tensor([[[[(x + 0.5) / w * 2 - 1, (y + 0.5) / h * 2 - 1]]]],
                          dtype=logits.dtype)
        p = F.softmax(F.grid_sample(logits, at, align_corners=False)[0, :, 0, 0], 0)
        bins = self.model.head.bins.cpu().float()  # type: ignore[union-attr]
        l = float(color.luminance(src[int(y):int(y) + 1, int(x):int(x) + 1])[0, 0])
        lab = torch.cat([torch.full((1, len(bins), 1), l), bins.T[:, :, None]])
        merged: dict[str, float] = {}
        for (r, g, b), prob in zip(color.lab_to_rgb8(lab)[:, 0].tolist(), p.tolist()):
            key = f"#{r:02x}{g:02x}{b:02x}"
            merged[key] = merged.get(key, 0.0) + prob
        return sorted(merged.items(), key=lambda kv: -kv[1])[:k]

    def colorize_batch(self, images: Sequence[ImageLike], size: int | None = None,
                       ) -> list[Image.Image]:
        """Colorize several photos; those that share a working size run in one batch."""
        self.check(size=size)
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
        return small_l(src, shape)

    @staticmethod
    def _small_hints(src: np.ndarray, hints: tuple[np.ndarray, ...],
                     shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Full-size hints -> the working size: ``(1, 2, h, w)`` ab, ``(1, 1, h, w)`` mask."""
        check_hints(hints[0], hints[1], src.shape)
        ab, mask = pool_hints(hints[0], hints[1], shape)
        return (torch.from_numpy(ab).permute(2, 0, 1)[None],
                torch.from_numpy(mask.astype(np.float32))[None, None])

    def _finish(self, src: np.ndarray, alpha: Image.Image | None, l_small: np.ndarray,
                ab: torch.Tensor, hints: tuple[np.ndarray, ...] | None = None,
                logits: torch.Tensor | None = None,
                memo: dict[Any, Any] | None = None, annealed: bool = False,
                boost: float | None = None, gain: float | None = None) -> Image.Image:
        """Low-res ab ``(2, h', w')`` -> the full-size photo, guided by its L*; with
        ``hints`` (full-size marks, and maybe their reach) corrected by them (see
        :mod:`chromatize.inference.steer`). ``annealed``: ``ab`` is the head's decoding of
        ``logits`` with ``boost`` and ``gain`` (not a sample), so marks may re-decode the
        distribution."""
        if hints is None:
            return compose(src, fit_guided(l_small, ab), alpha)
        from chromatize.inference import steer  # scipy's sparse solvers, only for marks

        with one_torch_thread():  # working-size tensors: waking a thread pool costs more
            coef, prior = self._steer_prior(l_small, ab, logits, memo, annealed, boost, gain)
            delta = steer.correct(prior, *hints)
            # Both sets of coefficients at the working size: one upsampling to full size.
            coef = coef + fit_guided(l_small, torch.from_numpy(delta).permute(2, 0, 1))
        return compose(src, coef, alpha, marks=(hints[0], hints[1]))

    def _steer_prior(self, l_small: np.ndarray, ab: torch.Tensor, logits: torch.Tensor | None,
                     memo: dict[Any, Any] | None, annealed: bool = False,
                     boost: float | None = None, gain: float | None = None,
                     ) -> tuple[torch.Tensor, Any]:
        """The guided coefficients of ``ab`` brought to the working size ``(4, h, w)`` and the
        :class:`~chromatize.inference.steer.Prior` that marks correct, kept in ``memo`` (the
        cached network output's) under ``ab``'s decoding, so a re-solve after new marks
        does not compute them again."""
        from chromatize.inference import steer

        key = ("steer", hashlib.blake2b(ab.numpy().tobytes(), digest_size=16).hexdigest())
        if memo is not None and key in memo:
            return memo[key]
        coef = fit_guided(l_small, ab)
        # The network's colours at the working size, as compose would upsample them.
        up = F.interpolate(coef[None], size=l_small.shape, mode="bilinear",
                           align_corners=False)[0]
        prior = (up[:2] * torch.from_numpy(l_small)[None] / 100 + up[2:]).permute(1, 2, 0)
        head = self.model.head if logits is not None else None
        bins = head.bins.cpu() if head is not None else None  # type: ignore[union-attr]
        out = up, steer.prepare(l_small, prior.numpy(), ab, logits, bins,
                                head if annealed else None, boost, gain)  # type: ignore[arg-type]
        if memo is not None:
            memo[key] = out
        return out


__all__ = ["Colorizer", "NetworkOutput", "SuggestError"]
