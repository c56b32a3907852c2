"""Image-level priors through the one path: the API, the CLI, samples, marks and film."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from chromatize import color
from chromatize.cli import app
from chromatize.errors import UsageError
from chromatize.inference.pipeline import Colorizer
from conftest import gray_photo, make_color_photo, save_tiny_model

runner = CliRunner()
RED, BLUE = "#c03020", "#2040c0"


@pytest.fixture
def classifier(tmp_path) -> Colorizer:
    return Colorizer.load(save_tiny_model(tmp_path, "effnet_lite0_cls", width=8), device="cpu",
                          backend="torch")


def mean_ab(image: Image.Image) -> np.ndarray:
    lab = color.rgb_to_lab_np(np.asarray(image.convert("RGB"), dtype=np.float64) / 255)
    return lab[..., 1:].reshape(-1, 2).mean(0)


def test_a_palette_pulls_the_colours_towards_it_and_keeps_l(classifier):
    gray = gray_photo()
    auto = mean_ab(classifier.colorize(gray))
    red = classifier.colorize(gray, palette=RED, strength=2)
    blue = mean_ab(classifier.colorize(gray, palette=BLUE, strength=2))
    assert mean_ab(red)[0] > auto[0] + 3 and blue[1] < auto[1] - 3
    # only colour is added: L* is the gray photo's (up to 8-bit rounding)
    l_out = color.rgb_to_lab_np(np.asarray(red, dtype=np.float64) / 255)[..., 0]
    assert np.abs(l_out - color.luminance(np.asarray(gray))).max() < 1.0
    # strength 0 is the automatic result, exactly
    assert np.array_equal(np.asarray(classifier.colorize(gray, palette=RED, strength=0)),
                          np.asarray(classifier.colorize(gray)))


def test_a_reference_photo_and_its_region(classifier, tmp_path):
    ref = np.zeros((40, 80, 3), np.uint8)
    ref[:, :40], ref[:, 40:] = (200, 40, 30), (30, 60, 200)
    Image.fromarray(ref).save(tmp_path / "ref.png")
    gray = gray_photo()
    left = mean_ab(classifier.colorize(gray, reference=f"{tmp_path / 'ref.png'}:0,0,40,40",
                                       strength=2))
    right = mean_ab(classifier.colorize(gray, reference=f"{tmp_path / 'ref.png'}:40,0,80,40",
                                        strength=2))
    assert left[0] > right[0] + 3 and right[1] < left[1] - 3


def test_samples_marks_and_suggest_honour_the_prior(classifier):
    gray = gray_photo()
    auto = [mean_ab(im)[0] for im in classifier.colorize(gray, samples=2, seed=1)]
    red = [mean_ab(im)[0] for im in classifier.colorize(gray, samples=2, seed=1, palette=RED,
                                                          strength=2)]
    assert min(red) > max(auto)
    marks = [{"x": 5, "y": 5, "color": "#808080", "radius": 2}]
    assert mean_ab(classifier.colorize(gray, marks=marks, palette=RED, strength=2))[0] > \
        mean_ab(classifier.colorize(gray, marks=marks))[0] + 3
    from chromatize.priors import from_palette

    top = classifier.suggest(gray, 30, 20, k=1, prior=from_palette(RED, 3))[0][0]
    r, g, b = (int(top[i:i + 2], 16) for i in (1, 3, 5))
    assert r > b


def test_regression_models_refuse_a_prior_in_one_line(tmp_path, tiny_checkpoint):
    c = Colorizer.load(tiny_checkpoint, device="cpu")
    with pytest.raises(UsageError, match="needs a classification model"):
        c.colorize(gray_photo(), palette=RED)


def run(*args: str | Path):
    return runner.invoke(app, ["colorize", *map(str, args)])


def test_cli_palette_and_reference(tmp_path):
    model = save_tiny_model(tmp_path / "m", "effnet_lite0_cls", width=8)
    gray_photo().save(tmp_path / "a.png")
    make_color_photo().save(tmp_path / "ref.png")
    assert run(tmp_path / "a.png", "-o", tmp_path / "auto", "--model", model).exit_code == 0
    result = run(tmp_path / "a.png", "-o", tmp_path / "red", "--model", model,
                 "--palette", f"{RED}:2,#d0a080", "--strength", "2")
    assert result.exit_code == 0, result.output
    assert mean_ab(Image.open(tmp_path / "red" / "a.png"))[0] > \
        mean_ab(Image.open(tmp_path / "auto" / "a.png"))[0] + 3
    result = run(tmp_path / "a.png", "-o", tmp_path / "ref", "--model", model,
                 "--reference", tmp_path / "ref.png", "--reference", f"{tmp_path / 'ref.png'}:0,0,0.5,0.5")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("args, message", [
    (["--palette", "#12345z"], "palette colour '#12345z' is not #rrggbb"),
    (["--palette", "#123456:-1"], "palette weight"),
    (["--strength", "1"], "strength needs a reference photo or a palette"),
    (["--palette", RED, "--strength", "1e300"], "strength must be a number from 0 to 3"),
    (["--reference", "missing.jpg"], "missing.jpg"),
    (["--reference", "GRAY"], "a reference must be a colour photo"),
    (["--reference", "REF:5,5,2,2"], "a region is x0,y0,x1,y1"),
])
def test_cli_bad_priors_are_one_line_before_any_photo(tmp_path, args, message):
    model = save_tiny_model(tmp_path / "m", "effnet_lite0_cls", width=8)
    gray_photo().save(tmp_path / "a.png")
    gray_photo().save(tmp_path / "gray.png")
    make_color_photo().save(tmp_path / "ref.png")
    args = [a.replace("GRAY", str(tmp_path / "gray.png")).replace("REF", str(tmp_path / "ref.png"))
            for a in args]
    result = run(tmp_path / "a.png", "-o", tmp_path / "out", "--model", model, *args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "out").exists()


def test_cli_prior_with_a_regression_model_is_one_line(tmp_path, tiny_checkpoint):
    gray_photo().save(tmp_path / "a.png")
    result = run(tmp_path / "a.png", "-o", tmp_path / "out", "--model", tiny_checkpoint,
                 "--palette", RED)
    assert result.exit_code == 2
    assert "needs a classification model" in result.output.strip().splitlines()[0]
