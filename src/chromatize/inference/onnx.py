"""The ONNX Runtime backend: an exported graph behind the model contract, on numpy arrays.

Only the network is in the graph (see :mod:`chromatize.inference.onnx_export`): L*
``(B, 1, H, W)`` in [0, 100] in, and out the raw ``logits`` ``(B, Q, H/s, W/s)`` of a
classification model or the ``ab`` ``(B, 2, H/s, W/s)`` of a regression model. Everything
around it is shared with the PyTorch path: the working size, the guided upsampling, the
kept L*, and for the classification family the decoding, which runs the same maths
(:class:`~chromatize.decoder.BinDecoder`) on the head's tables read from the file.

The file describes itself: the ONNX ``metadata_props`` key ``chromatize`` holds the
checkpoint's JSON metadata plus an ``onnx`` section (size multiple, ab stride, the graph's
output, and the head's bins, prior, class weights, temperature, boost and gain).

This module imports neither torch nor the ``onnx`` package: a checkpoint whose graph is
already cached (:func:`cached_graph_path`) is found and run with numpy, Pillow and ONNX
Runtime only, so a cold ``chromatize colorize`` does not wait for them; torch and ``onnx``
are imported only to export a graph that is not cached yet.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from chromatize.version import __version__
from chromatize.checkpoint import CheckpointError, resolve_paths
from chromatize.decoder import HeadTables
from chromatize.device import device_type
from chromatize.errors import UsageError
from chromatize.extras import available, require
from chromatize.io import atomic_write_bytes

if TYPE_CHECKING:
    from chromatize.models import ColorizationModel

META_KEY = "chromatize"
FORMAT = "chromatize-onnx"
FORMAT_VERSION = 2  # 2: the head's tables carry its feature basis (reference matching)
OPSET = 17
BACKENDS = ("auto", "torch", "onnx")

log = logging.getLogger("chromatize.onnx")


def default_threads() -> int:
    """Intra-op threads of a session: torch's count when torch is loaded (it follows
    ``torch.set_num_threads``, ``OMP_NUM_THREADS`` and the CPUs Ray gives a worker), else
    ``OMP_NUM_THREADS``, else 0: ONNX Runtime's own choice, one per physical core, as
    torch's default."""
    if "torch" in sys.modules:
        return int(sys.modules["torch"].get_num_threads())
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:
        return 0


def session_options(threads: int | None = None) -> Any:
    """ONNX Runtime options: ``threads`` intra-op threads (default :func:`default_threads`)
    and no spinning, which on a shared machine burns the cores another process is
    waiting for."""
    ort = require("onnxruntime", "The ONNX backend")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or default_threads()
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


class OnnxModel:
    """An exported graph run by ONNX Runtime, behind the model contract.

    Called with L* ``(B, 1, H, W)`` in [0, 100] (sides multiples of ``size_multiple``; a
    numpy array, or anything ``np.asarray`` takes), it returns numpy float32
    ``{"ab": (B, 2, H/s, W/s)}`` in Lab units, plus ``"logits"`` for the classification
    family, decoded by ``head`` (:class:`~chromatize.decoder.HeadTables`) exactly as the
    PyTorch model decodes. ``to`` and ``eval`` exist so that
    :class:`~chromatize.inference.pipeline.Colorizer` need not know which runtime it holds.
    """

    def __init__(self, source: bytes | str | os.PathLike[str], threads: int | None = None,
                 device: str = "cpu") -> None:
        self._source = source if isinstance(source, bytes) else os.fspath(source)
        self._threads = threads
        self.session = self._session(str(device))
        try:
            self.info: dict[str, Any] = json.loads(
                self.session.get_modelmeta().custom_metadata_map[META_KEY])
            meta = self.info["onnx"]
            self.size_multiple: int = int(meta["size_multiple"])
            self.ab_stride: int = int(meta["ab_stride"])
            self.output: str = meta["output"]
            self.head = HeadTables.from_meta(meta["head"]) if self.output == "logits" else None
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{self._name}: not a chromatize ONNX export "
                                  f"(metadata: {e})") from None

    @property
    def _name(self) -> str:
        return "the exported graph" if isinstance(self._source, bytes) else self._source

    def _session(self, device: str) -> Any:
        ort = require("onnxruntime", "The ONNX backend")
        providers = ["CPUExecutionProvider"]
        if device_type(device) == "cuda" and \
                "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            return ort.InferenceSession(self._source, session_options(self._threads),
                                        providers=providers)
        except Exception as e:  # onnxruntime raises its own error types for bad files
            raise CheckpointError(f"{self._name}: cannot load ONNX graph "
                                  f"({str(e).splitlines()[0]})") from None

    def to(self, device: Any) -> OnnxModel:
        """Run on ``device`` (a name, or a ``torch.device``) where ONNX Runtime can
        (CUDA), else on the CPU."""
        if device_type(str(device)) == "cuda":
            self.session = self._session(str(device))
        return self

    def eval(self) -> OnnxModel:
        return self

    #: The model contract (:class:`~chromatize.models.ColorizationModel`) the pipeline
    #: reads: an exported graph takes no hints nor a global hint (export refuses those).
    hints = False
    global_hint = False

    def classification_head(self) -> HeadTables | None:
        """The decoding half of the classification head, or None (a regression graph)."""
        return self.head

    def run(self, l: Any) -> np.ndarray:
        """The graph's output (``logits`` or ``ab``), float32, for L* ``(B, 1, H, W)``."""
        feed = np.ascontiguousarray(np.asarray(l), dtype=np.float32)
        (out,) = self.session.run([self.output], {"l": feed})
        return out

    def __call__(self, l: Any) -> dict[str, np.ndarray]:
        if np.ndim(l) != 4 or np.shape(l)[1] != 1:
            raise ValueError(f"expected L shaped (B, 1, H, W), got {tuple(np.shape(l))}")
        out = self.run(l)
        if self.head is None:
            return {"ab": out}
        return {"logits": out, "ab": self.head.decode(out)}


def load_onnx(path: str | os.PathLike[str], threads: int | None = None, backend: str = "auto",
              ) -> tuple[OnnxModel, dict[str, Any]]:
    """An exported ``.onnx`` file -> (model, its checkpoint metadata). A graph runs in
    ONNX Runtime only: ``backend`` ``torch`` is a :class:`UsageError`, not ignored."""
    if backend == "torch":
        raise UsageError(f"{path}: an exported graph runs in ONNX Runtime only; --backend "
                         "torch needs a checkpoint (chromatize export makes the .onnx "
                         "from one)")
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


def _torch_version() -> str:
    """torch's version, from its package metadata (``torch.__version__`` without the
    import); "none" when torch is not installed."""
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return "none"


def cached_graph_path(checkpoint: str | os.PathLike[str]) -> Path:
    """Where the checkpoint's exported graph is cached: named by the digest of its weights,
    its metadata, the package, torch and opset versions (an export by another torch may
    differ). Computed without importing torch."""
    digest = hashlib.sha256(f"{__version__} {_torch_version()} {OPSET} {FORMAT_VERSION}".encode())
    for p in resolve_paths(checkpoint):
        digest.update(p.read_bytes())
    return cache_dir() / f"{digest.hexdigest()[:32]}.onnx"


def _from_cache(path: Path) -> OnnxModel | None:
    """The cached graph at ``path`` in ONNX Runtime; None when there is none or it is
    damaged (cut short by a crash, say), so that it is exported again and replaced."""
    try:
        if not path.is_file():
            return None
        return OnnxModel(path)
    except (CheckpointError, OSError):  # damaged, or an unreadable cache folder
        return None


def _export_to_cache(path: Path, model: ColorizationModel, info: dict[str, Any]) -> OnnxModel:
    """``model`` exported (seconds; torch and ``onnx``), kept at ``path`` and loaded. An
    unwritable cache only costs the export each time."""
    from chromatize.inference.onnx_export import export_graph

    data = export_graph(model, info)
    try:
        atomic_write_bytes(path, data)
    except OSError:
        pass  # a read-only home: the graph still serves this process
    return OnnxModel(data)


def select_backend(checkpoint: str | os.PathLike[str], info: dict[str, Any], backend: str,
                   device: str, model: ColorizationModel | None = None,
                   ) -> ColorizationModel | OnnxModel:
    """The runtime a checkpoint (its metadata ``info``; its ``model`` if loaded already,
    else loaded here when needed) runs in. ``torch``: the model itself. ``onnx``: its
    exported graph in ONNX Runtime (the ``scale`` extra), from the cache
    (:func:`cached_graph_path`: milliseconds, and neither torch nor ``onnx`` imported)
    or exported once. ``auto``: ONNX Runtime when it is installed and the device is the
    CPU (faster there, see ``benchmarks/latency.py``), else PyTorch; a model that cannot
    be exported (or, with no graph cached yet, a machine without the ``onnx`` package)
    also stays in PyTorch."""
    from chromatize.checkpoint import load_checkpoint

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "onnx" or (backend == "auto" and device_type(device) == "cpu"
                             and available("onnxruntime")):
        try:
            path = cached_graph_path(checkpoint)
            runtime = _from_cache(path)
            if runtime is None:
                model = model if model is not None else load_checkpoint(checkpoint)[0]
                runtime = _export_to_cache(path, model, info)
            return runtime.to(device)
        except Exception as e:  # noqa: BLE001 - "auto" falls back to the PyTorch model
            if backend == "onnx":
                raise
            if not isinstance(e, (CheckpointError, ImportError)):  # not a known limit: say so
                log.warning("ONNX Runtime cannot run %s (%s); running it in PyTorch",
                            checkpoint, str(e).splitlines()[0] if str(e) else type(e).__name__)
    return model if model is not None else load_checkpoint(checkpoint)[0]


__all__ = ["BACKENDS", "OnnxModel", "cache_dir", "cached_graph_path", "load_onnx",
           "select_backend", "session_options"]
