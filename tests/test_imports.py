"""Light imports: reading photos, colour maths and every ``--help`` load neither torch nor
a model (measured in a fresh interpreter, since this one has imported them already)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import chromatize

HEAVY = ("torch", "onnx", "safetensors", "chromatize.models", "chromatize.checkpoint")


def _heavy_after(code: str) -> list[str]:
    """The heavy modules loaded by running ``code`` in a fresh interpreter."""
    src = str(Path(chromatize.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    probe = f"{code}\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return ast.literal_eval(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("code", [
    "import chromatize.io, chromatize.color",
    "import chromatize.cli",
    "from chromatize import io; io.read_source; import chromatize",
])
def test_light_modules_import_no_torch(code):
    assert _heavy_after(code) == []


def test_the_colorize_path_imports_no_torch():
    """The modules of ``chromatize colorize`` (checkpoint lookup, the ONNX Runtime backend,
    the pipeline, batch, the decoding maths, device policy) import torch only when a
    PyTorch model is used (see tests/scale/test_onnx_cold_start.py for a whole run)."""
    code = ("import chromatize.checkpoint, chromatize.device, chromatize.decoder, "
            "chromatize.inference.onnx, chromatize.inference.pipeline, chromatize.batch")
    assert [m for m in _heavy_after(code) if m != "chromatize.checkpoint"] == []


def test_scribble_runs_without_torch(tmp_path):
    """``chromatize scribble`` (Levin, no network) runs end to end, photo larger than its
    solve size so the guided upsampling runs too, without importing torch."""
    import numpy as np
    from PIL import Image

    ramp = np.linspace(90, 170, 700)[None].repeat(600, 0)
    Image.fromarray(ramp.astype(np.uint8)).save(tmp_path / "g.png")
    marks = '[{"x": 100, "y": 80, "color": "#c03030", "radius": 4}]'
    (tmp_path / "m.json").write_text(marks)
    code = f"""
from typer.testing import CliRunner
from chromatize.cli import app
r = CliRunner().invoke(app, ["scribble", {str(tmp_path / "g.png")!r}, "--marks",
                             {str(tmp_path / "m.json")!r}, "-o", {str(tmp_path / "o.png")!r}])
assert r.exit_code == 0, r.output
"""
    assert _heavy_after(code) == []
    from chromatize.color import rgb_to_lab_np

    out = np.asarray(Image.open(tmp_path / "o.png").convert("RGB"))
    assert out.shape == (600, 700, 3)
    got, want = rgb_to_lab_np(out[80, 100] / 255), rgb_to_lab_np(np.array([192, 48, 48]) / 255)
    assert np.abs(got[1:] - want[1:]).max() < 3  # the mark's a*b* on the photo's L*


def test_every_help_loads_no_torch_and_no_model():
    code = """
from typer.testing import CliRunner
from chromatize.cli import app
runner = CliRunner()
names = [c.name or c.callback.__name__ for c in app.registered_commands]
assert len(names) >= 6, names
for args in [[]] + [[name] for name in names]:
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output, (args, result.output)
"""
    assert _heavy_after(code) == []


def test_colorizer_is_still_importable_from_the_package():
    from chromatize import Colorizer
    from chromatize.inference.pipeline import Colorizer as Inner

    assert Colorizer is Inner


def test_cli_default_max_pixels_is_the_library_one():
    from chromatize import cli, io

    assert cli.MAX_PIXELS == io.MAX_PIXELS


def test_serve_default_max_pixels_is_the_server_one():
    pytest.importorskip("fastapi", reason="the server needs the serve extra (fastapi)")
    from chromatize import cli
    from chromatize.server import app

    assert cli.SERVE_MAX_PIXELS == app.MAX_PIXELS
