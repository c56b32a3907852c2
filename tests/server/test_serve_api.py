"""The API of ``chromatize serve`` (FastAPI's TestClient, the shipped model, tiny photos):
the contract, every error code, limits and concurrency."""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from serve_helpers import colorizer, decode, lab, needs_hints, photo_bytes  # noqa: F401

from chromatize import color
from chromatize.server import create_app
from chromatize.server.app import STATIC

# After serve_helpers, whose importorskip turns a missing fastapi into a skip with a reason.
from fastapi.testclient import TestClient  # noqa: I001

PNG = "image/png"


@pytest.fixture
def client(colorizer):  # noqa: F811
    with TestClient(create_app(colorizer, model_name="default")) as c:
        yield c


def post_image(client, path="/api/colorize", data=None, image=None, ctype=PNG, name="p.png"):
    image = photo_bytes() if image is None else image
    return client.post(path, data=data or {}, files={"image": (name, image, ctype)})


def hue_difference(ab1: np.ndarray, ab2: np.ndarray) -> float:
    """Angle in degrees between two a*b* colours."""
    d = np.degrees(np.arctan2(ab1[1], ab1[0]) - np.arctan2(ab2[1], ab2[0]))
    return float(abs((d + 180) % 360 - 180))


def test_health_gives_the_limits_every_face_checks(client):
    from chromatize.decoding import LIMITS
    from chromatize.inference.hints import MARK_LIMITS

    body = client.get("/api/health").json()
    assert (body["status"], body["model"]) == ("ok", "default")
    assert body["limits"]["boost"] == [0, 3] == list(LIMITS["boost"])
    assert body["limits"]["radius"] == list(MARK_LIMITS["radius"])
    assert {"seed", "samples", "gain", "x", "y", "k", "preview"} <= set(body["limits"])


def test_colorize_returns_the_input_size_with_its_lightness(client):
    gray = photo_bytes(37, 53)
    r = post_image(client, image=gray)
    assert r.status_code == 200 and r.headers["content-type"] == PNG
    out = decode(r.content)
    assert out.size == (53, 37) and out.mode == "RGB"
    l_in = color.gray_to_l_lut(8)[np.asarray(decode(gray))]
    l_out = lab(out)[..., 0]
    assert np.abs(l_out - l_in).max() < 1.5
    assert np.hypot(*lab(out)[..., 1:].transpose(2, 0, 1)).mean() > 1  # colour was added


def test_colorize_jpeg_and_photo_id_give_the_same_result(client):
    image = photo_bytes()
    first = post_image(client, data={"format": "jpeg"}, image=image)
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    assert decode(first.content).format == "JPEG"
    uploaded = post_image(client, "/api/photos", image=image).json()
    assert uploaded["width"] == 64 and uploaded["height"] == 48
    assert uploaded["id"] == first.headers["x-photo-id"]
    by_id = client.post("/api/colorize", data={"photo": uploaded["id"]}, files={"_": ("", b"")})
    assert by_id.status_code == 200
    assert by_id.content == post_image(client, image=image).content


def test_alpha_is_kept(client):
    rgba = decode(photo_bytes(mode="RGBA"))
    alpha = Image.fromarray(np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1)))
    rgba.putalpha(alpha)
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    out = decode(post_image(client, image=buf.getvalue()).content)
    assert out.mode == "RGBA"
    assert np.array_equal(np.asarray(out.getchannel("A")), np.asarray(alpha))


@needs_hints
def test_marks_keep_their_colour_and_change_the_result(client):
    plain = decode(post_image(client).content)
    marks = [{"x": 20, "y": 30, "color": "#2050e0", "radius": 3}]
    r = post_image(client, data={"marks": json.dumps(marks)})
    assert r.status_code == 200, r.text
    marked = decode(r.content)
    want = color.rgb_to_lab_np(np.array([0x20, 0x50, 0xE0]) / 255)[1:]
    got, before = lab(marked)[30, 20, 1:], lab(plain)[30, 20, 1:]
    # The mark's hue; its chroma only as far as the sRGB gamut allows at the photo's L*.
    assert hue_difference(got, want) < 10 and np.hypot(*got) > 20
    assert hue_difference(before, want) > 30 or np.hypot(*before) < 10


@needs_hints
def test_boost_makes_colours_more_vivid(client):
    def chroma(boost: float) -> float:
        out = decode(post_image(client, data={"boost": str(boost)}).content)
        return float(np.hypot(*lab(out)[..., 1:].transpose(2, 0, 1)).mean())

    assert chroma(1.0) > chroma(0.0) + 0.5


@needs_hints
def test_suggest_contract(client):
    r = post_image(client, "/api/suggest", data={"x": "10", "y": "5", "k": "4"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"colors", "probs"}
    assert len(body["colors"]) == len(body["probs"]) == 4
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in body["colors"])
    assert body["probs"] == sorted(body["probs"], reverse=True)
    assert 0 < sum(body["probs"]) <= 1.0001


def test_alternatives_differ(client):
    r = post_image(client, "/api/alternatives", data={"k": "3", "seed": "1"})
    assert r.status_code == 200, r.text
    images = r.json()["images"]
    assert len(images) == 3 and all(u.startswith("data:image/jpeg;base64,") for u in images)
    assert len(set(images)) == 3


@needs_hints
def test_new_marks_do_not_run_the_network_again(client, colorizer):  # noqa: F811
    # Network runs are the cache's misses, whichever runtime (PyTorch, ONNX) runs it.
    before = colorizer.cache_info()["misses"]
    image = photo_bytes(seed=5)
    for i in range(3):
        marks = json.dumps([{"x": 5 + i, "y": 5, "color": "#c03020", "radius": 2}])
        assert post_image(client, image=image, data={"marks": marks}).status_code == 200
    r = post_image(client, "/api/suggest", image=image, data={"x": "3", "y": "3"})
    assert r.status_code == 200
    assert colorizer.cache_info()["misses"] - before == 1


@pytest.mark.parametrize(("data", "image", "ctype", "status", "words"), [
    ({}, b"not an image at all", PNG, 400, "cannot read image"),
    ({}, b"", PNG, 400, "empty"),
    ({"marks": "[{"}, None, PNG, 400, "not valid JSON"),
    ({"marks": '{"x": 1}'}, None, PNG, 400, "list"),
    pytest.param({"marks": '[{"x": 500, "y": 1, "color": "#ff0000"}]'}, None, PNG, 400,
                 "outside", marks=needs_hints),
    pytest.param({"marks": '[{"x": 1, "y": 1, "color": "blurple"}]'}, None, PNG, 400,
                 "colour", marks=needs_hints),
    ({"boost": "lots"}, None, PNG, 400, "boost"),
    ({"format": "gif"}, None, PNG, 400, "format"),
    ({}, b"hello", "text/plain", 415, "not an image"),
    ({}, b"%PDF-1.4", "application/pdf", 415, "not an image"),
])
def test_errors_are_json(client, data, image, ctype, status, words):
    r = post_image(client, data=data, image=image, ctype=ctype)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]


def test_more_errors(client):
    assert client.post("/api/colorize", json={"image": "x"}).status_code == 415
    r = client.post("/api/colorize", data={"photo": "0" * 32}, files={"_": ("", b"")})
    assert r.status_code == 404 and "upload it again" in r.json()["error"]
    r = client.post("/api/colorize", data={"format": "png"}, files={"_": ("", b"")})
    assert r.status_code == 400 and "missing field 'image'" in r.json()["error"]
    r = post_image(client, "/api/suggest", data={"x": "64", "y": "0"})
    assert r.status_code == 400 and "outside" in r.json()["error"]
    r = post_image(client, "/api/suggest", data={"y": "0"})
    assert r.status_code == 400 and "'x'" in r.json()["error"]
    assert client.get("/api/photos/nope/gray").status_code == 404


def test_decompression_bomb_is_refused(client, tmp_path):
    from conftest import write_huge_png

    write_huge_png(tmp_path / "bomb.png", 16_000)  # 256 MP in about 30 kB
    r = post_image(client, image=(tmp_path / "bomb.png").read_bytes(), name="bomb.png")
    assert r.status_code == 400
    assert "bomb.png: too large (16000x16000)" in r.json()["error"]
    assert "chromatize-upload" not in r.json()["error"]  # no server paths leak


def test_uploads_above_the_limit_are_413(colorizer):  # noqa: F811
    big = np.random.default_rng(0).integers(0, 255, (800, 800), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, "PNG")
    data = buf.getvalue()
    assert len(data) > 0.5 * 2**20
    with TestClient(create_app(colorizer, max_upload_mb=0.5)) as c:
        # Declared length: refused before the body is read.
        r = c.post("/api/colorize", files={"image": ("big.png", data, PNG)})
        assert r.status_code == 413 and "too large" in r.json()["error"]
        # No length (chunked): refused while streaming.
        boundary = "b0undary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
                f"filename=\"big.png\"\r\nContent-Type: image/png\r\n\r\n").encode() + data * 3 \
            + f"\r\n--{boundary}--\r\n".encode()
        chunks = (body[i:i + 65536] for i in range(0, len(body), 65536))
        r = c.post("/api/colorize", content=chunks,
                   headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        assert r.status_code == 413 and "too large" in r.json()["error"]
        # The file itself counts, not only the body: a small photo still works.
        assert post_image(c).status_code == 200


@needs_hints
def test_16_concurrent_requests(client):
    images = [photo_bytes(40 + i, 56 - i, seed=i) for i in range(16)]

    def one(i: int):
        if i % 4 == 3:
            return i, post_image(client, "/api/suggest", image=images[i], data={"x": "1", "y": "1"})
        return i, post_image(client, image=images[i])

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(16)))
    for i, r in results:
        assert r.status_code == 200, r.text
        if i % 4 != 3:
            assert decode(r.content).size == (56 - i, 40 + i)
    assert client.get("/api/health").status_code == 200


def test_full_queue_answers_503_and_recovers(colorizer):  # noqa: F811
    release = threading.Event()
    real = colorizer.colorize

    def slow(*args, **kw):
        release.wait(10)
        return real(*args, **kw)

    app = create_app(colorizer, workers=1, queue=1)
    app.state.engine.colorizer = type("Slow", (), {"colorize": staticmethod(slow),
                                                  "model": colorizer.model})()
    with TestClient(app) as c, ThreadPoolExecutor(2) as pool:
        busy = [pool.submit(post_image, c, image=photo_bytes(seed=i)) for i in range(2)]
        deadline = time.monotonic() + 10
        while app.state.pool._slots._value > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        r = post_image(c, image=photo_bytes(seed=9))
        assert r.status_code == 503 and "busy" in r.json()["error"]
        release.set()
        assert [f.result().status_code for f in busy] == [200, 200]
        assert post_image(c).status_code == 200


def test_a_failing_request_does_not_take_the_server_down(colorizer):  # noqa: F811
    app = create_app(colorizer)
    real = app.state.engine.colorize
    app.state.engine.colorize = lambda *a, **k: 1 / 0
    with TestClient(app, raise_server_exceptions=False) as c:
        r = post_image(c)
        assert r.status_code == 500 and "ZeroDivisionError" in r.json()["error"]
        app.state.engine.colorize = real
        assert post_image(c).status_code == 200


def test_the_page_loads_nothing_from_another_host(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    scripts = ("colour.js", "zip.js", "app.js", "points.js", "view.js", "actions.js")
    for name in ("index.html", "style.css", *scripts):
        text = (STATIC / name).read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), name
        if name != "index.html":
            assert client.get(f"/static/{name}").status_code == 200
    assert {m.group(1) for m in re.finditer(r'(?:src|href)="([^"]+)"', page.text)} == {
        "data:,", "/static/style.css", *(f"/static/{name}" for name in scripts)}
    # FastAPI's Swagger UI and ReDoc pages pull their scripts from a CDN: they are off.
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    assert client.get("/api/openapi.json").status_code == 200


def test_static_files_are_package_data():
    text = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert '"server/static/*"' in text
    assert {p.name for p in STATIC.iterdir()} >= {"index.html", "app.js", "style.css"}


def test_16_bit_photos_and_the_gray_preview(client):
    gray16 = (np.asarray(decode(photo_bytes())).astype(np.uint16) * 257 + 100).clip(0, 65535)
    buf = io.BytesIO()
    Image.fromarray(gray16).save(buf, "PNG")
    uploaded = post_image(client, "/api/photos", image=buf.getvalue()).json()
    r = client.post("/api/colorize", data={"photo": uploaded["id"]}, files={"_": ("", b"")})
    assert r.status_code == 200 and decode(r.content).size == (64, 48)
    preview = client.get(f"/api/photos/{uploaded['id']}/gray")
    assert preview.status_code == 200 and decode(preview.content).mode == "L"
    # A colour upload's preview is gray with the photo's own L*.
    rgb = photo_bytes(mode="RGB")
    pid = post_image(client, "/api/photos", image=rgb).json()["id"]
    shown = decode(client.get(f"/api/photos/{pid}/gray").content)
    l_shown = color.gray_to_l_lut(8)[np.asarray(shown)]
    assert np.abs(l_shown - lab(decode(rgb))[..., 0]).max() < 0.6


def test_preview_is_smaller_and_scales_the_marks(client):
    from chromatize.server.engine import scale_marks

    image = photo_bytes(96, 128)
    r = post_image(client, image=image, data={"preview": "64"})
    assert r.status_code == 200 and decode(r.content).size == (64, 48)
    assert post_image(client, image=image, data={"preview": "512"}).content == \
        post_image(client, image=image).content  # never larger than the photo
    assert post_image(client, image=image, data={"preview": "2"}).status_code == 400
    marks = [{"x": 127, "y": 10, "color": "#ff0000", "radius": 6}, {"x": 3, "y": 95, "color": "red"},
             {"x": 20.5, "y": 9.5, "color": "red", "radius": 4.5}]
    assert scale_marks(marks, (128, 96), (64, 48)) == [
        {"x": 63.5, "y": 5, "color": "#ff0000", "radius": 3}, {"x": 1.5, "y": 47.5, "color": "red"},
        {"x": 10.25, "y": 4.75, "color": "red", "radius": 2.25}]
    # Fractions are points like any other (they were refused as outside the preview).
    r = post_image(client, image=image, data={"preview": "64", "marks": json.dumps(marks)})
    assert r.status_code == 200, r.text
    r = post_image(client, image=image, data={"preview": "64", "marks": json.dumps(
        [{"x": 130.5, "y": 1, "color": "red"}])})
    assert r.status_code == 400 and "outside the 128x96 photo" in r.json()["error"]


def test_the_hints_model_serves_marks():
    """`chromatize serve --model hints`: the page's marks go into the network too, and
    still keep their colour."""
    with TestClient(create_app("hints", model_name="hints")) as c:
        assert c.get("/api/health").json()["model"] == "hints"
        marks = [{"x": 20, "y": 30, "color": "#2050e0", "radius": 3}]
        r = post_image(c, data={"marks": json.dumps(marks)})
        assert r.status_code == 200, r.text
        got = lab(decode(r.content))[30, 20, 1:]
        want = color.rgb_to_lab_np(np.array([0x20, 0x50, 0xE0]) / 255)[1:]
        assert hue_difference(got, want) < 10 and np.hypot(*got) > 20
        assert c.post("/api/suggest", data={"x": 5, "y": 5},
                      files={"image": ("p.png", photo_bytes(), PNG)}).status_code == 200


@needs_hints
def test_an_alternative_is_reproduced_by_its_seed_and_gain_is_per_request(client):
    r = post_image(client, "/api/alternatives", data={"k": "2", "seed": "5",
                                                      "format": "png"})
    assert r.status_code == 200, r.text
    assert r.json()["seeds"] == [5, 6]
    second = decode(base64.b64decode(r.json()["images"][1].split(",", 1)[1]))
    again = post_image(client, data={"seed": "6"})
    assert again.status_code == 200, again.text
    assert np.abs(np.asarray(decode(again.content), int) - np.asarray(second, int)).max() <= 1
    plain = lab(decode(post_image(client).content))
    vivid = lab(decode(post_image(client, data={"gain": "2"}).content))
    assert np.hypot(*vivid[..., 1:].T).mean() > 1.3 * np.hypot(*plain[..., 1:].T).mean()
    for field, value in (("gain", "0"), ("gain", "4"), ("seed", "-1"), ("seed", "1.5")):
        r = post_image(client, data={field: value})
        assert r.status_code == 400 and field in r.json()["error"], (field, value, r.text)
