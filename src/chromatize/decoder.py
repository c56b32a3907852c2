"""The decoding maths of the classification family, on numpy arrays and torch tensors alike.

A classification model gives logits ``(B, Q, h, w)`` over the Q quantised ab bins
(:func:`chromatize.color.ab_bins`); a :class:`~chromatize.decoding.Decoding` says how they
become a*b*: its ``boost`` and image-level ``prior`` offset the logits
(:meth:`BinDecoder.decoding_logits`), a strategy decodes them (:data:`DECODERS`: the
annealed mean of Zhang et al. 2016), its ``gain`` scales the result.

:class:`BinDecoder` is written once for both runtimes: the PyTorch
:class:`~chromatize.models.heads.ClassificationHead` (tensor buffers) and
:class:`HeadTables`, the same statistics as numpy arrays read from an ONNX graph's
metadata, so that ONNX Runtime decodes without torch. Logits of either kind give ab of
that kind, by the same formulas (as in :mod:`chromatize.color`). A leaf module: torch is
imported only for tensors and for :func:`sample_ab`'s noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, Union

import numpy as np

import chromatize.priors as priors
from chromatize.decoding import STRATEGIES, Decoding
from chromatize.registry import Registry

if TYPE_CHECKING:
    import torch

Array = Union[np.ndarray, "torch.Tensor"]


def as_numpy(x: Array) -> np.ndarray:
    """A numpy array or a tensor (on any device) as a numpy array."""
    return x if isinstance(x, np.ndarray) else x.detach().cpu().numpy()


def _like(table: Array, x: Array) -> Array:
    """A head's table (``bins``, ``class_weights``; numpy or a tensor) as ``x``'s kind:
    a float32 array for numpy, a tensor on ``x``'s device for torch."""
    if isinstance(x, np.ndarray):
        return np.asarray(as_numpy(table), np.float32)
    import torch

    return torch.as_tensor(table).to(x.device)


def _gained(ab: Array, gain: float | None) -> Array:
    return ab * gain if gain is not None and gain != 1 else ab


#: How a distribution over the bins becomes one colour per pixel: ``fn(logits (B, Q, h, w),
#: bins (Q, 2), temperature) -> ab (B, 2, h, w)``, for numpy arrays and tensors. A new
#: strategy (say, the colour of least expected CIEDE2000, ``scripts/tune_decoding.py``) is
#: one function decorated with :func:`register_strategy`.
DECODERS = Registry("decoding strategy")
F = TypeVar("F", bound=Callable[..., Any])


def register_strategy(name: str) -> Callable[[F], F]:
    """Decorator: decode with ``fn`` when a :class:`~chromatize.decoding.Decoding` names
    ``name`` as its strategy."""
    def deco(fn: F) -> F:
        DECODERS.register(name)(fn)
        STRATEGIES.append(name)
        return fn

    return deco


@DECODERS.register("annealed_mean")  # decoding.STRATEGIES names it already
def decode_ab(logits: Array, bins: Array, temperature: float = 0.38) -> Array:
    """Logits ``(B, Q, h, w)`` over ``bins`` ``(Q, 2)`` -> ab ``(B, 2, h, w)`` in Lab units,
    of the logits' kind (numpy: float32; bins may be of either kind).

    ``temperature`` 1 gives the mean of the distribution, values towards 0 its mode (0
    itself takes the arg-max bin); Zhang et al.'s annealed mean uses 0.38.
    """
    bins = _like(bins, logits)
    if isinstance(logits, np.ndarray):
        if temperature <= 0:
            return bins[logits.argmax(1)].transpose(0, 3, 1, 2)
        z = np.divide(logits, np.float32(temperature), dtype=np.float32)
        z -= z.max(1, keepdims=True)
        np.exp(z, out=z)
        # The bins' mean weighted by exp(z), normalised after the sum over the bins (a
        # pass less than softmax first). einsum, not matmul: for this small product
        # OpenBLAS's threads cost 50 times the arithmetic (6 ms of CPU a frame).
        return np.einsum("bqhw,qc->bchw", z, bins) / z.sum(1, keepdims=True)
    import torch
    import torch.nn.functional as F

    if temperature <= 0:
        idx = logits.argmax(dim=1)  # (B, h, w)
        return bins[idx].permute(0, 3, 1, 2)
    p = F.softmax(logits / temperature, dim=1)
    return torch.einsum("bqhw,qc->bchw", p, bins)


def sample_ab(logits: Array, bins: Array, samples: int, seed: int,
              temperature: float = 0.38, scale: float = 1.0, cell: int = 8) -> Array:
    """Several plausible colorings from logits ``(1, Q, h, w)``: ``(samples, 2, h, w)``,
    of the logits' kind.

    Each sample perturbs the logits with Gumbel noise and decodes the annealed mean.
    Independent noise per pixel would give salt-and-pepper colours, so the noise is drawn
    on a coarse grid (one value per ``cell`` x ``cell`` pixels and bin) and upsampled
    bilinearly: neighbouring pixels make the same choice and each sample colours whole
    regions consistently, differently from the others. ``scale`` sets the diversity.
    The noise comes from torch's generator seeded with ``seed`` for both kinds, so a seed
    gives the same colorings in PyTorch and in ONNX Runtime.
    """
    import torch
    import torch.nn.functional as F

    _, q, h, w = logits.shape
    gh, gw = max(1, -(-h // cell)), max(1, -(-w // cell))
    generator = torch.Generator().manual_seed(seed)
    u = torch.rand((samples, q, gh, gw), generator=generator).clamp_(1e-6, 1 - 1e-6)
    gumbel = -torch.log(-torch.log(u))
    if not isinstance(logits, np.ndarray):
        gumbel = gumbel.to(logits)
    noise = F.interpolate(gumbel, size=(h, w), mode="bilinear", align_corners=False)
    if isinstance(logits, np.ndarray):
        noise = noise.numpy()
    return decode_ab(logits + scale * noise, bins, temperature)


class BinDecoder:
    """What decodes a classification model's logits: its tables and default settings.

    ``bins`` ``(Q, 2)`` ab bin centres, ``prior`` ``(Q,)`` the training set's ab
    distribution, ``class_weights`` ``(Q,)`` the rebalancing weights (numpy arrays or
    tensors); ``temperature``, ``boost`` and ``gain``: the checkpoint's decoding, which a
    :class:`~chromatize.decoding.Decoding` left at None takes. ``boost`` reweights the
    distribution to ``p * class_weights ** boost``, lifting rare, saturated colours that
    an unweighted loss learns to avoid (0 = off); ``gain`` scales the decoded ab (a
    saturation gain that keeps every hue; 1 = off).
    """

    bins: Array
    prior: Array
    class_weights: Array
    temperature: float
    boost: float
    gain: float

    def defaults(self) -> dict[str, float]:
        """The checkpoint's decoding settings: ``boost``, ``gain`` and ``temperature``."""
        return {"boost": float(self.boost), "gain": float(self.gain),
                "temperature": float(self.temperature)}

    def feature_basis(self) -> np.ndarray | None:
        """``(D, Q)`` float32: what recovers the head's input features ``(D,)`` from its
        logits ``(Q,)`` (less their bias), so that a reference's cells can be matched to
        a photo's (:func:`chromatize.priors.local_offset`); None when unknown."""
        return None

    def tables(self) -> dict[str, Any]:
        """The settings and tables as JSON values (what an ONNX export keeps beside its
        graph; :meth:`HeadTables.from_meta` reads them back)."""
        basis = self.feature_basis()
        return {**self.defaults(),
                **{k: getattr(self, k).tolist() for k in ("bins", "prior", "class_weights")},
                **({} if basis is None else {"feature_basis": basis.tolist()})}

    def decoding_logits(self, logits: Array, decoding: Decoding | None = None) -> Array:
        """Logits ``(B, Q, h, w)`` reweighted as ``decoding`` says (the checkpoint's boost
        when it says nothing): ``+ boost * log(class_weights)`` and, with an image-level
        prior, ``+ strength * log(h / prior)`` (:func:`chromatize.priors.logit_offset`).
        Tensor logits may be on another device than the tables."""
        d = (decoding or Decoding()).resolved(self.defaults())
        if d.boost:
            weights = _like(self.class_weights, logits)
            logits = logits + d.boost * (np.log(weights) if isinstance(weights, np.ndarray)
                                         else weights.log())[None, :, None, None]
        if d.prior is not None and d.prior.strength:
            prior = as_numpy(self.prior)
            basis = self.feature_basis() if d.prior.exemplar is not None else None
            if basis is None:  # the histogram alone, the same for every cell
                offset = priors.logit_offset(d.prior, prior)[None, :, None, None]
            else:  # each cell the colours of the reference cells most like it
                offset = np.stack([priors.local_offset(z, d.prior, basis, prior)
                                   for z in as_numpy(logits)])
            offset = _like(offset, logits)
            logits = logits + (offset.astype(logits.dtype) if isinstance(offset, np.ndarray)
                               else offset.to(logits))
        return logits

    def decode(self, logits: Array, decoding: Decoding | None = None) -> Array:
        """Logits ``(B, Q, h, w)`` -> ab ``(B, 2, h, w)`` in Lab units, decoded by
        ``decoding`` (its strategy, temperature, boost, prior and gain; the checkpoint's
        settings where it gives none)."""
        d = (decoding or Decoding()).resolved(self.defaults())
        ab = DECODERS.get(d.strategy)(self.decoding_logits(logits, d), self.bins,
                                      d.temperature)
        return _gained(ab, d.gain)

    def sample(self, logits: Array, samples: int, seed: int = 0,
               decoding: Decoding | None = None) -> Array:
        """``samples`` plausible colorings ``(samples, 2, h, w)`` of logits ``(1, Q, h, w)``
        (:func:`sample_ab`), reweighted and gained as :meth:`decode` does."""
        d = (decoding or Decoding()).resolved(self.defaults())
        ab = sample_ab(self.decoding_logits(logits, d), self.bins, samples, seed,
                       d.temperature)
        return _gained(ab, d.gain)


@dataclass(frozen=True, eq=False)
class HeadTables(BinDecoder):
    """A classification head's decoding without the head: its tables as numpy arrays
    (float32) and its settings, as an ONNX export keeps them (:meth:`BinDecoder.tables`)."""

    bins: np.ndarray
    prior: np.ndarray
    class_weights: np.ndarray
    temperature: float = 0.38
    boost: float = 0.0
    gain: float = 1.0
    basis: np.ndarray | None = None

    def feature_basis(self) -> np.ndarray | None:
        return self.basis

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> HeadTables:
        """Read :meth:`BinDecoder.tables`'s JSON values back. Raises KeyError, TypeError
        or ValueError for a malformed entry."""
        tables = {k: np.asarray(meta[k], np.float32) for k in ("bins", "prior", "class_weights")}
        q = len(tables["bins"])
        if tables["bins"].shape != (q, 2) or any(tables[k].shape != (q,)
                                                  for k in ("prior", "class_weights")):
            raise ValueError("the head's bins, prior and class weights do not match")
        basis = meta.get("feature_basis")  # graphs exported before it: the histogram only
        if basis is not None:
            basis = np.asarray(basis, np.float32)
            if basis.ndim != 2 or basis.shape[1] != q:
                raise ValueError("the head's feature basis does not match its bins")
        return cls(**tables, temperature=float(meta["temperature"]),
                   boost=float(meta["boost"]), gain=float(meta.get("gain", 1.0)), basis=basis)


__all__ = ["DECODERS", "Array", "BinDecoder", "as_numpy", "HeadTables", "decode_ab", "register_strategy",
           "sample_ab"]
