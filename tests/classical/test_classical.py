import json

import numpy as np
import pytest
import scipy.sparse.linalg as sla
from PIL import Image
from typer.testing import CliRunner

from chromatize import color
from chromatize.classical import (levin, levin_colorize, levin_colorize_marks,
                                  reinhard_transfer, solve_levin, welsh_transfer)
from chromatize.cli import app
from chromatize.color import luminance


def _lab(image: Image.Image) -> np.ndarray:
    return color.rgb_to_lab_np(np.asarray(image.convert("RGB"), np.float64) / 255)


def _two_regions(h: int = 32, w: int = 48) -> Image.Image:
    gray = np.full((h, w), 90, np.uint8)
    gray[:, w // 2:] = 170
    return Image.fromarray(gray, "L")


def _marks_in_gamut(gray: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """A reddish mark in the left region and a bluish one in the right, in gamut at the
    photo's L* (so they survive exactly)."""
    h, w = gray.height, gray.width
    hint_ab = np.zeros((h, w, 2), np.float32)
    mask = np.zeros((h, w), bool)
    for (y, x), ab in (((h // 2, w // 4), (30, 15)), ((h // 2, 3 * w // 4), (5, -30))):
        mask[y - 1:y + 2, x - 1:x + 2] = True
        hint_ab[y - 1:y + 2, x - 1:x + 2] = ab
    return hint_ab, mask


@pytest.mark.parametrize("max_pixels", [levin.MAX_PIXELS, 600])  # direct and reduced solve
def test_each_region_takes_its_marks_colour(max_pixels):
    gray = _two_regions()
    hint_ab, mask = _marks_in_gamut(gray)
    lab = _lab(levin_colorize(gray, hint_ab, mask, max_pixels=max_pixels))
    left, right = lab[:, :20, 1:].reshape(-1, 2), lab[:, 28:, 1:].reshape(-1, 2)
    np.testing.assert_allclose(left.mean(0), (30, 15), atol=2)
    np.testing.assert_allclose(right.mean(0), (5, -30), atol=2)
    assert left.std(0).max() < 1.5 and right.std(0).max() < 1.5
    np.testing.assert_allclose(lab[..., 0], luminance(np.asarray(gray)), atol=1)
    # marked pixels keep their colour
    assert np.abs(lab[mask][:, 1:] - hint_ab[mask]).max() <= 1


def test_cascade_matches_an_exact_solve(monkeypatch):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:64, 0:64]
    l = (50 + 30 * np.sin(x / 9) * np.cos(y / 13) + rng.normal(0, 1, (64, 64))).astype(np.float32)
    hint_ab = np.zeros((64, 64, 2), np.float32)
    mask = np.zeros((64, 64), bool)
    for yy, xx in rng.integers(0, 64, (6, 2)):
        mask[yy, xx] = True
        hint_ab[yy, xx] = rng.uniform(-40, 40, 2)
    a_mat, b = levin.affinity_system(l, hint_ab, mask)
    assert abs(a_mat - a_mat.T).max() == 0
    exact = sla.spsolve(a_mat.tocsc(), b).reshape(64, 64, 2)
    monkeypatch.setattr(levin, "COARSEST_SIDE", 8)  # a 4-level pyramid on a tiny image
    # the cascade's start is rough with single-pixel marks; CG then converges to the exact
    approx = solve_levin(l, hint_ab, mask, iterations=100)
    assert np.abs(approx - exact).mean() < 0.5
    assert np.abs(approx[mask] - hint_ab[mask]).max() < 1e-4
    assert np.abs(solve_levin(l, hint_ab, mask, iterations=300) - exact).max() < 1e-3


def test_levin_rejects_bad_hints():
    gray = _two_regions()
    with pytest.raises(ValueError, match="no marks"):
        levin_colorize(gray, np.zeros((32, 48, 2), np.float32), np.zeros((32, 48), bool))
    with pytest.raises(ValueError, match="hints must be"):
        levin_colorize(gray, np.zeros((8, 8, 2), np.float32), np.ones((8, 8), bool))


def test_levin_from_points_keeps_alpha():
    gray = _two_regions().convert("LA")
    gray.putalpha(200)
    out = levin_colorize_marks(gray, [{"x": 5, "y": 5, "color": "#c03030"}])
    assert out.mode == "RGBA" and np.asarray(out)[..., 3].min() == 200
    assert np.hypot(*_lab(out)[..., 1:].reshape(-1, 2).T).min() > 10


def _reference(h: int = 40, w: int = 56) -> Image.Image:
    """Dark blue sky above bright orange sand, with noise: L* and ab are correlated.
    Colours are muted so that transferred ones stay inside the sRGB gamut."""
    rng = np.random.default_rng(1)
    rgb = np.zeros((h, w, 3))
    rgb[: h // 2] = (0.3, 0.38, 0.55)
    rgb[h // 2:] = (0.75, 0.6, 0.45)
    rgb = np.clip(rgb + rng.normal(0, 0.04, rgb.shape), 0, 1)
    return Image.fromarray((rgb * 255).astype(np.uint8), "RGB")


def _stats(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = lab.reshape(-1, 3)
    return flat.mean(0), flat.std(0)


def test_reinhard_gray_target_gets_reference_ab_statistics():
    ref = _reference()
    gray = np.full((32, 48), 90, np.uint8)
    gray[:, 24:] = 170
    gray = Image.fromarray(gray + np.arange(48, dtype=np.uint8) % 3, "L")
    lab = _lab(reinhard_transfer(gray, ref))
    mean_r, std_r = _stats(_lab(ref))
    mean_o, std_o = _stats(lab)
    np.testing.assert_allclose(mean_o[1:], mean_r[1:], atol=1.5)
    np.testing.assert_allclose(std_o[1:], std_r[1:], atol=1.5)
    np.testing.assert_allclose(lab[..., 0], luminance(np.asarray(gray)), atol=1)
    # bright parts take the reference's bright colour (orange: b* > 0)
    assert lab[:, 24:, 2].mean() > 10 and lab[:, :24, 2].mean() < -10


def test_reinhard_colour_target_gets_all_reference_statistics(color_photo):
    ref = _reference()
    mean_r, std_r = _stats(_lab(ref))
    mean_o, std_o = _stats(_lab(reinhard_transfer(color_photo, ref)))
    np.testing.assert_allclose(mean_o, mean_r, atol=1.5)
    np.testing.assert_allclose(std_o, std_r, atol=1.5)


def test_welsh_colours_by_luminance_and_keeps_l():
    ref = _reference()
    gray = np.full((32, 48), 60, np.uint8)
    gray[16:] = 200
    gray = Image.fromarray(gray, "L")
    lab = _lab(welsh_transfer(gray, ref, samples=50))
    np.testing.assert_allclose(lab[..., 0], luminance(np.asarray(gray)), atol=1)
    assert lab[:16, :, 2].mean() < -10  # dark part blue
    assert lab[16:, :, 2].mean() > 10  # bright part orange


def test_welsh_rectangles_colour_from_the_matching_reference_rectangles():
    ref = _reference()  # 56x40: blue top half, orange bottom half
    gray = Image.fromarray(np.full((32, 48), 120, np.uint8), "L")
    gray.paste(200, (0, 16, 48, 32))
    # pair the target's top with the reference's (orange) bottom, and vice versa
    rects = [((0, 0, 48, 8), (0, 24, 56, 40)), ((0, 24, 48, 32), (0, 0, 56, 16))]
    lab = _lab(welsh_transfer(gray, ref, rects=rects))
    assert lab[:16, :, 2].mean() > 10 and lab[16:, :, 2].mean() < -10
    with pytest.raises(ValueError, match="outside"):
        welsh_transfer(gray, ref, rects=[((0, 0, 99, 8), (0, 0, 8, 8))])


runner = CliRunner()


def test_cli_scribble_and_transfer(tmp_path):
    gray = _two_regions()
    gray.save(tmp_path / "gray.png")
    _reference().save(tmp_path / "ref.png")
    (tmp_path / "marks.json").write_text(json.dumps([{"x": 4, "y": 4, "color": "#d04040"}]))
    out = tmp_path / "out.png"
    result = runner.invoke(app, ["scribble", str(tmp_path / "gray.png"), "--marks",
                                 str(tmp_path / "marks.json"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == gray.size
    result = runner.invoke(app, ["scribble", str(tmp_path / "gray.png"), "--marks",
                                 str(tmp_path / "marks.json"), "-o", str(out)])
    assert result.exit_code == 2 and "output exists" in result.output
    for method in ("reinhard", "welsh"):
        result = runner.invoke(app, ["transfer", str(tmp_path / "gray.png"), "--reference",
                                     str(tmp_path / "ref.png"), "--method", method,
                                     "-o", str(tmp_path / f"{method}.jpg")])
        assert result.exit_code == 0, result.output
        assert Image.open(tmp_path / f"{method}.jpg").size == gray.size


@pytest.mark.parametrize("marks, reason", [
    ([{"x": 99, "y": 4, "color": "red"}], "outside the 48x32 photo"),
    ([{"x": 4, "y": 4, "color": "#12"}], "bad colour"),
    ("copy", "no marks found"),
    ("small", "marks are 8x8 but the photo is 48x32"),
])
def test_cli_bad_marks_exit_2_with_one_line(tmp_path, marks, reason):
    gray = _two_regions()
    gray.save(tmp_path / "gray.png")
    if marks == "copy":
        path = tmp_path / "copy.png"
        gray.save(path)
    elif marks == "small":
        path = tmp_path / "small.png"
        Image.new("RGB", (8, 8), "red").save(path)
    else:
        path = tmp_path / "marks.json"
        path.write_text(json.dumps(marks))
    result = runner.invoke(app, ["scribble", str(tmp_path / "gray.png"), "--marks", str(path),
                                 "-o", str(tmp_path / "out.png")])
    assert result.exit_code == 2
    assert reason in result.output and str(path) in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out.png").exists()


def test_scribble_and_transfer_take_the_max_pixels_their_message_suggests(tmp_path):
    Image.new("L", (40, 30), 128).save(tmp_path / "g.png")
    Image.new("RGB", (40, 30), (200, 90, 40)).save(tmp_path / "ref.png")
    (tmp_path / "m.json").write_text(json.dumps([{"x": 5, "y": 5, "color": "#c03020"}]))
    runner = CliRunner()
    for args in (["scribble", "--marks", str(tmp_path / "m.json")],
                 ["transfer", "--reference", str(tmp_path / "ref.png")]):
        out = tmp_path / f"{args[0]}.png"
        small = runner.invoke(app, [args[0], str(tmp_path / "g.png"), *args[1:], "-o", str(out),
                                    "--max-pixels", "1000"])
        assert small.exit_code == 2, small.output
        assert "too large (40x30)" in small.output and "raise --max-pixels" in small.output
        assert not out.exists()
        ok = runner.invoke(app, [args[0], str(tmp_path / "g.png"), *args[1:], "-o", str(out),
                                 "--max-pixels", "5000"])
        assert ok.exit_code == 0, ok.output
        assert out.exists()
