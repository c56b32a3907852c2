"""How a classification model's colour distribution becomes colours: one frozen value.

A :class:`Decoding` is passed down the one path through the
:class:`~chromatize.inference.pipeline.Colorizer` on every call; nothing writes decoding
state onto a model. Its fields left at ``None`` take the checkpoint's own settings
(:meth:`Decoding.resolved`). Every face (CLI, Python API, video, Ray, the server and the
page, which reads :data:`LIMITS` from ``/api/health``) checks a user's numbers here, once,
with one set of limits. A leaf module: no torch, no model.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from chromatize.errors import UsageError

if TYPE_CHECKING:
    from chromatize.priors import ImagePrior

#: Inclusive ranges of every number a user gives for decoding (``gain`` and
#: ``temperature`` exclude 0). ``boost`` reweights the distribution by class weight **
#: boost: beyond 3 only the rarest colours are left. ``samples``: each coloring is a
#: full-size photo held in memory until written (about 10 MB at 3 megapixels), so 64 stay
#: under a gigabyte. ``seed``: numpy's and torch's generators take 64-bit seeds.
LIMITS: dict[str, tuple[float, float]] = {
    "boost": (0.0, 3.0),
    "gain": (0.0, 3.0),
    "temperature": (0.0, 5.0),
    "samples": (1, 64),
    "seed": (0, 2**63 - 1),
    "strength": (0.0, 3.0),
    "variants": (1, 16),
}
_EXCLUSIVE_LOW = {"gain", "temperature"}
_INTEGERS = {"samples", "seed", "variants"}
#: Decoding strategies a classification head knows: the names of
#: :data:`chromatize.decoder.DECODERS` (:func:`chromatize.decoder.register_strategy` adds
#: one to both).
STRATEGIES: list[str] = ["annealed_mean"]


def check_number(name: str, value: Any,
                 limits: Mapping[str, tuple[float, float]] = LIMITS) -> float | int:
    """``value`` checked against ``limits[name]`` (:data:`LIMITS` by default; marks have
    their own, :data:`chromatize.inference.hints.MARK_LIMITS`); returns it as a float (an
    int for whole-number settings). Raises :class:`UsageError` with one line otherwise,
    whatever the value (an integer of 5,000 digits, NaN, a string)."""
    lo, hi = limits[name]
    if name in _INTEGERS:
        ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if not ok or not lo <= int(value) <= hi:
            raise UsageError(f"{name} must be a whole number from {int(lo)} to {int(hi)}, "
                             f"got {shown(value)}")
        return int(value)
    number = real(value)
    ok = number is not None and lo <= number <= hi
    ok = ok and not (name in _EXCLUSIVE_LOW and number == lo)
    if not ok:
        span = (f"above {lo:g} and at most {hi:g}" if name in _EXCLUSIVE_LOW
                else f"from {lo:g} to {hi:g}")
        raise UsageError(f"{name} must be a number {span}, got {shown(value)}")
    return float(value)


def real(value: Any) -> float | None:
    """``value`` as a finite float, or None for anything else: not a real number, a bool,
    NaN, an infinity, or an integer too large for a float (``float(10**400)`` raises)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (OverflowError, ValueError):
        return None
    return number if math.isfinite(number) else None


def shown(value: Any) -> str:
    """A user's value for an error line, cut so a 5,000-digit number stays one line (and
    never written out in full: Python refuses to print integers above 4,300 digits)."""
    if isinstance(value, numbers.Integral) and abs(int(value)).bit_length() > 128:
        digits = int(abs(int(value)).bit_length() * math.log10(2)) + 1
        return f"an integer of about {digits} digits"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class Decoding:
    """Decoding settings for one call. ``None`` means the checkpoint's own setting.

    boost: reweight the distribution towards rare, saturated colours (0 = off, at most 3);
    gain: multiply the decoded a*b* (1 = as trained, above 0 and at most 3);
    temperature: of the annealed mean (0.38 = Zhang et al.'s; towards 0 the mode);
    samples: give this many plausible colorings instead of one (1 to 64);
    seed: for ``samples`` and for variants (0 to 2**63 - 1; None = 0);
    prior: an image-level colour prior (:class:`~chromatize.priors.ImagePrior`): which
    colours this photo has, from a reference photo, a palette or a version;
    strategy: how a distribution becomes one colour (``annealed_mean``).
    """

    boost: float | None = None
    gain: float | None = None
    temperature: float | None = None
    samples: int | None = None
    seed: int | None = None
    prior: ImagePrior | None = None
    strategy: str = "annealed_mean"

    def __post_init__(self) -> None:
        for name in ("boost", "gain", "temperature", "samples", "seed"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, check_number(name, value))
        if self.strategy not in STRATEGIES:
            raise UsageError(f"decoding strategy must be one of {', '.join(STRATEGIES)}, "
                             f"got {shown(self.strategy)}")

    @property
    def changes_distribution(self) -> bool:
        """Whether this decoding needs the model's distribution, not its own decoded ab."""
        return any(getattr(self, f.name) is not None
                   for f in fields(self) if f.name != "strategy")

    def resolved(self, defaults: dict[str, float]) -> Decoding:
        """This decoding with ``boost``, ``gain`` and ``temperature`` left at None taken
        from ``defaults`` (a checkpoint's, e.g. ``{"boost": 0.2, "gain": 1.0,
        "temperature": 0.38}``)."""
        fill = {k: float(v) for k, v in defaults.items()
                if k in ("boost", "gain", "temperature") and getattr(self, k) is None}
        if not fill:
            return self
        out = copy.copy(self)  # a checkpoint's own settings are not a user's to check
        for k, v in fill.items():
            object.__setattr__(out, k, v)
        return out

    def with_(self, **changes: Any) -> Decoding:
        """A copy with ``changes`` (checked like the constructor's arguments)."""
        return replace(self, **changes)


#: What each decoding setting needs of a model that has no colour distribution to decode
#: (a regression head predicts ab directly).
_NEEDS_DISTRIBUTION = {
    "gain": "gain needs a classification model (it scales the decoded colour)",
    "samples": "this model gives a single coloring (regression head); sampling "
               "(--samples) needs a classification model",
    "boost": "boost needs a classification model (it reweights the colour distribution)",
    "prior": "a reference or palette needs a classification model (it reweights the "
             "colour distribution)",
    "temperature": "temperature needs a classification model",
}


def check_capabilities(decoding: Decoding, classification: bool) -> Decoding:
    """``decoding`` if a model with (or without) a ``classification`` head can decode
    with it, else :class:`UsageError`: the one place that knows what each kind of model
    can do. The :class:`~chromatize.inference.pipeline.Colorizer` asks it with its loaded
    model, the Ray driver with a checkpoint's recorded capabilities."""
    if not classification:
        for name, why in _NEEDS_DISTRIBUTION.items():
            if getattr(decoding, name) is not None:
                raise UsageError(why + ("" if name == "samples"
                                        else "; this model predicts ab directly"))
    return decoding


__all__ = ["LIMITS", "STRATEGIES", "Decoding", "check_capabilities", "check_number", "real",
           "shown"]
