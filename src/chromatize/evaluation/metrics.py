"""Image quality metrics for colorization, as pure functions on numpy arrays.

Conventions: ``*_rgb8`` are sRGB ``(H, W, 3)`` uint8 arrays; ``*_lab`` are CIELAB ``(H, W, 3)``
float arrays (L* in [0, 100], a*, b* roughly in [-110, 110]) from
:func:`chromatize.color.rgb_to_lab_np`; ``input_l`` is the L* ``(H, W)`` the model was given.

Besides the usual fidelity scores (PSNR, SSIM, ab RMSE, CIEDE2000) there are scores for the
failure modes of colorization models: desaturation (colourfulness ratio), inconsistent
colours inside regions, colour bleeding across luminance edges and pollution of the border
band. Each returns one float; higher is worse for the failure scores.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.color import deltaE_ciede2000
from skimage.filters import sobel
from skimage.metrics import structural_similarity

import chromatize.color as color

#: A photo whose mean chroma (on a small copy) is below this is not used as ground truth
#: (:func:`chromatize.color.is_color`): the same floor the training loader uses
#: (``data.min_chroma``).
MIN_MEAN_CHROMA = 4.0
#: Photos with a shorter side than this are not scored: SSIM's standard 7-pixel window
#: (Wang et al. 2004) and the border band need room; a strip such as 2 x 300 is skipped.
MIN_SIDE = 7
#: L* gradient (Sobel magnitude, L* units per pixel) above which an edge counts as strong.
STRONG_EDGE = 4.0
#: Width of the border band, as a fraction of the short side (edge pollution).
BORDER_FRACTION = 0.08

#: Keys of :func:`image_metrics` shown in summary tables: key -> (label, higher is better).
SUMMARY_METRICS: dict[str, tuple[str, bool]] = {
    "psnr": ("PSNR (dB)", True),
    "ssim": ("SSIM", True),
    "ab_rmse": ("ab RMSE (Lab)", False),
    "ab_rmse_norm": ("ab RMSE (/110)", False),
    "ciede2000": ("CIEDE2000", False),
    "hist_intersection": ("ab hist. intersection", True),
    "colorfulness": ("colourfulness", True),
    "colorfulness_ratio": ("colourfulness ratio", True),
    "l_error": ("|L out - L in|", False),
    "inconsistency": ("inconsistency", False),
    "bleeding": ("bleeding", False),
    "edge_pollution": ("edge pollution", False),
}


def to_lab(rgb8: np.ndarray) -> np.ndarray:
    """sRGB ``(H, W, 3)`` uint8 -> Lab ``(H, W, 3)`` float64."""
    return color.rgb_to_lab_np(rgb8.astype(np.float64) / 255)


def psnr(pred_rgb8: np.ndarray, true_rgb8: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all 8-bit sRGB values (peak 255); inf if equal."""
    mse = np.mean((pred_rgb8.astype(np.float64) - true_rgb8.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim(pred_rgb8: np.ndarray, true_rgb8: np.ndarray) -> float:
    """Mean structural similarity of the sRGB channels (Wang et al. 2004), in [-1, 1].

    The 7-pixel window shrinks (odd, at least 3) for images smaller than 7 pixels.
    """
    win = min(7, min(pred_rgb8.shape[:2]))
    win -= 1 - win % 2
    return float(structural_similarity(pred_rgb8, true_rgb8, channel_axis=-1, data_range=255,
                                       win_size=max(win, 3)))


def ab_rmse(pred_lab: np.ndarray, true_lab: np.ndarray) -> float:
    """Root mean square error of a* and b* in Lab units, averaged over pixels and both channels."""
    d = pred_lab[..., 1:] - true_lab[..., 1:]
    return float(np.sqrt(np.mean(d**2)))


def ab_rmse_normalised(pred_lab: np.ndarray, true_lab: np.ndarray) -> float:
    """:func:`ab_rmse` with ab divided by ``color.AB_SCALE`` (the seed's [-1, 1] form)."""
    return ab_rmse(pred_lab, true_lab) / color.AB_SCALE


def _delta_e(pred_lab: np.ndarray, true_lab: np.ndarray) -> np.ndarray:
    return deltaE_ciede2000(true_lab, pred_lab, channel_axis=-1)


def ciede2000(pred_lab: np.ndarray, true_lab: np.ndarray) -> float:
    """Mean CIEDE2000 colour difference (Sharma et al. 2005) over pixels."""
    return float(_delta_e(pred_lab, true_lab).mean())


def colorfulness(rgb8: np.ndarray) -> float:
    """Colourfulness M of Hasler and Suesstrunk (2003) on 0..255 sRGB values.

    With rg = R - G and yb = (R + G) / 2 - B over the pixels,
    M = sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2). Gray images give 0.
    """
    rgb = rgb8.reshape(-1, 3).astype(np.float64)
    rg = rgb[:, 0] - rgb[:, 1]
    yb = (rgb[:, 0] + rgb[:, 1]) / 2 - rgb[:, 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def ab_histogram_intersection(pred_lab: np.ndarray, true_lab: np.ndarray,
                              bins: int = 22) -> float:
    """Intersection of the normalised 2-D ab histograms, as PixColor reports it, in [0, 1].

    ``bins`` per axis over [-AB_SCALE, AB_SCALE] (22 bins = 10 Lab units wide). 1 means the
    same distribution of colours regardless of where they are, 0 no colour in common.
    """
    lim = color.AB_SCALE
    edges = np.linspace(-lim, lim, bins + 1)

    def hist(lab: np.ndarray) -> np.ndarray:
        ab = np.clip(lab[..., 1:].reshape(-1, 2), -lim, lim)
        h, _, _ = np.histogram2d(ab[:, 0], ab[:, 1], bins=(edges, edges))
        return h / h.sum()

    return float(np.minimum(hist(pred_lab), hist(true_lab)).sum())


def l_preservation(pred_lab: np.ndarray, input_l: np.ndarray) -> float:
    """Mean |L*_out - L*_in| in L* units: how far the output's lightness strays from the input's."""
    return float(np.abs(pred_lab[..., 0] - input_l).mean())


def strong_edge_band(l: np.ndarray, threshold: float = STRONG_EDGE, width: int = 2) -> np.ndarray:
    """Bool ``(H, W)``: pixels within ``width`` of a strong L* edge (Sobel magnitude of
    ``l`` above ``threshold`` L* per pixel)."""
    edges = sobel(l.astype(np.float64)) > threshold
    return ndimage.binary_dilation(edges, iterations=width) if edges.any() else edges


def border_band(shape: tuple[int, int], fraction: float = BORDER_FRACTION) -> np.ndarray:
    """Bool ``(H, W)``: the outer ``fraction`` of the short side (at least one pixel)."""
    h, w = shape
    k = max(1, round(fraction * min(h, w)))
    band = np.ones((h, w), bool)
    band[k:h - k, k:w - k] = False
    return band


def _mean_or_zero(x: np.ndarray, mask: np.ndarray) -> float:
    return float(x[mask].mean()) if mask.any() else 0.0


def inconsistency(pred_lab: np.ndarray, true_lab: np.ndarray, flat: np.ndarray,
                  window: int = 7) -> float:
    """Patchiness of the colour error inside flat regions, in Lab units.

    The local standard deviation (``window`` x ``window``) of the ab error vector, averaged
    over ``flat`` pixels. A region given one wrong colour scores 0; a region split into
    blotches of different colours (the "inconsistent colours" failure) scores high.
    """
    err = pred_lab[..., 1:] - true_lab[..., 1:]
    mean = ndimage.uniform_filter(err, size=(window, window, 1))
    var = ndimage.uniform_filter(err**2, size=(window, window, 1)) - mean**2
    local_sd = np.sqrt(np.clip(var, 0, None).sum(-1))
    return _mean_or_zero(local_sd, flat)


def image_metrics(pred_rgb8: np.ndarray, true_rgb8: np.ndarray, input_l: np.ndarray,
                  true_lab: np.ndarray | None = None) -> dict[str, float]:
    """Every metric of one colorized photo against its ground truth.

    ``true_lab`` may pass ``to_lab(true_rgb8)`` when it is already known (scoring several
    outputs of one photo).

    Keys: ``psnr``, ``ssim``, ``ab_rmse``, ``ab_rmse_norm``, ``ciede2000``,
    ``hist_intersection``, ``l_error`` (L preservation), ``colorfulness``,
    ``colorfulness_true``, and the failure-mode scores (higher = worse except the ratio):

    - ``colorfulness_ratio``: output over truth colourfulness; low = desaturated.
    - ``inconsistency``: :func:`inconsistency` inside flat regions (away from strong edges).
    - ``bleeding``: mean CIEDE2000 within 2 px of strong L* edges minus that in flat
      regions; colour that crosses object boundaries raises it (0 without strong edges).
    - ``edge_pollution``: mean CIEDE2000 in the border band (8% of the short side) minus
      that in the interior; models that smear or tint the frame raise it.
    """
    pred_lab = to_lab(pred_rgb8)
    true_lab = to_lab(true_rgb8) if true_lab is None else true_lab
    de = _delta_e(pred_lab, true_lab)
    near_edge = strong_edge_band(input_l)
    border = border_band(input_l.shape)
    c_pred, c_true = colorfulness(pred_rgb8), colorfulness(true_rgb8)
    return {
        "psnr": psnr(pred_rgb8, true_rgb8),
        "ssim": ssim(pred_rgb8, true_rgb8),
        "ab_rmse": ab_rmse(pred_lab, true_lab),
        "ab_rmse_norm": ab_rmse_normalised(pred_lab, true_lab),
        "ciede2000": float(de.mean()),
        "hist_intersection": ab_histogram_intersection(pred_lab, true_lab),
        "l_error": l_preservation(pred_lab, input_l),
        "colorfulness": c_pred,
        "colorfulness_true": c_true,
        "colorfulness_ratio": c_pred / max(c_true, 1e-6),
        "inconsistency": inconsistency(pred_lab, true_lab, ~near_edge),
        "bleeding": (_mean_or_zero(de, near_edge) - _mean_or_zero(de, ~near_edge)
                     if near_edge.any() else 0.0),
        "edge_pollution": _mean_or_zero(de, border) - _mean_or_zero(de, ~border),
    }
