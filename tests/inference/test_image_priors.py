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


def tinted(gray: Image.Image, ab: tuple[float, float]) -> np.ndarray:
    """The gray photo in colour: its own L*, one a*b* everywhere, as sRGB uint8."""
    l = color.luminance(np.asarray(gray))
    lab = np.stack([l, np.full_like(l, ab[0]), np.full_like(l, ab[1])], -1)
    return (np.clip(color.lab_to_rgb_np(lab), 0, 1) * 255 + 0.5).astype(np.uint8)


def test_a_reference_photo_and_its_region(classifier, tmp_path):
    gray = gray_photo()
    w = gray.size[0]
    # One file: the scene in red, then the same scene in blue.
    ref = np.concatenate([tinted(gray, (45, 30)), tinted(gray, (10, -45))], axis=1)
    Image.fromarray(ref).save(tmp_path / "ref.png")
    left = mean_ab(classifier.colorize(gray, reference=f"{tmp_path / 'ref.png'}:0,0,{w},48",
                                       strength=2))
    right = mean_ab(classifier.colorize(gray, reference=f"{tmp_path / 'ref.png'}:{w},0,"
                                        f"{2 * w},48", strength=2))
    assert left[0] > right[0] + 3 and right[1] < left[1] - 3


def test_a_reference_of_the_scene_puts_each_colour_where_it_was(classifier):
    """Cells are matched to the reference's: its red half colours the photo's left half
    and its blue half the right one, which its histogram alone cannot say."""
    gray = gray_photo()
    w = gray.size[0]
    ref = tinted(gray, (45, 30))
    ref[:, w // 2:] = tinted(gray, (10, -45))[:, w // 2:]
    from chromatize.decoding import Decoding
    from chromatize.priors import ImagePrior, from_photos

    def halves(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
        lab = color.rgb_to_lab_np(np.asarray(image, dtype=np.float64) / 255)
        return lab[:, :w // 2, 1:].mean((0, 1)), lab[:, w // 2:, 1:].mean((0, 1))

    prior = from_photos([ref], 1.0)
    assert prior.photos and prior.exemplar is None  # the colorizer adds what it sees
    left, right = halves(classifier.colorize(gray, decoding=Decoding(prior=prior)))
    assert left[0] > right[0] + 5 and right[1] < left[1] - 5
    # by the histogram alone, both halves get the same pull
    flat_l, flat_r = halves(classifier.colorize(gray, decoding=Decoding(
        prior=ImagePrior(prior.hist, 1.0))))
    assert (left[0] - right[0]) > (flat_l[0] - flat_r[0]) + 5


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


def test_several_references_each_photo_takes_the_one_like_it():
    """A film's scenes, one reference each: a frame's cells match the reference cells most
    like them, so each scene takes its own reference's colours (the shipped model, whose
    features tell scenes apart)."""
    c = Colorizer.load("default", working_size=96, backend="torch")
    yy, xx = np.mgrid[0:64, 0:96]
    scene_a = Image.fromarray((128 + 90 * np.sin(xx / 3.0)).astype(np.uint8))  # stripes
    scene_b = Image.fromarray((40 + 160 * (((yy // 16) + (xx // 16)) % 2)).astype(np.uint8))
    refs = [tinted(scene_a, (45, 30)), tinted(scene_b, (10, -45))]
    a = mean_ab(c.colorize(scene_a, reference=refs, strength=1.0))
    b = mean_ab(c.colorize(scene_b, reference=refs, strength=1.0))
    assert a[0] > b[0] + 5 and b[1] < a[1] - 5
