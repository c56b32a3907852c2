"""Photo I/O: read anything Pillow reads, keep what the output should carry, write atomically.

Reading turns every file into one of three pixel layouts the pipeline understands (8-bit
gray, 16-bit gray, 8-bit RGB) plus an optional alpha channel, the ICC profile and the EXIF
block. Writing goes to a temporary file in the target folder, renamed over the target only
once it is complete, so an interrupted run never leaves half a photo behind and an existing
output can always be trusted to be whole.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps

from chromatize import color
from chromatize.checkpoint import atomic_write_bytes

#: Default limit on the pixels of one photo (200 MP): a 50 MP photo is fine, a
#: 20000 x 20000 one (400 MP, 1.2 GB as RGB before any processing) is refused unread.
MAX_PIXELS = 200_000_000

#: What the library accepts as a photo: a PIL image, a numpy array or a path.
ImageLike = Image.Image | np.ndarray | str | os.PathLike

#: Output formats: Pillow's name -> the file suffix written.
WRITABLE = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif"}
SUFFIX_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
                  ".tif": "TIFF", ".tiff": "TIFF"}
#: Suffixes of the files a folder is searched for.
IMAGE_SUFFIXES = frozenset(SUFFIX_FORMATS) | {".bmp", ".gif"}


def list_photos(folder: str | os.PathLike[str], recursive: bool = True) -> list[Path]:
    """Image files (by suffix) in ``folder``, sorted; hidden files and folders left out."""
    root = Path(folder)
    found = root.rglob("*") if recursive else root.iterdir()
    return sorted(p for p in found
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))

# Colour detection (see :func:`is_color`): long side of the copy it looks at, width of
# the L* bands, and the RMS ab spread (Lab units) above which a photo counts as colour.
# Measured on the 239 validation photos: sepia and blue-toned JPEG copies of them spread
# at most 2.8, the colour originals at least 1.5 (5th percentile 3.1: mist, snow, sand).
_COLOR_PROBE_SIZE = 256
_L_BAND = 5.0
_COLOR_SPREAD = 3.0


class PhotoError(Exception):
    """A photo cannot be read or written; the message names the file and the reason."""


@dataclass
class Photo:
    """A decoded photo.

    ``image`` is mode ``"L"`` (8-bit gray), ``"I;16"`` (16-bit gray) or ``"RGB"``, already
    turned upright by its EXIF orientation; ``alpha`` is the transparency (mode ``"L"``)
    if the file had one; ``icc_profile``/``exif`` are the raw blocks to write back.
    """

    image: Image.Image
    alpha: Image.Image | None = None
    icc_profile: bytes | None = None
    exif: bytes | None = None
    format: str | None = None
    path: Path | None = None


def _open_checked(p: Path, max_pixels: int) -> Image.Image:
    """Open ``p`` (header only) and refuse it if it has more than ``max_pixels`` pixels.

    Pillow's own guard, the process-wide ``Image.MAX_IMAGE_PIXELS``, would warn at 89 MP
    and fail at 179 MP whatever ``max_pixels`` says, so it is lifted while the header is
    read; the check below replaces it and runs before any pixel is decoded.
    """
    pillow_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        im = Image.open(p)
    finally:
        Image.MAX_IMAGE_PIXELS = pillow_limit
    if im.width * im.height > max_pixels:
        im.close()
        raise PhotoError(f"{p}: too large ({im.width}x{im.height}), more than "
                         f"{max_pixels / 1e6:g} megapixels (possible decompression bomb; "
                         "raise --max-pixels if it is real)")
    return im


def read_photo(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> Photo:
    """Decode ``path`` (only the first frame of an animation) into a :class:`Photo`.

    Palette, 1-bit, CMYK (through its ICC profile when it has one), YCbCr and similar
    modes become RGB or 8-bit gray; 16-bit gray stays 16-bit; LA/RGBA/transparent
    palettes give their alpha to ``Photo.alpha``. Raises :class:`PhotoError` for missing,
    unreadable, truncated or oversized files, with a message naming the file.
    """
    p = Path(path)
    if not p.is_file():
        raise PhotoError(f"{p}: {'is a folder' if p.is_dir() else 'no such file'}")
    if p.stat().st_size == 0:
        raise PhotoError(f"{p}: empty file")
    try:
        with _open_checked(p, max_pixels) as im:
            fmt = im.format
            icc, exif = im.info.get("icc_profile"), im.info.get("exif")
            # exif_transpose returns a copy with the Orientation tag removed from its EXIF.
            im = ImageOps.exif_transpose(im)
            im.load()
            exif = im.info.get("exif", exif)
    except PhotoError:
        raise
    except Image.UnidentifiedImageError:
        raise PhotoError(f"{p}: cannot read image (not an image, or a format Pillow "
                         "does not know)") from None
    except Exception as e:  # Pillow signals bad data with many exception types
        reason = str(e) or type(e).__name__
        raise PhotoError(f"{p}: cannot read image ({reason})") from None
    image, alpha = _normalize_mode(im, icc)
    return Photo(image=image, alpha=alpha, icc_profile=icc, exif=exif or None, format=fmt, path=p)


def _normalize_mode(im: Image.Image, icc: bytes | None) -> tuple[Image.Image, Image.Image | None]:
    """Any Pillow mode -> (``L`` / ``I;16`` / ``RGB`` image, ``L`` alpha or None)."""
    alpha = None
    if im.mode == "LA" or im.mode == "La":
        alpha, im = im.getchannel("A"), im.convert("L")
    elif im.mode in ("RGBA", "RGBa", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        alpha, im = im.getchannel("A"), im.convert("RGB")
    if im.mode in ("L", "I;16", "RGB"):
        return im, alpha
    if im.mode in ("I", "I;16B", "I;16L", "I;16N"):
        arr = np.clip(np.asarray(im, dtype=np.int64), 0, 65535).astype(np.uint16)
        return Image.fromarray(arr), alpha
    if im.mode == "1":
        return im.convert("L"), alpha
    if im.mode == "CMYK" and icc and _icc_space(icc) == "CMYK":
        try:
            srgb = ImageCms.createProfile("sRGB")
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(im, src, srgb, outputMode="RGB"), alpha
        except ImageCms.PyCMSError:
            pass  # a broken profile: fall back to Pillow's plain conversion below
    return im.convert("RGB"), alpha


def _icc_space(icc: bytes) -> str:
    """The data colour space of an ICC profile (``"RGB"``, ``"GRAY"``, ``"CMYK"``...)."""
    return icc[16:20].decode("ascii", "replace").strip() if len(icc) >= 20 else ""


def to_source(image: Image.Image | np.ndarray) -> tuple[np.ndarray, Image.Image | None]:
    """An image -> (pixels, alpha). Pixels: ``(H, W)`` uint8/uint16 gray or ``(H, W, 3)``
    uint8 RGB, from which :func:`chromatize.color.luminance` computes L*."""
    alpha = None
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 3 and arr.shape[2] == 1:
            arr = arr[..., 0]
        if arr.ndim == 3 and arr.shape[2] == 4:
            alpha = Image.fromarray(np.ascontiguousarray(arr[..., 3]))
            arr = arr[..., :3]
        if arr.dtype.kind == "f":
            arr = (np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8)
        if arr.dtype not in (np.uint8, np.uint16) or arr.ndim not in (2, 3) or (
                arr.ndim == 3 and arr.shape[2] != 3):
            raise ValueError(f"unsupported array: shape {arr.shape}, dtype {arr.dtype}")
        return np.ascontiguousarray(arr), alpha
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        alpha = image.getchannel("A")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(image).astype(np.uint16)
    elif image.mode == "L":
        arr = np.asarray(image)
    else:
        arr = np.asarray(image.convert("RGB"))
    return arr, alpha


def read_source(image: ImageLike) -> tuple[np.ndarray, Image.Image | None]:
    """A path, PIL image or array -> (pixels, alpha) as :func:`to_source` gives them;
    a path is read with :func:`read_photo` (EXIF orientation, alpha)."""
    if isinstance(image, (str, os.PathLike)):
        photo = read_photo(image)
        src, alpha = to_source(photo.image)
        return src, photo.alpha if photo.alpha is not None else alpha
    return to_source(image)


def is_color(image: Image.Image) -> bool:
    """Whether a photo is in colour, as opposed to black-and-white.

    Toned and faded prints (sepia, selenium, cyanotype, a faint cast from the scanner)
    count as black-and-white: their colour is a function of brightness, one tint per
    tone. So the photo (downsized to a long side of 256 px) is cut into bands of L*
    5 units wide, and the RMS distance of a*b* from the mean a*b* of its band is
    measured. A toned print has a small spread (noise and JPEG artefacts, under 3
    units); a colour photo has differently coloured things at the same brightness, so a
    larger one (typically 10 to 30). Nearly monochrome colour scenes (mist, snow) can
    fall below the threshold and count as black-and-white. Gray modes (``L``,
    ``I;16``...) are black-and-white without looking.
    """
    if image.mode not in ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        return False
    small = image.convert("RGB")
    small.thumbnail((_COLOR_PROBE_SIZE, _COLOR_PROBE_SIZE), Image.BOX)
    lab = color.rgb_to_lab_np(np.asarray(small, dtype=np.float64) / 255).reshape(-1, 3)
    band = np.minimum((lab[:, 0] / _L_BAND).astype(int), int(100 / _L_BAND))
    n = np.bincount(band)
    spread = 0.0
    for ch in (1, 2):
        mean = np.bincount(band, lab[:, ch]) / np.maximum(n, 1)
        spread += float(np.mean((lab[:, ch] - mean[band]) ** 2))
    return spread ** 0.5 > _COLOR_SPREAD


def output_format(path: str | os.PathLike[str]) -> str:
    """The Pillow format to write for a file named ``path`` (PNG for unknown suffixes)."""
    return SUFFIX_FORMATS.get(Path(path).suffix.lower(), "PNG")


def write_photo(image: Image.Image, path: str | os.PathLike[str], format: str | None = None,
                overwrite: bool = False, icc_profile: bytes | None = None,
                exif: bytes | None = None) -> Path:
    """Write ``image`` to ``path`` atomically and return the path.

    ``format`` is a Pillow format name (``PNG``, ``JPEG``, ``WEBP``, ``TIFF``); by
    default it follows the suffix. JPEG has no alpha, so an RGBA image is flattened onto
    white (what a viewer shows) before it is written as JPEG; the other formats keep
    alpha. The ICC profile is kept only if it describes the image's colour space (a gray
    profile does not fit an RGB output); EXIF is kept as given.

    The photo is encoded in memory, written to a temporary file beside the target and
    renamed over it, so the target is either absent, the old file, or the complete new
    one. Missing folders are created. Raises :class:`PhotoError` if the target exists and
    ``overwrite`` is false, or if the folder cannot be written.
    """
    p = Path(path)
    fmt = (format or output_format(p)).upper()
    if fmt not in WRITABLE:
        raise PhotoError(f"{p}: cannot write format {fmt}; choose one of "
                         + ", ".join(sorted(WRITABLE)))
    if p.exists() and not overwrite:
        raise PhotoError(f"{p}: output exists (pass --overwrite to replace it)")
    if fmt == "JPEG" and image.mode in ("RGBA", "LA"):
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")
    space = "GRAY" if image.mode in ("L", "LA", "I;16") else "RGB"
    params: dict[str, object] = {}
    if icc_profile and _icc_space(icc_profile) == space:
        params["icc_profile"] = icc_profile
    if exif:
        params["exif"] = exif
    if fmt in ("JPEG", "WEBP"):
        params["quality"] = 95
    buf = io.BytesIO()
    try:
        image.save(buf, format=fmt, **params)
        atomic_write_bytes(p, buf.getvalue())
    except Exception as e:  # encoder errors or OSError from the folder
        reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
        raise PhotoError(f"{p}: cannot write ({reason})") from None
    return p
