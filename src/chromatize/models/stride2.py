"""The EfficientNet-Lite colorizer with its chroma at stride 2 instead of 4.

An ablation candidate of issue 10 (``docs/ablation.md``): chroma at a quarter of the
resolution blurs colour across small objects and thin edges ("colour bleeding"), which
the guided upsampler can only partly undo. Here a fifth, narrower decoder level reads the
encoder's stride-2 map (16 channels for Lite0) and the head classifies every 2x2 block.
It costs about 4x the head's work at inference.

Not shipped (docs/ablation.md, round 4); it stays in the registry because
``scripts/ablation_cpu.sh`` trains it by name through ``chromatize train``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from chromatize.models.base import MODELS
from chromatize.models.efficientnet import EffNetColorizer, _conv_bn_relu, make_head


class Stride2Colorizer(EffNetColorizer):
    """:class:`EffNetColorizer` plus a decoder level at stride 2 of ``fine_width``
    channels, which the head reads.

    Input: L ``(B, 1, H, W)`` in [0, 100], sides multiples of 32.
    Output: ``{"ab": (B, 2, H/2, W/2)}`` in Lab units, plus ``"logits"``
    ``(B, Q, H/2, W/2)`` for the classification head.
    """

    ab_stride = 2

    def __init__(self, width: int = 64, fine_width: int = 32, head: str = "classification",
                 temperature: float = 0.38, boost: float = 0.0, gain: float = 1.0,
                 **kw: object) -> None:
        super().__init__(width=width, head=head, temperature=temperature, boost=boost, **kw)  # type: ignore[arg-type]
        if self.hints:
            raise ValueError("the stride-2 decoder has no hint input")
        c2 = self.variant.tap_channels[0]
        self.lateral_fine = nn.Conv2d(c2, fine_width, 1)
        self.reduce_fine = nn.Conv2d(width, fine_width, 1)
        self.smooth_fine = _conv_bn_relu(fine_width, fine_width)
        self.head = make_head(head, fine_width, temperature, boost, gain)
        # encode() returns one more map (f2) than the parent's, first.
        self.splits = {k: n + 1 for k, n in self.variant.splits.items()}

    def encode(self, l: torch.Tensor, stem_extra: torch.Tensor | None = None) -> list[torch.Tensor]:
        """L* ``(B, 1, H, W)`` in [0, 100] -> the encoder's maps at strides 2, 4, 8, 16 and
        32 (channels 16, 24, 40, 112, 320 for Lite0)."""
        return self.encoder(self.encoder_input(l), stem_extra)

    def decode(self, feats: list[torch.Tensor], hint: torch.Tensor | None = None,
               ) -> dict[str, torch.Tensor]:
        """Maps f2..f32 -> the output dict at stride 2."""
        f2, rest = feats[0], feats[1:]
        x = self.trunk(rest, hint)
        x = F.interpolate(x, size=f2.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(self.smooth_fine(self.reduce_fine(x) + self.lateral_fine(f2)))


@MODELS.register("effnet_lite0_cls_s2")
def effnet_lite0_cls_s2(**kw: object) -> Stride2Colorizer:
    """Classification over ab bins at stride 2 (see :class:`Stride2Colorizer`)."""
    return Stride2Colorizer(**kw)  # type: ignore[arg-type]
