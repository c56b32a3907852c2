"""The seed's U-Net (thesis, 2019).

Two 3x3 convolutions per level, each followed by batch norm and ReLU; dropout 0.2 in the
encoder; 2x2 max-pool down; nearest upsampling (not transposed convolution) up, then
concatenation with the skip; He-uniform initialisation; a 1x1 convolution to 2 tanh
outputs. With filters 64..1024 (``unet_thesis``) it has 31,389,634 trainable parameters.
"""

from __future__ import annotations

import torch
from torch import nn

import chromatize.color as color
from chromatize.models.base import MODELS, ColorizationModel


def _double_conv(cin: int, cout: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(2):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1), nn.BatchNorm2d(cout)]
        layers.append(nn.ReLU(inplace=True))
    if dropout > 0:
        layers.append(nn.Dropout2d(dropout))
    return nn.Sequential(*layers)


class UNet(ColorizationModel):
    """U-Net with ``depth`` poolings and ``base * 2**i`` filters at level ``i``.

    Input: L ``(B, 1, H, W)`` in [0, 100], sides multiples of ``2**depth``.
    Output: ``{"ab": (B, 2, H, W)}`` in Lab units (tanh * 110).
    """

    def __init__(self, base: int = 64, depth: int = 4, dropout: float = 0.2) -> None:
        super().__init__()
        self.size_multiple = 2**depth
        widths = [base * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        cin = 1
        for w in widths:
            self.down.append(_double_conv(cin, w, dropout))
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.up = nn.ModuleList(
            _double_conv(widths[i + 1] + widths[i], widths[i], 0.0) for i in reversed(range(depth))
        )
        self.out = nn.Conv2d(widths[0], 2, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, l: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_input(l)
        x = color.normalize_l(l)
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = block(torch.cat([self.upsample(x), skip], dim=1))
        return {"ab": color.denormalize_ab(torch.tanh(self.out(x)))}


@MODELS.register("unet_thesis")
def unet_thesis(**kw: float) -> UNet:
    """The seed's network: 64..1024 filters, 31,389,634 parameters."""
    return UNet(**{"base": 64, "depth": 4, **kw})


@MODELS.register("unet_small")
def unet_small(**kw: float) -> UNet:
    """16..256 filters (1/16 of the parameters), for quick CPU runs."""
    return UNet(**{"base": 16, "depth": 4, **kw})


@MODELS.register("unet_tiny")
def unet_tiny(**kw: float) -> UNet:
    """4..32 filters, three levels: for tests."""
    return UNet(**{"base": 4, "depth": 3, **kw})
