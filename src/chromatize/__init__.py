"""chromatize: colorize black-and-white photographs, offline, on an ordinary CPU.

Python API::

    from chromatize import Colorizer
    colorizer = Colorizer.load()            # the model shipped with the package
    photo = colorizer.colorize("grandma.jpg")
    photo.save("grandma_colorized.jpg")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chromatize.version import __version__

if TYPE_CHECKING:
    from chromatize.inference.pipeline import Colorizer

__all__ = ["Colorizer", "__version__"]


def __getattr__(name: str) -> Any:
    # Keep `import chromatize` (and the CLI's --help) free of the torch import cost.
    if name == "Colorizer":
        from chromatize.inference.pipeline import Colorizer

        return Colorizer
    raise AttributeError(f"module 'chromatize' has no attribute {name!r}")
