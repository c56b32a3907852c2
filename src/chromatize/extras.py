"""Optional dependencies (pyproject extras), imported on demand with a one-line hint.

The scale-out paths (ONNX Runtime, Ray) are extras, so ``import chromatize`` and the
PyTorch path never need them; a command that does names exactly what to install.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from chromatize.errors import ChromatizeError

SCALE_HINT = "pip install 'chromatize[scale]'"


class MissingExtraError(ChromatizeError):
    """An optional dependency is not installed; the message says what to install."""


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtraError` saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"{purpose} needs {module.split('.')[0]}, which is not "
                                f"installed: {SCALE_HINT}") from None


def available(*modules: str) -> bool:
    """Whether all ``modules`` can be imported (importing them)."""
    try:
        for m in modules:
            importlib.import_module(m)
    except ImportError:
        return False
    return True
