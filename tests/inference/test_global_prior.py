"""A global-hint model gets the decoding's image-level prior as an input in
``Colorizer.infer``; without one it is its automatic self, from the cache."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from chromatize.checkpoint import save_checkpoint
from chromatize.decoding import Decoding
from chromatize.inference.pipeline import Colorizer
from chromatize.models import create_model
from chromatize.priors import from_palette


def _global_colorizer(tmp_path) -> Colorizer:
    torch.manual_seed(0)
    model = create_model("effnet_lite0_cls_global", width=8)
    torch.nn.init.constant_(model.global_adapter.strength.bias, 1.0)  # as if trained
    path = tmp_path / "global"
    save_checkpoint(path, model.eval(), "effnet_lite0_cls_global", {"width": 8},
                    working_size=64, step=0)
    return Colorizer.load(path, device="cpu", backend="torch")


def _mean_ab(image: Image.Image) -> np.ndarray:
    from chromatize import color

    return color.rgb_to_lab_np(np.asarray(image.convert("RGB")) / 255.0)[..., 1:].mean((0, 1))


def test_the_prior_is_the_models_input_and_not_cached(tmp_path, color_photo) -> None:
    c = _global_colorizer(tmp_path)
    gray = color_photo.convert("L")
    plain = c.colorize(gray)
    # strength 0: the decoding leaves the distribution alone, only the input changes
    red = c.colorize(gray, palette="#c03030", strength=0)
    assert _mean_ab(red)[0] > _mean_ab(plain)[0] + 3
    source = c.prepare(gray)
    prior = from_palette("#c03030", strength=0)
    assert c.infer(source, prior=prior) is not c.infer(source, prior=prior)
    # without a prior: the cached automatic output, the same image as before
    assert c.infer(source) is c.infer(source)
    again = c.finish(source, c.infer(source), Decoding())
    assert np.array_equal(np.asarray(again), np.asarray(plain))
