"""The web app of ``chromatize serve``: one page and a small JSON/multipart API.

API (every error is a 4xx/5xx with the body ``{"error": "one line"}``):

* ``GET /api/health`` -> ``{"status": "ok", "model": NAME, "limits": {name: [lo, hi]}}``:
  the inclusive range of every number a client gives (decoding settings, marks, ``k``,
  ``preview``), the same limits the CLI and the Python API check.
* ``POST /api/colorize`` (multipart): ``image`` (file) or ``photo`` (an id from
  ``/api/photos``), optional ``marks`` (JSON list of ``{"x", "y", "color", "radius"}`` in
  image pixels, each with an optional ``reach``: ``local``, ``object`` or ``photo``),
  ``boost`` and ``gain`` (numbers), ``seed`` (start from the coloring sampled with it: an
  alternative), ``format`` (``png``, the default, or ``jpeg``) -> the photo colorized at
  its own size, its L* kept. Header ``X-Photo-Id``: the photo's id. Optional ``preview``
  (a long side in pixels): a smaller result, for the page's display. Optional
  ``restore`` (``1``/``all``, or some of ``cracks,dust,grain,fade``): repair the gray
  first (:mod:`chromatize.restore`). Photo-level colours (docs/priors.md): ``reference``
  (a colour image file, decoded with the guards of photo uploads), ``palette``
  (``#8b2e2e,#2e4d8b:0.3``), ``strength`` (0-3); or ``variant`` (1..``k``, ``k`` default
  4): that one of ``/api/variants``.
* ``POST /api/variants`` (multipart): ``image`` or ``photo``, ``k`` (default 4, at most
  16), ``strength``, ``boost``, ``marks``, ``format`` (default ``jpeg``), ``preview`` ->
  ``{"images": [data URL, ...]}``: K versions, the automatic result first, then each
  with the colours of a group of the indexed colour photos most like this one, the
  likeliest first.
* ``POST /api/suggest`` (multipart): ``image`` or ``photo``, ``x``, ``y``, optional ``k``
  (default 6) -> ``{"colors": ["#rrggbb", ...], "probs": [...]}``, most likely first.
* ``POST /api/photos`` (multipart ``image``) -> ``{"id", "name", "width", "height"}``: upload
  once, then send ``photo=ID`` instead of the file (404 once it has been evicted).
* ``GET /api/photos/{id}/gray`` -> the photo's L* as a gray PNG.
* ``POST /api/alternatives``: ``image`` or ``photo``, ``k`` (default 4), ``seed`` (default
  0), ``boost``, ``gain``, ``marks`` -> ``{"images": [data URL, ...], "seeds": [...]}``, K
  plausible colorings, the i-th sampled with ``seed + i`` (send it to ``/api/colorize``
  to make it the working result).
* ``GET /api/info`` -> what the page needs to know (limits, model abilities).

Status codes: 400 unreadable image, bad marks or fields; 404 unknown photo id; 413 body
above ``max_upload_mb``; 415 not multipart or not an image type; 503 worker queue full.
Nothing is loaded from another host: the page's files are package data and FastAPI's
``/docs`` and ``/redoc`` (Swagger UI and ReDoc from a CDN) are off.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chromatize.decoding import LIMITS, check_number
from chromatize.errors import UsageError
from chromatize.imaging.hints import MARK_LIMITS, MarksError, parse_marks_json
from chromatize.server.engine import (
    FORMATS,
    Engine,
    Look,
    RequestError,
    StoredPhoto,
    WorkerPool,
    default_workers,
)

log = logging.getLogger("chromatize.server")

MB = 1 << 20
#: The server's own limit on a photo's pixels, far below the CLI's 200 MP: one worker
#: decoding a 199-megapixel upload (24 kB of 1-bit PNG) holds about 3.6 GB for 44 s.
#: Checked from the header, before any pixel is decoded (``chromatize serve
#: --max-pixels``; ``chromatize.cli.SERVE_MAX_PIXELS`` repeats it).
MAX_PIXELS = 50_000_000
#: Room for the form fields and multipart framing around the image itself.
FORM_SLACK = 1 * MB
MAX_K = 16
#: The server's own fields beside the decoding settings and marks: alternatives per
#: request and the preview's long side.
FORM_LIMITS = {"k": (1, MAX_K), "preview": (16, 100_000)}
#: Content Security Policy of every response: the page may only talk to its own origin.
CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
       "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
STATIC = Path(str(resources.files("chromatize.server") / "static"))


class BodyLimit:
    """ASGI middleware: refuse request bodies above ``max_bytes`` with 413, from the
    Content-Length header before reading anything, and while streaming for bodies sent
    without one (chunked) or that lie about it."""

    def __init__(self, app: ASGIApp, max_bytes: int, too_large: str) -> None:
        self.app, self.max_bytes, self.too_large = app, max_bytes, too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, too_large = self.max_bytes, self.too_large
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await JSONResponse({"error": too_large}, 413)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                # Raised from inside form parsing; the HTTPException handler answers 413.
                raise HTTPException(413, too_large)
            return message

        await self.app(scope, limited, send)


def create_app(colorizer_or_model: Any = "default", max_upload_mb: float = 50,
               workers: int | None = None, queue: int = 32, max_pixels: int = MAX_PIXELS,
               store_mb: int = 1024, model_name: str | None = None) -> FastAPI:
    """The app for a :class:`~chromatize.Colorizer`, or for a model to load (a checkpoint
    path or a shipped name such as ``"default"``).

    ``max_upload_mb``: largest upload (413 above); ``workers`` threads run model calls with
    at most ``queue`` more waiting (503 beyond); ``max_pixels``: the decompression-bomb
    limit of :func:`chromatize.io.read_photo`; ``store_mb``: memory for decoded photos
    (least recently used dropped first); ``model_name``: what ``/api/health`` reports.
    """
    if isinstance(colorizer_or_model, (str, os.PathLike)):
        from chromatize.inference.pipeline import Colorizer

        model_name = model_name or Path(colorizer_or_model).name
        # Each photo the page shows takes two entries (its preview and its full size).
        colorizer = Colorizer.load(colorizer_or_model, cache_size=32)
    else:
        colorizer = colorizer_or_model
        model_name = model_name or str(colorizer.info.get("model", {}).get("name", "custom"))
    api = _Api(colorizer, Engine(colorizer, max_pixels=max_pixels, store_bytes=store_mb * MB),
               WorkerPool(workers or default_workers(), queue), model_name, max_upload_mb)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        api.pool.shutdown()

    app = FastAPI(title="chromatize", docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json", lifespan=lifespan)
    app.state.engine, app.state.pool = api.engine, api.pool
    # The body may exceed the photo's limit by the form's framing; the message names the
    # limit the user set.
    app.add_middleware(BodyLimit, max_bytes=api.max_upload + FORM_SLACK,
                       too_large=api.too_large)
    _add_errors(app)
    _add_page_routes(app, api)
    _add_colour_routes(app, api)
    _add_choice_routes(app, api)
    return app


class _Api:
    """What the routes share: the colorizer, its engine and worker pool, and reading a
    request's form, photo and photo-level colours with the server's guards."""

    def __init__(self, colorizer: Any, engine: Engine, pool: WorkerPool, model_name: str,
                 max_upload_mb: float) -> None:
        self.colorizer, self.engine, self.pool = colorizer, engine, pool
        self.model_name, self.max_upload_mb = model_name, max_upload_mb
        self.max_upload = int(max_upload_mb * MB)
        self.too_large = f"upload too large: more than {max_upload_mb:g} MB (--max-upload-mb)"
        # Every number a client gives, [lo, hi] inclusive, for the page's controls.
        self.limits = {name: list(r)
                       for name, r in {**LIMITS, **MARK_LIMITS, **FORM_LIMITS}.items()}

    async def read_form(self, request: Request) -> FormData:
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            raise RequestError(415, f"send multipart/form-data, not {ctype or 'no content type'}")
        return await request.form(max_files=2, max_fields=16)

    async def decoded(self, upload: UploadFile) -> StoredPhoto:
        """An uploaded image file, checked (type, size) and decoded in a worker with the
        guards of :func:`chromatize.io.read_photo`."""
        ctype = (upload.content_type or "").split(";")[0].strip().lower()
        if ctype and not ctype.startswith("image/") and ctype != "application/octet-stream":
            raise RequestError(415, f"{_safe_name(upload.filename)}: {ctype} is not an "
                                    "image type")
        data = await upload.read()
        if len(data) > self.max_upload:
            raise RequestError(413, self.too_large)
        return await self.pool.run(self.engine.add, data, _safe_name(upload.filename))

    def stored(self, pid: str) -> StoredPhoto:
        photo = self.engine.store.get(pid)
        if photo is None:
            raise RequestError(404, f"unknown photo {pid[:40]!r} (expired); upload it again")
        return photo

    async def photo_of(self, form: FormData) -> StoredPhoto:
        """The ``image`` upload (decoded in a worker) or the stored ``photo`` id."""
        upload = form.get("image")
        if isinstance(upload, UploadFile):
            return await self.decoded(upload)
        if upload is not None:
            raise RequestError(400, "field 'image' must be a file")
        pid = form.get("photo")
        if not isinstance(pid, str) or not pid:
            raise RequestError(400, "missing field 'image' (a file) or 'photo' (an id)")
        return self.stored(pid)

    async def look_of(self, form: FormData, variant: bool = True) -> Look:
        """The photo-level colours asked for: ``reference`` (an image file), ``palette``,
        ``strength``, and (``variant``) ``variant`` of ``k``."""
        upload = form.get("reference")
        if upload is not None and not isinstance(upload, UploadFile):
            raise RequestError(400, "field 'reference' must be an image file")
        reference = None if upload is None else await self.decoded(upload)
        lo, hi = LIMITS["strength"]
        k = _number(form, "k", int, 4, 1, LIMITS["variants"][1])
        return Look(reference, _field(form, "palette"),
                    _number(form, "strength", float, None, lo, hi),
                    _number(form, "variant", int, None, 1, k) if variant else None, k)

    def info(self) -> dict[str, Any]:
        colorizer, head = self.colorizer, self.colorizer.head
        return {"model": self.model_name, "max_upload_mb": self.max_upload_mb,
                "can_sample": bool(colorizer.can_sample),
                # Whether /api/variants and ``variant`` work (an index of colour photos).
                "variants": bool(colorizer.can_sample and colorizer.index_path is not None),
                "limits": {k: LIMITS[k] for k in ("strength", "variants")},
                **({"boost": 0.0, "gain": 1.0} if head is None else
                   {k: head.defaults()[k] for k in ("boost", "gain")}),
                "workers": self.pool.workers, "formats": list(FORMATS)}


def _add_errors(app: FastAPI) -> None:
    """Security headers on every answer; every error a JSON ``{"error": one line}``."""
    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.exception_handler(RequestError)
    async def request_error(_: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": f"bad request: {exc.errors()}"}, 400)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not the client's fault: keep the traceback in the log, answer one line.
        log.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, 500)


def _add_page_routes(app: FastAPI, api: _Api) -> None:
    """The page, its static files, health and info, and the photo store."""
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": api.model_name, "limits": api.limits}

    @app.get("/api/info")
    async def info() -> dict[str, Any]:
        return api.info()

    @app.post("/api/photos")
    async def upload_photo(request: Request) -> dict[str, Any]:
        photo = await api.photo_of(await api.read_form(request))
        return {"id": photo.id, "name": photo.name, "width": photo.size[0],
                "height": photo.size[1]}

    @app.get("/api/photos/{pid}/gray")
    async def gray(pid: str) -> Response:
        photo = api.stored(pid)
        return Response(await api.pool.run(api.engine.gray, photo), media_type="image/png",
                        headers={"Cache-Control": "private, max-age=3600"})


def _add_colour_routes(app: FastAPI, api: _Api) -> None:
    """Colorize, versions, suggestions and alternatives."""
    engine, pool, colorizer = api.engine, api.pool, api.colorizer

    @app.post("/api/colorize")
    async def colorize(request: Request) -> Response:
        form = await api.read_form(request)
        fmt = _choice(form, "format", "png", FORMATS)
        marks, boost = _marks(form), _setting(form, "boost")
        gain, seed = _setting(form, "gain"), _setting(form, "seed")
        preview = _number(form, "preview", int, None, *FORM_LIMITS["preview"])
        repair = _repair(form)
        look = await api.look_of(form)
        photo = await api.photo_of(form)
        data = await pool.run(partial(engine.colorize, photo, marks, boost, fmt, preview,
                                      repair=repair, gain=gain, seed=seed, look=look))
        return Response(data, media_type=FORMATS[fmt][1], headers={"X-Photo-Id": photo.id})

    @app.post("/api/variants")
    async def variants(request: Request) -> dict[str, list[str]]:
        form = await api.read_form(request)
        if not colorizer.can_sample:
            raise RequestError(400, "this model gives a single coloring (no versions)")
        look = await api.look_of(form, variant=False)
        if look.reference is not None or look.palette is not None:
            raise RequestError(400, "versions choose the photo's colours themselves: send "
                                    "them without reference or palette")
        marks, boost = _marks(form), _setting(form, "boost")
        fmt = _choice(form, "format", "jpeg", FORMATS)
        preview = _number(form, "preview", int, None, *FORM_LIMITS["preview"])
        photo = await api.photo_of(form)
        images = await pool.run(engine.variants, photo, look, marks, boost, fmt, preview)
        return {"images": images}

def _add_choice_routes(app: FastAPI, api: _Api) -> None:
    """Colours to choose from: suggestions at a point, alternative colorings."""
    engine, pool, colorizer = api.engine, api.pool, api.colorizer

    @app.post("/api/suggest")
    async def suggest(request: Request) -> dict[str, list[Any]]:
        form = await api.read_form(request)
        x, y = _number(form, "x", int), _number(form, "y", int)
        k = _number(form, "k", int, 6, *FORM_LIMITS["k"])
        photo = await api.photo_of(form)
        w, h = photo.size
        if not (0 <= x < w and 0 <= y < h):  # type: ignore[operator]
            raise RequestError(400, f"({x}, {y}) is outside the {w}x{h} photo")
        return await pool.run(engine.suggest, photo, x, y, k)

    @app.post("/api/alternatives")
    async def alternatives(request: Request) -> dict[str, list[Any]]:
        form = await api.read_form(request)
        if not colorizer.can_sample:
            raise RequestError(400, "this model gives a single coloring (no alternatives)")
        k = _number(form, "k", int, 4, *FORM_LIMITS["k"])
        seed = _setting(form, "seed") or 0
        if seed > LIMITS["seed"][1] - k:  # alternative i is sampled with seed + i
            raise RequestError(400, f"seed must be at most {LIMITS['seed'][1] - k} for "
                                    f"{k} alternatives (the i-th uses seed + i)")
        marks, boost = _marks(form), _setting(form, "boost")
        gain = _setting(form, "gain")
        fmt = _choice(form, "format", "jpeg", FORMATS)
        photo = await api.photo_of(form)
        found = await pool.run(engine.alternatives, photo, k, seed, marks, boost, fmt, gain)
        return {"images": [url for url, _ in found], "seeds": [s for _, s in found]}


def _safe_name(filename: str | None) -> str:
    """The client's file name, for messages only (never a path on this machine)."""
    name = Path((filename or "image").replace("\\", "/")).name
    return "".join(c for c in name if c.isprintable())[:100] or "image"


def _field(form: FormData, key: str) -> str | None:
    value = form.get(key)
    if isinstance(value, UploadFile):
        raise RequestError(400, f"field {key!r} must be text, not a file")
    return value if value not in (None, "") else None


def _number(form: FormData, key: str, kind: type, default: Any = ..., lo: float | None = None,
            hi: float | None = None) -> Any:
    """A numeric form field: required when ``default`` is ``...``, checked against
    [lo, hi]; 400 otherwise."""
    text = _field(form, key)
    if text is None:
        if default is ...:
            raise RequestError(400, f"missing field {key!r}")
        return default
    try:
        value = kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise RequestError(400, f"field {key!r} must be {what}, got {text[:40]!r}") from None
    if value != value or (lo is not None and value < lo) or (hi is not None and value > hi):
        raise RequestError(400, f"field {key!r} must be between {lo:g} and {hi:g}, "
                                f"got {text[:40]!r}")
    return value


def _choice(form: FormData, key: str, default: str, allowed: Any) -> str:
    value = (_field(form, key) or default).lower()
    value = "jpeg" if value == "jpg" else value
    if value not in allowed:
        raise RequestError(400, f"field {key!r} must be one of {', '.join(allowed)}, "
                                f"got {value[:40]!r}")
    return value


def _setting(form: FormData, key: str) -> float | int | None:
    """A decoding setting (``boost``, ``seed``...) checked against
    :data:`chromatize.decoding.LIMITS`, the limits every face uses; None when absent."""
    text = _field(form, key)
    if text is None:
        return None
    try:
        # Python refuses integers of more than 4,300 digits: a ValueError, a 400 too.
        value = int(text) if text.strip().lstrip("+-").isdigit() else float(text)
    except ValueError:
        raise RequestError(400, f"field {key!r} must be a number, got {text[:40]!r}") from None
    try:
        return check_number(key, value)
    except UsageError as e:
        raise RequestError(400, str(e)) from None


def _repair(form: FormData) -> Any:
    """The ``restore`` field as a :class:`chromatize.restore.Repair`, or None."""
    text = _field(form, "restore")
    if text is None:
        return None
    from chromatize.errors import UsageError
    from chromatize.restore import Repair, parse_steps

    try:
        steps = parse_steps(text[:100])
    except UsageError as e:
        raise RequestError(400, f"restore: {e}") from None
    return Repair(steps) if steps else None


def _marks(form: FormData) -> list[dict[str, Any]] | None:
    """The ``marks`` field: a JSON list of points (checked in detail by the Colorizer)."""
    text = _field(form, "marks")
    if text is None:
        return None
    try:
        marks = parse_marks_json(text)
    except MarksError as e:
        raise RequestError(400, str(e)) from None
    if not isinstance(marks, list) or not all(isinstance(m, dict) for m in marks):
        raise RequestError(400, 'marks: expected a JSON list of {"x", "y", "color", "radius"}')
    return marks
