"""Synthetic damage of old prints, drawn over clean gray photos: the training and test
data of the repair models (:mod:`chromatize.restore`).

An old print's damage comes in two kinds, which the detector reports apart so that each
can be switched on its own (``--restore cracks`` / ``dust``):

* **lines** (channel 0): cracks in the emulsion (random walks that turn and branch),
  scratches (long, nearly straight) and hairs (smooth curves), 1 to 3 px wide;
* **specks** (channel 1): dust, spots and small tears, discs and blobs of 1 to 12 px.

Each mark is either bright (missing emulsion shows the paper) or dark (dirt, a hair),
drawn with anti-aliased edges and an opacity. Grain (correlated noise) and fading (a
compressed tone range) may be laid over the whole photo. Every count scales with the
photo's area (the rates are per 256 x 256 px) and with ``strength``, so a seed and a
:class:`DamageConfig` give the same damage on the same photo at any size.

The ground-truth masks mark the pixels whose damage is *visible*: drawn (alpha above
``mask_alpha``) and moved by more than ``mask_delta`` from the clean value; a bright
crack across white sky changes nothing there and is no target.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Counts are per this many pixels (256 x 256).
UNIT_AREA = 256 * 256
#: Sigma (px) of the Gaussian that correlates the grain's noise.
GRAIN_BLUR = 0.5
#: cv2 drawing works in fixed point with this many fractional bits (sub-pixel lines).
_SHIFT = 4


@dataclass(frozen=True)
class DamageConfig:
    """What :func:`draw_damage` draws. Ranges are ``[lo, hi]``, drawn uniformly per photo;
    counts are per 256 x 256 px before ``strength`` multiplies them."""

    strength: float = 1.0
    cracks: tuple[float, float] = (0.0, 3.0)
    crack_steps: tuple[int, int] = (8, 60)
    scratches: tuple[float, float] = (0.0, 1.0)
    hairs: tuple[float, float] = (0.0, 0.5)
    line_width: tuple[float, float] = (1.0, 3.0)
    dust: tuple[float, float] = (0.0, 25.0)
    dust_radius: tuple[float, float] = (0.6, 3.0)
    blotches: tuple[float, float] = (0.0, 0.4)
    blotch_radius: tuple[float, float] = (4.0, 12.0)
    bright_share: float = 0.7  # chance that a mark is bright rather than dark
    opacity: tuple[float, float] = (0.6, 1.0)
    grain: tuple[float, float] = (0.0, 0.0)  # noise sigma, 0..1 gray units
    fade: tuple[float, float] = (0.0, 0.0)  # share of the tone range lost
    mask_alpha: float = 0.25
    mask_delta: float = 0.04

    @classmethod
    def from_dict(cls, data: dict) -> DamageConfig:
        """A config from a mapping (YAML): lists become ranges, unknown keys fail."""
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise KeyError(f"unknown damage key {unknown[0]!r}; known: "
                           + ", ".join(sorted(cls.__dataclass_fields__)))
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass
class Damaged:
    """A damaged photo: ``image`` ``(H, W)`` float32 in [0, 1] and the visible damage,
    ``mask`` ``(2, H, W)`` bool (lines, specks)."""

    image: np.ndarray
    mask: np.ndarray


def _count(rng: np.random.Generator, rate: tuple[float, float], scale: float) -> int:
    return int(rng.poisson(rng.uniform(*rate) * scale))


def _points(xy: np.ndarray) -> np.ndarray:
    return np.round(xy * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)


def _crack(rng: np.random.Generator, h: int, w: int, cfg: DamageConfig) -> list[np.ndarray]:
    """A crack: a random walk whose direction drifts, with a branch now and then."""
    paths = []
    start = rng.uniform((0, 0), (w, h))
    angle = rng.uniform(0, 2 * np.pi)
    for _ in range(1 + int(rng.random() < 0.4)):
        n = int(rng.integers(*cfg.crack_steps, endpoint=True))
        turns = np.cumsum(rng.normal(0, 0.35, n)) + angle
        steps = rng.uniform(2, 7, n)[:, None] * np.stack([np.cos(turns), np.sin(turns)], 1)
        path = start + np.concatenate([[[0, 0]], np.cumsum(steps, 0)])
        paths.append(path)
        start, angle = path[rng.integers(len(path))], angle + rng.choice([-1, 1]) * 0.9
    return paths


def _scratch(rng: np.random.Generator, h: int, w: int) -> list[np.ndarray]:
    """A scratch: a long, nearly straight line across much of the photo."""
    length = rng.uniform(0.3, 1.2) * max(h, w)
    angle = rng.uniform(0, np.pi) if rng.random() < 0.5 else np.pi / 2 + rng.normal(0, 0.05)
    t = np.linspace(0, 1, 12)[:, None]
    d = np.array([np.cos(angle), np.sin(angle)])
    bend = rng.normal(0, 0.01 * length) * np.sin(np.pi * t) * np.array([-d[1], d[0]])
    return [rng.uniform((0, 0), (w, h)) + (t - 0.5) * length * d + bend]


def _hair(rng: np.random.Generator, h: int, w: int) -> list[np.ndarray]:
    """A hair: a smooth curve (a quadratic Bezier) 20 to 120 px long."""
    p0 = rng.uniform((0, 0), (w, h))
    p1, p2 = p0 + rng.normal(0, 40, 2), p0 + rng.normal(0, 60, 2)
    t = np.linspace(0, 1, 24)[:, None]
    return [(1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2]


def _blob(rng: np.random.Generator, h: int, w: int, radius: float) -> np.ndarray:
    """An irregular closed outline around a random centre."""
    k = 12
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    r = radius * rng.uniform(0.6, 1.3, k)
    centre = rng.uniform((0, 0), (w, h))
    return centre + np.stack([r * np.cos(angles), r * np.sin(angles)], 1)


def _draw_marks(rng: np.random.Generator, h: int, w: int, cfg: DamageConfig,
                ) -> np.ndarray:
    """Alpha canvases ``(2 kinds, 2 shades, H, W)`` float32 in [0, 1]: kind 0 lines,
    1 specks; shade 0 bright, 1 dark."""
    canvas = np.zeros((2, 2, h, w), np.uint8)
    scale = cfg.strength * h * w / UNIT_AREA
    lines = ([_crack(rng, h, w, cfg) for _ in range(_count(rng, cfg.cracks, scale))]
             + [_scratch(rng, h, w) for _ in range(_count(rng, cfg.scratches, scale))]
             + [_hair(rng, h, w) for _ in range(_count(rng, cfg.hairs, scale))])
    for paths in lines:
        shade = int(rng.random() >= cfg.bright_share)
        width = max(1, int(round(rng.uniform(*cfg.line_width))))
        value = int(255 * rng.uniform(*cfg.opacity))
        cv2.polylines(canvas[0, shade], [_points(p) for p in paths], False, value,
                      thickness=width, lineType=cv2.LINE_AA, shift=_SHIFT)
    for _ in range(_count(rng, cfg.dust, scale)):
        shade = int(rng.random() >= cfg.bright_share)
        centre = _points(rng.uniform((0, 0), (w, h)))[0, 0]
        radius = int(rng.uniform(*cfg.dust_radius) * (1 << _SHIFT))
        cv2.circle(canvas[1, shade], tuple(int(c) for c in centre), radius,
                   int(255 * rng.uniform(*cfg.opacity)), -1, cv2.LINE_AA, _SHIFT)
    for _ in range(_count(rng, cfg.blotches, scale)):
        shade = int(rng.random() >= cfg.bright_share)
        outline = _blob(rng, h, w, rng.uniform(*cfg.blotch_radius))
        cv2.fillPoly(canvas[1, shade], [_points(outline)], int(255 * rng.uniform(*cfg.opacity)),
                     cv2.LINE_AA, _SHIFT)
    return canvas.astype(np.float32) / 255


def draw_damage(clean: np.ndarray, rng: np.random.Generator,
                cfg: DamageConfig = DamageConfig()) -> Damaged:
    """Damage a clean gray photo ``(H, W)`` float in [0, 1]: fade it, draw the marks,
    add grain. Returns the damaged photo and the visible damage (see the module)."""
    h, w = clean.shape
    image = clean.astype(np.float32)
    fade = rng.uniform(*cfg.fade)
    if fade > 0:
        low = fade * rng.uniform(0.3, 0.7)
        image = low + (1 - fade) * image
    before = image
    alpha = _draw_marks(rng, h, w, cfg)
    bright, dark = rng.uniform(0.85, 1.0), rng.uniform(0.0, 0.2)
    for kind in range(2):
        image = image * (1 - alpha[kind, 0]) + bright * alpha[kind, 0]
        image = image * (1 - alpha[kind, 1]) + dark * alpha[kind, 1]
    visible = np.abs(image - before) > cfg.mask_delta
    mask = (alpha.max(axis=1) > cfg.mask_alpha) & visible
    sigma = rng.uniform(*cfg.grain)
    if sigma > 0:
        # Grain is correlated over a pixel or so, as scanned film grain is.
        noise = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0),
                                 GRAIN_BLUR)
        image = image + noise * (sigma / noise.std())
    return Damaged(np.clip(image, 0, 1).astype(np.float32), mask)
