"""What the web app does with photos, apart from HTTP: decode uploads, keep them, run the model.

Uploads are decoded once, with :func:`chromatize.io.read_photo` and its decompression-bomb
guard, and kept by content hash in a bounded LRU :class:`PhotoStore`, so a page sends a
photo once and then refers to it by id. The network's output for a photo is cached by the
:class:`~chromatize.Colorizer` itself, so new marks, a new boost or a suggestion on the same
photo do not run the network again.

Everything that costs CPU (decoding, the model, encoding) runs in a :class:`WorkerPool`: a
few threads and a bounded number of waiting jobs, so a burst of requests queues in bounded
memory and the overflow is answered at once with 503 instead of piling up.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import Image

from chromatize import color
from chromatize.decoding import real
from chromatize.errors import ChromatizeError
from chromatize.io import MAX_PIXELS, PhotoError, read_photo

T = TypeVar("T")

#: Output formats of the API: name -> (Pillow format, media type).
FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg")}


class RequestError(ChromatizeError):
    """A request the server cannot serve: ``status`` is the HTTP code to answer with and
    the message is the one line the client sees as ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class WorkerPool:
    """``workers`` threads for model calls, with at most ``queue`` more jobs waiting;
    beyond that :meth:`run` refuses at once (503) rather than queueing without bound."""

    def __init__(self, workers: int, queue: int) -> None:
        if workers < 1 or queue < 0:
            raise ValueError(f"need workers >= 1 and queue >= 0, got {workers} and {queue}")
        self.workers, self.queue = workers, queue
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="chromatize-worker")
        self._slots = threading.BoundedSemaphore(workers + queue)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in a worker thread and await its result (or its exception)."""
        if not self._slots.acquire(blocking=False):
            raise RequestError(503, f"server busy: {self.workers + self.queue} requests "
                                    "already running or waiting; try again shortly")
        try:
            future = self._executor.submit(fn, *args)
        except RuntimeError:  # shut down while the request came in
            self._slots.release()
            raise RequestError(503, "server is shutting down") from None
        # Called on success, failure and cancellation alike, so a slot is never lost.
        future.add_done_callback(lambda _: self._slots.release())
        return await asyncio.wrap_future(future)

    def shutdown(self) -> None:
        """Drop waiting jobs; running ones finish (a model call cannot be interrupted)."""
        self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass
class StoredPhoto:
    """A decoded upload: ``image`` is ``L``, ``I;16`` or ``RGB`` (see
    :class:`chromatize.io.Photo`), ``alpha`` its transparency or None."""

    id: str
    name: str
    image: Image.Image
    alpha: Image.Image | None
    nbytes: int

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


class PhotoStore:
    """Decoded photos by id (the SHA-256 of the uploaded bytes), least recently used
    dropped first once their pixels take more than ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._photos: OrderedDict[str, StoredPhoto] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, photo_id: str) -> StoredPhoto | None:
        with self._lock:
            photo = self._photos.get(photo_id)
            if photo is not None:
                self._photos.move_to_end(photo_id)
            return photo

    def put(self, photo: StoredPhoto) -> None:
        with self._lock:
            if photo.id in self._photos:
                self._photos.move_to_end(photo.id)
                return
            self._photos[photo.id] = photo
            self._bytes += photo.nbytes
            # The newest photo stays even if it alone is above the budget.
            while self._bytes > self.max_bytes and len(self._photos) > 1:
                _, old = self._photos.popitem(last=False)
                self._bytes -= old.nbytes

    def __len__(self) -> int:
        return len(self._photos)


def photo_id(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def decode_upload(data: bytes, name: str, max_pixels: int = MAX_PIXELS) -> StoredPhoto:
    """Uploaded bytes -> a :class:`StoredPhoto`, read by :func:`chromatize.io.read_photo`
    (EXIF orientation, every mode, the decompression-bomb guard of ``max_pixels``).
    Raises :class:`RequestError` 400 for data that is not a readable photo."""
    if not data:
        raise RequestError(400, f"{name}: empty file")
    # read_photo reads files; a private temporary file keeps its checks in one place.
    with tempfile.TemporaryDirectory(prefix="chromatize-upload-") as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(data)
        try:
            photo = read_photo(path, max_pixels=max_pixels)
        except PhotoError as e:
            raise RequestError(400, str(e).replace(str(path), name)) from None
    image = photo.image
    nbytes = image.width * image.height * len(image.getbands()) * (2 if image.mode == "I;16" else 1)
    return StoredPhoto(photo_id(data), name, image, photo.alpha, nbytes)


@dataclass(frozen=True)
class Look:
    """The photo-level colours a request asks for (:mod:`chromatize.priors`): a
    ``reference`` photo (decoded as uploads are), a ``palette`` (text such as
    ``"#8b2e2e,#2e4d8b:0.3"``) and their ``strength``; or version ``variant`` (1..k) of
    ``k`` (:mod:`chromatize.inference.variants`), at ``strength``."""

    reference: StoredPhoto | None = None
    palette: str | None = None
    strength: float | None = None
    variant: int | None = None
    k: int = 4

    def __post_init__(self) -> None:
        if self.variant is not None and (self.reference is not None or self.palette is not None):
            raise RequestError(400, "a version chooses the photo's colours itself: send "
                                    "variant without reference or palette")
        if self.variant is not None and not 1 <= self.variant <= self.k:
            raise RequestError(400, f"field 'variant' must be from 1 to k ({self.k}), "
                                    f"got {self.variant}")


def encode(image: Image.Image, fmt: str, quality: int = 92) -> bytes:
    """A PIL image -> PNG or JPEG bytes (``fmt``: a key of :data:`FORMATS`). JPEG has no
    alpha, so transparent parts are shown on white, as a viewer would."""
    pil_format = FORMATS[fmt][0]
    if pil_format == "JPEG" and image.mode in ("RGBA", "LA"):
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")
    buf = io.BytesIO()
    if pil_format == "JPEG":
        image.save(buf, "JPEG", quality=quality)
    else:
        # Level 3 is within a few per cent of the default's size at a third of its time.
        image.save(buf, "PNG", compress_level=3)
    return buf.getvalue()


def data_url(data: bytes, fmt: str) -> str:
    return f"data:{FORMATS[fmt][1]};base64," + base64.b64encode(data).decode("ascii")


class Engine:
    """The model-facing half of the app: a Colorizer, the photo store and the calls the
    API makes. Its methods block (they run in the :class:`WorkerPool`)."""

    def __init__(self, colorizer: Any, max_pixels: int = MAX_PIXELS,
                 store_bytes: int = 1 << 30) -> None:
        self.colorizer = colorizer
        self.max_pixels = max_pixels
        self.store = PhotoStore(store_bytes)

    def add(self, data: bytes, name: str) -> StoredPhoto:
        """Decode an upload (or find it already decoded) and keep it."""
        known = self.store.get(photo_id(data))
        if known is not None:
            return known
        photo = decode_upload(data, name, self.max_pixels)
        self.store.put(photo)
        return photo

    def preview(self, photo: StoredPhoto, long_side: int) -> StoredPhoto:
        """A copy of the photo with its long side at most ``long_side`` (area-averaged).
        The page shows results at screen size: computing them at that size makes each
        update several times cheaper. Copies live in the store beside the photo."""
        scale = long_side / max(photo.size)
        if scale >= 1:
            return photo
        key = f"{photo.id}@{long_side}"
        small = self.store.get(key)
        if small is None:
            size = (max(1, round(photo.size[0] * scale)), max(1, round(photo.size[1] * scale)))
            image = _eight_bit(photo.image)  # Pillow resizes 16-bit gray poorly
            alpha = None if photo.alpha is None else photo.alpha.resize(size, Image.BOX)
            small = StoredPhoto(key, photo.name, image.resize(size, Image.BOX), alpha,
                                size[0] * size[1] * len(image.getbands()))
            self.store.put(small)
        return small

    def colorize(self, photo: StoredPhoto, marks: list[dict[str, Any]] | None = None,
                 boost: float | None = None, fmt: str = "png", preview: int | None = None,
                 repair: Any = None, gain: float | None = None, seed: int | None = None,
                 look: Look | None = None) -> bytes:
        """The photo colorized at its own size, keeping its L*, encoded as ``fmt``; with
        ``preview``, at most that long side instead (marks are scaled to it); with
        ``repair`` (a :class:`chromatize.restore.Repair`), its gray repaired first.
        ``seed``: start from the coloring sampled with it (an alternative), not the most
        likely; ``look``: the photo-level colours asked for."""
        with _user_errors():
            prior = self._prior(photo, look or Look())
        if preview:
            small = self.preview(photo, preview)
            marks, photo = scale_marks(marks, photo.size, small.size), small
        image = photo.image
        if repair is not None:
            from chromatize.restore import restore

            image = restore(image, repair)
        with _user_errors():
            out = self.colorizer.colorize(image, **_steering(marks, boost, gain, seed, prior))
        if isinstance(out, list):  # a sampled coloring comes as a list of one
            out = out[0]
        return encode(self._with_alpha(out, photo), fmt)

    def variants(self, photo: StoredPhoto, look: Look, marks: list[dict[str, Any]] | None = None,
                 boost: float | None = None, fmt: str = "jpeg", preview: int | None = None,
                 ) -> list[str]:
        """The ``look.k`` versions of the photo (the likeliest first), as data URLs; version
        ``i`` is what ``/api/colorize`` gives with ``variant=i``."""
        return [data_url(self.colorize(photo, marks, boost, fmt, preview,
                                       look=replace(look, variant=i)), fmt)
                for i in range(1, look.k + 1)]

    def _prior(self, photo: StoredPhoto, look: Look) -> Any:
        """The :class:`~chromatize.priors.ImagePrior` of ``look`` for ``photo``, or None.
        A version's prior comes from the photo at its own size (not a preview), so the
        page's small version and the full-size one have the same colours."""
        from chromatize.decoding import check_number
        from chromatize.priors import image_prior

        if look.variant is None:
            ref = None if look.reference is None else look.reference.image
            return image_prior(ref, look.palette, look.strength, max_pixels=self.max_pixels)
        c = self.colorizer
        check_number("variants", look.k)
        if not c.can_sample:
            raise RequestError(400, "versions need a classification model; this one "
                                    "predicts ab directly")
        output = c.infer(c.prepare(photo.image))
        return c.variant_priors(output, look.k, strength=look.strength)[look.variant - 1]

    def alternatives(self, photo: StoredPhoto, k: int, seed: int,
                     marks: list[dict[str, Any]] | None = None, boost: float | None = None,
                     fmt: str = "jpeg", gain: float | None = None,
                     ) -> list[tuple[str, int]]:
        """``k`` different plausible colorings, as (data URL, seed) pairs: the i-th is
        the coloring sampled with ``seed + i``, so :meth:`colorize` with that seed gives it
        again (at any size, with any marks)."""
        found = []
        with _user_errors():
            for s in range(seed, seed + k):
                out = self.colorizer.colorize(photo.image, **_steering(marks, boost, gain, s))
                found.append((data_url(encode(self._with_alpha(out[0], photo), fmt), fmt), s))
        return found

    def suggest(self, photo: StoredPhoto, x: int, y: int, k: int) -> dict[str, list[Any]]:
        """The ``k`` most likely colours at pixel (x, y): ``{"colors", "probs"}``."""
        with _user_errors():
            pairs = self.colorizer.suggest(photo.image, x, y, k=k)
        return {"colors": [c for c, _ in pairs], "probs": [round(float(p), 6) for _, p in pairs]}

    @staticmethod
    def gray(photo: StoredPhoto) -> bytes:
        """The photo as the model sees it, a gray PNG of its L* (what the page shows as
        the input; browsers cannot show every format the server reads)."""
        image = _eight_bit(photo.image)
        if image.mode == "RGB":
            # Gray with the same L* is gray with the same linear luminance Y.
            lin = color.srgb_to_linear(torch.from_numpy(np.asarray(image, np.float32) / 255))
            y = lin @ torch.as_tensor(color.XYZ_FROM_RGB[1], dtype=torch.float32)
            gray = color.linear_to_srgb(y).clamp_(0, 1) * 255 + 0.5
            image = Image.fromarray(gray.to(torch.uint8).numpy())
        return encode(image, "png")

    @staticmethod
    def _with_alpha(out: Image.Image, photo: StoredPhoto) -> Image.Image:
        if photo.alpha is not None and out.mode != "RGBA":
            out = out.convert("RGB")
            out.putalpha(photo.alpha)
        return out


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit gray -> 8-bit gray (for display); other modes unchanged."""
    if image.mode != "I;16":
        return image
    return Image.fromarray((np.asarray(image) >> 8).astype(np.uint8))


@contextmanager
def _user_errors() -> Iterator[None]:
    """What the Colorizer refuses as the user's doing (a :class:`ChromatizeError`: bad
    marks, boost or samples for a model that cannot) is a 400; anything else is a bug."""
    try:
        yield
    except RequestError:
        raise
    except ChromatizeError as e:
        raise RequestError(400, str(e)) from None


def scale_marks(marks: list[dict[str, Any]] | None, photo_size: tuple[int, int],
                size: tuple[int, int]) -> list[dict[str, Any]] | None:
    """Points in the pixels of a photo of ``photo_size`` (width, height) -> the same points
    on a copy of ``size``, integers and fractions alike; radii shrink with the photo but
    stay at least 1, so a mark never vanishes. A point outside the photo is a 400 that
    names the photo's own size; anything malformed is passed through as is, for the
    Colorizer to report."""
    if not marks or photo_size == size:
        return marks
    scaled = []
    for i, mark in enumerate(marks):
        mark = dict(mark)
        x, y = real(mark.get("x")), real(mark.get("y"))
        if x is not None and y is not None:
            (w, h), (sw, sh) = photo_size, size
            if not (0 <= x < w and 0 <= y < h):
                raise RequestError(400, f"marks: point {i}: ({x:g}, {y:g}) is outside the "
                                        f"{w}x{h} photo")
            # Still inside the copy: its last pixel spans [side - 1, side).
            mark["x"], mark["y"] = min(sw - 0.5, x * sw / w), min(sh - 0.5, y * sh / h)
        radius = real(mark.get("radius"))
        if radius is not None and radius > 0:
            mark["radius"] = max(1.0, radius * size[0] / photo_size[0])
        scaled.append(mark)
    return scaled


def _steering(marks: list[dict[str, Any]] | None, boost: float | None,
              gain: float | None = None, seed: int | None = None,
              prior: Any = None) -> dict[str, Any]:
    """Only the keywords given, so a photo without marks takes the plain, batched path;
    a ``seed`` asks for the one coloring sampled with it, a ``prior`` (an image-level
    :class:`~chromatize.priors.ImagePrior`) reweights the colours."""
    kwargs: dict[str, Any] = {}
    if prior is not None:
        from chromatize.decoding import Decoding

        kwargs["decoding"] = Decoding(prior=prior)
    if marks:
        kwargs["marks"] = marks
    if boost is not None:
        kwargs["boost"] = boost
    if gain is not None:
        kwargs["gain"] = gain
    if seed is not None:
        kwargs.update(samples=1, seed=seed)
    return kwargs


def default_workers() -> int:
    """One model call per two cores: torch already spreads one call over a few threads."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))
