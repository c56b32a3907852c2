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

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from chromatize.checkpoint import load_checkpoint, pick_device, resolve_model
from chromatize.errors import UsageError
from chromatize.inference.hints import check_hints, pool_hints
from chromatize.inference.upsample import compose, fit_guided, small_l
from chromatize.io import ImageLike, read_source
from chromatize.models import ColorizationModel
from chromatize.models.heads import ClassificationHead, sample_ab


#: Most colorings one call gives (``samples``): each is a full-size photo held in memory
#: until written (about 10 MB for a 3-megapixel photo), so 64 stay under a gigabyte.
MAX_SAMPLES = 64
#: Largest ``boost``: the colour distribution is reweighted by class weight ** boost, and
#: beyond this only the rarest colours are left.
MAX_BOOST = 3.0


def working_shape(h: int, w: int, working_size: int, multiple: int) -> tuple[int, int]:
    """Size the network sees: long side about ``working_size`` but never above the
    photo's own (the seed's rule: at most 1000 px for its U-Net), sides rounded to
    multiples of ``multiple`` (at least one multiple)."""
    s = min(working_size, max(h, w)) / max(h, w)
    return (max(multiple, round(h * s / multiple) * multiple),
            max(multiple, round(w * s / multiple) * multiple))


class Colorizer:
    """A loaded colorization model and everything needed to colorize photos with it.

    >>> colorizer = Colorizer.load()                 # the shipped default model
    >>> out = colorizer.colorize("photo.jpg")        # PIL.Image, RGB, same size
    """

    def __init__(self, model: ColorizationModel, info: dict[str, Any] | None = None,
                 device: str = "auto", working_size: int | None = None,
                 boost: float | None = None) -> None:
        self.info = info or {}
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.working_size = (working_size if working_size is not None
                             else self.info.get("working_size", 256))
        self.check(size=self.working_size)
        if boost is not None:
            self.check(boost=boost)
            self.model.head.boost = float(boost)  # type: ignore[union-attr]

    @classmethod
    def load(cls, path_or_name: str | os.PathLike[str] | None = None, device: str = "auto",
             working_size: int | None = None, boost: float | None = None,
             backend: str = "auto") -> Colorizer:
        """Load a checkpoint path, an exported ``.onnx`` graph (run with ONNX Runtime,
        see :mod:`chromatize.inference.onnx`), or a model shipped in the package by name
        (None or ``"default"`` = the default model). Raises ``CheckpointError``.

        ``boost`` (classification models) sets how strongly rare, saturated colours are
        favoured when decoding (see :class:`~chromatize.models.heads.ClassificationHead`):
        0 gives the most likely, muted colours; about 0.5-1 vivid ones.

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
        return cls(model, info, device=device, working_size=working_size, boost=boost)

    @property
    def takes_hints(self) -> bool:
        """Whether the model takes user colour hints (``colorize(..., hints=...)``)."""
        return bool(getattr(self.model, "hints", False))

    @property
    def can_sample(self) -> bool:
        """Whether the model gives a distribution to sample from (``samples=K``)."""
        return isinstance(getattr(self.model, "head", None), ClassificationHead)

    def check(self, samples: int | None = None, hints: bool = False,
              boost: float | None = None, size: int | None = None) -> None:
        """Raise :class:`~chromatize.errors.UsageError` unless this model can give
        ``samples`` colorings (1 to :data:`MAX_SAMPLES`), take ``hints``, be
        ``boost``-ed (a finite number from 0 to :data:`MAX_BOOST`) and work at ``size``
        pixels (a positive whole number): the one place that knows what each model can do."""
        if size is not None and (isinstance(size, bool) or not isinstance(size, int)
                                 or size < 1):
            raise UsageError(f"working size must be a positive whole number of pixels, "
                             f"got {size!r}")
        if samples is not None and not 1 <= samples <= MAX_SAMPLES:
            raise UsageError(f"samples must be from 1 to {MAX_SAMPLES}, got {samples}")
        if boost is not None and not (math.isfinite(boost) and 0 <= boost <= MAX_BOOST):
            raise UsageError(f"boost must be a number from 0 to {MAX_BOOST:g}, got {boost}")
        if samples is not None and not self.can_sample:
            raise UsageError("this model gives a single coloring (regression head); sampling "
                             "(--samples) needs a classification model")
        if boost is not None and not self.can_sample:
            raise UsageError("boost needs a classification model (it reweights the colour "
                             "distribution); this model predicts ab directly")
        if hints and not self.takes_hints:
            raise UsageError("this model takes no colour hints; use a model trained with "
                             "hints (configs/ablation/hints.yaml, e.g. effnet_lite0_hints) or "
                             "`chromatize scribble` (Levin et al. 2004, no network)")

    @torch.inference_mode()
    def predict(self, l: torch.Tensor, hints: tuple[torch.Tensor, torch.Tensor] | None = None,
                ) -> dict[str, torch.Tensor]:
        """L* ``(B, 1, h, w)`` in [0, 100] (sides multiples of ``size_multiple``) -> the
        model's outputs on the CPU: ``ab`` ``(B, 2, h / s, w / s)`` in Lab units, and
        ``logits`` for the classification family. ``hints``: ``(hint_ab (B, 2, h, w),
        hint_mask (B, 1, h, w))`` for models that take user hints."""
        kwargs = {}
        if hints is not None:
            self.check(hints=True)
            kwargs = {"hint_ab": hints[0].to(self.device), "hint_mask": hints[1].to(self.device)}
        out = self.model(l.to(self.device), **kwargs)
        return {k: v.float().cpu() for k, v in out.items()}

    def colorize(self, image: ImageLike, size: int | None = None, samples: int | None = None,
                 seed: int | None = None, hints: tuple[np.ndarray, np.ndarray] | None = None,
                 ) -> Image.Image | list[Image.Image]:
        """Colorize one photo: a PIL image, a numpy array (gray ``(H, W)`` or RGB
        ``(H, W, 3)``, uint8/uint16 or float in [0, 1]) or a path.

        Returns an RGB (or RGBA, if the input had alpha) PIL image of the input's size,
        whose L* equals the input's. ``size`` overrides the working resolution (long side).
        With ``samples=K`` returns a list of K different plausible colorings instead
        (classification models only; see :func:`chromatize.models.heads.sample_ab`),
        reproducible with ``seed``. ``hints``: user marks as ``(hint_ab (H, W, 2)`` in Lab
        units, ``hint_mask (H, W)`` bool) at the photo's size, for hint models (see
        :mod:`chromatize.inference.hints`).
        """
        if samples is None and hints is None:
            return self.colorize_batch([image], size=size)[0]
        self.check(samples=samples, hints=hints is not None, size=size)
        src, alpha = read_source(image)
        l_small = self._small(src, size)
        small_hints = None if hints is None else self._small_hints(src, hints, l_small.shape)
        out = self.predict(torch.from_numpy(l_small)[None, None], small_hints)
        if samples is None:
            return self._finish(src, alpha, l_small, out["ab"][0])
        head = self.model.head  # type: ignore[union-attr]
        gen = torch.Generator().manual_seed(0 if seed is None else seed)
        logits = head.decoding_logits(out["logits"].to(head.bins.device)).cpu()
        abs_ = sample_ab(logits, head.bins.cpu(), samples, gen, head.temperature)
        return [self._finish(src, alpha, l_small, ab) for ab in abs_]

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
    def _small_hints(src: np.ndarray, hints: tuple[np.ndarray, np.ndarray],
                     shape: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Full-size hints -> the working size: ``(1, 2, h, w)`` ab, ``(1, 1, h, w)`` mask."""
        check_hints(*hints, src.shape)
        ab, mask = pool_hints(*hints, shape)
        return (torch.from_numpy(ab).permute(2, 0, 1)[None],
                torch.from_numpy(mask.astype(np.float32))[None, None])

    @staticmethod
    def _finish(src: np.ndarray, alpha: Image.Image | None, l_small: np.ndarray,
                ab: torch.Tensor) -> Image.Image:
        """Low-res ab ``(2, h', w')`` -> the full-size photo, guided by its L*."""
        return compose(src, fit_guided(l_small, ab), alpha)


__all__ = ["Colorizer"]
