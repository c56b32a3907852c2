"""ONNX export and the ONNX Runtime backend: parity with PyTorch, the CLI, decoding options."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from chromatize.cli import app
from chromatize.extras import MissingExtraError, require
from chromatize import Colorizer
from chromatize.decoding import Decoding
from conftest import gray_photo, make_color_photo

runner = CliRunner()
pytest.importorskip("onnxruntime", reason="the ONNX backend needs onnxruntime "
                    "(pip install 'chromatize[scale]')")
pytest.importorskip("onnx", reason="ONNX export needs onnx (pip install 'chromatize[scale]')")

from chromatize.inference.onnx import OnnxModel  # noqa: E402
from chromatize.inference.onnx_export import export_model  # noqa: E402

SIZE = 64  # working size: small, so the shipped model runs in milliseconds


@pytest.fixture(scope="module")
def default_onnx(tmp_path_factory) -> Path:
    """The shipped default model, exported once through the CLI."""
    path = tmp_path_factory.mktemp("onnx") / "default.onnx"
    result = runner.invoke(app, ["export", "default", "-o", str(path)])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> Path:
    """Graphs exported by backend="auto" go to a per-test cache, not the user's."""
    monkeypatch.setenv("CHROMATIZE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def levels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def mean_level_diff(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(levels(a) - levels(b)).mean())


def test_export_keeps_metadata_and_matches_pytorch(default_onnx):
    onnx_c = Colorizer.load(default_onnx, working_size=SIZE)
    torch_c = Colorizer.load("default", working_size=SIZE, backend="torch")
    assert isinstance(onnx_c.model, OnnxModel) and not isinstance(torch_c.model, OnnxModel)
    meta = onnx_c.info["onnx"]
    assert onnx_c.info["model"]["name"] == "effnet_lite0_cls"
    assert meta["output"] == "logits" and len(meta["head"]["bins"]) == 261
    assert meta["head"]["boost"] == torch_c.model.head.boost
    assert meta["head"]["gain"] == torch_c.model.head.gain  # the decoding runs in Python
    assert onnx_c.model.size_multiple == 32 and onnx_c.can_sample
    # Two photo shapes: the graph's height and width are dynamic.
    for photo in (gray_photo(48, 64), gray_photo(100, 60)):
        a, b = onnx_c.colorize(photo), torch_c.colorize(photo)
        assert a.size == photo.size
        assert mean_level_diff(a, b) <= 1.0
        # The colours are really there (parity is not two gray images agreeing).
        assert np.abs(levels(b)[..., 0] - levels(b)[..., 2]).mean() > 1


def test_boost_and_samples_decode_as_pytorch(default_onnx):
    photo = gray_photo(64, 64)
    onnx_c = Colorizer.load(default_onnx, working_size=SIZE, boost=1.0)
    torch_c = Colorizer.load("default", working_size=SIZE, boost=1.0, backend="torch")
    plain = Colorizer.load(default_onnx, working_size=SIZE, boost=0.0)
    assert mean_level_diff(onnx_c.colorize(photo), torch_c.colorize(photo)) <= 1.0
    # Boost acts in the Python decoding, after the graph: it changes the colours.
    assert mean_level_diff(onnx_c.colorize(photo), plain.colorize(photo)) > 1.0
    got = onnx_c.colorize(photo, samples=2, seed=3)
    want = torch_c.colorize(photo, samples=2, seed=3)
    assert all(mean_level_diff(g, w) <= 1.0 for g, w in zip(got, want))
    assert mean_level_diff(got[0], got[1]) > 0.5


def test_cli_colorize_with_onnx_model_equals_pytorch_run(default_onnx, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    gray_photo(48, 64).save(src / "a.png")
    gray_photo(40, 40).save(src / "b.jpg")
    for out, args in (("onnx", ["--model", str(default_onnx)]),
                      ("torch", ["--model", "default", "--backend", "torch"])):
        result = runner.invoke(app, ["colorize", str(src), "-o", str(tmp_path / out),
                                     "--size", str(SIZE), *args])
        assert result.exit_code == 0, result.output
        assert "done 2, skipped 0, failed 0" in result.output
    for name in ("a.png", "b.jpg"):
        with Image.open(tmp_path / "onnx" / name) as a, Image.open(tmp_path / "torch" / name) as b:
            assert mean_level_diff(a, b) <= 1.0


def test_regression_checkpoint_exports_ab(tiny_checkpoint, tmp_path):
    path = export_model(tiny_checkpoint, tmp_path / "tiny.onnx")
    model = Colorizer.load(path).model
    assert isinstance(model, OnnxModel) and model.head is None and not Colorizer.load(path).can_sample
    photo = gray_photo(48, 64)
    a = Colorizer.load(path).colorize(photo)
    b = Colorizer.load(tiny_checkpoint, backend="torch").colorize(photo)
    assert mean_level_diff(a, b) <= 1.0
    with pytest.raises(ValueError, match="already exists"):
        export_model(tiny_checkpoint, path)
    named = tmp_path / "[bold]m.onnx"  # printed as itself, not as Rich markup
    result = runner.invoke(app, ["export", str(tiny_checkpoint), "-o", str(named)])
    assert result.exit_code == 0 and f"wrote {named}" in result.output, result.output


def test_export_to_unwritable_places_is_one_line(tiny_checkpoint, tmp_path, read_only,
                                                 monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    (tmp_path / "taken.onnx").mkdir()
    read_only(folder)
    for target, extra, words in ((folder / "m.onnx", [], "ro is not writable"),
                                 (folder / "sub" / "m.onnx", [], "cannot be created in"),
                                 (tmp_path / "taken.onnx", ["--overwrite"], "is a folder")):
        result = runner.invoke(app, ["export", str(tiny_checkpoint), "-o", str(target), *extra])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
        assert result.output.startswith(f"error: {target}: ") and words in result.output
    # A folder that turns read-only (or denies us) between the check and the write.
    import chromatize.inference.onnx_export as onnx_module

    def denied(path, data, overwrite=True):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(onnx_module, "atomic_write_bytes", denied)
    result = runner.invoke(app, ["export", str(tiny_checkpoint), "-o", str(tmp_path / "p.onnx")])
    assert result.exit_code == 2 and "cannot write (Permission denied)" in result.output


def test_auto_backend_runs_checkpoints_in_onnxruntime_from_a_cache(tiny_checkpoint, private_cache):
    assert isinstance(Colorizer.load(tiny_checkpoint).model, OnnxModel)
    cached = list(private_cache.glob("*.onnx"))
    assert len(cached) == 1
    # A second load reads the cached graph instead of exporting again.
    stamp = cached[0].stat().st_mtime_ns
    assert isinstance(Colorizer.load(tiny_checkpoint).model, OnnxModel)
    assert cached[0].stat().st_mtime_ns == stamp
    assert not isinstance(Colorizer.load(tiny_checkpoint, backend="torch").model, OnnxModel)
    with pytest.raises(ValueError, match="backend must be"):
        Colorizer.load(tiny_checkpoint, backend="tensorrt")


@pytest.mark.parametrize("backend", ["auto", "onnx"])
def test_a_damaged_cache_entry_is_exported_again(tiny_checkpoint, private_cache, backend):
    assert isinstance(Colorizer.load(tiny_checkpoint).model, OnnxModel)
    (cached,) = private_cache.glob("*.onnx")
    good = cached.read_bytes()
    cached.write_bytes(good[: len(good) // 2])  # a write cut short
    # Neither a silent fall back to PyTorch (auto) nor an error (onnx): rebuilt and used.
    assert isinstance(Colorizer.load(tiny_checkpoint, backend=backend).model, OnnxModel)
    assert cached.read_bytes() == good


def test_an_unreadable_cache_costs_an_export_not_a_traceback(tiny_checkpoint, private_cache,
                                                              monkeypatch):
    import pathlib

    private_cache.mkdir()
    real = pathlib.Path.read_bytes

    def denied(self):
        if private_cache in self.parents:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(pathlib.Path, "read_bytes", denied)
    for backend in ("auto", "onnx"):
        assert isinstance(Colorizer.load(tiny_checkpoint, backend=backend).model, OnnxModel)


def test_an_exported_graph_refuses_the_torch_backend(default_onnx, tmp_path):
    gray_photo().save(tmp_path / "a.png")
    result = runner.invoke(app, ["colorize", str(tmp_path / "a.png"), "--model",
                                 str(default_onnx), "--backend", "torch"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {default_onnx}: an exported graph runs in ONNX "
                                    "Runtime only")
    assert not (tmp_path / "a_colorized.png").exists()


def test_not_an_export_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    result = runner.invoke(app, ["colorize", str(tmp_path), "--model", str(bad)])
    assert result.exit_code == 2
    assert "cannot load ONNX graph" in result.output and "Traceback" not in result.output


def test_missing_extras_name_what_to_install(tmp_path, tiny_checkpoint, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if absent
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'chromatize\[scale\]'"):
        require("onnxruntime", "The ONNX backend")
    gray_photo().save(tmp_path / "a.png")
    for extra in (["--backend", "onnx"], ["--engine", "ray"]):
        result = runner.invoke(app, ["colorize", str(tmp_path / "a.png"), "-o",
                                     str(tmp_path / "out"), "--model", str(tiny_checkpoint),
                                     *extra])
        assert result.exit_code == 2, result.output
        assert "pip install 'chromatize[scale]'" in result.output
    # auto quietly stays with PyTorch when ONNX Runtime is missing
    assert not isinstance(Colorizer.load(tiny_checkpoint).model, OnnxModel)


def test_hint_models_stay_in_pytorch(tmp_path):
    from chromatize.checkpoint import CheckpointError
    from conftest import save_tiny_model

    ckpt = save_tiny_model(tmp_path, "effnet_lite0_hints", width=8)
    with pytest.raises(CheckpointError, match="hints cannot be exported"):
        export_model(ckpt, tmp_path / "hints.onnx")
    colorizer = Colorizer.load(ckpt)  # auto: falls back to the PyTorch model
    assert not isinstance(colorizer.model, OnnxModel) and colorizer.takes_hints


def test_a_reference_is_matched_cell_by_cell_as_in_pytorch(default_onnx):
    """The graph's head tables carry the feature basis, so ONNX Runtime matches a
    reference's cells to the photo's as PyTorch does (and not by the histogram alone)."""
    photo = make_color_photo(64, 96)
    reference = np.asarray(photo)[:, :40]
    onnx_c = Colorizer.load(default_onnx, working_size=SIZE)
    torch_c = Colorizer.load("default", working_size=SIZE, backend="torch")
    assert len(onnx_c.info["onnx"]["head"]["feature_basis"]) == 64
    gray = photo.convert("L")
    a, b = (c.colorize(gray, reference=reference, strength=1.0) for c in (onnx_c, torch_c))
    assert mean_level_diff(a, b) <= 1.0
    from chromatize.priors import ImagePrior, from_photos

    histogram_only = ImagePrior(from_photos([reference], 1.0).hist, 1.0)
    assert mean_level_diff(a, onnx_c.colorize(gray, decoding=Decoding(prior=histogram_only))) > 0.5
