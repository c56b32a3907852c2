"""The model contract shared by every colorization network.

A model takes raw L* ``(B, 1, H, W)`` in [0, 100] and returns a dict:

* ``"ab"``: ``(B, 2, H / s, W / s)`` a*b* in Lab units, where ``s = model.ab_stride``;
* ``"logits"``: ``(B, Q, H / s, W / s)`` for the classification family (``Q`` ab bins).

``H`` and ``W`` must be multiples of ``model.size_multiple``. Normalisation of L and ab
happens inside the model through :mod:`chromatize.color`, never in the caller.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from chromatize.models.heads import ClassificationHead
from chromatize.registry import Registry

MODELS = Registry("model")


class ColorizationModel(nn.Module):
    """The contract every model offers; subclasses set ``size_multiple`` and ``ab_stride``,
    implement :meth:`forward` and override what they can do beyond it. Nothing outside
    ``models/`` probes a model with ``getattr``: it asks these.

    Capabilities:

    * :meth:`classification_head`: the head whose distribution the pipeline decodes
      (boost, gain, image-level priors, samples, suggestions), or None;
    * ``hints``: whether ``forward`` takes user hints (``hint_ab``, ``hint_mask``);
      ``hints_enter_encoder``: whether they enter the encoder (then features cannot be
      cached);
    * ``global_hint``: whether ``forward`` takes an image-level colour histogram
      (``global_hint`` ``(B, Q)``, :mod:`chromatize.models.global_hints`).

    The encoder/decoder split that feature caching and frozen prefixes use (models with
    ``has_encoder`` True): :meth:`encode`, :meth:`decode`, :meth:`encode_rest`,
    :meth:`encoder_prefix`, ``splits`` (first trainable block -> how many of ``encode``'s
    maps it leaves frozen) and :meth:`load_pretrained_encoder`.

    What training calls, when a model wants more than "forward, then the loss on ab":
    :meth:`configure_optimizers`, :meth:`train_step` (``owns_updates`` True: the model
    orders its own updates, as a GAN does), :meth:`cached_train_step`,
    :meth:`cached_hint`; ``added_inputs``: name prefixes of parameters a checkpoint of the
    base model lacks (zero-initialised inputs).
    """

    size_multiple: int = 32
    ab_stride: int = 1
    hints: bool = False
    hints_enter_encoder: bool = True
    global_hint: bool = False
    has_encoder: bool = False
    owns_updates: bool = False
    splits: dict[int, int] = {}
    added_inputs: tuple[str, ...] = ()

    def forward(self, l: torch.Tensor) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def check_input(self, l: torch.Tensor) -> None:
        if l.dim() != 4 or l.shape[1] != 1:
            raise ValueError(f"expected L shaped (B, 1, H, W), got {tuple(l.shape)}")
        h, w = l.shape[-2:]
        m = self.size_multiple
        if h % m or w % m:
            raise ValueError(f"input sides must be multiples of {m}, got {h}x{w}")

    # ------------------------------------------------------------------ capabilities

    def classification_head(self) -> ClassificationHead | None:
        """The classification head (a distribution over ab bins), or None."""
        head = self._modules.get("head")
        return head if isinstance(head, ClassificationHead) else None

    def capabilities(self) -> dict[str, bool]:
        """What a checkpoint's metadata records, so that options can be checked without
        loading the weights: ``classification``, ``hints`` and ``global_hint``."""
        return {"classification": self.classification_head() is not None,
                "hints": bool(self.hints), "global_hint": bool(self.global_hint)}

    @property
    def caches_features(self) -> bool:
        """Whether training can run from cached encoder features: an encoder/decoder
        split, and no user hints entering the encoder (hints only the decoder reads are
        simulated from the cached targets by :meth:`cached_hint`)."""
        return self.has_encoder and not (self.hints and self.hints_enter_encoder)

    # ------------------------------------------------------------------ encoder split

    def encode(self, l: torch.Tensor) -> list[torch.Tensor]:
        """L* ``(B, 1, H, W)`` -> the encoder's feature maps, shallow to deep."""
        raise NotImplementedError(f"{type(self).__name__} has no encoder/decoder split")

    def decode(self, feats: list[torch.Tensor], hint: torch.Tensor | None = None,
               ) -> dict[str, torch.Tensor]:
        """The encoder's maps (and a decoder hint) -> the outputs of :meth:`forward`."""
        raise NotImplementedError(f"{type(self).__name__} has no encoder/decoder split")

    def encode_rest(self, maps: list[torch.Tensor], frozen_blocks: int) -> list[torch.Tensor]:
        """The frozen prefix's maps -> all of :meth:`encode`'s maps."""
        raise NotImplementedError(f"{type(self).__name__} has no encoder/decoder split")

    def encoder_prefix(self, frozen_blocks: int) -> list[nn.Module]:
        """The modules of the first ``frozen_blocks`` encoder blocks."""
        raise NotImplementedError(f"{type(self).__name__} has no encoder/decoder split")

    def encoder_module(self) -> nn.Module | None:
        """The encoder (for freezing and its learning rate), or None."""
        return None

    def load_pretrained_encoder(self) -> None:
        """Copy pretrained weights into the encoder."""
        raise NotImplementedError(f"{type(self).__name__} has no pretrained encoder")

    # ------------------------------------------------------------------ training hooks

    def configure_optimizers(self, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                             ) -> list[torch.optim.Optimizer] | None:
        """Optimizers of their own (a GAN's two, adapters only), or None: the trainer's."""
        return None

    def train_step(self, l: torch.Tensor, ab: torch.Tensor, loss_fn: nn.Module,
                   optimizers: list[torch.optim.Optimizer]) -> dict[str, float] | None:
        """One update of the model's own (a GAN's order of updates), or None: the
        trainer's forward, loss and step."""
        return None

    def cached_train_step(self, feats: list[torch.Tensor], ab: torch.Tensor,
                          loss_fn: nn.Module, optimizers: list[torch.optim.Optimizer],
                          ) -> dict[str, float] | None:
        """:meth:`train_step` from cached encoder features, or None: the trainer's."""
        return None

    def cached_hint(self, ab: torch.Tensor) -> torch.Tensor | None:
        """Simulated user hints for the decoder from a cached target ab, or None."""
        return None


def optimize(loss: torch.Tensor, optimizers: list[torch.optim.Optimizer]) -> None:
    """One update: clear every optimizer's gradients, backpropagate ``loss`` (a scalar),
    then step them all."""
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)
    loss.backward()
    for opt in optimizers:
        opt.step()


def create_model(name: str, **kwargs: Any) -> ColorizationModel:
    """Build the registered model ``name`` with ``kwargs`` (unknown kwargs raise TypeError)."""
    return MODELS.create(name, **kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
