"""Colorization networks. Every model follows one contract (see :class:`ColorizationModel`).

Adding a model: write ``models/mymodel.py`` with factories decorated by
``@MODELS.register("name")`` and add its import below.
"""

from chromatize.models.base import MODELS, ColorizationModel, create_model

# Importing the modules registers their variants.
from chromatize.models import unet as _unet  # noqa: F401,E402
from chromatize.models import efficientnet as _efficientnet  # noqa: F401,E402
from chromatize.models import gan as _gan  # noqa: F401,E402
from chromatize.models import stride2 as _stride2  # noqa: F401,E402
from chromatize.models import global_hints as _global_hints  # noqa: F401,E402

__all__ = ["MODELS", "ColorizationModel", "create_model"]
