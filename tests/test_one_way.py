"""One way through: batch, Ray, film frames and the server give the pixels of
``Colorizer.colorize`` for the same photo and decoding."""

from __future__ import annotations

import io
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from chromatize.batch import BatchOptions, colorize_files
from chromatize.decoding import Decoding
from chromatize.inference.pipeline import Colorizer
from conftest import gray_photo, save_tiny_model

DECODING = Decoding(boost=0.5, gain=1.2)


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Colorizer, Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("oneway")
    model = save_tiny_model(folder / "m", "effnet_lite0_cls", width=8)
    colorizer = Colorizer.load(model, device="cpu", backend="torch")
    gray_photo(64, 96).save(folder / "a.png")
    want = np.asarray(colorizer.colorize(folder / "a.png", decoding=DECODING))
    return colorizer, folder, want


def test_the_stages_are_colorize(setup):
    colorizer, folder, want = setup
    source = colorizer.prepare(folder / "a.png")
    got = colorizer.finish(source, colorizer.infer(source), DECODING)
    assert np.array_equal(np.asarray(got), want)


def test_batch(setup, tmp_path):
    colorizer, folder, want = setup
    summary = colorize_files([folder / "a.png"], colorizer,
                             BatchOptions(out_dir=tmp_path, decoding=DECODING))
    assert summary.done == [tmp_path / "a.png"]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), want)


def test_film_frames(setup):
    from chromatize.video.colorize import FrameColorizer

    colorizer, folder, want = setup
    frames = FrameColorizer(colorizer, temporal=False, decoding=DECODING)
    got = frames(np.asarray(Image.open(folder / "a.png")))
    assert np.array_equal(got, want)


def test_server(setup):
    pytest.importorskip("fastapi", reason="the server test needs the serve extra (fastapi)")
    pytest.importorskip("multipart", reason="the server test needs python-multipart")
    from fastapi.testclient import TestClient

    from chromatize.server import create_app

    colorizer, folder, want = setup
    with TestClient(create_app(colorizer)) as client:
        r = client.post("/api/colorize", files={"image": ("a.png", (folder / "a.png").read_bytes(),
                                                          "image/png")},
                        data={"boost": "0.5", "gain": "1.2"})
    assert r.status_code == 200, r.text
    got = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))
    assert np.array_equal(got, want)


def test_ray(setup, tmp_path):
    pytest.importorskip("ray", reason="the Ray test needs the scale extra (ray)")
    from chromatize.batch_ray import colorize_files_ray

    colorizer, folder, want = setup
    model = folder / "m" / "effnet_lite0_cls"
    # Ray's own SIGTERM/SIGINT handlers outlive its shutdown: keep the test process's.
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        summary = colorize_files_ray([folder / "a.png"], model,
                                     BatchOptions(out_dir=tmp_path, decoding=DECODING),
                                     backend="torch", workers=1)
    finally:
        for s, handler in handlers.items():
            signal.signal(s, handler)
    assert summary.done == [tmp_path / "a.png"], summary
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), want)
