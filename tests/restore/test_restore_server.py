"""The ``restore`` field of ``POST /api/colorize``."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the server tests need the serve extra (fastapi)")
pytest.importorskip("multipart", reason="the server tests need python-multipart")

from fastapi.testclient import TestClient  # noqa: E402

from chromatize.inference.pipeline import Colorizer  # noqa: E402
from chromatize.server import create_app  # noqa: E402
from chromatize.training.damage import DamageConfig, draw_damage  # noqa: E402
from conftest import gray_photo  # noqa: E402


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def test_colorize_with_restore_field(tiny_checkpoint):
    gray = np.asarray(gray_photo(), np.float32) / 255
    damaged = draw_damage(gray, np.random.default_rng(0), DamageConfig(strength=4)).image
    data = png(Image.fromarray((damaged * 255 + 0.5).astype(np.uint8)))
    with TestClient(create_app(Colorizer.load(tiny_checkpoint), model_name="tiny")) as client:
        def post(**fields: str):
            return client.post("/api/colorize", data=fields,
                               files={"image": ("p.png", data, "image/png")})

        plain, fixed = post(), post(restore="1")
        assert plain.status_code == fixed.status_code == 200
        a, b = (Image.open(io.BytesIO(r.content)) for r in (plain, fixed))
        assert a.size == b.size == (64, 48) and plain.content != fixed.content
        assert post(restore="cracks,dust").status_code == 200
        assert post(restore="0").content == plain.content
        bad = post(restore="glue")
        assert bad.status_code == 400 and "unknown repair step 'glue'" in bad.json()["error"]
