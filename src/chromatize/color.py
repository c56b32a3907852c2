"""Colour maths: sRGB (D65) <-> CIE Lab, and the one place where L and ab are normalised.

Torch functions take and return tensors shaped ``(*, 3, H, W)`` and are differentiable;
the numpy functions take channel-last arrays ``(..., 3)`` as images usually come. Both
run the same formulas, and importing this module does not import torch. Values:

* sRGB: float in [0, 1] (8-bit images divide by 255 first);
* L*: [0, 100]; a*, b*: roughly [-128, 127], sRGB colours lie in about [-87, 99] x [-108, 95].

The formulas and constants are those of scikit-image (``rgb2lab``/``lab2rgb``, illuminant
D65, 2 degree observer), so results agree with it to well below 1e-3 Lab units.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

#: The colour formulas run on numpy arrays (no torch needed, so reading photos stays
#: light) and on tensors (differentiable, for the models); torch is imported only when a
#: tensor is given.
Array = Union[np.ndarray, "torch.Tensor"]

# sRGB primaries, D65 white (scikit-image's ``xyz_from_rgb``).
XYZ_FROM_RGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_RGB)
WHITE_D65 = np.array([0.95047, 1.0, 1.08883])

_EPS = 216 / 24389  # CIE epsilon: (6/29)^3
_KAPPA = 24389 / 27  # CIE kappa

# Network-side normalisation: the model sees L in [-1, 1] and predicts ab in [-1, 1].
L_CENTER = 50.0
L_SCALE = 50.0
AB_SCALE = 110.0


def normalize_l(l: torch.Tensor) -> torch.Tensor:
    """L* in [0, 100] -> [-1, 1]. Any shape."""
    return (l - L_CENTER) / L_SCALE


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """a*b* in Lab units -> network range (about [-1, 1]). Any shape."""
    return ab / AB_SCALE


def denormalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """Network ab in [-1, 1] -> a*b* in Lab units ([-110, 110]). Any shape."""
    return ab * AB_SCALE


_NUMPY = (np.ndarray, np.generic, float, int)  # a pixel of an (..., 3) array is a scalar


def _where(cond: Array, a: Array, b: Array) -> Array:
    if isinstance(cond, _NUMPY):
        return np.where(cond, a, b)
    import torch

    return torch.where(cond, a, b)


def _clamp(x: Array, lo: float | None = None, hi: float | None = None) -> Array:
    return np.clip(x, lo, hi) if isinstance(x, _NUMPY) else x.clamp(lo, hi)


def _check_channels(x: torch.Tensor, name: str) -> None:
    import torch

    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"{name} must have shape (*, 3, H, W), got {tuple(x.shape)}")


def srgb_to_linear(rgb: Array) -> Array:
    """sRGB companding inverse. ``rgb`` in [0, 1], any shape; returns linear RGB in [0, 1]."""
    # clamp inside pow keeps the gradient finite at 0
    high = ((_clamp(rgb, 0.04045) + 0.055) / 1.055) ** 2.4
    return _where(rgb > 0.04045, high, rgb / 12.92)


def linear_to_srgb(lin: Array) -> Array:
    """sRGB companding. ``lin`` in [0, 1], any shape; returns sRGB in [0, 1] (unclipped)."""
    high = 1.055 * _clamp(lin, 0.0031308) ** (1 / 2.4) - 0.055
    return _where(lin > 0.0031308, high, lin * 12.92)


def _f(t: Array) -> Array:
    return _where(t > _EPS, _clamp(t, _EPS) ** (1 / 3), (_KAPPA * t + 16) / 116)


def _f_inv(f: Array) -> Array:
    return _where(f > 6 / 29, f * f * f, (f - 16 / 116) * (116 / _KAPPA))


def _matmul_planes(m: np.ndarray, x: Array, y: Array, z: Array) -> list[Array]:
    """Apply a 3x3 matrix to three planes: plain multiply-adds, faster than einsum on
    large images."""
    return [float(r[0]) * x + float(r[1]) * y + float(r[2]) * z for r in m]


# The formulas work on three planes (numpy arrays or tensors of one shape); the public
# functions below split channels off and stack them back in each library's layout.


def _rgb_to_lab_planes(r: Array, g: Array, b: Array) -> list[Array]:
    x, y, z = _matmul_planes(XYZ_FROM_RGB, *(srgb_to_linear(c) for c in (r, g, b)))
    fx, fy, fz = _f(x / float(WHITE_D65[0])), _f(y), _f(z / float(WHITE_D65[2]))
    return [116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)]


def _lab_to_linear_planes(l: Array, a: Array, b: Array) -> list[Array]:
    fy = (l + 16) / 116
    # Negative Z is clipped to 0 as scikit-image does.
    fz = _clamp(fy - b / 200, 0)
    x = _f_inv(fy + a / 500) * float(WHITE_D65[0])
    z = _f_inv(fz) * float(WHITE_D65[2])
    return _matmul_planes(RGB_FROM_XYZ, x, _f_inv(fy), z)


def _desaturate_planes(r: Array, g: Array, b: Array) -> list[Array]:
    wr, wg, wb = (float(v) for v in XYZ_FROM_RGB[1])
    y = _clamp(wr * r + wg * g + wb * b, 0.0, 1.0)
    d = [c - y for c in (r, g, b)]
    # Largest t in [0, 1] with y + t*d inside [0, 1] for every channel: room to the
    # boundary the channel moves towards, over the distance it moves.
    t = None
    for dc in d:
        tc = _where(dc > 0, 1 - y, y) / _clamp(abs(dc), 1e-12)
        t = tc if t is None else _where(tc < t, tc, t)
    t = _clamp(t, 0.0, 1.0)
    return [y + t * dc for dc in d]


def _to_srgb_planes(planes: list[Array], gamut: str) -> list[Array]:
    if gamut == "preserve_l":
        planes = _desaturate_planes(*planes)
    elif gamut != "clip":
        raise ValueError(f"gamut must be 'clip' or 'preserve_l', got {gamut!r}")
    return [_clamp(linear_to_srgb(_clamp(c, 0.0, 1.0)), 0.0, 1.0) for c in planes]


def _stack(planes: list[torch.Tensor]) -> torch.Tensor:
    import torch

    return torch.stack(planes, dim=-3)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB ``(*, 3, H, W)`` in [0, 1] -> Lab ``(*, 3, H, W)`` (L in [0, 100])."""
    _check_channels(rgb, "rgb")
    return _stack(_rgb_to_lab_planes(*rgb.unbind(-3)))


def lab_to_rgb(lab: torch.Tensor, gamut: str = "clip") -> torch.Tensor:
    """Lab ``(*, 3, H, W)`` -> sRGB ``(*, 3, H, W)`` in [0, 1].

    Out-of-gamut colours are brought into [0, 1] by ``gamut``:

    * ``"clip"``: clip each channel, as scikit-image does (changes L* of such pixels);
    * ``"preserve_l"``: move the colour towards the gray of the same luminance in linear
      RGB just far enough to fit. Luminance Y is linear in RGB and a gray of luminance Y
      has R = G = B = Y, so this keeps Y (hence L*) exactly and keeps the hue.
    """
    _check_channels(lab, "lab")
    return _stack(_to_srgb_planes(_lab_to_linear_planes(*lab.unbind(-3)), gamut))


_SRGB8_BITS = 18  # LUT index resolution in linear light: rounding within 0.01 of a level
_SRGB8_TABLE = np.floor(np.clip(linear_to_srgb(np.linspace(0, 1, 2**_SRGB8_BITS)), 0, 1)
                        * 255 + 0.5).astype(np.uint8)


def lab_to_rgb8(lab: Array) -> np.ndarray:
    """Lab ``(*, 3, h, w)`` (a tensor, or a numpy array: then torch is not needed) ->
    sRGB uint8 ``(*, h, w, 3)``, desaturated into the gamut at constant luminance, so the
    output keeps the given L*.

    The sRGB companding and rounding to 8 bits go through a table indexed by linear
    light (one gather instead of a power per channel; the same bytes as
    ``lab_to_rgb(lab, "preserve_l")`` rounded, but within 0.01 of a level from a half)."""
    numpy = isinstance(lab, np.ndarray)
    if numpy:
        if lab.ndim < 3 or lab.shape[-3] != 3:
            raise ValueError(f"lab must have shape (*, 3, H, W), got {lab.shape}")
        lab = lab.astype(np.float32, copy=False)
        planes = [lab[..., c, :, :] for c in range(3)]
        stack = np.stack
    else:
        import torch

        _check_channels(lab, "lab")
        planes = list(lab.float().unbind(-3))
        stack = torch.stack
    lin_planes = _lab_to_linear_planes(*planes)
    # Few pixels leave the gamut: desaturate only those. (Tested per plane: numpy's
    # any() over a last axis of 3 is slower than the colour maths itself.)
    outside = (lin_planes[0] < 0) | (lin_planes[0] > 1)
    for plane in lin_planes[1:]:
        outside |= (plane < 0) | (plane > 1)
    lin = stack(lin_planes, -1)  # (..., 3)
    if bool(outside.any()):
        bad = lin[outside]  # (k, 3)
        lin[outside] = stack(_desaturate_planes(bad[:, 0], bad[:, 1], bad[:, 2]), -1)
    top = 2**_SRGB8_BITS - 1
    idx = _clamp(lin * top + 0.5, 0, top)
    if numpy:
        return _SRGB8_TABLE[idx.astype(np.int32)]
    return torch.from_numpy(_SRGB8_TABLE)[idx.to(torch.int32)].numpy()


# ----------------------------------------------------------------------------- numpy


def _planes(x: np.ndarray) -> list[np.ndarray]:
    if x.ndim < 1 or x.shape[-1] != 3:
        raise ValueError(f"expected an array shaped (..., 3), got {x.shape}")
    x = np.asarray(x, dtype=np.float64)
    return [x[..., 0], x[..., 1], x[..., 2]]


def rgb_to_lab_np(rgb: np.ndarray) -> np.ndarray:
    """sRGB array ``(..., 3)`` in [0, 1] -> Lab ``(..., 3)`` float64."""
    return np.stack(_rgb_to_lab_planes(*_planes(rgb)), -1)


def lab_to_rgb_np(lab: np.ndarray, gamut: str = "clip") -> np.ndarray:
    """Lab array ``(..., 3)`` -> sRGB ``(..., 3)`` float64 in [0, 1]; see :func:`lab_to_rgb`."""
    return np.stack(_to_srgb_planes(_lab_to_linear_planes(*_planes(lab)), gamut), -1)


def gray_to_l_lut(bits: int = 8) -> np.ndarray:
    """L* of every gray level R = G = B = v / (2**bits - 1): an array of ``2**bits`` floats."""
    y = srgb_to_linear(np.linspace(0, 1, 2**bits, dtype=np.float64))
    return np.clip(116 * _f(y) - 16, 0, None).astype(np.float32)


def luminance_to_l(rgb: np.ndarray) -> np.ndarray:
    """L* of an sRGB array ``(..., 3)`` in [0, 1] (no a*, b* computed): ``(...)`` float32."""
    lin = srgb_to_linear(np.asarray(rgb, dtype=np.float32))
    y = lin @ XYZ_FROM_RGB[1].astype(np.float32)
    return np.clip(116 * _f(y) - 16, 0, None).astype(np.float32)


_LUT8 = gray_to_l_lut(8)
_LUT16 = gray_to_l_lut(16)


def luminance(src: np.ndarray) -> np.ndarray:
    """L* ``(h, W)`` float32 of source rows (see :func:`chromatize.io.to_pixels`)."""
    if src.ndim == 2:
        return (_LUT16 if src.dtype == np.uint16 else _LUT8)[src]
    return luminance_to_l(src.astype(np.float32) / 255)



def source_lab(src: np.ndarray) -> np.ndarray:
    """Lab ``(H, W, 3)`` float32 of source pixels (:func:`chromatize.io.to_pixels`: 8-bit
    RGB, or 8/16-bit gray, which has a* = b* = 0)."""
    if src.ndim == 3:
        return rgb_to_lab_np(src.astype(np.float32) / 255).astype(np.float32)
    lab = np.zeros(src.shape + (3,), np.float32)
    lab[..., 0] = luminance(src)
    return lab


# ----------------------------------------------------------------------------- colour photos

# Colour detection (see :func:`is_color`): long side of the copy it looks at, width of
# the L* bands, the band chroma below which a band has no hue of its own, the chroma
# above which the off-curve distance is scaled down (a strong tone's JPEG smear grows
# with its chroma), and the spread (Lab units) above which a photo counts as colour.
# Measured (tests/test_color.py, docs/restore.md): sepia, cyanotype, selenium and
# yellowed tones of chroma 8 to 60 over four photos, JPEG at quality 80 with noise,
# spread at most 0.96 (the clipped classic sepia matrix 1.28); astronaut and coffee with
# 70% of their saturation gone, a yellow cast and lost contrast spread 2.4 and 1.4.
_COLOR_PROBE_SIZE = 256
_L_BAND = 5.0
_HUE_CHROMA = 3.0
_TONE_CHROMA = 25.0
_COLOR_SPREAD = 1.35
_COLOR_MODES = ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")


def _tone_curve(lab: np.ndarray) -> np.ndarray:
    """Pixels' Lab ``(N, 3)`` -> the tone curve's a*b* at each pixel ``(N, 2)``: per L*
    band, a*b* as a straight line of L* (least squares), so that a tint which changes
    with brightness inside a band stays on its curve."""
    band = np.minimum((lab[:, 0] / _L_BAND).astype(int), int(100 / _L_BAND))
    count = np.maximum(np.bincount(band), 1)

    def band_mean(v: np.ndarray) -> np.ndarray:
        return (np.bincount(band, v) / count)[band]

    dl = lab[:, 0] - band_mean(lab[:, 0])
    var = band_mean(dl**2) + 1e-6
    curve = np.empty((len(lab), 2))
    for ch in (1, 2):
        mean = band_mean(lab[:, ch])
        curve[:, ch - 1] = mean + dl * band_mean(dl * (lab[:, ch] - mean)) / var
    return curve


def _box3(x: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` -> the mean of each pixel's 3 x 3 neighbourhood (edges repeated),
    flattened to ``(H * W, C)``."""
    pad = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = x.shape[:2]
    return (sum(pad[i:i + h, j:j + w] for i in range(3) for j in range(3)) / 9).reshape(h * w, -1)


def tone_spread(image: Image.Image) -> float:
    """How far an RGB photo's colours stray from a single tone curve (Lab units; see
    :func:`is_color`): about 0.3 to 1.3 for toned prints, 1.4 to 20 for colour photos."""
    small = image.convert("RGB")
    small.thumbnail((_COLOR_PROBE_SIZE, _COLOR_PROBE_SIZE), Image.BOX)
    lab = rgb_to_lab_np(np.asarray(small, dtype=np.float64) / 255)
    h, w = lab.shape[:2]
    curve = _tone_curve(lab.reshape(-1, 3)).reshape(h, w, 2)
    # Compared over 3 x 3 pixels: JPEG stores chroma at half resolution, so a pixel's
    # a*b* is partly its neighbours', and so is their curve's.
    off, curve = _box3(lab[..., 1:] - curve), _box3(curve)
    chroma = np.hypot(curve[:, 0], curve[:, 1])
    hue = curve / np.maximum(chroma, 1e-9)[:, None]
    across = np.abs(off[:, 1] * hue[:, 0] - off[:, 0] * hue[:, 1])
    across *= np.minimum(1.0, _TONE_CHROMA / np.maximum(chroma, 1e-9))
    spread = np.where(chroma >= _HUE_CHROMA, across, np.hypot(off[:, 0], off[:, 1]))
    return float(np.sqrt(np.mean(spread**2)))


def is_color(image: Image.Image | np.ndarray, min_chroma: float | None = None) -> bool:
    """Whether a photo (PIL image, or sRGB uint8 array ``(H, W, 3)``) is in colour.

    By default toned and faded prints (sepia, selenium, cyanotype, yellowed paper, a
    tinted JPEG, a faint cast from the scanner) count as black-and-white however strong
    the tone: their colour is a single tint per brightness, whose strength and hue follow
    brightness. So (:func:`tone_spread`) the photo, downsized to a long side of 256 px,
    is cut into bands of L* 5 units wide; a*b* is fitted per band as a straight line of
    L* (the tone curve); and the distance of each pixel's a*b* (averaged with its 3 x 3
    neighbours, as is the curve, because JPEG smears chroma across edges) from the curve
    is measured *across* the curve's hue: the component along the hue is left out, as
    JPEG also smears a tint's strength between neighbouring tones without changing its
    hue. Above chroma 25 the distance is scaled by 25 / chroma, since the smear of a
    strong tone grows with it; in a band with almost no chroma (under 3) the whole
    distance counts. A toned print spreads under 1.35 units (RMS); a colour photo, even
    faded, has differently coloured things at the same brightness, so more (typically 2
    to 20). Nearly monochrome colour scenes (mist, snow, a sunset of one hue, a ginger
    cat on a gray floor once faded) can fall below and count as black-and-white. This
    decides what the CLI colorizes.

    With ``min_chroma`` (Lab units) the question is whether the photo has enough colour
    to learn from or to score against: its mean chroma sqrt(a^2 + b^2) must reach
    ``min_chroma`` (4 drops gray and faint sepia scans, yet keeps misty or snowy colour
    photos). Training data (``data.min_chroma``) and evaluation use this.

    Gray images (modes ``L``, ``I;16``..., or 2-D arrays) are black-and-white without
    looking.
    """
    if isinstance(image, np.ndarray):
        if image.ndim != 3:
            return False
        image = Image.fromarray(np.ascontiguousarray(image[..., :3]))
    if image.mode not in _COLOR_MODES:
        return False
    if min_chroma is not None:
        small = image.convert("RGB")
        small.thumbnail((_COLOR_PROBE_SIZE, _COLOR_PROBE_SIZE), Image.BOX)
        lab = rgb_to_lab_np(np.asarray(small, dtype=np.float64) / 255).reshape(-1, 3)
        return float(np.hypot(lab[:, 1], lab[:, 2]).mean()) >= min_chroma
    return tone_spread(image) > _COLOR_SPREAD


# ----------------------------------------------------------------------------- ab bins

AB_GRID = 10.0


def ab_bins(grid: float = AB_GRID) -> np.ndarray:
    """Centres of the quantised ab bins in the sRGB gamut (Zhang et al. 2016): ``(Q, 2)``.

    The ab plane is cut into ``grid`` x ``grid`` cells centred on multiples of ``grid``;
    a cell is kept when some sRGB colour (a 65^3 lattice of the cube) falls in it. With
    ``grid=10`` this gives Q = 261 bins (Zhang et al. report 313 from ImageNet's pixels
    with a looser gamut test). Rows are sorted by (a, b).
    """
    v = np.linspace(0, 1, 65)
    rgb = np.stack(np.meshgrid(v, v, v, indexing="ij"), -1).reshape(-1, 3)
    ab = rgb_to_lab_np(rgb)[:, 1:]
    cells = np.unique(np.round(ab / grid).astype(np.int64), axis=0)
    return cells.astype(np.float64) * grid
