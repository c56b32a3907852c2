"""``chromatize colorize --engine ray`` on a local 2-CPU Ray instance: the local run's
outputs, its resume and failure rules. Ray starts once for the module (about 10 s)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from chromatize.cli import app
from conftest import gray_photo

runner = CliRunner()


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory):
    ray = pytest.importorskip("ray", reason="--engine ray needs Ray "
                              "(pip install 'chromatize[scale]')")
    pytest.importorskip("ray.data", reason="--engine ray needs Ray Data "
                        "(pip install 'chromatize[scale]')")
    # The workers inherit the environment: graphs exported by backend "auto" are cached
    # in the test's folder, not the user's.
    old = os.environ.get("CHROMATIZE_CACHE")
    os.environ["CHROMATIZE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    # Ray installs its own SIGTERM/SIGINT handlers in this process; put pytest's back after.
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        ray.init(num_cpus=2, include_dashboard=False)
    except Exception as e:  # noqa: BLE001 - Ray's own start-up, not the code under test
        pytest.skip(f"a local Ray instance did not start (a heavily loaded machine?): {e}")
    yield ray
    ray.shutdown()
    for s, handler in handlers.items():
        signal.signal(s, handler)
    if old is None:
        os.environ.pop("CHROMATIZE_CACHE", None)
    else:
        os.environ["CHROMATIZE_CACHE"] = old


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """11 gray photos (more than one chunk of 8, some sharing a size, one in a
    sub-folder) and one corrupt file."""
    root = tmp_path_factory.mktemp("ray") / "in"
    (root / "sub").mkdir(parents=True)
    for i in range(10):
        gray_photo(40 + 8 * (i % 3), 56).save(root / f"p{i:02d}.png")
    gray_photo(48, 64).save(root / "sub" / "deep.jpg")
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return root


def colorize(*args: str | Path):
    return runner.invoke(app, ["colorize", *map(str, args)])


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_ray_run_equals_local_run_and_reports_the_bad_file(ray_instance, photos,
                                                          tiny_checkpoint, tmp_path):
    local = colorize(photos, "-o", tmp_path / "local", "--model", tiny_checkpoint)
    ray_run = colorize(photos, "-o", tmp_path / "ray", "--model", tiny_checkpoint,
                       "--engine", "ray", "--workers", "2")
    for result in (local, ray_run):
        assert result.exit_code == 1, result.output  # the corrupt file failed
        assert "done 11, skipped 0, failed 1" in result.output
        assert result.output.count("failed:") == 1 and "broken.jpg" in result.output
    # The same files, pixel for pixel (PNG and JPEG from the same pixels are byte-equal).
    got, want = files(tmp_path / "ray"), files(tmp_path / "local")
    assert list(got) == list(want) and len(got) == 11 and "sub/deep.jpg" in got
    assert got == want
    with Image.open(tmp_path / "ray" / "p00.png") as im:
        rgb = np.asarray(im).astype(int)
        assert im.mode == "RGB" and rgb.std(axis=2).mean() > 0  # coloured, not gray


def test_ray_rerun_resumes_without_rewriting(ray_instance, photos, tiny_checkpoint, tmp_path):
    out = tmp_path / "out"
    first = colorize(photos, "-o", out, "--model", tiny_checkpoint, "--engine", "ray")
    assert first.exit_code == 1, first.output
    before = files(out)
    # An interrupted run: one output missing, and one that the rerun must leave alone.
    (out / "p03.png").unlink()
    (out / "p05.png").write_bytes(b"kept as it is")
    rerun = colorize(photos, "-o", out, "--model", tiny_checkpoint, "--engine", "ray",
                     "--workers", "1")
    assert rerun.exit_code == 1, rerun.output
    assert "done 1, skipped 10, failed 1" in rerun.output
    after = files(out)
    assert after["p05.png"] == b"kept as it is"
    assert after["p03.png"] == before["p03.png"]
    assert {k: v for k, v in after.items() if k != "p05.png"} == \
        {k: v for k, v in before.items() if k != "p05.png"}
