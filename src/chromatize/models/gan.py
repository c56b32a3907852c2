"""Conditional GAN (pix2pix, Isola et al. 2017): any registered colorization model as
the generator, a PatchGAN discriminator that sees L and ab, and GAN loss + lambda * L1.

The model owns the order of its updates (:meth:`Pix2Pix.train_step`): first the
discriminator on real and (detached) fake ab, then the generator on fooling it plus the
reconstruction loss. At inference it is just its generator.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from chromatize import color
from chromatize.models.base import MODELS, ColorizationModel, create_model


class PatchDiscriminator(nn.Module):
    """PatchGAN critic: ``(B, 3, H, W)`` normalised (L, a, b) -> ``(B, 1, H/8-2, W/8-2)``
    real/fake logits, one per 70x70 receptive field (with ``layers=3``)."""

    def __init__(self, channels: int = 64, layers: int = 3) -> None:
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(3, channels, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = channels
        for i in range(1, layers + 1):
            c_out = channels * min(2**i, 8)
            stride = 2 if i < layers else 1
            seq += [nn.Conv2d(c, c_out, 4, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                    nn.LeakyReLU(0.2, True)]
            c = c_out
        seq.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*seq)

    def forward(self, l: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """l: ``(B, 1, h, w)`` in [0, 100]; ab: ``(B, 2, h, w)`` in Lab units."""
        return self.net(torch.cat([color.normalize_l(l), color.normalize_ab(ab)], dim=1))


def gan_loss(logits: torch.Tensor, real: bool, mode: str) -> torch.Tensor:
    """LSGAN (least squares) or vanilla (binary cross-entropy) adversarial loss."""
    target = torch.full_like(logits, 1.0 if real else 0.0)
    if mode == "lsgan":
        return F.mse_loss(logits, target)
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(logits, target)
    raise ValueError(f"gan_mode must be 'lsgan' or 'vanilla', got {mode!r}")


class Pix2Pix(ColorizationModel):
    """Generator ``generator`` (a registered model name) + PatchGAN critic.

    forward: L ``(B, 1, H, W)`` in [0, 100] -> the generator's dict (``ab`` etc.).
    """

    def __init__(self, generator: str = "unet_small", generator_kwargs: dict[str, Any] | None = None,
                 gan_mode: str = "lsgan", lambda_l1: float = 100.0, d_channels: int = 64,
                 d_layers: int = 3) -> None:
        super().__init__()
        gan_loss(torch.zeros(1), True, gan_mode)  # validate the mode now, not mid-training
        self.generator = create_model(generator, **(generator_kwargs or {}))
        self.discriminator = PatchDiscriminator(d_channels, d_layers)
        self.gan_mode = gan_mode
        self.lambda_l1 = lambda_l1
        self.size_multiple = self.generator.size_multiple
        self.ab_stride = self.generator.ab_stride

    def forward(self, l: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.generator(l)

    # Delegation so freezing, pretrained encoders and sampling see the generator's parts.
    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name in ("encoder", "head", "load_pretrained_encoder"):
                return getattr(self.generator, name)
            raise

    def configure_optimizers(self, lr: float, betas: tuple[float, float] = (0.5, 0.999),
                             ) -> list[torch.optim.Optimizer]:
        """[generator optimizer, discriminator optimizer] (Adam, pix2pix's betas). All the
        generator's parameters are registered, frozen ones too: Adam skips those without
        gradients, so an encoder unfrozen later starts training."""
        return [torch.optim.Adam(self.generator.parameters(), lr=lr, betas=betas),
                torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas)]

    def train_step(self, l: torch.Tensor, ab: torch.Tensor, loss_fn: nn.Module,
                   optimizers: list[torch.optim.Optimizer]) -> dict[str, float]:
        """One pix2pix update. l: ``(B, 1, H, W)``; ab: ``(B, 2, H, W)`` Lab units;
        ``loss_fn(out, ab)`` is the reconstruction loss (L1 in pix2pix)."""
        opt_g, opt_d = optimizers
        out = self.generator(l)
        fake = out["ab"]
        l_small = F.adaptive_avg_pool2d(l, fake.shape[-2:])
        real = F.adaptive_avg_pool2d(ab, fake.shape[-2:])

        self.discriminator.requires_grad_(True)
        loss_d = 0.5 * (gan_loss(self.discriminator(l_small, real), True, self.gan_mode)
                        + gan_loss(self.discriminator(l_small, fake.detach()), False, self.gan_mode))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

        self.discriminator.requires_grad_(False)
        loss_adv = gan_loss(self.discriminator(l_small, fake), True, self.gan_mode)
        loss_rec = loss_fn(out, ab)
        loss_g = loss_adv + self.lambda_l1 * loss_rec
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        self.discriminator.requires_grad_(True)
        return {"loss": loss_rec.item(), "loss_g_adv": loss_adv.item(), "loss_d": loss_d.item()}


@MODELS.register("pix2pix")
def pix2pix(**kw: Any) -> Pix2Pix:
    """pix2pix with a configurable generator (default ``unet_small``)."""
    return Pix2Pix(**kw)
