"""Inference: photo -> L* -> model at a working resolution -> ab -> full-size photo.

One way through, in three stages that every face uses (the CLI, batch, Ray, film, the
server):

* :meth:`Colorizer.prepare`: pixels, alpha and the L* of the small copy the network sees
  (long side ``working_size``, sides rounded to the model's ``size_multiple``): a
  :class:`Source`;
* :meth:`Colorizer.infer`: the network's output for it (:class:`NetworkOutput`, cached per
  photo and working size);
* :meth:`Colorizer.finish`: the output decoded as a :class:`~chromatize.decoding.Decoding`
  says (boost, gain, an image-level prior, samples), corrected by marks, brought back to
  the full size by a fast guided filter guided by L* (He and Sun 2015: colour edges follow
  luminance edges instead of bleeding across them) and joined with the photo's own L*,
  in strips of rows so memory stays bounded for very large photos.

:meth:`Colorizer.colorize` is these three calls.

Arrays follow the runtime: a PyTorch model's outputs are tensors (their maths runs on
every core), ONNX Runtime's numpy arrays, decoded and composed by the same functions
(:mod:`chromatize.decoder`, :mod:`chromatize.imaging.upsample`) without importing torch.
Marks and suggestions work on tensors and import torch when used.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

import chromatize.color as color
from chromatize.checkpoint import read_metadata, resolve_model
from chromatize.decoder import Array, BinDecoder, as_numpy
from chromatize.decoding import Decoding, check_capabilities, check_number, real, shown
from chromatize.device import pick_device
from chromatize.errors import UsageError
from chromatize.imaging.hints import Marks, check_hints, load_hints, pool_hints
from chromatize.inference.onnx import OnnxModel, load_onnx, select_backend
from chromatize.imaging.upsample import compose, fit_guided, small_l
from chromatize.io import ImageLike, read_source
from chromatize.priors import ImagePrior
from chromatize.threads import one_torch_thread

if TYPE_CHECKING:
    import torch

    from chromatize.models import ColorizationModel

#: ``(hint_ab (H, W, 2), hint_mask (H, W))``, and optionally the points' ``hint_reach
#: (H, W)`` (:func:`chromatize.imaging.hints.load_hints`).
Hints = tuple[np.ndarray, ...]


def working_shape(h: int, w: int, working_size: int, multiple: int) -> tuple[int, int]:
    """Size the network sees: long side about ``working_size`` but never above the
    photo's own (the seed's rule: at most 1000 px for its U-Net), sides rounded to
    multiples of ``multiple`` (at least one multiple)."""
    s = min(working_size, max(h, w)) / max(h, w)
    return (max(multiple, round(h * s / multiple) * multiple),
            max(multiple, round(w * s / multiple) * multiple))


def check_size(size: int | None) -> None:
    """Raise :class:`~chromatize.errors.UsageError` unless ``size`` (a working
    resolution) is None or a positive whole number of pixels."""
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise UsageError(f"working size must be a positive whole number of pixels, "
                         f"got {size!r}")


class SuggestError(UsageError):
    """A colour suggestion that cannot be given (a point outside the photo, a model
    without a colour distribution); the message says why."""


@dataclass(frozen=True)
class Source:
    """A photo prepared for the network (:meth:`Colorizer.prepare`).

    pixels: ``(H, W)`` uint8/uint16 gray or ``(H, W, 3)`` uint8 RGB
    (:func:`chromatize.io.to_pixels`); alpha: mode ``L`` or None; l_small: L* ``(h, w)``
    float32 in [0, 100] of the copy the network sees."""

    pixels: np.ndarray
    alpha: Image.Image | None
    l_small: np.ndarray

    def key(self) -> tuple[Any, ...]:
        """What identifies this photo at this working size in the network-output cache."""
        px = np.ascontiguousarray(self.pixels)
        return (hashlib.blake2b(px.data, digest_size=16).hexdigest(), px.shape,
                px.dtype.str, self.l_small.shape)


@dataclass(frozen=True)
class NetworkOutput:
    """The network's output for one photo at one working size (what the cache holds).

    l_small: L* ``(h, w)`` float32 of the copy the network saw; ab ``(2, h', w')`` in Lab
    units as the model decoded it with the checkpoint's settings; logits ``(Q, h', w')``
    for classification models (None: ``ab`` is final, as after a temporal filter). ab and
    logits are tensors for a PyTorch model, numpy float32 arrays for ONNX Runtime."""

    l_small: np.ndarray
    ab: Array
    logits: Array | None
    # What marks reuse from this output (Colorizer._steer_prior), filled on first use.
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


class Colorizer:
    """A loaded colorization model and everything needed to colorize photos with it.

    >>> colorizer = Colorizer.load()                 # the shipped default model
    >>> out = colorizer.colorize("photo.jpg")        # PIL.Image, RGB, same size

    ``decoding`` (or its shortcuts ``boost`` and ``gain``) is this colorizer's default
    :class:`~chromatize.decoding.Decoding`; a call's own settings override it field by
    field. The model itself is never changed.
    """

    def __init__(self, model: ColorizationModel | OnnxModel, info: dict[str, Any] | None = None,
                 device: str = "auto", working_size: int | None = None,
                 boost: float | None = None, cache_size: int = 8,
                 gain: float | None = None, decoding: Decoding | None = None,
                 index: str | os.PathLike[str] | None = None) -> None:
        self.info = info or {}
        #: The index of colour photos the versions come from (:mod:`.variants`), read on
        #: first use; None: this model has none.
        self.index_path = index
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.working_size = (working_size if working_size is not None
                             else self.info.get("working_size", 256))
        self.check(size=self.working_size)
        self.decoding = self.check_decoding(
            (decoding or Decoding()).with_(**_given(boost=boost, gain=gain)))
        # The network's output per (photo, working size), most recent last: new marks, a
        # new decoding or suggestions on the same photo reuse it instead of running the network.
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[Any, ...], NetworkOutput] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._exemplars: dict[tuple[Any, ...], Any] = {}  # reference photos' exemplars
        self._cache_hits = self._cache_misses = 0

    @classmethod
    def load(cls, path_or_name: str | os.PathLike[str] | None = None, device: str = "auto",
             working_size: int | None = None, boost: float | None = None,
             backend: str = "auto", cache_size: int = 8,
             gain: float | None = None, decoding: Decoding | None = None,
             index: str | os.PathLike[str] | None = None) -> Colorizer:
        """Load a checkpoint path, an exported ``.onnx`` graph (run with ONNX Runtime,
        see :mod:`chromatize.inference.onnx`), or a model shipped in the package by name
        (None or ``"default"`` = the default model). Raises ``CheckpointError``.

        ``boost`` (classification models) sets how strongly rare, saturated colours are
        favoured when decoding (see :class:`~chromatize.models.heads.ClassificationHead`):
        0 gives the most likely, muted colours; about 0.5-1 vivid ones. ``gain``
        (classification models) multiplies the decoded a*b*: more saturated colours with
        every hue kept (1.2-1.35 are about as vivid as boost 0.3-0.45, at a smaller colour
        error on val: docs/ablation.md). Both are shortcuts for ``decoding``.

        ``backend`` runs a checkpoint in ``torch``, in ``onnx`` (ONNX Runtime, its graph
        exported once and cached) or, with ``auto``, in ONNX Runtime when it is installed
        and the device is the CPU (see :func:`chromatize.inference.onnx.select_backend`).

        ``index``: the index of colour photos for ``variants`` (``chromatize index``);
        default: the one shipped beside the model's weights, if any."""
        from chromatize.inference.variants import shipped_index

        path = resolve_model(path_or_name)
        if path.suffix.lower() == ".onnx":  # an exported graph, run by ONNX Runtime
            model, info = load_onnx(path, backend=backend)
        else:
            # The metadata and a cached graph are found before any torch model is built.
            info = read_metadata(path)
            model = select_backend(path, info, backend, pick_device(device))
        return cls(model, info, device=device, working_size=working_size, boost=boost,
                   cache_size=cache_size, gain=gain, decoding=decoding,
                   index=index if index is not None else shipped_index(path))

    # ------------------------------------------------------------------ capabilities

    @property
    def head(self) -> BinDecoder | None:
        """What decodes the model's distribution (a PyTorch classification head, or its
        tables for ONNX Runtime), or None (regression models predict ab directly)."""
        return self.model.classification_head()

    @property
    def takes_hints(self) -> bool:
        """Whether the model takes user colour hints (``colorize(..., hints=...)``)."""
        return bool(self.model.hints)

    @property
    def takes_global_hint(self) -> bool:
        """Whether the model reads an image-level colour prior as an input (global hints,
        :mod:`chromatize.models.global_hints`) besides the decoding's use of it."""
        return bool(self.model.global_hint)

    @property
    def can_sample(self) -> bool:
        """Whether the model gives a distribution to decode (boost, gain, priors) and sample
        from (``samples=K``)."""
        return self.head is not None

    def check(self, samples: int | None = None, boost: float | None = None,
              size: int | None = None, gain: float | None = None) -> None:
        """Raise :class:`~chromatize.errors.UsageError` unless this model can work at
        ``size`` pixels (a positive whole number) and decode with these settings
        (:meth:`check_decoding`)."""
        check_size(size)
        self.check_decoding(Decoding(**_given(samples=samples, boost=boost, gain=gain)))

    def check_decoding(self, decoding: Decoding) -> Decoding:
        """``decoding`` (its numbers are checked when it is made) if this model can decode
        with it, else :class:`~chromatize.errors.UsageError`: the one place that knows
        what each model can do. Returns it."""
        return check_capabilities(decoding, self.can_sample)

    def resolve(self, decoding: Decoding | None = None, **changes: Any) -> Decoding:
        """This colorizer's decoding with ``decoding``'s settings (those not None) and
        then ``changes`` (those not None) over it, checked for this model."""
        base = self.decoding
        if decoding is not None:
            base = base.with_(**{k: v for k, v in vars(decoding).items() if v is not None})
        d = self.check_decoding(base.with_(**_given(**changes)))
        if d.prior is not None and d.prior.photos and d.prior.exemplar is None:
            d = d.with_(prior=self.with_exemplar(d.prior))
        return d

    def with_exemplar(self, prior: ImagePrior) -> ImagePrior:
        """``prior`` with what this network sees in its reference photos
        (:class:`~chromatize.priors.Exemplar`), so that decoding matches the photo's cells
        to theirs; unchanged for a prior without photos or a model without a basis to
        match by (a global-hint model reads the histogram itself)."""
        head = self.head
        basis = None if head is None or self.takes_global_hint else head.feature_basis()
        if basis is None or not prior.photos or prior.exemplar is not None:
            return prior
        from chromatize.priors import Exemplar

        key = ("exemplar", self.working_size,
               *(hashlib.blake2b(np.ascontiguousarray(p).data, digest_size=16).hexdigest()
                 for p in prior.photos))
        with self._cache_lock:
            found = self._exemplars.get(key)
        if found is None:
            parts = []
            for rgb in prior.photos:
                out = self.infer(self.prepare(rgb), cache=False)  # its L* only
                parts.append(Exemplar.of(as_numpy(out.logits), rgb, basis))
            found = Exemplar.join(parts)
            with self._cache_lock:
                self._exemplars[key] = found
                while len(self._exemplars) > 8:
                    self._exemplars.pop(next(iter(self._exemplars)))
        return replace(prior, exemplar=found)

    # ------------------------------------------------------------------ the stages

    def prepare(self, image: ImageLike, size: int | None = None) -> Source:
        """Stage 1: a path, PIL image or array -> a :class:`Source` at working size
        ``size`` (long side; default this colorizer's)."""
        self.check(size=size)
        pixels, alpha = read_source(image)
        shape = working_shape(*pixels.shape[:2], size or self.working_size,
                              self.model.size_multiple)
        return Source(pixels, alpha, small_l(pixels, shape))

    def infer(self, source: Source, hints: Hints | None = None, cache: bool = True,
              prior: ImagePrior | None = None) -> NetworkOutput:
        """Stage 2: the network's output for ``source``, from the cache when this photo was
        seen at this size before (``cache=False``: neither read nor kept, as for film
        frames). ``hints`` (full-size, see :meth:`colorize`) feed a hint model's input and
        ``prior`` (the decoding's image-level prior) a global-hint model's
        (:attr:`takes_global_hint`); such outputs depend on them and are not cached. Other
        models ignore ``prior`` here: :meth:`finish` applies it when decoding, for every
        model."""
        small = self._small_hints(source, hints) if hints is not None and self.takes_hints \
            else None
        glob = prior if self.takes_global_hint else None
        if small is not None or glob is not None:
            return self._run(source.l_small, small, glob)
        if not cache:
            return self._run(source.l_small)
        key = source.key()
        with self._cache_lock:
            if key in self._cache:
                self._cache_hits += 1
                self._cache.move_to_end(key)
                return self._cache[key]
            self._cache_misses += 1
        net = self._run(source.l_small)
        with self._cache_lock:
            self._cache[key] = net
            while len(self._cache) > max(self.cache_size, 0):
                self._cache.popitem(last=False)
        return net

    def infer_batch(self, sources: Sequence[Source]) -> list[NetworkOutput]:
        """Stage 2 for several photos: those of one working shape run as one batch (not
        cached: a batch sees each photo once)."""
        outs: list[NetworkOutput | None] = [None] * len(sources)
        shapes = [s.l_small.shape for s in sources]
        for shape in dict.fromkeys(shapes):
            idx = [i for i, s in enumerate(shapes) if s == shape]
            out = self.predict(np.stack([sources[i].l_small for i in idx])[:, None])
            for j, i in enumerate(idx):
                outs[i] = NetworkOutput(sources[i].l_small, out["ab"][j],
                                        out["logits"][j] if "logits" in out else None)
        return outs  # type: ignore[return-value]

    def decode(self, output: NetworkOutput, decoding: Decoding | None = None) -> NetworkOutput:
        """``output`` with its ab decoded by ``decoding`` (resolved over this colorizer's;
        one coloring, no samples): what a film's temporal step smooths before
        :meth:`finish`."""
        d = self.resolve(decoding)
        return replace(output, ab=self._colorings(output, replace(d, samples=None))[0])

    def finish(self, source: Source, output: NetworkOutput, decoding: Decoding | None = None,
               hints: Hints | None = None) -> Image.Image | list[Image.Image]:
        """Stage 3: ``output`` decoded by ``decoding`` (resolved over this colorizer's) ->
        the full-size photo(s) of ``source``, corrected by ``hints`` (full-size marks)
        when given. A list of photos when the decoding asks for ``samples``."""
        d = self.resolve(decoding)
        if hints is not None:
            check_hints(hints[0], hints[1], source.pixels.shape)
            if not hints[1].any():
                hints = None  # no mark: the automatic result, exactly
        abs_ = self._colorings(output, d)
        outs = [self._compose(source, output, ab, hints, d if d.samples is None else None)
                for ab in abs_]
        return outs if d.samples is not None else outs[0]

    def colorize(self, image: ImageLike, size: int | None = None, samples: int | None = None,
                 seed: int | None = None, marks: Marks | None = None,
                 boost: float | None = None, hints: Hints | None = None,
                 gain: float | None = None, decoding: Decoding | None = None,
                 reference: Any = None, palette: Any = None,
                 strength: float | None = None, variants: int | None = None,
                 index: str | os.PathLike[str] | None = None, variant: int | None = None,
                 ) -> Image.Image | list[Image.Image]:
        """Colorize one photo: a PIL image, a numpy array (gray ``(H, W)`` or RGB
        ``(H, W, 3)``, uint8/uint16 or float in [0, 1]) or a path. The three stages:
        :meth:`prepare`, :meth:`infer`, :meth:`finish`.

        Returns an RGB (or RGBA, if the input had alpha) PIL image of the input's size,
        whose L* equals the input's. ``size`` overrides the working resolution (long side).

        Decoding (classification models; see :class:`~chromatize.decoding.Decoding`, whose
        fields ``decoding`` gives at once): ``samples=K`` returns a list of K different
        plausible colorings (:func:`chromatize.models.heads.sample_ab`), reproducible with
        ``seed``; ``boost`` and ``gain`` make colours more vivid; ``reference`` (one or
        more colour photos: paths, optionally ``"path:x0,y0,x1,y1"`` for a region, PIL
        images or arrays) and ``palette`` (``"#8b2e2e,#2e4d8b:0.3"``) say which colours
        this photo has, at ``strength`` (:mod:`chromatize.priors`); the network still
        places them. ``variants=K`` returns K versions, each decoded with one prior from
        the colour photos of ``index`` (default: this colorizer's) most like this one, at
        ``strength``: the automatic result first, then the likeliest (:meth:`variant_priors`);
        with ``variant`` (1..K) only that version, as one image.

        ``marks``: colour marks in image pixels, as
        :func:`chromatize.imaging.hints.load_marks` reads them (a path to strokes drawn
        on a copy, a transparent layer or a JSON file, or a list of ``{"x", "y", "color",
        "radius", "reach"}`` points); ``hints``: the same already as ``(hint_ab (H, W, 2)``
        in Lab units, ``hint_mask (H, W)`` bool``[, hint_reach (H, W)])``). Hint models
        take them as input; any other model keeps its colours and the marks correct them
        (:mod:`chromatize.inference.steer`).
        No marks (an empty list) gives the automatic result, exactly. The network's output
        is cached (:meth:`cache_info`), so new marks, another decoding or :meth:`suggest`
        on the same photo do not run the network again. Raises ``MarksError`` for unusable
        marks, ``PriorError`` for an unusable reference or palette and ``UsageError`` for
        options the model does not allow.
        """
        from chromatize.priors import image_prior

        if variants is not None and any(x is not None for x in (reference, palette, samples)):
            raise UsageError("versions choose the photo's colours themselves: give variants "
                             "without samples, a reference or a palette")
        prior = image_prior(reference, palette, None if variants is not None else strength)
        d = self.resolve(decoding, samples=samples, seed=seed, boost=boost, gain=gain,
                         prior=prior)
        source = self.prepare(image, size)
        hints = _read_hints(source, marks, hints)
        output = self.infer(source, hints, prior=d.prior)
        if variants is None:
            return self.finish(source, output, d, hints)
        priors = self.variant_priors(output, variants, index, strength)
        if variant is not None:
            if not 1 <= variant <= len(priors):
                raise UsageError(f"variant must be from 1 to {len(priors)}, got {variant}")
            return self.finish(source, output, d.with_(prior=priors[variant - 1]), hints)
        return [self.finish(source, output, d.with_(prior=p), hints)  # type: ignore[misc]
                for p in priors]

    def variant_priors(self, output: NetworkOutput, k: int,
                       index: str | os.PathLike[str] | None = None,
                       strength: float | None = None) -> list[ImagePrior | None]:
        """The ``k`` image-level priors of the versions of a photo (its network
        ``output``): None (the automatic result) first, then ``k - 1`` from the colour
        photos of ``index`` (default: this colorizer's) most like it, the likeliest first
        (:func:`chromatize.inference.variants.versions`).
        Raises :class:`~chromatize.errors.UsageError` for a model without a distribution
        or without an index, ``IndexFileError`` for an unusable index file."""
        from chromatize.inference import variants as v

        k = int(check_number("variants", k))
        emb = v.output_embedding(output)
        path = index if index is not None else self.index_path
        if path is None:
            raise UsageError("this model has no index of colour photos for versions; build "
                             "one with `chromatize index PHOTOS -o my.index` and pass it")
        s = v.VARIANT_STRENGTH if strength is None else check_number("strength", strength)
        return v.versions(v.load_index(path), emb, k, s)

    def suggest(self, image: ImageLike, x: float, y: float, k: int = 6,
                size: int | None = None, prior: ImagePrior | None = None,
                ) -> list[tuple[str, float]]:
        """The ``k`` most likely colours at pixel ``(x, y)`` (image pixels from the top
        left, x to the right): ``[("#rrggbb", probability), ...]`` by decreasing
        probability, from the classification head's distribution there (reweighted by an
        image-level ``prior`` when given; its ab bins, shown with the photo's L* at that
        pixel; bins that look the same in 8-bit sRGB are merged). The probabilities sum
        to at most 1. Uses the cached network output when the photo was seen before.
        Raises :class:`SuggestError` for a point outside the photo, a bad ``k`` or a model
        without a colour distribution (regression head).
        """
        head = self.head
        if head is None:
            raise SuggestError("colour suggestions need a classification model (a colour "
                               "distribution per pixel); this model predicts ab directly")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise SuggestError(f"k must be a positive integer, got {k!r}")
        source = self.prepare(image, size)
        h, w = source.pixels.shape[:2]
        for name, v, n in (("x", x, w), ("y", y, h)):
            number = real(v)
            if number is None or not 0 <= number < n:
                raise SuggestError(f"{name}={shown(v)} is outside the {w}x{h} photo "
                                   f"(0 <= {name} < {n})")
        import torch
        import torch.nn.functional as F

        x, y = float(x), float(y)
        logits = torch.as_tensor(self.infer(source).logits)[None]
        if prior is not None:
            logits = head.decoding_logits(logits, Decoding(boost=0, prior=self.with_exemplar(prior)))
        # The logits at the pixel's centre, bilinearly, in grid_sample's [-1, 1] units;
        # at the last row or column the edge value, not a blend with zero padding.
        at = torch.tensor([[[[(x + 0.5) / w * 2 - 1, (y + 0.5) / h * 2 - 1]]]],
                          dtype=logits.dtype)
        p = F.softmax(F.grid_sample(logits, at, align_corners=False,
                                    padding_mode="border")[0, :, 0, 0], 0)
        bins = torch.as_tensor(head.bins).cpu().float()
        xi, yi = int(x), int(y)
        l = float(color.luminance(source.pixels[yi:yi + 1, xi:xi + 1])[0, 0])
        lab = torch.cat([torch.full((1, len(bins), 1), l), bins.T[:, :, None]])
        merged: dict[str, float] = {}
        for (r, g, b), prob in zip(color.lab_to_rgb8(lab)[:, 0].tolist(), p.tolist()):
            key = f"#{r:02x}{g:02x}{b:02x}"
            merged[key] = merged.get(key, 0.0) + prob
        return sorted(merged.items(), key=lambda kv: -kv[1])[:int(k)]

    def colorize_batch(self, images: Sequence[ImageLike], size: int | None = None,
                       decoding: Decoding | None = None) -> list[Image.Image]:
        """Colorize several photos; those that share a working size run in one batch."""
        sources = [self.prepare(image, size) for image in images]
        return [self.finish(s, out, decoding)  # type: ignore[misc]
                for s, out in zip(sources, self.infer_batch(sources))]

    # ------------------------------------------------------------------ the network

    def predict(self, l: Array, hints: tuple[torch.Tensor, torch.Tensor] | None = None,
                prior: ImagePrior | None = None) -> dict[str, Array]:
        """L* ``(B, 1, h, w)`` in [0, 100] (sides multiples of ``size_multiple``; a tensor
        or a numpy array) -> the model's outputs on the CPU: ``ab`` ``(B, 2, h / s,
        w / s)`` in Lab units, and ``logits`` for the classification family; tensors for a
        PyTorch model, numpy float32 arrays for ONNX Runtime. ``hints``: ``(hint_ab (B,
        2, h, w), hint_mask (B, 1, h, w))`` for models that take user hints; ``prior``:
        the histogram every photo of the batch gets, for global-hint models."""
        if hints is not None and not self.takes_hints:
            raise UsageError("this model takes no colour hints as input; "
                             "colorize(marks=...) corrects any model's colours")
        if prior is not None and not self.takes_global_hint:
            raise UsageError("this model takes no colour prior as input; a reference or "
                             "palette reweights any classification model's decoding")
        if isinstance(self.model, OnnxModel):
            return self.model(l)
        import torch

        with torch.inference_mode():
            kwargs = {} if hints is None else {"hint_ab": hints[0].to(self.device),
                                               "hint_mask": hints[1].to(self.device)}
            if prior is not None:
                hist = torch.from_numpy(prior.array()).float()[None].expand(len(l), -1)
                kwargs["global_hint"] = hist.to(self.device)
            out = self.model(torch.as_tensor(l).to(self.device), **kwargs)
            return {k: v.float().cpu() for k, v in out.items()}

    def _run(self, l_small: np.ndarray, hints: tuple[torch.Tensor, torch.Tensor] | None = None,
             prior: ImagePrior | None = None) -> NetworkOutput:
        out = self.predict(l_small[None, None], hints, prior)
        return NetworkOutput(l_small, out["ab"][0], out["logits"][0] if "logits" in out else None)

    @staticmethod
    def _small_hints(source: Source, hints: Hints) -> tuple[torch.Tensor, torch.Tensor]:
        """Full-size hints -> the working size: ``(1, 2, h, w)`` ab, ``(1, 1, h, w)`` mask."""
        import torch

        check_hints(hints[0], hints[1], source.pixels.shape)
        ab, mask = pool_hints(hints[0], hints[1], source.l_small.shape)
        return (torch.from_numpy(ab).permute(2, 0, 1)[None],
                torch.from_numpy(mask.astype(np.float32))[None, None])

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

    # ------------------------------------------------------------------ decoding, rendering

    def _colorings(self, output: NetworkOutput, d: Decoding) -> list[Array]:
        """The ab ``(2, h', w')`` to render: the model's own decoding when ``d`` asks for
        nothing else, else the logits decoded (or sampled) by ``d``."""
        head = self.head
        if head is None or output.logits is None:
            return [output.ab]
        as_trained = all(getattr(d, k) in (None, v) for k, v in head.defaults().items())
        if as_trained and d.samples is None and d.prior is None \
                and d.strategy == Decoding.strategy:
            return [output.ab]  # the network's forward pass decoded it so already
        logits = output.logits[None]
        if d.samples is None:
            return [head.decode(logits, d)[0]]
        return list(head.sample(logits, d.samples, 0 if d.seed is None else d.seed, d))

    def _compose(self, source: Source, output: NetworkOutput, ab: Array,
                 hints: Hints | None, annealed: Decoding | None) -> Image.Image:
        """Low-res ab ``(2, h', w')`` -> the full-size photo, guided by its L*; with
        ``hints`` (full-size marks, maybe with their reach) corrected by them (see
        :mod:`chromatize.inference.steer`).
        ``annealed``: the decoding that gave ``ab`` from ``output.logits`` (not a sample),
        so marks may re-decode the distribution."""
        if hints is None:
            return compose(source.pixels, fit_guided(output.l_small, ab), source.alpha)
        import torch

        from chromatize.inference import steer  # scipy's sparse solvers, only for marks

        # Marks work on tensors, whichever runtime gave the output.
        ab = torch.as_tensor(ab)
        if output.logits is not None:
            output = replace(output, logits=torch.as_tensor(output.logits))
        with one_torch_thread():  # working-size tensors: waking a thread pool costs more
            coef, prior = self._steer_prior(output, ab, annealed)
            delta = steer.correct(prior, *hints)
            # Both sets of coefficients at the working size: one upsampling to full size.
            coef = coef + fit_guided(output.l_small, torch.from_numpy(delta).permute(2, 0, 1))
        return compose(source.pixels, coef, source.alpha, marks=(hints[0], hints[1]))

    def _steer_prior(self, output: NetworkOutput, ab: torch.Tensor,
                     annealed: Decoding | None) -> tuple[torch.Tensor, Any]:
        """The guided coefficients of ``ab`` brought to the working size ``(4, h, w)`` and the
        :class:`~chromatize.inference.steer.Prior` that marks correct, kept in the output's
        ``memo`` under ``ab``'s decoding, so a re-solve after new marks does not compute
        them again."""
        import torch
        import torch.nn.functional as F

        from chromatize.inference import steer

        key = ("steer", hashlib.blake2b(ab.numpy().tobytes(), digest_size=16).hexdigest())
        if key in output.memo:
            return output.memo[key]
        l_small = output.l_small
        coef = fit_guided(l_small, ab)
        # The network's colours at the working size, as compose would upsample them.
        up = F.interpolate(coef[None], size=l_small.shape, mode="bilinear",
                           align_corners=False)[0]
        prior = (up[:2] * torch.from_numpy(l_small)[None] / 100 + up[2:]).permute(1, 2, 0)
        head = self.head if output.logits is not None else None
        bins = torch.as_tensor(head.bins).cpu() if head is not None else None
        d = annealed.resolved(head.defaults()) if head is not None and annealed else None
        out = up, steer.prepare(l_small, prior.numpy(), ab, output.logits, bins,
                                head if d is not None else None, d)
        output.memo[key] = out
        return out


def _read_hints(source: Source, marks: Marks | None, hints: Hints | None) -> Hints | None:
    """The hints of ``marks`` (or ``hints`` as given) for ``source``, checked; None when
    there is no mark at all (the automatic result, exactly)."""
    if marks is not None and hints is not None:
        raise UsageError("give marks or hints, not both")
    if marks is not None and not (isinstance(marks, (list, tuple)) and len(marks) == 0):
        hint_ab, hint_mask, reach = load_hints(marks, source.pixels)
        hints = (hint_ab, hint_mask) if reach is None else (hint_ab, hint_mask, reach)
    if hints is None:
        return None
    check_hints(hints[0], hints[1], source.pixels.shape)
    return hints if hints[1].any() else None


def _given(**settings: Any) -> dict[str, Any]:
    """The settings that are not None."""
    return {k: v for k, v in settings.items() if v is not None}


__all__ = ["Colorizer", "NetworkOutput", "Source", "SuggestError", "check_size",
           "working_shape"]
