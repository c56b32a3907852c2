"""ONNX export of a colorization network, and an ONNX Runtime model behind the same contract.

Only the network goes into the graph: L* ``(B, 1, H, W)`` in [0, 100] in, and out the
raw ``logits`` ``(B, Q, H/s, W/s)`` of a
classification model or the ``ab`` ``(B, 2, H/s, W/s)`` of a regression model, with
batch, height and width dynamic. Everything around it stays in Python and is shared with
the PyTorch path: the working size, the guided upsampling, the kept L*, and, for the
classification family, the decoding (``boost``, ``temperature``, ``samples``), which
:class:`OnnxModel` delegates to a real
:class:`~chromatize.models.heads.ClassificationHead` rebuilt from the file's metadata.

The file describes itself: the ONNX ``metadata_props`` key ``chromatize`` holds the
checkpoint's JSON metadata plus an ``onnx`` section (size multiple, ab stride, the graph's
output, and the head's bins, prior, class weights, temperature and boost).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from chromatize import __version__
from chromatize.checkpoint import CheckpointError, load_checkpoint, resolve_model, resolve_paths
from chromatize.extras import available, require
from chromatize.io import atomic_write_bytes
from chromatize.models import ColorizationModel
from chromatize.models.heads import ClassificationHead

META_KEY = "chromatize"
FORMAT = "chromatize-onnx"
FORMAT_VERSION = 1
OPSET = 17
BACKENDS = ("auto", "torch", "onnx")


class _Graph(nn.Module):
    """What the graph computes: the model's ``output`` (``logits`` or ``ab``) only."""

    def __init__(self, model: ColorizationModel, output: str) -> None:
        super().__init__()
        self.model = model
        self.output = output

    def forward(self, l: torch.Tensor) -> torch.Tensor:
        return self.model(l)[self.output]


def _head_meta(head: ClassificationHead) -> dict[str, Any]:
    return {"temperature": head.temperature, "boost": head.boost, "gain": head.gain,
            **{k: getattr(head, k).tolist() for k in ("bins", "prior", "class_weights")}}


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
    if getattr(model, "hints", False) or getattr(model, "takes_global_hint", False):
        # Their area pooling of the hints to the feature size does not trace to ONNX, and
        # a graph traced without a global hint would drop it.
        raise CheckpointError("models that take colour hints cannot be exported to ONNX "
                              "yet; they run in PyTorch (--backend torch)")
    model = model.cpu().eval()
    head = getattr(model, "head", None)
    output = "logits" if isinstance(head, ClassificationHead) else "ab"
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
        meta["head"] = _head_meta(head)  # type: ignore[arg-type]
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps({**(info or {}), "onnx": meta}, default=str)
    data = proto.SerializeToString()
    _check_parity(model, OnnxModel(data), output)
    return data


def _check_parity(model: ColorizationModel, runtime: OnnxModel, output: str) -> None:
    example = _example(model, 2, 3, 2)
    with torch.no_grad():
        want = model(example)[output]
    got = runtime.run(example)
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
    if out.exists() and not overwrite:
        raise CheckpointError(f"{out}: already exists (pass --overwrite to replace it)")
    model, info = load_checkpoint(resolve_model(path_or_name))
    atomic_write_bytes(out, export_graph(model, info))
    return out


def session_options(threads: int | None = None) -> Any:
    """ONNX Runtime options: ``threads`` intra-op threads (default: torch's count, which
    follows ``OMP_NUM_THREADS`` and the CPUs Ray gives a worker) and no spinning, which
    on a shared machine burns the cores another process is waiting for."""
    ort = require("onnxruntime", "The ONNX backend")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or torch.get_num_threads()
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


class OnnxModel:
    """An exported graph run by ONNX Runtime, behind the model contract.

    Called with L* ``(B, 1, H, W)`` in [0, 100] (sides multiples of ``size_multiple``),
    it returns ``{"ab": (B, 2, H/s, W/s)}`` in Lab units, plus ``"logits"`` for the
    classification family, decoded by ``head`` exactly as the PyTorch model decodes.
    ``to`` and ``eval`` exist so that :class:`~chromatize.inference.pipeline.Colorizer` need not
    know which runtime it holds.
    """

    def __init__(self, source: bytes | str | os.PathLike[str], threads: int | None = None,
                 device: str | torch.device = "cpu") -> None:
        self._source = source if isinstance(source, bytes) else os.fspath(source)
        self._threads = threads
        self.session = self._session(torch.device(device))
        try:
            self.info: dict[str, Any] = json.loads(
                self.session.get_modelmeta().custom_metadata_map[META_KEY])
            meta = self.info["onnx"]
            self.size_multiple: int = int(meta["size_multiple"])
            self.ab_stride: int = int(meta["ab_stride"])
            self.output: str = meta["output"]
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{self._name}: not a chromatize ONNX export "
                                  f"(metadata: {e})") from None
        self.hints = False  # hint models are not exported (see export_graph)
        self.head = _build_head(meta["head"]) if self.output == "logits" else None

    @property
    def _name(self) -> str:
        return "the exported graph" if isinstance(self._source, bytes) else self._source

    def _session(self, device: torch.device) -> Any:
        ort = require("onnxruntime", "The ONNX backend")
        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            return ort.InferenceSession(self._source, session_options(self._threads),
                                        providers=providers)
        except Exception as e:  # onnxruntime raises its own error types for bad files
            raise CheckpointError(f"{self._name}: cannot load ONNX graph "
                                  f"({str(e).splitlines()[0]})") from None

    def to(self, device: str | torch.device) -> OnnxModel:
        """Run on ``device`` where ONNX Runtime can (CUDA), else on the CPU."""
        if torch.device(device).type == "cuda":
            self.session = self._session(torch.device(device))
        return self

    def eval(self) -> OnnxModel:
        return self

    def run(self, l: torch.Tensor) -> torch.Tensor:
        """The graph's output tensor (``logits`` or ``ab``) for L* ``(B, 1, H, W)``."""
        feed = np.ascontiguousarray(l.detach().cpu().numpy(), dtype=np.float32)
        (out,) = self.session.run([self.output], {"l": feed})
        return torch.from_numpy(out)

    def __call__(self, l: torch.Tensor) -> dict[str, torch.Tensor]:
        if l.dim() != 4 or l.shape[1] != 1:
            raise ValueError(f"expected L shaped (B, 1, H, W), got {tuple(l.shape)}")
        out = self.run(l)
        if self.head is None:
            return {"ab": out}
        return {"logits": out, "ab": self.head.decode(out)}


def _build_head(meta: dict[str, Any]) -> ClassificationHead:
    """The decoding half of a classification head (its 1x1 convolution runs in the graph,
    so it is left at one input channel and never called)."""
    head = ClassificationHead(1, temperature=float(meta["temperature"]),
                              boost=float(meta["boost"]), gain=float(meta.get("gain", 1.0)))
    for key in ("bins", "prior", "class_weights"):
        setattr(head, key, torch.tensor(meta[key], dtype=torch.float32))
    return head.eval()


def load_onnx(path: str | os.PathLike[str], threads: int | None = None,
              ) -> tuple[OnnxModel, dict[str, Any]]:
    """An exported ``.onnx`` file -> (model, its checkpoint metadata)."""
    if not Path(path).is_file():
        raise CheckpointError(f"{path}: ONNX file not found")
    model = OnnxModel(path, threads=threads)
    return model, model.info


def cache_dir() -> Path:
    """Where exported graphs of checkpoints are kept: ``$CHROMATIZE_CACHE``, else
    ``$XDG_CACHE_HOME/chromatize/onnx``, else ``~/.cache/chromatize/onnx``."""
    if os.environ.get("CHROMATIZE_CACHE"):
        return Path(os.environ["CHROMATIZE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "chromatize" / "onnx"


def cached_graph(checkpoint: str | os.PathLike[str], model: ColorizationModel,
                 info: dict[str, Any]) -> bytes:
    """The checkpoint's exported graph, from the cache when an export of the same weights,
    metadata, package and torch version is there, else exported and cached (exporting
    takes seconds; reading the cache a few milliseconds). An unwritable cache only costs
    the export each time."""
    digest = hashlib.sha256(f"{__version__} {torch.__version__} {OPSET}".encode())
    for p in resolve_paths(checkpoint):
        digest.update(p.read_bytes())
    path = cache_dir() / f"{digest.hexdigest()[:32]}.onnx"
    if path.is_file():
        return path.read_bytes()
    data = export_graph(model, info)
    try:
        atomic_write_bytes(path, data)
    except OSError:
        pass  # a read-only home: the graph still serves this process
    return data


def select_backend(model: ColorizationModel, info: dict[str, Any],
                   checkpoint: str | os.PathLike[str], backend: str, device: torch.device,
                   ) -> ColorizationModel | OnnxModel:
    """The runtime a loaded checkpoint runs in. ``torch``: the model itself. ``onnx``: its
    exported graph in ONNX Runtime (the ``scale`` extra). ``auto``: ONNX Runtime when it
    is installed and the model runs on the CPU (faster there, see
    ``benchmarks/latency.py``), else PyTorch; a model that cannot be exported also
    stays in PyTorch."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "torch" or (backend == "auto" and (
            device.type != "cpu" or not available("onnxruntime", "onnx"))):
        return model
    try:
        return OnnxModel(cached_graph(checkpoint, model, info)).to(device)
    except Exception:  # noqa: BLE001 - "auto" falls back to the model that was loaded
        if backend == "onnx":
            raise
        return model
