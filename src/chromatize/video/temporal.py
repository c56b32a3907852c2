"""Temporal consistency: carry the previous frame's colours forward along optical flow.

A network that colours each frame on its own makes colours jump between frames (flicker):
small changes of the input move its decision between plausible colours. Here each frame's
prediction is blended with the previous *output* warped to the current frame:

    ab_t = pred_t + weight * confidence * (warp(ab_{t-1}) - pred_t)

All of it runs at the network's working resolution (a few hundred pixels wide), where it
costs about a millisecond. The flow is OpenCV's DIS (Kroeger et al. 2016, ultrafast preset)
on L*, computed both ways; the confidence of a pixel falls with the forward-backward
disagreement of the two flows (occlusions, flow errors) and with its brightness mismatch
after warping (new content), and is zero where the flow leaves the frame. A frame whose
warped previous frame matches poorly as a whole is a scene cut: there the filter restarts
from the new prediction. Brightness flicker, common in old film, is taken out before the
comparison (the mean difference is subtracted), so it does not look like a cut.

The recursion is an exponential moving average along motion trajectories: with the
default weight, a colour keeps about ``1 / (1 - weight)`` frames of memory. The weight was
chosen by measurement (``benchmarks/video.py``, ``docs/video.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Weight of the carried colour where the flow is trusted (see docs/video.md for the sweep).
DEFAULT_WEIGHT = 0.9


@dataclass
class TemporalConfig:
    """Parameters of :class:`TemporalFilter`; distances are in working-size pixels, L* in
    [0, 100] units."""

    weight: float = DEFAULT_WEIGHT
    fb_sigma: float = 1.0  # forward-backward disagreement at which confidence is exp(-1/2)
    l_sigma: float = 8.0  # L* mismatch after warping at which confidence is exp(-1/2)
    cut_mismatch: float = 10.0  # mean |L* mismatch| above which a frame starts a new shot
    cut_confident: float = 0.2  # ... or a fraction of confident pixels below this


class TemporalFilter:
    """Stateful filter over a shot: call it on each frame in order.

    >>> f = TemporalFilter()
    >>> ab = f(l_small, pred_ab)  # (h, w) L* in [0, 100], (2, h, w) ab -> (2, h, w)
    """

    def __init__(self, config: TemporalConfig | None = None) -> None:
        self.config = config or TemporalConfig()
        if not 0 <= self.config.weight < 1:
            raise ValueError(f"weight must be in [0, 1), got {self.config.weight}")
        self.flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        self.cuts = 0
        self.reset()

    def reset(self) -> None:
        """Forget the past (the next frame starts a shot)."""
        self._l8: np.ndarray | None = None
        self._l: np.ndarray | None = None
        self._ab: np.ndarray | None = None
        self.confidence = 0.0

    def __call__(self, l: np.ndarray, ab: np.ndarray) -> np.ndarray:
        """One frame: L* ``(h, w)`` float32 in [0, 100] and the network's ab ``(2, h, w)``
        float32 (Lab units) at the same size -> the ab to show ``(2, h, w)`` float32."""
        l8 = (l * 2.55 + 0.5).astype(np.uint8)
        out = ab
        if self._l8 is not None and self._l8.shape == l8.shape:
            conf, warp = self._confidence(l8, l)
            if conf is None:
                self.cuts += 1
            else:
                carried = np.stack([cv2.remap(c, warp, None, cv2.INTER_LINEAR,
                                              borderMode=cv2.BORDER_REPLICATE) for c in self._ab])
                out = ab + (self.config.weight * conf) * (carried - ab)
        self._l8, self._l, self._ab = l8, l, out.astype(np.float32, copy=False)
        return self._ab

    def _confidence(self, l8: np.ndarray, l: np.ndarray,
                    ) -> tuple[np.ndarray | None, np.ndarray]:
        """Per-pixel trust ``(h, w)`` in [0, 1] of the previous frame warped to this one
        (None at a scene cut), and the warp map ``(h, w, 2)``: where each pixel was."""
        cfg = self.config
        h, w = l8.shape
        back = self.flow.calc(l8, self._l8, None)  # this frame -> previous
        fwd = self.flow.calc(self._l8, l8, None)  # previous -> this frame
        grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32),
                                    np.arange(h, dtype=np.float32)), -1)
        warp = grid + back
        # A consistent pair of flows goes there and back to the same pixel.
        fb = back + cv2.remap(fwd, warp, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        inside = ((warp[..., 0] >= 0) & (warp[..., 0] <= w - 1)
                  & (warp[..., 1] >= 0) & (warp[..., 1] <= h - 1))
        mismatch = l - cv2.remap(self._l, warp, None, cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
        mismatch -= mismatch[inside].mean() if inside.any() else 0.0
        conf = np.exp(-0.5 * ((fb * fb).sum(-1) / cfg.fb_sigma ** 2
                              + mismatch * mismatch / cfg.l_sigma ** 2)) * inside
        self.confidence = float(conf.mean())
        if (not inside.any() or np.abs(mismatch[inside]).mean() > cfg.cut_mismatch
                or (conf > 0.5).mean() < cfg.cut_confident):
            return None, warp
        return conf.astype(np.float32), warp
