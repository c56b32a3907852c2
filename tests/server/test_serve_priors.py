"""Photo-level colours in the API (issue 23): ``reference`` (an uploaded colour photo),
``palette``, ``strength`` and ``variant`` on ``/api/colorize``, the K versions of
``/api/variants``, and every bad value answered with 4xx JSON of one line."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from serve_helpers import colorizer, decode, lab, photo_bytes  # noqa: F401

from chromatize import Colorizer
from chromatize.inference.variants import write_index
from chromatize.server import create_app

from fastapi.testclient import TestClient  # noqa: I001

RED = (200, 40, 30)


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def client(colorizer, tmp_path_factory):  # noqa: F811
    """The shipped model with a tiny index of six generated colour photos."""
    from conftest import make_color_photo

    folder = tmp_path_factory.mktemp("town")
    paths = []
    for i in range(6):
        tint = np.array(RED if i % 2 else (30, 60, 200))
        base = np.asarray(make_color_photo(40, 56, seed=i), dtype=np.float64)
        paths.append(folder / f"p{i}.png")
        Image.fromarray((0.4 * base + 0.6 * tint).astype(np.uint8)).save(paths[-1])
    write_index(paths, folder / "town.index", colorizer)
    with_index = Colorizer(colorizer.model, colorizer.info, device="cpu",
                           index=folder / "town.index")
    with TestClient(create_app(with_index, model_name="default")) as c:
        yield c


def post(client, path="/api/colorize", data=None, reference=None):
    files = {"image": ("p.png", photo_bytes(), "image/png")}
    if reference is not None:
        files["reference"] = reference
    return client.post(path, data=data or {}, files=files)


def mean_a(data: bytes) -> float:
    return float(lab(decode(data))[..., 1].mean())


def test_reference_and_palette_pull_the_colours(client):
    auto = post(client)
    red = Image.new("RGB", (32, 32), RED)
    ref = post(client, data={"strength": "2"}, reference=("red.png", png(red), "image/png"))
    pal = post(client, data={"palette": "#c82820", "strength": "2"})
    assert auto.status_code == ref.status_code == pal.status_code == 200
    assert mean_a(ref.content) > mean_a(auto.content) + 3
    assert mean_a(pal.content) > mean_a(auto.content) + 3


def test_variants_and_one_variant_agree(client):
    r = post(client, "/api/variants", data={"k": "3", "format": "png"})
    assert r.status_code == 200
    images = r.json()["images"]
    assert len(images) == 3 and len(set(images)) == 3
    import base64

    second = base64.b64decode(images[1].split(",", 1)[1])
    one = post(client, data={"variant": "2", "k": "3"})
    assert one.status_code == 200 and one.content == second


@pytest.mark.parametrize("data, reference, status, text", [
    ({"strength": "abc"}, None, 400, "field 'strength' must be a number"),
    ({"strength": "4", "palette": "#c82820"}, None, 400, "field 'strength' must be between"),
    ({"strength": "1"}, None, 400, "strength needs a reference photo or a palette"),
    ({"palette": "#zz0000"}, None, 400, "is not #rrggbb"),
    ({"variant": "5", "k": "4"}, None, 400, "field 'variant' must be between 1 and 4"),
    ({"variant": "0"}, None, 400, "field 'variant' must be between"),
    ({"k": "17"}, None, 400, "field 'k' must be between 1 and 16"),
    ({"variant": "1", "palette": "#c82820"}, None, 400, "without reference or palette"),
    ({}, ("r.png", b"not an image", "image/png"), 400, "r.png"),
    ({}, ("r.txt", b"hello", "text/plain"), 415, "not an image type"),
    ({}, ("gray.png", png(Image.new("L", (16, 16), 128)), "image/png"), 400,
     "a reference must be a colour photo"),
])
def test_bad_values_are_4xx_json_of_one_line(client, data, reference, status, text):
    r = post(client, data=data, reference=reference)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert text in error and "\n" not in error


def test_reference_as_text_and_variants_with_a_palette_are_refused(client):
    r = client.post("/api/colorize", data={"reference": "red.png"},
                    files={"image": ("p.png", photo_bytes(), "image/png")})
    assert r.status_code == 400 and "'reference' must be an image file" in r.json()["error"]
    r = post(client, "/api/variants", data={"palette": "#c82820"})
    assert r.status_code == 400 and "without reference or palette" in r.json()["error"]


def test_a_model_without_an_index_says_so(colorizer):  # noqa: F811
    bare = Colorizer(colorizer.model, colorizer.info, device="cpu")
    with TestClient(create_app(bare, model_name="default")) as c:
        r = post(c, data={"variant": "1"})
    assert r.status_code == 400 and "no index of colour photos" in r.json()["error"]
