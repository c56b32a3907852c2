"""Hostile inputs against a live ``chromatize serve`` (a subprocess, as a user runs it):
every one ends in a 4xx JSON error of one line, or a correct result, never a 500."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serve_helpers import decode, free_port, photo_bytes

SRC = Path(__file__).parents[2] / "src"
DEEP = "[" * 100_000 + "]" * 100_000


def _point(**changes: object) -> str:
    """One mark as JSON text, numbers written as given (so 5,000 digits stay digits)."""
    fields = {"x": "5", "y": "5", "color": '"#c03020"', "radius": "2", **changes}
    return "[{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}]"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``chromatize serve`` of a tiny classification model (it can sample alternatives),
    uploads limited to 1 MB; yields its URL."""
    from conftest import save_tiny_model

    model = save_tiny_model(tmp_path_factory.mktemp("model"), "effnet_lite0_cls", width=8)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "chromatize.cli", "serve", "--port", str(port), "--model",
         str(model), "--max-upload-mb", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONPATH": str(SRC)})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # a loaded machine imports torch slowly
        while True:
            try:
                httpx.get(f"{url}/api/health", timeout=2)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "the server did not start in 300 s"
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def post(url: str, path: str, data: dict[str, str], image: bytes | None = None,
         ) -> httpx.Response:
    files = {"image": ("p.png", photo_bytes() if image is None else image, "image/png")}
    return httpx.post(f"{url}{path}", data=data, files=files, timeout=120)


@pytest.mark.parametrize(("path", "data", "words"), [
    ("/api/colorize", {"marks": _point(radius="1e300")}, "radius must be a number from 0"),
    ("/api/colorize", {"marks": _point(radius="9" * 400)}, "a number of 400 digits"),
    ("/api/colorize", {"marks": _point(x="9" * 5000)}, "a number of 5000 digits"),
    ("/api/colorize", {"marks": DEEP}, "nested too deep"),
    ("/api/colorize", {"boost": "10"}, "boost must be a number from 0 to 3"),
    ("/api/colorize", {"boost": "1e999"}, "boost must be a number"),
    ("/api/alternatives", {"seed": "99999999999999999999999"}, "seed must be a whole number"),
    ("/api/alternatives", {"seed": "9" * 5000}, "field 'seed' must be a number"),
    ("/api/alternatives", {"marks": _point(radius="1e300")}, "radius must be a number"),
    ("/api/alternatives", {"marks": DEEP}, "nested too deep"),
    ("/api/alternatives", {"boost": "-1"}, "boost must be a number"),
])
def test_numbers_beyond_their_limits_are_400(server, path, data, words):
    r = post(server, path, data)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert words in error and "\n" not in error and len(error) < 200


def test_health_names_the_limits(server):
    limits = httpx.get(f"{server}/api/health").json()["limits"]
    assert limits["boost"] == [0, 3] and limits["seed"] == [0, 2**63 - 1]
    assert limits["radius"][1] >= 100


def test_a_fractional_mark_on_a_preview_is_a_mark(server):
    image = photo_bytes(96, 128)
    marks = json.dumps([{"x": 60.5, "y": 40.25, "color": "#2050e0", "radius": 5.5}])
    r = post(server, "/api/colorize", {"preview": "64", "marks": marks}, image)
    assert r.status_code == 200, r.text
    assert decode(r.content).size == (64, 48)


def test_the_413_message_names_the_limit_the_user_set(server):
    # Above 1 MB but within the form's slack: refused by the handler...
    r = post(server, "/api/colorize", {}, b"\x89PNG" + b"\0" * int(1.5 * 2**20))
    assert r.status_code == 413 and "more than 1 MB" in r.json()["error"]
    # ...and far above: refused from Content-Length, with the same words.
    r = post(server, "/api/colorize", {}, b"\x89PNG" + b"\0" * (3 * 2**20))
    assert r.status_code == 413 and "more than 1 MB" in r.json()["error"]


def test_a_huge_1_bit_png_is_refused_from_its_header(server, tmp_path):
    from conftest import write_huge_png

    write_huge_png(tmp_path / "bomb.png", 8_000)  # 64 MP in a few kB: above 50 MP
    r = post(server, "/api/colorize", {}, (tmp_path / "bomb.png").read_bytes())
    assert r.status_code == 400, r.text
    assert "too large (8000x8000)" in r.json()["error"] and "50 megapixels" in r.json()["error"]
