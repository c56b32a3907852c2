"""The ONNX Runtime path without torch: a cached graph is found and run, and its outputs
decoded and composed in numpy, giving the pixels the tensor path gives."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import chromatize
from chromatize import Colorizer
from chromatize.decoder import HeadTables, decode_ab
from chromatize.decoding import Decoding
from chromatize.device import _may_have_gpu
from chromatize.inference.pipeline import NetworkOutput
from chromatize.models.heads import ClassificationHead
from chromatize.priors import ImagePrior
from conftest import gray_photo, save_tiny_model

pytest.importorskip("onnxruntime", reason="the ONNX backend needs onnxruntime "
                    "(pip install 'chromatize[scale]')")
pytest.importorskip("onnx", reason="ONNX export needs onnx (pip install 'chromatize[scale]')")

from chromatize.inference.onnx import OnnxModel, cached_graph_path  # noqa: E402

#: Decodings whose numpy and tensor results are compared: the checkpoint's, each
#: setting on its own, nearly the mode, and everything at once.
DECODINGS = [Decoding(), Decoding(boost=1.0), Decoding(gain=1.4), Decoding(temperature=1.0),
             Decoding(temperature=0.05), Decoding(boost=0.5, gain=1.2, temperature=0.6)]


def _prior(q: int, seed: int = 1) -> ImagePrior:
    return ImagePrior.from_array(np.random.default_rng(seed).random(q) ** 4, strength=1.5)


@pytest.fixture(scope="module")
def cls_checkpoint(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("cls"), "effnet_lite0_cls", width=8)


def _levels(image) -> np.ndarray:
    return np.asarray(image).astype(np.int16)


def test_cold_colorize_with_a_cached_graph_imports_neither_torch_nor_onnx(
        cls_checkpoint, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("CHROMATIZE_CACHE", str(cache))
    Colorizer.load(cls_checkpoint, backend="onnx")  # exports and caches the graph
    assert cached_graph_path(cls_checkpoint).is_file()
    gray_photo(40, 56).save(tmp_path / "one.png")
    device = "cpu" if _may_have_gpu() else "auto"  # auto: decided without torch here
    code = f"""
import sys
from typer.testing import CliRunner
from chromatize.cli import app
r = CliRunner().invoke(app, ["colorize", {str(tmp_path / "one.png")!r}, "-o",
                             {str(tmp_path / "out")!r}, "--model", {str(cls_checkpoint)!r},
                             "--device", {device!r}, "--boost", "0.5", "--gain", "1.2"])
assert r.exit_code == 0, r.output
print(sorted(m for m in ("torch", "onnx", "safetensors", "chromatize.models")
             if m in sys.modules))
"""
    src = str(Path(chromatize.__file__).resolve().parents[1])
    env = {**os.environ, "CHROMATIZE_CACHE": str(cache),
           "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr + out.stdout
    assert ast.literal_eval(out.stdout.strip().splitlines()[-1]) == []
    assert (tmp_path / "out" / "one.png").is_file()


def test_numpy_decoding_equals_the_heads(cls_checkpoint):
    """The ONNX tables decode numpy logits as the PyTorch head decodes tensors."""
    torch.manual_seed(0)
    head = ClassificationHead(1, temperature=0.38, boost=0.2, gain=1.1)
    q = head.bins.shape[0]
    head.prior.copy_(torch.rand(q) + 0.1)
    head.prior /= head.prior.sum()
    head.class_weights.copy_(1 + 3 * torch.rand(q))
    tables = HeadTables.from_meta(head.tables())
    logits = 4 * torch.randn(1, q, 6, 10)
    for d in DECODINGS + [Decoding(prior=_prior(q))]:
        want = head.decode(logits, d)
        got = tables.decode(logits.numpy(), d)
        assert isinstance(got, np.ndarray) and got.dtype == np.float32
        np.testing.assert_allclose(got, want.numpy(), atol=1e-3, rtol=1e-4)
    mode = decode_ab(logits, head.bins, 0.0)  # temperature 0: the arg-max bin
    np.testing.assert_array_equal(decode_ab(logits.numpy(), tables.bins, 0.0), mode.numpy())
    got = tables.sample(logits.numpy(), 3, 7, Decoding(boost=0.5))
    want = head.sample(logits, 3, 7, Decoding(boost=0.5))
    np.testing.assert_allclose(got, want.numpy(), atol=1e-3, rtol=1e-4)


def test_numpy_finish_equals_the_tensor_finish_within_one_level(cls_checkpoint):
    """``finish`` of ONNX Runtime's numpy output equals ``finish`` of the same output as
    tensors (the path every output took before) within one 8-bit level, for each
    decoding, an image-level prior and samples."""
    colorizer = Colorizer.load(cls_checkpoint, backend="onnx", working_size=64)
    assert isinstance(colorizer.model, OnnxModel)
    photo = gray_photo(90, 130)
    source = colorizer.prepare(photo)
    out = colorizer.infer(source, cache=False)
    assert isinstance(out.ab, np.ndarray) and isinstance(out.logits, np.ndarray)
    as_tensors = NetworkOutput(out.l_small, torch.from_numpy(out.ab),
                               torch.from_numpy(out.logits))
    q = out.logits.shape[0]
    for d in DECODINGS + [Decoding(prior=_prior(q)), Decoding(samples=2, seed=5)]:
        got, want = colorizer.finish(source, out, d), colorizer.finish(source, as_tensors, d)
        for g, w in zip(*([got, want] if isinstance(got, list) else [[got], [want]])):
            assert np.abs(_levels(g) - _levels(w)).max() <= 1, d
    colorful = colorizer.finish(source, out, Decoding(gain=3.0))
    assert np.abs(_levels(colorful)[..., 0] - _levels(colorful)[..., 2]).mean() > 0.5


def test_a_damaged_cache_entry_is_exported_again(cls_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("CHROMATIZE_CACHE", str(tmp_path / "cache"))
    path = cached_graph_path(cls_checkpoint)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"cut short")
    colorizer = Colorizer.load(cls_checkpoint)  # auto: ONNX Runtime on the CPU
    assert isinstance(colorizer.model, OnnxModel)
    assert path.stat().st_size > 1000  # replaced by a good export
