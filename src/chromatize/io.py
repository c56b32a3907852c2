"""Photo I/O: read anything Pillow reads, keep what the output should carry, write atomically.

Reading turns every file into one of three pixel layouts the pipeline understands (8-bit
gray, 16-bit gray, 8-bit RGB; float images become 16-bit gray or 8-bit RGB) plus an
optional alpha channel, the ICC profile and the EXIF block. Writing goes to a temporary
file in the target folder, renamed over the target only once it is complete, so an
interrupted run never leaves half a photo behind and an existing output can always be
trusted to be whole; outputs are claimed before they are computed, and what killed runs
leave behind is cleaned on the next write into the folder.
"""

from __future__ import annotations

import errno
import io
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps

from chromatize.errors import ChromatizeError, UsageError


#: Default limit on the pixels of one photo (200 MP): a 50 MP photo is fine, a
#: 20000 x 20000 one (400 MP, 1.2 GB as RGB before any processing) is refused unread.
MAX_PIXELS = 200_000_000

#: Output formats: Pillow's name -> the file suffix written.
WRITABLE = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif"}
SUFFIX_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP",
                  ".tif": "TIFF", ".tiff": "TIFF"}
#: Suffixes of the files a folder is searched for.
IMAGE_SUFFIXES = frozenset(SUFFIX_FORMATS) | {".bmp", ".gif"}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Our own hidden files beside outputs: temporaries of atomic writes (photos, films,
# exported graphs), ``.<name>.<writer pid>.<random>.tmp``, and claims on outputs being
# computed, ``.<name>.claim`` holding the claimant's pid. A writer killed by SIGKILL (or
# SIGTERM, whose default action runs no clean-up) leaves them behind; the next write into
# the folder removes those whose process is gone, or that are older than STALE_SECONDS
# (the pid may have been reused). Films were once written to ``.<name>.<random>.part``
# with no pid: those go by age alone.
_TEMPORARY = re.compile(r"^\..+\.(\d+)\.[a-z0-9_]+\.tmp$")
_OLD_PART = re.compile(r"^\..+\.[a-z0-9_]{8}\.part$")
_CLAIM = ".claim"
STALE_SECONDS = 24 * 3600
#: A claim still empty after this long lost its writer between creating and filling it.
_EMPTY_CLAIM_SECONDS = 60
_swept: set[Path] = set()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone, or a number no pid can be
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _claim_pid(claim: Path) -> int | None:
    try:
        text = claim.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _is_stale(p: Path) -> bool:
    try:
        age = time.time() - p.stat().st_mtime
    except OSError:
        return False  # already gone
    if age > STALE_SECONDS:
        return True
    if _OLD_PART.match(p.name):
        return False
    match = _TEMPORARY.match(p.name)
    pid = int(match.group(1)) if match else _claim_pid(p)
    if pid is None:
        return age > _EMPTY_CLAIM_SECONDS
    return pid != os.getpid() and not _alive(pid)


def sweep_stale(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries and claims that dead writers left in ``folder``; returns
    what was removed. Only our own name patterns are touched."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        ours = name.startswith(".") and (_TEMPORARY.match(name) or _OLD_PART.match(name)
                                         or name.endswith(_CLAIM))
        if ours and entry.is_file(follow_symlinks=False) and _is_stale(Path(entry.path)):
            try:
                Path(entry.path).unlink(missing_ok=True)
            except OSError:  # a read-only folder: nothing will be written there either
                continue
            removed.append(Path(entry.path))
    return removed


def _sweep_once(folder: Path) -> None:
    """:func:`sweep_stale` the first time this process writes into ``folder``."""
    key = folder.resolve()
    if key not in _swept:
        _swept.add(key)
        sweep_stale(folder)


@contextmanager
def atomic_path(path: str | os.PathLike[str], overwrite: bool = True) -> Iterator[Path]:
    """A temporary path beside ``path`` for the block to fill, renamed to ``path`` when
    the block ends normally and removed otherwise, so ``path`` is either absent, the old
    file or the complete new one. Creates missing folders; a temporary left by a killed
    run is removed on the next write into the folder. Without ``overwrite`` an existing
    ``path`` is never replaced, not even one that another process finished while the
    block ran: :class:`FileExistsError` instead. Other OSErrors (a read-only folder)
    pass through."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(path.parent)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.",
                                suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp makes the file private; give it the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        _put(tmp, path, overwrite)
    finally:
        tmp.unlink(missing_ok=True)


def _put(tmp: Path, path: Path, overwrite: bool) -> None:
    """Move the finished ``tmp`` to ``path``; without ``overwrite`` a hard link, which
    fails rather than replace a file that exists (the caller removes ``tmp``)."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # no hard links on this file system (FAT, some network mounts)
        if path.exists():
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
        os.replace(tmp, path)


def atomic_write_file(path: str | os.PathLike[str], write: Callable[[Path], None],
                      overwrite: bool = True) -> None:
    """Call ``write(tmp)`` to fill a temporary file beside ``path``, then rename it into
    place (see :func:`atomic_path`, whose ``overwrite`` it takes)."""
    with atomic_path(path, overwrite) as tmp:
        write(tmp)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes,
                       overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    atomic_write_file(path, lambda tmp: tmp.write_bytes(data), overwrite)


def claim_output(path: str | os.PathLike[str]) -> bool:
    """Claim ``path`` for this process before computing it: create ``.<name>.claim``
    beside it atomically (O_EXCL), so that two runs into one folder never compute and
    replace the same output. Returns False while another live run holds the claim; a
    dead run's claim is taken over. Release with :func:`release_output`. Raises
    OSError when the folder cannot be written."""
    p = Path(path)
    claim = p.with_name(f".{p.name}{_CLAIM}")
    p.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(p.parent)
    for _ in range(2):
        try:
            fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666 & ~_umask())
        except FileExistsError:
            if not _is_stale(claim):
                return False
            claim.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True
    return False


def release_output(path: str | os.PathLike[str]) -> None:
    """Drop this process's claim on ``path`` (see :func:`claim_output`). A claim that
    cannot be removed (the medium went read-only) is left for the next run's sweep: its
    process is gone by then."""
    p = Path(path)
    try:
        p.with_name(f".{p.name}{_CLAIM}").unlink(missing_ok=True)
    except OSError:
        pass


def folder_problem(folder: str | os.PathLike[str]) -> str | None:
    """Why files cannot be written into ``folder``, or None if they can (a missing folder
    can be when its nearest existing parent is a writable folder). Nothing is created, so
    a command can check its output folder before any work and leave nothing behind."""
    p = Path(folder)
    if p.exists() and not p.is_dir():
        return "is a file, not a folder"
    existing = p
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"cannot be created: {existing} is a file"
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == p:
            return "is not writable"
        return f"cannot be created in {existing} (not writable)"
    return None


def list_photos(folder: str | os.PathLike[str], recursive: bool = True) -> list[Path]:
    """Image files (by suffix) in ``folder``, sorted; hidden files and folders left out."""
    root = Path(folder)
    found = root.rglob("*") if recursive else root.iterdir()
    return sorted(p for p in found
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))

class PhotoError(ChromatizeError):
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

    def __array__(self, dtype: np.dtype | None = None, copy: bool | None = None) -> np.ndarray:
        """The pixels of ``image`` (without alpha), so a photo reads like its array."""
        return np.asarray(self.image, dtype=dtype)


#: What the library accepts as a photo: a path, a decoded :class:`Photo`, a PIL image or
#: a numpy array (see :func:`to_pixels`).
ImageLike = Photo | Image.Image | np.ndarray | str | os.PathLike[str]


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
            fmt, stored_16 = im.format, _stored_16_bit(im)
            icc, exif = im.info.get("icc_profile"), im.info.get("exif")
            # exif_transpose returns a copy with the Orientation tag removed from its EXIF.
            im = ImageOps.exif_transpose(im)
            im.load()
            exif = im.info.get("exif", exif)
    except PhotoError:
        raise
    except Image.UnidentifiedImageError:
        raise PhotoError(f"{p}: cannot read image (not an image, or a format chromatize "
                         "cannot read; JPEG, PNG, TIFF and WebP work)") from None
    except Exception as e:  # Pillow signals bad data with many exception types
        reason = str(e) or type(e).__name__
        raise PhotoError(f"{p}: cannot read image ({reason})") from None
    image, alpha = normalize_mode(im, icc, sixteen_bit=stored_16)
    return Photo(image=image, alpha=alpha, icc_profile=icc, exif=exif or None, format=fmt, path=p)


def _stored_16_bit(im: Image.Image) -> bool:
    """Whether an opened (not yet loaded) image of mode ``I`` holds 16-bit samples
    (16-bit PGM, say), not 32-bit integers: Pillow gives both mode ``I``."""
    return im.mode == "I" and any(
        str(args if isinstance(args, str) else args[0]).startswith("I;16")
        for args in (tile[3] for tile in im.tile) if args)


def normalize_mode(im: Image.Image, icc: bytes | None = None, sixteen_bit: bool = False,
                   ) -> tuple[Image.Image, Image.Image | None]:
    """Any Pillow mode -> (``L`` / ``I;16`` / ``RGB`` image, ``L`` alpha or None): the one
    place where modes, transparency and 16-bit gray are decided, for files and for
    images handed to the library. ``icc``: the profile that converts CMYK.

    32-bit integer gray (mode ``I``) is read by the range its values are in, as float
    gray is (:func:`float_to_unit`: a TIFF of 8-bit values in 32-bit integers is not
    nearly black), unless ``sixteen_bit`` says the file stored 16-bit samples."""
    alpha = None
    if im.mode == "LA" or im.mode == "La":
        alpha, im = im.getchannel("A"), im.convert("L")
    elif im.mode in ("RGBA", "RGBa", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        alpha, im = im.getchannel("A"), im.convert("RGB")
    if im.mode in ("L", "I;16", "RGB"):
        return im, alpha
    if im.mode == "F" or (im.mode == "I" and not sixteen_bit):
        # 32-bit float or integer gray, as scientific TIFFs hold it
        unit = float_to_unit(np.asarray(im, dtype=np.float64))
        return Image.fromarray((unit * 65535 + 0.5).astype(np.uint16)), alpha
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


def float_to_unit(arr: np.ndarray) -> np.ndarray:
    """Float pixels -> [0, 1], by the range they are evidently in: at most 1 is already
    [0, 1], at most 255 is 8-bit, at most 65535 is 16-bit, beyond that the photo's own
    maximum is white. Negative values and NaN become black."""
    arr = np.nan_to_num(np.asarray(arr, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(arr.max(initial=0.0))
    scale = next((s for s in (1.0, 255.0, 65535.0) if top <= s), top)
    return np.clip(arr / scale, 0.0, 1.0)


def _icc_space(icc: bytes) -> str:
    """The data colour space of an ICC profile (``"RGB"``, ``"GRAY"``, ``"CMYK"``...)."""
    return icc[16:20].decode("ascii", "replace").strip() if len(icc) >= 20 else ""


def to_pixels(image: Image.Image | np.ndarray | Photo,
              ) -> tuple[np.ndarray, Image.Image | None]:
    """A PIL image, array or :class:`Photo` -> ``(pixels, alpha)``.

    Pixels: ``(H, W)`` uint8 or uint16 gray, or ``(H, W, 3)`` uint8 RGB, from which
    :func:`chromatize.color.luminance` computes L*; alpha: mode ``L`` or None. Arrays may
    be gray ``(H, W)``/``(H, W, 1)``, RGB or RGBA, uint8/uint16 or float (see
    :func:`float_to_unit`: [0, 1], or 0..255 / 0..65535 when the values say so); PIL
    images of any mode go through the same rules as files (:func:`normalize_mode`).
    Raises :class:`~chromatize.errors.UsageError` for anything else, and for a photo
    without pixels (0 x 0).
    """
    if isinstance(image, Photo):
        pixels, alpha = np.asarray(image.image), image.alpha
    elif isinstance(image, Image.Image):
        image, alpha = normalize_mode(image)
        pixels = np.asarray(image)
    elif isinstance(image, np.ndarray):
        pixels, alpha = _array_pixels(image) if image.size else (image, None)
    else:
        raise UsageError(f"a photo must be a path, a PIL image or a numpy array, got "
                         f"{type(image).__name__}")
    if pixels.size == 0:
        h, w = (tuple(pixels.shape) + (0, 0))[:2]
        raise UsageError(f"a photo of {w}x{h} pixels has nothing to colorize")
    return pixels, alpha


def _array_pixels(arr: np.ndarray) -> tuple[np.ndarray, Image.Image | None]:
    """A numpy array -> ``(pixels, alpha)`` as :func:`to_pixels` gives them."""
    alpha = None
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[2] == 4:
        alpha = Image.fromarray(np.ascontiguousarray(arr[..., 3]))
        arr = arr[..., :3]
    if arr.dtype.kind == "f":
        arr = (float_to_unit(arr) * 255 + 0.5).astype(np.uint8)
    if arr.dtype not in (np.uint8, np.uint16) or arr.ndim not in (2, 3) or (
            arr.ndim == 3 and arr.shape[2] != 3):
        raise UsageError(f"unsupported array: shape {arr.shape}, dtype {arr.dtype} (gray "
                         "(H, W) or RGB(A) (H, W, 3 or 4), uint8, uint16 or float)")
    return np.ascontiguousarray(arr), alpha


def read_source(image: ImageLike) -> tuple[np.ndarray, Image.Image | None]:
    """A path, :class:`Photo`, PIL image or array -> ``(pixels, alpha)`` as
    :func:`to_pixels` gives them; a path is read with :func:`read_photo` (EXIF
    orientation, alpha; raises :class:`PhotoError`)."""
    if isinstance(image, (str, os.PathLike)):
        image = read_photo(image)
    return to_pixels(image)


def output_format(path: str | os.PathLike[str]) -> str:
    """The Pillow format to write for a file named ``path`` (PNG for unknown suffixes)."""
    return SUFFIX_FORMATS.get(Path(path).suffix.lower(), "PNG")


#: Why an output is not written: one message for the library, the batch and the CLI.
OUTPUT_EXISTS = "output exists (pass --overwrite to replace it)"


def output_taken(path: str | os.PathLike[str], overwrite: bool = False) -> bool:
    """Whether :func:`write_photo` refuses ``path``: it exists and ``overwrite`` is off."""
    return not overwrite and Path(path).exists()


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
    if output_taken(p, overwrite):
        raise PhotoError(f"{p}: {OUTPUT_EXISTS}")
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
        atomic_write_bytes(p, buf.getvalue(), overwrite)
    except FileExistsError:  # written by another process meanwhile: kept
        raise PhotoError(f"{p}: {OUTPUT_EXISTS}") from None
    except Exception as e:  # encoder errors or OSError from the folder
        reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
        raise PhotoError(f"{p}: cannot write ({reason})") from None
    return p
