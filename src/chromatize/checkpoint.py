"""Self-describing checkpoints: ``NAME.safetensors`` (weights) + ``NAME.json`` (metadata).

The JSON holds everything needed to rebuild the model and to know where it came from::

    {"format": "chromatize-checkpoint", "format_version": 1,
     "model": {"name": "effnet_lite0", "kwargs": {...}},
     "working_size": 256, "step": 1234, "config": {...}, "data": {...},
     "metrics": {...}, "chromatize_version": "0.1.0", "git_revision": "abc123"}

No pickle is involved in loading: safetensors for tensors, JSON for the rest. Finding a
checkpoint and reading its metadata import neither torch nor a model (the ONNX backend's
cold start needs only these); building the model does.
"""

from __future__ import annotations

import json
import os
import subprocess
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chromatize.version import __version__
from chromatize.errors import ChromatizeError
from chromatize.io import atomic_write_bytes

if TYPE_CHECKING:
    from chromatize.models import ColorizationModel

FORMAT = "chromatize-checkpoint"
FORMAT_VERSION = 1
DEFAULT_WORKING_SIZE = 256


class CheckpointError(ChromatizeError, ValueError):
    """A checkpoint is missing, incomplete or does not match the model asked for."""


def git_revision() -> str | None:
    """The source tree's git commit, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def resolve_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``x``, ``x.json`` or ``x.safetensors`` -> (weights path, metadata path)."""
    p = Path(path)
    if p.suffix in (".json", ".safetensors"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def save_checkpoint(path: str | os.PathLike[str], model: ColorizationModel, model_name: str,
                    model_kwargs: dict[str, Any], **meta: Any) -> Path:
    """Write weights and metadata atomically. ``meta`` adds keys such as ``step``,
    ``config``, ``data``, ``metrics``, ``working_size``. Returns the metadata path."""
    from safetensors.torch import save

    weights_path, meta_path = resolve_paths(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    info: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": {"name": model_name, "kwargs": model_kwargs},
        "capabilities": model.capabilities(),
        "working_size": DEFAULT_WORKING_SIZE,
        "chromatize_version": __version__,
        "git_revision": git_revision(),
        **meta,
    }
    atomic_write_bytes(weights_path, save(state, metadata={"format": FORMAT}))
    atomic_write_bytes(meta_path, json.dumps(info, indent=2, default=str).encode())
    return meta_path


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's JSON metadata; raises :class:`CheckpointError` if unusable."""
    weights_path, meta_path = resolve_paths(path)
    for p in (meta_path, weights_path):
        if not p.is_file():
            raise CheckpointError(f"{p}: checkpoint file not found")
    try:
        info = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{meta_path}: not a readable checkpoint description ({e})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path}: not a chromatize checkpoint")
    if not isinstance(info.get("model"), dict) or "name" not in info["model"]:
        raise CheckpointError(f"{meta_path}: the model name is missing")
    size = info.get("working_size", DEFAULT_WORKING_SIZE)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise CheckpointError(f"{meta_path}: working_size must be a positive whole number "
                              f"of pixels, got {size!r}")
    return info


def read_capabilities(path: str | os.PathLike[str]) -> dict[str, bool]:
    """What the checkpoint's model can do (``classification``, ``hints``: see
    :meth:`~chromatize.models.ColorizationModel.capabilities`) without reading its
    weights: from its metadata, or, for checkpoints written before it was recorded, from
    the architecture built without weights."""
    info = read_metadata(path)
    caps = info.get("capabilities")
    if isinstance(caps, dict) and {"classification", "hints"} <= set(caps):
        return {k: bool(caps[k]) for k in ("classification", "hints")}
    name, kwargs = info["model"]["name"], info["model"].get("kwargs", {})
    try:
        return create_model(name, **kwargs).capabilities()
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot build model {name!r}: {e}") from None


def load_checkpoint(path: str | os.PathLike[str], expect_model: str | None = None,
                    ) -> tuple[ColorizationModel, dict[str, Any]]:
    """Rebuild the model from ``path`` alone. Returns (model in eval mode, metadata).

    ``expect_model``: raise :class:`CheckpointError` if the checkpoint holds another model.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from chromatize.models import create_model

    info = read_metadata(path)
    name, kwargs = info["model"]["name"], info["model"].get("kwargs", {})
    if expect_model is not None and name != expect_model:
        raise CheckpointError(f"{path}: holds model {name!r}, expected {expect_model!r}")
    try:
        model = create_model(name, **kwargs)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot build model {name!r}: {e}") from None
    weights_path, _ = resolve_paths(path)
    try:
        state = load_file(str(weights_path))
        model.load_state_dict(state, strict=True)
    except SafetensorError as e:  # empty, cut short or not safetensors at all
        raise CheckpointError(f"{weights_path}: damaged or not a safetensors file "
                              f"({str(e).splitlines()[0]})") from None
    except (OSError, RuntimeError, ValueError) as e:
        msg = str(e).splitlines()[0]
        raise CheckpointError(f"{weights_path}: weights do not fit model {name!r}: {msg}") from None
    model.eval()
    return model, info


def shipped_model_path(name: str = "default") -> Path:
    """Path (without suffix) of a model shipped inside the package."""
    return Path(str(resources.files("chromatize") / "weights" / name))


def resolve_model(path_or_name: str | os.PathLike[str] | None) -> Path:
    """A checkpoint path, or the name of a shipped model (None = ``default``)."""
    if path_or_name is None:
        path_or_name = "default"
    p = Path(path_or_name)
    shipped = shipped_model_path(str(path_or_name))
    if p.suffix not in (".json", ".safetensors") and shipped.with_suffix(".json").is_file():
        return shipped
    if p.exists() or p.with_name(p.name + ".json").exists():
        return p
    if os.sep not in str(path_or_name) and not p.suffix:
        raise CheckpointError(
            f"{path_or_name}: no such model shipped in the package and no checkpoint at this path"
            + ("; the default model has not been shipped yet, pass --model CHECKPOINT"
               if path_or_name == "default" else ""))
    raise CheckpointError(f"{p}: checkpoint not found")


def describe_model(path_or_name: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The metadata of a checkpoint plus its parameter count (loads the weights)."""
    from chromatize.models.base import count_parameters

    path = resolve_model(path_or_name)
    info = read_metadata(path)
    model, _ = load_checkpoint(path)
    return {"path": str(path), "parameters": count_parameters(model), **info}
