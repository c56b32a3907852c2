"""Conditional GAN (pix2pix, Isola et al. 2017): any registered colorization model as
the generator, a PatchGAN discriminator that sees L and ab, and GAN loss + lambda * L1.

The model owns the order of its updates (:meth:`Pix2Pix.train_step`): first the
discriminator on real and (detached) fake ab, then the generator on fooling it plus the
reconstruction loss. At inference it is just its generator.

:class:`CriticFinetune` is the short GAN fine-tune of issue 10's ablation: the shipped
classifier's decoder, trained from cached encoder features with a critic beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from chromatize import color
from chromatize.models.base import MODELS, ColorizationModel, create_model
from chromatize.models.heads import ClassificationHead
from chromatize.models.efficientnet import EffNetColorizer


class PatchDiscriminator(nn.Module):
    """PatchGAN critic: ``(B, 3, H, W)`` normalised (L, a, b) -> ``(B, 1, H/8-2, W/8-2)``
    real/fake logits, one per 70x70 receptive field (with ``layers=3``). ``self.net`` takes
    any ``(B, in_channels, H, W)`` input, for critics conditioned on other maps than L."""

    def __init__(self, channels: int = 64, layers: int = 3, in_channels: int = 3) -> None:
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(in_channels, channels, 4, 2, 1), nn.LeakyReLU(0.2, True)]
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


def adversarial_update(critic: nn.Module, score: Callable[[torch.Tensor], torch.Tensor],
                       real: torch.Tensor, fake: torch.Tensor, rec_loss: Callable[[], torch.Tensor],
                       lambda_rec: float, gan_mode: str,
                       optimizers: list[torch.optim.Optimizer]) -> dict[str, float]:
    """One GAN update: the critic on ``real`` and (detached) ``fake`` ab, then the
    generator on ``gan_loss(score(fake), real) + lambda_rec * rec_loss()``.
    ``score(ab)`` gives the critic's logits for ab ``(B, 2, h, w)`` in Lab units;
    ``optimizers`` are [generator's, critic's]."""
    opt_g, opt_d = optimizers
    critic.requires_grad_(True)
    loss_d = 0.5 * (gan_loss(score(real).float(), True, gan_mode)
                    + gan_loss(score(fake.detach()).float(), False, gan_mode))
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    critic.requires_grad_(False)
    loss_adv = gan_loss(score(fake).float(), True, gan_mode)
    loss_rec = rec_loss()
    opt_g.zero_grad(set_to_none=True)
    (loss_adv + lambda_rec * loss_rec).backward()
    opt_g.step()
    critic.requires_grad_(True)
    return {"loss": loss_rec.item(), "loss_g_adv": loss_adv.item(), "loss_d": loss_d.item()}


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

    owns_updates = True

    # The generator's parts, so that freezing, pretrained encoders and decoding see them.
    @property
    def has_encoder(self) -> bool:  # type: ignore[override]
        return self.generator.has_encoder

    def encoder_module(self) -> nn.Module | None:
        return self.generator.encoder_module()

    def classification_head(self) -> ClassificationHead | None:
        return self.generator.classification_head()

    def load_pretrained_encoder(self) -> None:
        self.generator.load_pretrained_encoder()

    @property
    def caches_features(self) -> bool:  # type: ignore[override]
        return False  # the critic sees the generator's full-resolution output

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
        out = self.generator(l)
        fake = out["ab"]
        l_small = F.adaptive_avg_pool2d(l, fake.shape[-2:])
        real = F.adaptive_avg_pool2d(ab, fake.shape[-2:])
        return adversarial_update(self.discriminator, lambda x: self.discriminator(l_small, x), real,
                                  fake, lambda: loss_fn(out, ab), self.lambda_l1, self.gan_mode,
                                  optimizers)


@MODELS.register("pix2pix")
def pix2pix(**kw: Any) -> Pix2Pix:
    """pix2pix with a configurable generator (default ``unet_small``)."""
    return Pix2Pix(**kw)


class CriticFinetune(EffNetColorizer):
    """A classification :class:`EffNetColorizer` (start it from a trained one with
    ``model.init``) plus a PatchGAN critic for a short adversarial fine-tune of its
    decoder from cached encoder features (``data.feature_cache``, encoder frozen).

    The critic sees the decoded chroma at the model's stride 4, ``(B, 2, H/4, W/4)``
    normalised, beside the encoder's stride-4 map ``(B, 24, H/4, W/4)`` (Lite0), which
    stands in for L: the cache holds no L, and the map tells the critic what is where.
    The generator's loss is ``adv + lambda_rec * loss_fn`` (the recipe's cross-entropy),
    its adversarial part on the annealed-mean ab, boost included: what users see. At
    inference the critic is unused (forward is :class:`EffNetColorizer`'s).
    """

    added_inputs = ("critic.",)
    own_kwargs = ("gan_mode", "lambda_rec", "d_channels", "d_layers")  # not the colorizer's

    def __init__(self, gan_mode: str = "lsgan", lambda_rec: float = 10.0, d_channels: int = 64,
                 d_layers: int = 2, **kw: Any) -> None:
        super().__init__(**{"head": "classification", **kw})
        gan_loss(torch.zeros(1), True, gan_mode)  # validate the mode now, not mid-training
        if self.hints:
            raise ValueError("the critic fine-tune has no hint input")
        self.gan_mode, self.lambda_rec = gan_mode, lambda_rec
        self.critic = PatchDiscriminator(d_channels, d_layers, self.variant.tap_channels[1] + 2)

    def score(self, f4: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        """Critic logits for ab ``(B, 2, h, w)`` (Lab units) beside the stride-4 map ``f4``."""
        return self.critic.net(torch.cat([f4, color.normalize_ab(ab).to(f4.dtype)], dim=1))

    def configure_optimizers(self, lr: float, betas: tuple[float, float] = (0.5, 0.999),
                             ) -> list[torch.optim.Optimizer]:
        """[the colorizer's Adam, the critic's Adam]; frozen parameters get no updates."""
        critic = {id(p) for p in self.critic.parameters()}
        own = [p for p in self.parameters() if id(p) not in critic]
        return [torch.optim.Adam(own, lr=lr, betas=betas),
                torch.optim.Adam(self.critic.parameters(), lr=lr, betas=betas)]

    def cached_train_step(self, feats: list[torch.Tensor], ab: torch.Tensor, loss_fn: nn.Module,
                          optimizers: list[torch.optim.Optimizer]) -> dict[str, float]:
        """One update from cached maps ``feats`` (f4..f32) and targets ``ab``
        ``(B, 2, h, w)`` at the chroma stride: the critic on real and (detached) decoded
        ab, then the decoder on fooling it plus ``lambda_rec`` x the recipe's loss."""
        out = self.decode(feats)
        f4 = feats[0].detach()
        return adversarial_update(self.critic, lambda x: self.score(f4, x), ab, out["ab"],
                                  lambda: loss_fn(out, ab), self.lambda_rec, self.gan_mode, optimizers)


@MODELS.register("effnet_lite0_cls_gan")
def effnet_lite0_cls_gan(**kw: Any) -> CriticFinetune:
    """The classifier with a critic for a short GAN fine-tune; see :class:`CriticFinetune`."""
    return CriticFinetune(**kw)
