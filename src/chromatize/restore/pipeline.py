"""Repair an old photo's gray before colour: damage, grain, fading, in that order.

The photo becomes gray by taking its luminance (so a sepia or yellowed tone goes), then
it is processed in tiles of 512 x 1024 px read with a margin of 80 px (bounded memory at
any size; the margin covers what each step looks at, the detector's 72 px included, so
tiles join without seams): damage found (:mod:`~chromatize.restore.damage`, the learned
detector when its weights are there) and filled, grain removed when the photo measures
noisy. Fading is undone last, by levels
measured on the repaired photo (:mod:`~chromatize.restore.tone`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from PIL import Image

import chromatize.color as color
from chromatize.errors import UsageError
from chromatize.io import ImageLike, Photo, read_source
from chromatize.restore import damage as dmg
from chromatize.restore import tone

#: The repair steps, in the order ``--restore`` names them.
STEPS = ("cracks", "dust", "grain", "fade")
#: Rows and columns of a tile, and the margin read around it on every side.
STRIP_ROWS = 512
TILE_COLS = 1024
MARGIN = 80
#: Pixels the detected damage is grown by before filling: a mark's soft edge goes too.
GROW = 1
#: The most memory a gated detector's first pass keeps its logits in (float16); tiles
#: beyond it are run through the network again.
LOGIT_CACHE_BYTES = 64 << 20
#: Gray values sampled (evenly spaced) to measure the noise and the levels.
SAMPLE_PIXELS = 1_000_000
#: Neighbouring rows in each band of the noise's sample (a multiple of the 16 px block).
BAND_ROWS = 64

Detect = Callable[[np.ndarray], np.ndarray]
Inpaint = Callable[[np.ndarray, np.ndarray], np.ndarray]


def parse_steps(text: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"all"``/``"1"``/``"true"`` -> every step; ``"cracks,dust"`` -> those (in
    :data:`STEPS` order); ``""``/``"0"``/``"none"``/None -> none. Raises
    :class:`~chromatize.errors.UsageError` for an unknown step."""
    if text is None:
        return ()
    words = text.split(",") if isinstance(text, str) else list(text)
    words = [w.strip().lower() for w in words if w.strip()]
    if words in ([], ["0"], ["none"], ["false"], ["no"], ["off"]):
        return ()
    if words in (["all"], ["1"], ["true"], ["yes"], ["on"]):
        return STEPS
    unknown = [w for w in words if w not in STEPS]
    if unknown:
        raise UsageError(f"unknown repair step {unknown[0]!r}; choose from "
                         f"{', '.join(STEPS)} or all")
    return tuple(s for s in STEPS if s in words)


@dataclass(frozen=True)
class Repair:
    """What to repair (``steps``, a subset of :data:`STEPS`) and how damage is found:
    ``detector`` ``"learned"`` (the shipped network; falls back to ``"morph"`` when
    its weights are missing), ``"morph"`` (top-hats), or a callable gray ``(H, W)`` ->
    mask ``(2, H, W)``; ``inpaint`` is ``"telea"``, ``"ns"`` (OpenCV) or a callable
    (gray ``(H, W)``, mask ``(H, W)`` bool) -> gray that keeps every unmasked pixel, such
    as a trained :meth:`chromatize.restore.refine.Refiner.inpaint`."""

    steps: tuple[str, ...] = STEPS
    detector: str | Detect = "learned"
    inpaint: str | Inpaint = "telea"

    def __post_init__(self) -> None:
        object.__setattr__(self, "steps", parse_steps(self.steps))
        if not callable(self.inpaint) and self.inpaint not in dmg.INPAINT_METHODS:
            raise UsageError(f"inpaint must be one of {', '.join(dmg.INPAINT_METHODS)}"
                             " or a callable")


_DETECTORS: dict[str, Detect] = {}


def inpainter_for(repair: Repair) -> Inpaint:
    """How ``repair`` fills a mask: (gray ``(H, W)``, mask ``(H, W)`` bool) -> gray, every
    unmasked pixel kept."""
    if callable(repair.inpaint):
        return repair.inpaint
    return lambda gray, mask: dmg.inpaint(gray, mask, repair.inpaint)


def detector_for(repair: Repair) -> Detect:
    """The damage detector ``repair`` names: gray ``(H, W)`` -> mask ``(2, H, W)``. The
    learned one is loaded once per process."""
    if callable(repair.detector):
        return repair.detector
    if repair.detector == "morph":
        return dmg.detect_morph
    if "learned" not in _DETECTORS:
        from chromatize.restore.net import DetectorError, load_detector

        try:
            _DETECTORS["learned"] = load_detector()
        except DetectorError:
            _DETECTORS["learned"] = dmg.detect_morph
    return _DETECTORS["learned"]


def to_gray(rows: np.ndarray) -> np.ndarray:
    """Source rows (8/16-bit gray or 8-bit RGB) -> gray ``(h, W)`` float32 in [0, 1]: the
    luminance Y, encoded like sRGB gray (the same L* as the source)."""
    if rows.ndim == 2:
        return rows.astype(np.float32) / (65535 if rows.dtype == np.uint16 else 255)
    lin = color.srgb_to_linear(rows.astype(np.float32) / 255)
    y = lin @ color.XYZ_FROM_RGB[1].astype(np.float32)
    return np.clip(color.linear_to_srgb(y), 0, 1).astype(np.float32)


def _sample(pixels: np.ndarray) -> np.ndarray:
    """Rows of the photo, evenly spaced, about SAMPLE_PIXELS in all, as gray."""
    step = max(1, int(pixels.shape[0] * pixels.shape[1] / SAMPLE_PIXELS))
    return to_gray(pixels[::step])


def _bands(pixels: np.ndarray) -> list[np.ndarray]:
    """Bands of BAND_ROWS neighbouring rows of the photo, evenly spaced, about
    SAMPLE_PIXELS in all, as gray (the whole photo when it is that small): where grain
    is measured. Single rows far apart would not do: a second difference across them
    reads the photo's structure as noise (a 16 MP photo measured 5 times as noisy)."""
    h, w = pixels.shape[:2]
    count = max(1, SAMPLE_PIXELS // (BAND_ROWS * w))
    if count * BAND_ROWS >= h:
        return [to_gray(pixels)]
    return [to_gray(pixels[y:y + BAND_ROWS])
            for y in np.linspace(0, h - BAND_ROWS, count).astype(int)]


def repair_strip(gray: np.ndarray, repair: Repair, sigma: float,
                 found: np.ndarray | None = None) -> np.ndarray:
    """Repair one tile ``(h, w)`` float32 in [0, 1] (damage, then grain) with the
    photo's grain ``sigma`` (:func:`~chromatize.restore.tone.grain_sigma`; 0: none);
    fading is the caller's (it needs the whole photo). ``found``: the tile's damage
    ``(2, h, w)`` bool when the caller has it already."""
    kinds = [i for i, s in enumerate(("cracks", "dust")) if s in repair.steps]
    if kinds:
        found = detector_for(repair)(gray) if found is None else found
        mask = dmg.grow(found[kinds].any(axis=0), GROW)
        gray = inpainter_for(repair)(gray, mask)
    if "grain" in repair.steps and sigma > 0:
        gray = tone.denoise(gray, sigma)
    return gray


Tile = tuple[slice, slice, slice, slice]  # rows and columns read, then kept within them


def _tiles(h: int, w: int) -> list[Tile]:
    """The tiles of an ``h`` x ``w`` photo: what each reads (with MARGIN around) and,
    within that, the part it writes."""
    out = []
    for y0 in range(0, h, STRIP_ROWS):
        y1 = min(h, y0 + STRIP_ROWS)
        a, b = max(0, y0 - MARGIN), min(h, y1 + MARGIN)
        for x0 in range(0, w, TILE_COLS):
            x1 = min(w, x0 + TILE_COLS)
            c, d = max(0, x0 - MARGIN), min(w, x1 + MARGIN)
            out.append((slice(a, b), slice(c, d), slice(y0 - a, y1 - a), slice(x0 - c, x1 - c)))
    return out


def _gated_damage(pixels: np.ndarray, repair: Repair, tiles: list[Tile],
                  ) -> Callable[[int], np.ndarray] | None:
    """Where the learned detector has a gate (:class:`~chromatize.restore.net.Gate`):
    a first pass over the tiles measures the photo's damage density; returned is tile
    number -> its damage ``(2, h, w)`` bool at the thresholds for that density. Logits
    are kept for that second look while they fit LOGIT_CACHE_BYTES (float16), else run
    again, so memory stays bounded. None without a gate (each tile is found alone)."""
    from chromatize.restore.net import Detector

    detector = detector_for(repair)
    if (not isinstance(detector, Detector) or detector.gate is None
            or not any(s in repair.steps for s in ("cracks", "dust"))):
        return None
    kept: dict[int, np.ndarray] = {}
    seeds, size, held = 0, 0, 0
    for i, (rows, cols, inner_r, inner_c) in enumerate(tiles):
        logits = detector.logits(to_gray(pixels[rows, cols]))
        seeds += detector.seeds(logits[:, inner_r, inner_c])
        size += logits[0, inner_r, inner_c].size
        if held + logits.size * 2 <= LOGIT_CACHE_BYTES:
            kept[i] = logits.astype(np.float16)
            held += logits.size * 2
    density = seeds / max(size, 1)

    def found(i: int) -> np.ndarray:
        logits = kept.pop(i, None)
        if logits is None:  # as float16 too: the same masks whether kept or run again
            logits = detector.logits(to_gray(pixels[tiles[i][0], tiles[i][1]]))
            logits = logits.astype(np.float16)
        return detector.mask(logits.astype(np.float32), density)

    return found


def restore_pixels(pixels: np.ndarray, repair: Repair = Repair()) -> np.ndarray:
    """Source pixels (see :func:`chromatize.io.to_pixels`: 8/16-bit gray or 8-bit RGB)
    -> repaired gray ``(H, W)``, uint16 for a 16-bit source, else uint8."""
    top = 65535 if pixels.dtype == np.uint16 and pixels.ndim == 2 else 255
    out = np.empty(pixels.shape[:2], np.uint16 if top == 65535 else np.uint8)
    sigma = tone.grain_sigma(_bands(pixels)) if "grain" in repair.steps else 0.0
    tiles = _tiles(*pixels.shape[:2])
    masks = _gated_damage(pixels, repair, tiles)
    for i, (rows, cols, inner_r, inner_c) in enumerate(tiles):
        found = masks(i) if masks is not None else None
        fixed = repair_strip(to_gray(pixels[rows, cols]), repair, sigma, found)
        out[rows, cols][inner_r, inner_c] = np.clip(fixed[inner_r, inner_c] * top + 0.5, 0, top)
    if "fade" in repair.steps:
        levels = tone.measure_levels(_sample(out))
        if not levels.identity:
            lut = levels(np.arange(top + 1, dtype=np.float32) / top)
            out = np.clip(lut * top + 0.5, 0, top).astype(out.dtype)[out]
    return out


def restore(image: ImageLike, repair: Repair | str | Iterable[str] = "all") -> Image.Image:
    """Repair a photo (path, :class:`~chromatize.io.Photo`, PIL image or array): a gray
    PIL image (``L``, or ``I;16`` for 16-bit gray sources) of the same size, with the
    source's alpha as ``LA`` when it has one. ``repair``: a :class:`Repair`, or the
    steps as :func:`parse_steps` reads them (default: all)."""
    if not isinstance(repair, Repair):
        repair = Repair(parse_steps(repair))
    pixels, alpha = read_source(image)
    return with_alpha(Image.fromarray(restore_pixels(pixels, repair)), alpha)


def with_alpha(gray: Image.Image, alpha: Image.Image | None) -> Image.Image:
    """A gray image with ``alpha`` (``LA``, 8-bit), or as it is when there is none."""
    if alpha is None:
        return gray
    if gray.mode == "I;16":
        gray = Image.fromarray((np.asarray(gray) >> 8).astype(np.uint8))
    return Image.merge("LA", (gray, alpha))


def restore_photo(photo: Photo, repair: Repair) -> Photo:
    """A :class:`~chromatize.io.Photo` whose image is repaired (gray), alpha, ICC profile
    and EXIF kept: what the batch writes or colorizes."""
    # An RGB source's ICC profile no longer fits; write_photo drops what does not fit.
    image = Image.fromarray(restore_pixels(np.asarray(photo.image), repair))
    return Photo(image=image, alpha=photo.alpha, icc_profile=photo.icc_profile,
                 exif=photo.exif, format=photo.format, path=photo.path)
