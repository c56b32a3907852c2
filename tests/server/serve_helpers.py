"""What the server tests share: the shipped model loaded once, tiny photos as upload bytes,
and a real uvicorn server on a free localhost port."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the server tests need the serve extra (fastapi)")
pytest.importorskip("multipart", reason="the server tests need python-multipart")


def _has_hints_api() -> bool:
    from chromatize import Colorizer

    return hasattr(Colorizer, "suggest")


#: Marks and suggestions come from the hints work (``Colorizer.colorize(marks=...,
#: boost=...)``, ``Colorizer.suggest``); until that is merged these tests say so and skip.
needs_hints = pytest.mark.skipif(not _has_hints_api(), reason="needs the hints API "
                                 "(Colorizer.colorize(marks=, boost=), Colorizer.suggest)")


def photo_bytes(h: int = 48, w: int = 64, seed: int = 0, fmt: str = "PNG",
                mode: str = "L") -> bytes:
    """A small generated gray (or ``mode``) photo encoded as ``fmt``."""
    from conftest import make_color_photo

    image = make_color_photo(h, w, seed=seed).convert(mode)
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def lab(image: Image.Image) -> np.ndarray:
    """Lab ``(H, W, 3)`` of an image's RGB."""
    from chromatize import color

    return color.rgb_to_lab_np(np.asarray(image.convert("RGB"), np.float64) / 255)


@pytest.fixture(scope="session")
def colorizer() -> Any:
    """The shipped default model (a classification model), loaded once for all tests."""
    from chromatize import Colorizer

    return Colorizer.load("default", device="cpu")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """The app served by uvicorn in a thread on 127.0.0.1:``port``."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def live_server(app: Any) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server
