"""The learned damage detector: a small fully convolutional network that marks the pixels
of cracks, scratches and hairs (channel 0) and of dust and specks (channel 1).

It sees the gray photo at full resolution only in its first and last layers, and does
its thinking at a half and a quarter of it. Weights ship as ``damage.safetensors`` with
``damage.json`` beside them (the network's kwargs, its thresholds, the training config
and data; see ``weights/DAMAGE.md``); :func:`load_detector` needs nothing else.

Where ONNX Runtime (and ``onnx``, for the export) are installed, the detector runs its
network there: 0.19 CPU s per megapixel against PyTorch's 0.83 on one core
(``benchmarks/restore.py --sections speed``). The graph is exported once and cached beside
the colorizers' (:func:`chromatize.inference.onnx.cache_dir`), named by the digest of the
weights and the versions that made it.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn
from torch.nn import functional as F

from chromatize.errors import ChromatizeError
from chromatize.extras import available
from chromatize.io import atomic_write_bytes

FORMAT = "chromatize-damage-detector"
#: Part of a cached graph's name: raised when the networks' code changes what they compute
#: (2: exact 2x upsampling, cut to size).
GRAPH_VERSION = 2


class DetectorError(ChromatizeError, ValueError):
    """The damage detector's weights are missing, damaged or do not fit the network."""


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation),
                         nn.ReLU(inplace=True))


def tophats(gray: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """White and black top-hats of ``gray`` ``(B, 1, H, W)`` with a ``size`` x ``size``
    square: how much brighter (darker) each pixel is than the photo with everything
    thinner than ``size`` taken away (same shape, >= 0)."""
    pad = size // 2

    def dilate(x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, size, 1, pad)

    def erode(x: torch.Tensor) -> torch.Tensor:
        return -F.max_pool2d(-x, size, 1, pad)

    return gray - dilate(erode(gray)), erode(dilate(gray)) - gray


#: Orientations of the line evidence planes (``DamageNet(line_lengths=...)``).
LINE_ORIENTATIONS = 8


def line_kernels(length: int, orientations: int = LINE_ORIENTATIONS) -> torch.Tensor:
    """Averaging kernels along straight segments ``(orientations, 1, length, length)``:
    each an anti-aliased line ``length`` px long through the centre (odd ``length``),
    summing to 1."""
    if length < 3 or length % 2 == 0:
        raise ValueError(f"a line length must be odd and at least 3, not {length}")
    import cv2

    up, shift = 8, 4  # drawn 8x larger (at 1/16 px), then averaged down
    c = (length * up - 1) / 2  # the centre of the middle pixel
    out = np.zeros((orientations, 1, length, length), np.float32)
    for k in range(orientations):
        a = np.pi * k / orientations
        d = np.array([np.cos(a), np.sin(a)]) * (length - 1) * up / 2
        ends = [tuple(int(v) for v in np.round((c + sign * d) * (1 << shift)))
                for sign in (-1, 1)]
        big = np.zeros((length * up, length * up), np.float32)
        cv2.line(big, ends[0], ends[1], 1.0, up, cv2.LINE_AA, shift)
        small = big.reshape(length, up, length, up).mean((1, 3))
        out[k, 0] = small / small.sum()
    return torch.from_numpy(out)


class DamageNet(nn.Module):
    """Gray ``(B, 1, H, W)`` in [0, 1] -> damage logits ``(B, 2, H, W)`` (lines, specks).
    Any size works; H and W need not be multiples of 8.

    Besides the gray, the first layer sees its white and black top-hats at each of
    ``tophat_sizes``: thin bright and dark structures stand out in them, so the small
    network can spend itself on telling damage from texture. ``widths`` gives the
    channels at full, half and quarter resolution (default ``width`` x 1, 2, 4) and,
    with a fourth entry, adds a level at an eighth: more context (a crack's course, a
    window's frame) for little cost, since it sees 1/64 of the pixels.

    ``line_lengths`` adds, per length, two planes of *line evidence*: the largest top-hat
    (white, black) averaged along straight segments of that length at
    LINE_ORIENTATIONS orientations, best orientation less their mean. A scratch or a
    crack answers in one orientation; a speck, a blob or even texture answers in all
    (Ricci and Perfetti's line detector for retinal vessels, on the top-hats)."""

    def __init__(self, width: int = 8, tophat_sizes: tuple[int, ...] = (5, 11),
                 widths: tuple[int, ...] | None = None,
                 line_lengths: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.tophat_sizes = tuple(tophat_sizes)
        self.line_lengths = tuple(line_lengths)
        if self.line_lengths and not self.tophat_sizes:
            raise ValueError("line evidence needs a top-hat size to average")
        for i, length in enumerate(self.line_lengths):  # fixed, so not in the weights
            self.register_buffer(f"lines_{i}", line_kernels(length), persistent=False)
        widths = tuple(widths) if widths else (width, 2 * width, 4 * width)
        if len(widths) not in (3, 4):
            raise ValueError(f"widths: 3 or 4 levels, not {len(widths)}")
        w1, w2, w3 = widths[:3]
        cin = 1 + 2 * len(self.tophat_sizes) + 2 * len(self.line_lengths)
        self.at_full = nn.Sequential(_conv(cin, w1), _conv(w1, w1))
        self.at_half = nn.Sequential(_conv(w1, w2, stride=2), _conv(w2, w2))
        self.at_quarter = nn.Sequential(_conv(w2, w3, stride=2), _conv(w3, w3),
                                     _conv(w3, w3, dilation=2))
        self.at_eighth: nn.Module | None = None
        if len(widths) == 4:
            w4 = widths[3]
            self.at_eighth = nn.Sequential(_conv(w3, w4, stride=2), _conv(w4, w4),
                                           _conv(w4, w4, dilation=2))
            self.up_quarter = _conv(w4 + w3, w3)
        self.up_half = _conv(w3 + w2, w2)
        self.up_full = _conv(w2 + w1, w1)
        self.out = nn.Conv2d(w1, 2, 1)

    def forward(self, gray: torch.Tensor) -> torch.Tensor:
        planes = [gray * 2 - 1]
        hats = {size: tophats(gray, size) for size in self.tophat_sizes}
        for size in self.tophat_sizes:
            planes.extend(4 * t for t in hats[size])
        for i, length in enumerate(self.line_lengths):
            kernels = getattr(self, f"lines_{i}")
            for t in hats[max(self.tophat_sizes)]:
                along = F.conv2d(t, kernels, padding=length // 2)  # (B, orientations, H, W)
                planes.append(8 * (along.amax(1, keepdim=True) - along.mean(1, keepdim=True)))
        f1 = self.at_full(torch.cat(planes, 1))
        f2 = self.at_half(f1)
        f3 = self.at_quarter(f2)
        if self.at_eighth is not None:
            f3 = self.up_quarter(torch.cat([_up(self.at_eighth(f3), f3), f3], 1))
        u2 = self.up_half(torch.cat([_up(f3, f2), f2], 1))
        return self.out(self.up_full(torch.cat([_up(u2, f1), f1], 1)))


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``x`` at twice its resolution, cut to ``like``'s height and width: exactly 2x
    (never stretched to fit an odd size), so a tile aligned to 8 px sees what the whole
    photo sees and tiles join without seams."""
    up = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    return up[..., : like.shape[-2], : like.shape[-1]]


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


@dataclass(frozen=True)
class Gate:
    """The more damage a photo shows for sure, the more readily the rest is taken for
    damage: a prior from the whole photo, which one tile of the network cannot see.

    The photo's damage density is the share of its pixels whose probability passes
    ``seed`` in either channel. At or below ``low`` the detector's own thresholds hold
    (a clean photo with a few damage-like highlights stays as it is); at or above
    ``high`` the ``loose`` ones; between, a blend in log-odds by the density's log."""

    seed: float
    low: float
    high: float
    loose: tuple[float, float]

    def __post_init__(self) -> None:
        probabilities = (self.seed, *self.loose)
        if not (0 < self.low < self.high and all(0 < p < 1 for p in probabilities)):
            raise ValueError(f"a gate needs 0 < low < high and probabilities in (0, 1): {self}")

    def thresholds(self, strict: tuple[float, float], density: float) -> tuple[float, float]:
        """The thresholds (lines, specks) for a photo of damage ``density`` (0-1)."""
        f = (np.log(max(density, 1e-9)) - np.log(self.low)) / np.log(self.high / self.low)
        f = float(np.clip(f, 0, 1))
        return tuple(float(1 / (1 + np.exp(-((1 - f) * _logit(a) + f * _logit(b)))))
                     for a, b in zip(strict, self.loose))  # type: ignore[return-value]


@dataclass
class Detector:
    """A trained :class:`DamageNet` with the probability above which a pixel is damage,
    per channel, an optional :class:`Gate`, and the metadata it was saved with."""

    net: DamageNet
    thresholds: tuple[float, float] = (0.5, 0.5)
    meta: dict[str, Any] = field(default_factory=dict)
    session: Any = None  # the network in ONNX Runtime (:func:`load_detector`), or None
    gate: Gate | None = None

    def logits(self, gray: np.ndarray) -> np.ndarray:
        """Gray ``(H, W)`` float32 in [0, 1] -> damage logits ``(2, H, W)`` float32."""
        x = np.ascontiguousarray(gray, np.float32)[None, None]
        if self.session is not None:
            return self.session.run(None, {"gray": x})[0][0]
        with torch.inference_mode():
            return self.net(torch.from_numpy(x))[0].numpy()

    def seeds(self, logits: np.ndarray) -> int:
        """How many pixels of ``logits`` ``(2, h, w)`` pass the gate's seed (0 without a
        gate): their share of the photo is its damage density."""
        return 0 if self.gate is None else int((logits.max(0) > _logit(self.gate.seed)).sum())

    def mask(self, logits: np.ndarray, density: float | None = None) -> np.ndarray:
        """Logits ``(2, H, W)`` -> damage ``(2, H, W)`` bool, at the thresholds for a photo
        of damage ``density`` (None, or no gate: the detector's own)."""
        cut = self.thresholds
        if self.gate is not None and density is not None:
            cut = self.gate.thresholds(self.thresholds, density)
        return logits > np.array([_logit(t) for t in cut], np.float32)[:, None, None]

    def __call__(self, gray: np.ndarray) -> np.ndarray:
        """Gray ``(H, W)`` float32 in [0, 1] -> damage ``(2, H, W)`` bool (lines, specks)
        at the detector's own thresholds (the gate needs the whole photo: see
        :func:`chromatize.restore.pipeline.restore_pixels`)."""
        return self.mask(self.logits(gray))


def shipped_path() -> Path:
    """Where the shipped detector lives (``weights/damage`` without suffix)."""
    return Path(str(resources.files("chromatize") / "weights" / "damage"))


def save_detector(detector: Detector, path: str | os.PathLike[str]) -> None:
    """Write ``PATH.safetensors`` (float32 weights) and ``PATH.json`` atomically."""
    p = Path(path)
    tensors = {k: v.detach().float().contiguous() for k, v in detector.net.state_dict().items()}
    atomic_write_bytes(p.with_name(p.name + ".safetensors"), save(tensors))
    meta = {**detector.meta, "format": FORMAT, "thresholds": list(detector.thresholds)}
    meta.pop("gate", None)
    if detector.gate is not None:
        meta["gate"] = dataclasses.asdict(detector.gate)
    atomic_write_bytes(p.with_name(p.name + ".json"), json.dumps(meta, indent=1).encode())


def load_detector(path: str | os.PathLike[str] | None = None, backend: str = "auto",
                  ) -> Detector:
    """Load a detector saved by :func:`save_detector` (default: the shipped one), its
    network in ONNX Runtime when ``backend`` is ``auto`` and it is installed (else, and
    for ``torch``, in PyTorch). Raises :class:`DetectorError` when a file is missing or
    does not fit."""
    p = Path(path) if path is not None else shipped_path()
    weights, info = p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")
    try:
        meta = json.loads(info.read_text())
        net = DamageNet(**meta.get("net", {}).get("kwargs", {}))
        net.load_state_dict(load_file(str(weights)))
    except (OSError, ValueError, TypeError, RuntimeError, SafetensorError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DetectorError(f"{p}: cannot load the damage detector ({reason})") from None
    if meta.get("format") != FORMAT:
        raise DetectorError(f"{info}: not a damage detector (format {meta.get('format')!r})")
    net.eval()
    session = _session(net, p) if backend == "auto" else None
    try:
        raw = meta.get("gate")
        gate = Gate(**{**raw, "loose": tuple(raw["loose"])}) if raw else None
    except (TypeError, KeyError, ValueError) as e:
        raise DetectorError(f"{info}: a gate that does not fit ({e})") from None
    return Detector(net, tuple(meta.get("thresholds", (0.5, 0.5))), meta, session, gate)


def _session(net: nn.Module, stem: Path, inputs: tuple[str, ...] = ("gray",),
             kind: str = "damage") -> Any:
    """``net`` (saved at ``stem``; its ``inputs`` each ``(1, 1, H, W)``) in ONNX Runtime,
    its graph from the colorizers' ONNX cache
    (:func:`chromatize.inference.onnx.cached_graph_path`: named by the digest of the
    files and the versions) or exported into it; None when ONNX Runtime is missing, or the
    graph is not cached and cannot be exported (no ``onnx`` package, or the export fails):
    PyTorch runs it then. A cached graph needs no ``onnx`` import."""
    if not available("onnxruntime"):
        return None
    import onnxruntime as ort

    from chromatize.inference.onnx import cached_graph_path, session_options

    path = cached_graph_path(stem)
    # told apart from the colorizers' graphs, and from graphs of older code
    path = path.with_name(f"{kind}-g{GRAPH_VERSION}-{path.name}")

    def session(graph: bytes) -> Any:
        return ort.InferenceSession(graph, session_options(), providers=["CPUExecutionProvider"])

    try:
        return session(path.read_bytes())
    except Exception:  # noqa: BLE001 - none cached, or a damaged entry: exported again
        pass
    if not available("onnx"):
        return None
    try:
        graph = _export(net, inputs)
        result = session(graph)
    except Exception:  # noqa: BLE001 - PyTorch runs the network then
        return None
    try:
        atomic_write_bytes(path, graph)
    except OSError:
        pass  # a read-only home: the graph still serves this process
    return result


def _export(net: nn.Module, inputs: tuple[str, ...]) -> bytes:
    """The network as an ONNX graph of any height and width (one output)."""
    import warnings

    from chromatize.inference.onnx import OPSET

    buf = io.BytesIO()
    with warnings.catch_warnings():  # the exporter's notes are not the user's business
        warnings.simplefilter("ignore")
        axes = {name: {2: "h", 3: "w"} for name in (*inputs, "out")}
        torch.onnx.export(net, tuple(torch.rand(1, 1, 64, 96) for _ in inputs), buf,
                          input_names=list(inputs), output_names=["out"], opset_version=OPSET,
                          dynamo=False, dynamic_axes=axes)
    return buf.getvalue()
