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

import os
from collections.abc import Sequence
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
from chromatize.models.heads import ClassificationHead, sample_ab

ImageLike = Image.Image | np.ndarray | str | os.PathLike
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
            strip_rows: int = STRIP_ROWS) -> np.ndarray:
    """Full-size sRGB uint8 ``(H, W, 3)`` from the source pixels and low-res guided
    coefficients ``(2, h, w)``: ab = A * L/100 + B, joined with the source's own L*."""
    h_full, w_full = src.shape[:2]
    _, h, w = coef_a.shape
    ry = _bilinear_matrix(h_full, h)
    rx_t = torch.from_numpy(_bilinear_matrix(w_full, w).T.copy())
    # Columns first (cheap: h rows), then rows per strip by a small matmul.
    coef = torch.from_numpy(np.concatenate([coef_a, coef_b])) @ rx_t  # (4, h, W)
    out = np.empty((h_full, w_full, 3), np.uint8)
    for r0 in range(0, h_full, strip_rows):
        r1 = min(h_full, r0 + strip_rows)
        c = torch.from_numpy(ry[r0:r1]) @ coef  # (4, rows, W)
        l = torch.from_numpy(luminance(src[r0:r1]))
        ab = (c[:2] * (l / 100) + c[2:]).clamp_(-110, 110)
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
        self.working_size = int(working_size or self.info.get("working_size", 256))
        if boost is not None:
            if not self.can_sample:
                raise ValueError("boost needs a classification model (it reweights the "
                                 "colour distribution); this model predicts ab directly")
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
        :mod:`chromatize.marks`).
        """
        if samples is None and hints is None:
            return self.colorize_batch([image], size=size)[0]
        if samples is not None and samples < 1:
            raise ValueError(f"samples must be at least 1, got {samples}")
        if samples is not None and not self.can_sample:
            raise ValueError("this model gives a single coloring (regression head); "
                             "several samples need a classification model")
        src, alpha = read_source(image)
        l_small = self._small(src, size)
        small_hints = None if hints is None else _pool_hints(*hints, l_small.shape)
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

    @staticmethod
    def _finish(src: np.ndarray, alpha: Image.Image | None, l_small: np.ndarray,
                ab: torch.Tensor) -> Image.Image:
        """Low-res ab ``(2, h', w')`` -> the full-size photo, guided by its L*."""
        guide = F.adaptive_avg_pool2d(torch.from_numpy(l_small)[None, None] / 100, ab.shape[-2:])
        coef_a, coef_b = guided_coefficients(guide, ab[None])
        out = Image.fromarray(compose(src, coef_a[0].numpy(), coef_b[0].numpy()), "RGB")
        if alpha is not None:
            out.putalpha(alpha)
        return out


__all__ = ["Colorizer", "CheckpointError", "describe_model", "resolve_model"]
