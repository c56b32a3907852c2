"""Self-describing checkpoints: ``NAME.safetensors`` (weights) + ``NAME.json`` (metadata).

The JSON holds everything needed to rebuild the model and to know where it came from::

    {"format": "chromatize-checkpoint", "format_version": 1,
     "model": {"name": "effnet_lite0", "kwargs": {...}},
     "working_size": 256, "step": 1234, "config": {...}, "data": {...},
     "metrics": {...}, "chromatize_version": "0.1.0", "git_revision": "abc123"}

No pickle is involved in loading: safetensors for tensors, JSON for the rest.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from chromatize import __version__
from chromatize.models import ColorizationModel, create_model

FORMAT = "chromatize-checkpoint"
FORMAT_VERSION = 1
DEFAULT_WORKING_SIZE = 256


class CheckpointError(ValueError):
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path`` and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        # mkstemp makes the file private; give it the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: str | os.PathLike[str], model: ColorizationModel, model_name: str,
                    model_kwargs: dict[str, Any], **meta: Any) -> Path:
    """Write weights and metadata atomically. ``meta`` adds keys such as ``step``,
    ``config``, ``data``, ``metrics``, ``working_size``. Returns the metadata path."""
    weights_path, meta_path = resolve_paths(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    info: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": {"name": model_name, "kwargs": model_kwargs},
        "working_size": DEFAULT_WORKING_SIZE,
        "chromatize_version": __version__,
        "git_revision": git_revision(),
        **meta,
    }
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=weights_path.parent, suffix=".safetensors.tmp")
    os.close(fd)
    try:
        save_file(state, tmp, metadata={"format": FORMAT})
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, weights_path)
    finally:
        Path(tmp).unlink(missing_ok=True)
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
    if "name" not in info.get("model", {}):
        raise CheckpointError(f"{meta_path}: the model name is missing")
    return info


def load_checkpoint(path: str | os.PathLike[str], expect_model: str | None = None,
                    ) -> tuple[ColorizationModel, dict[str, Any]]:
    """Rebuild the model from ``path`` alone. Returns (model in eval mode, metadata).

    ``expect_model``: raise :class:`CheckpointError` if the checkpoint holds another model.
    """
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
    except (OSError, RuntimeError, ValueError) as e:
        msg = str(e).splitlines()[0]
        raise CheckpointError(f"{weights_path}: weights do not fit model {name!r}: {msg}") from None
    model.eval()
    return model, info

