"""Photo I/O: read anything Pillow reads, keep what the output should carry, write atomically."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps


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


def read_photo(path: str | os.PathLike[str]) -> Photo:
    """Decode ``path`` into a :class:`Photo`; raises :class:`PhotoError`."""
    p = Path(path)
    try:
        with Image.open(p) as im:
            fmt = im.format
            im = ImageOps.exif_transpose(im)
            im.load()
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise PhotoError(f"{p}: cannot read image ({e})") from None
    alpha = None
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        alpha = im.getchannel("A")
    if im.mode not in ("L", "I;16", "RGB"):
        im = im.convert("RGB")
    return Photo(image=im, alpha=alpha, icc_profile=im.info.get("icc_profile"),
                 exif=im.info.get("exif"), format=fmt, path=p)
