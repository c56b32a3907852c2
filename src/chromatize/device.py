"""Device policy: which device inference and training run on. A leaf module.

torch is imported only when the answer needs it: ``cpu``, and ``auto`` on a machine that
cannot have a GPU torch would use (no NVIDIA or AMD driver, not a Mac, or a CPU-only
build of torch), are decided without it, so that ONNX Runtime's cold start does not wait
about a second and a half for ``import torch`` just to learn that the device is the CPU.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

from chromatize.errors import ChromatizeError


class DeviceError(ChromatizeError, ValueError):
    """A device that is unknown or not available on this machine."""


def _torch_is_cpu_only() -> bool:
    """Whether the installed torch is a CPU-only build (version ``x.y.z+cpu``), read from
    the package metadata without importing it."""
    try:
        return metadata.version("torch").endswith("+cpu")
    except metadata.PackageNotFoundError:
        return True


def _may_have_gpu() -> bool:
    """False when no GPU torch could use can be present: a CPU-only torch on Linux or
    Windows, or Linux without an NVIDIA (``/proc/driver/nvidia``) or ROCm (``/dev/kfd``)
    driver. True when torch must be asked (a Mac may have MPS; other systems: unknown)."""
    if sys.platform == "darwin":
        return platform.machine() == "arm64"
    if _torch_is_cpu_only():
        return False
    if sys.platform.startswith("linux"):
        return os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/kfd")
    return True


def pick_device(name: str = "auto", local_rank: int = 0) -> str:
    """The one device rule for inference and training, as a name torch takes (``"cpu"``,
    ``"cuda:0"``, ``"mps"``): ``auto`` picks CUDA (device ``local_rank``, one per process
    under torchrun), then MPS, then the CPU; ``cpu``, ``cuda``, ``cuda:N`` and ``mps``
    are checked for availability. Raises :class:`DeviceError`."""
    if not isinstance(name, str):
        raise DeviceError(f"device must be cpu, cuda, mps or auto, got {name!r}")
    if name == "cpu" or (name == "auto" and "torch" not in sys.modules
                         and not _may_have_gpu()):
        return "cpu"
    if name not in ("auto", "cuda", "mps") and not name.startswith("cuda:"):
        raise DeviceError(f"device must be cpu, cuda, mps or auto, got {name!r}")
    import torch

    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return f"cuda:{local_rank}"
        return "mps" if has_mps else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise DeviceError(f"device {name!r}: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} asked for, but CUDA is not available")
    if device.type == "mps" and not has_mps:
        raise DeviceError("device 'mps' asked for, but MPS is not available")
    return str(device)


def device_type(name: str) -> str:
    """The kind of a device name: ``"cuda:1"`` -> ``"cuda"``."""
    return name.split(":", 1)[0]


__all__ = ["DeviceError", "device_type", "pick_device"]
