"""ONNX export of a colorization network, for the ONNX Runtime backend
(:mod:`chromatize.inference.onnx`). Needs torch and the ``onnx`` package; running an
export needs neither.

Only the network goes into the graph: L* ``(B, 1, H, W)`` in [0, 100] in, and out the
raw ``logits`` ``(B, Q, H/s, W/s)`` of a classification model or the ``ab``
``(B, 2, H/s, W/s)`` of a regression model, with batch, height and width dynamic. The
head's decoding stays in Python, its tables written beside the graph.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from chromatize.checkpoint import CheckpointError, load_checkpoint, resolve_model
from chromatize.extras import require
from chromatize.inference.onnx import FORMAT, FORMAT_VERSION, META_KEY, OPSET, OnnxModel
from chromatize.io import atomic_write_bytes, folder_problem
from chromatize.models import ColorizationModel


class _Graph(nn.Module):
    """What the graph computes: the model's ``output`` (``logits`` or ``ab``) only."""

    def __init__(self, model: ColorizationModel, output: str) -> None:
        super().__init__()
        self.model = model
        self.output = output

    def forward(self, l: torch.Tensor) -> torch.Tensor:
        return self.model(l)[self.output]


def _example(model: ColorizationModel, batch: int, rows: int, cols: int) -> torch.Tensor:
    """A smooth L* ramp ``(batch, 1, rows * m, cols * m)`` (m = size multiple)."""
    m = model.size_multiple
    h, w = rows * m, cols * m
    return torch.linspace(5, 95, h * w).reshape(1, 1, h, w).repeat(batch, 1, 1, 1)


def export_graph(model: ColorizationModel, info: dict[str, Any] | None = None) -> bytes:
    """Export ``model`` (a loaded checkpoint's model and its metadata ``info``) to ONNX
    bytes. The graph is checked against PyTorch at a batch and shape other than the
    traced ones, so a shape frozen by tracing fails here, not later."""
    onnx = require("onnx", "ONNX export")
    if model.hints:
        # Their area pooling of the hints to the feature size does not trace to ONNX.
        raise CheckpointError("models that take colour hints cannot be exported to ONNX "
                              "yet; they run in PyTorch (--backend torch)")
    model = model.cpu().eval()
    head = model.classification_head()
    output = "logits" if head is not None else "ab"
    axes = {"l": {0: "batch", 2: "height", 3: "width"},
            output: {0: "batch", 2: "out_height", 3: "out_width"}}
    buf = io.BytesIO()
    # The TorchScript exporter: a few seconds and one self-contained file, against
    # about 25 s and external weights for the dynamo exporter on our 2 cores. Its
    # warnings are about the models' input checks, which tracing rightly drops.
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # The wrapper must be in eval mode too: the exporter restores the wrapper's mode
        # recursively afterwards, which would leave the model's batch norms training.
        torch.onnx.export(_Graph(model, output).eval(), (_example(model, 1, 2, 3),), buf,
                          dynamo=False, input_names=["l"], output_names=[output],
                          dynamic_axes=axes, opset_version=OPSET)
    proto = onnx.load_from_string(buf.getvalue())
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
            "size_multiple": model.size_multiple, "ab_stride": model.ab_stride,
            "output": output, "opset": OPSET,
            "torch_version": torch.__version__}
    if output == "logits":
        meta["head"] = head.tables()  # type: ignore[union-attr]
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps({**(info or {}), "onnx": meta}, default=str)
    data = proto.SerializeToString()
    _check_parity(model, OnnxModel(data), output)
    return data


def _check_parity(model: ColorizationModel, runtime: OnnxModel, output: str) -> None:
    example = _example(model, 2, 3, 2)
    with torch.no_grad():
        want = model(example)[output]
    got = torch.from_numpy(runtime.run(example.numpy()))
    err = (got - want).abs().max().item()
    # float32 kernels differ in summation order; a frozen shape or a wrong op is far off.
    if got.shape != want.shape or err > 1e-3 * max(1.0, want.abs().max().item()):
        raise CheckpointError(f"the exported graph does not reproduce the model (shape "
                              f"{tuple(got.shape)} vs {tuple(want.shape)}, max error {err:.3g})")


def export_model(path_or_name: str | os.PathLike[str], output: str | os.PathLike[str],
                 overwrite: bool = False) -> Path:
    """Export a checkpoint (path or shipped name) to ``output`` (``.onnx``), atomically.
    Raises :class:`CheckpointError` or :class:`~chromatize.extras.MissingExtraError`."""
    out = Path(output)
    if out.suffix.lower() != ".onnx":
        raise CheckpointError(f"{out}: the output must end in .onnx")
    if out.is_dir():
        raise CheckpointError(f"{out}: is a folder; name the .onnx file to write")
    if out.exists() and not overwrite:
        raise CheckpointError(f"{out}: already exists (pass --overwrite to replace it)")
    problem = folder_problem(out.parent)  # before the export, which takes seconds
    if problem is not None:
        raise CheckpointError(f"{out}: cannot write: {out.parent} {problem}")
    model, info = load_checkpoint(resolve_model(path_or_name))
    try:
        atomic_write_bytes(out, export_graph(model, info), overwrite)
    except FileExistsError:  # another process wrote it meanwhile: kept
        raise CheckpointError(f"{out}: already exists (pass --overwrite to replace it)") from None
    except OSError as e:
        raise CheckpointError(f"{out}: cannot write ({e.strerror or e})") from None
    return out


__all__ = ["export_graph", "export_model"]
