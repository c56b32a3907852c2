"""Small learned repairs, measured against OpenCV's in ``docs/restore.md``: a network
that corrects Telea's fill of a mask (inpainting), or one that takes grain away
(denoising). Each is a residual U-Net (:class:`RefineNet`) trained on synthetic damage
(:mod:`chromatize.training.refine_train`), saved as ``PATH.safetensors`` + ``PATH.json``.

Inpainting starts from OpenCV's Telea fill and learns a correction inside the mask only,
so every pixel outside the mask is kept exactly, as with OpenCV alone.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from chromatize.io import atomic_write_bytes
from chromatize.restore import damage as dmg
from chromatize.restore.net import DetectorError, _conv, _session, _up

FORMAT = "chromatize-refine-net"
TASKS = ("inpaint", "denoise")


class RefineNet(nn.Module):
    """``task`` ``inpaint``: Telea-filled gray ``(B, 1, H, W)`` in [0, 1] and its mask
    ``(B, 1, H, W)`` in {0, 1} -> corrected gray ``(B, 1, H, W)``; ``denoise``: noisy gray
    -> clean gray. The output is the input plus a learned residual (zero at first: the
    last layer starts at zero), not clipped."""

    def __init__(self, task: str = "inpaint", widths: tuple[int, int, int] = (16, 32, 64),
                 ) -> None:
        super().__init__()
        if task not in TASKS:
            raise ValueError(f"task: one of {TASKS}, not {task!r}")
        self.task = task
        w1, w2, w3 = widths
        self.at_full = nn.Sequential(_conv(2 if task == "inpaint" else 1, w1), _conv(w1, w1))
        self.at_half = nn.Sequential(_conv(w1, w2, stride=2), _conv(w2, w2))
        self.at_quarter = nn.Sequential(_conv(w2, w3, stride=2), _conv(w3, w3),
                                        _conv(w3, w3, dilation=2))
        self.up_half = _conv(w3 + w2, w2)
        self.up_full = _conv(w2 + w1, w1)
        self.out = nn.Conv2d(w1, 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, gray: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        planes = [gray * 2 - 1] + ([mask] if self.task == "inpaint" else [])
        f1 = self.at_full(torch.cat(planes, 1))
        f2 = self.at_half(f1)
        f3 = self.at_quarter(f2)
        u2 = self.up_half(torch.cat([_up(f3, f2), f2], 1))
        return gray + self.out(self.up_full(torch.cat([_up(u2, f1), f1], 1)))


@dataclass
class Refiner:
    """A trained :class:`RefineNet` and the metadata it was saved with."""

    net: RefineNet
    meta: dict[str, Any] = field(default_factory=dict)
    session: Any = None  # the network in ONNX Runtime (:func:`load_refiner`), or None

    def inpaint(self, gray: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Gray ``(H, W)`` float32 in [0, 1] with the pixels of ``mask`` ``(H, W)`` bool
        filled: Telea's fill, corrected by the network; the rest kept exactly."""
        filled = dmg.inpaint(gray, mask)
        if not mask.any():
            return filled
        out = self._run(filled, mask.astype(np.float32))
        return np.where(mask, np.clip(out, 0, 1), gray).astype(np.float32)

    def denoise(self, gray: np.ndarray) -> np.ndarray:
        """Gray ``(H, W)`` float32 in [0, 1] with its grain taken away, in [0, 1]."""
        return np.clip(self._run(np.asarray(gray, np.float32)), 0, 1).astype(np.float32)

    def _run(self, gray: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        x = np.ascontiguousarray(gray, np.float32)[None, None]
        feeds = {"gray": x} if mask is None else {"gray": x, "mask": mask[None, None]}
        if self.session is not None:
            return self.session.run(None, feeds)[0][0, 0]
        x, m = torch.from_numpy(x), None if mask is None else torch.from_numpy(feeds["mask"])
        with torch.inference_mode():
            return self.net(x, m)[0, 0].numpy()


def save_refiner(refiner: Refiner, path: str | os.PathLike[str]) -> None:
    """Write ``PATH.safetensors`` (float32 weights) and ``PATH.json`` atomically."""
    p = Path(path)
    tensors = {k: v.detach().float().contiguous() for k, v in refiner.net.state_dict().items()}
    atomic_write_bytes(p.with_name(p.name + ".safetensors"), save(tensors))
    meta = {**refiner.meta, "format": FORMAT}
    atomic_write_bytes(p.with_name(p.name + ".json"), json.dumps(meta, indent=1).encode())


def load_refiner(path: str | os.PathLike[str], backend: str = "auto") -> Refiner:
    """Load what :func:`save_refiner` wrote, its network in ONNX Runtime when ``backend``
    is ``auto`` and it is installed (else in PyTorch); :class:`DetectorError` when it
    cannot."""
    p = Path(path)
    try:
        meta = json.loads(p.with_name(p.name + ".json").read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"not a refine net (format {meta.get('format')!r})")
        net = RefineNet(**meta.get("net", {}).get("kwargs", {}))
        net.load_state_dict(load_file(str(p.with_name(p.name + ".safetensors"))))
    except (OSError, ValueError, TypeError, RuntimeError, SafetensorError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DetectorError(f"{p}: cannot load the repair network ({reason})") from None
    net.eval()
    inputs = ("gray", "mask") if net.task == "inpaint" else ("gray",)
    session = _session(net, p, inputs, kind="refine") if backend == "auto" else None
    return Refiner(net, meta, session)
