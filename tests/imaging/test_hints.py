import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from chromatize import color
from chromatize.imaging.hints import MarksError, load_marks


def _gray(h: int = 32, w: int = 40) -> Image.Image:
    ramp = np.linspace(30, 220, w, dtype=np.float32)[None].repeat(h, 0)
    return Image.fromarray(ramp.astype(np.uint8), "L")


def _ab(rgb: tuple[int, int, int]) -> np.ndarray:
    return color.rgb_to_lab_np(np.array(rgb, np.float64) / 255)[1:]


def test_points_make_discs_with_the_colours_ab(tmp_path):
    points = [{"x": 5, "y": 6, "color": "#ff0000", "radius": 2},
              {"x": 30, "y": 20, "color": [0, 0, 255]},
              {"x": 0, "y": 0, "color": "lime", "radius": 0}]
    path = tmp_path / "marks.json"
    path.write_text(json.dumps(points))
    hint_ab, mask = load_marks(path, _gray())
    assert hint_ab.shape == (32, 40, 2) and hint_ab.dtype == np.float32 and mask.dtype == bool
    assert mask[4:9, 3:8].sum() == 13  # disc of radius 2
    assert mask[17:24, 27:34].sum() == 29  # default radius 3
    assert mask[0, 0] and mask.sum() == 13 + 29 + 1
    np.testing.assert_allclose(hint_ab[6, 5], _ab((255, 0, 0)), atol=1e-3)
    np.testing.assert_allclose(hint_ab[20, 30], _ab((0, 0, 255)), atol=1e-3)
    assert not hint_ab[~mask].any()


def test_strokes_on_a_copy_of_the_photo():
    gray = _gray()
    scribble = gray.convert("RGB")
    ImageDraw.Draw(scribble).line([(5, 5), (5, 25)], fill=(200, 40, 40), width=1)
    hint_ab, mask = load_marks(scribble, gray)
    expected = np.zeros((32, 40), bool)
    expected[5:26, 5] = True
    assert np.array_equal(mask, expected)
    np.testing.assert_allclose(hint_ab[10, 5], _ab((200, 40, 40)), atol=1e-3)


def test_transparent_layer_uses_alpha(tmp_path):
    layer = Image.new("RGBA", (40, 32), (0, 0, 0, 0))
    layer.putpixel((7, 9), (0, 128, 255, 255))
    layer.save(tmp_path / "layer.png")
    hint_ab, mask = load_marks(tmp_path / "layer.png", _gray())
    assert mask.sum() == 1 and mask[9, 7]
    np.testing.assert_allclose(hint_ab[9, 7], _ab((0, 128, 255)), atol=1e-3)


@pytest.mark.parametrize("marks, reason", [
    ([], "no marks"),
    ([{"x": 40, "y": 0, "color": "#ff0000"}], "outside"),
    ([{"x": -1, "y": 0, "color": "#ff0000"}], "outside"),
    ([{"x": 1, "y": 1, "color": "#ff00"}], "bad colour"),
    ([{"x": 1, "y": 1, "color": "reddish"}], "bad colour"),
    ([{"x": 1, "y": 1, "color": [255, 0]}], "bad colour"),
    ([{"x": 1, "y": 1, "color": [255, 0, 300]}], "bad colour"),
    ([{"x": 1, "y": 1, "color": 7}], "bad colour"),
    ([{"x": "1", "y": 1, "color": "red"}], "number"),
    ([{"x": 1, "y": True, "color": "red"}], "number"),
    ([{"x": 1, "y": 1, "color": "red", "radius": -2}], "radius"),
    ([{"x": 1, "y": 1, "colour": "red"}], "unknown keys"),
    ({"x": 1, "y": 1, "color": "red"}, "list of points"),
])
def test_bad_points_raise_a_clear_error(tmp_path, marks, reason):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(marks))
    with pytest.raises(MarksError, match=reason) as info:
        load_marks(path, _gray())
    assert str(path) in str(info.value)


@pytest.mark.parametrize("text, reason", [
    ('[{"x": 1, "y": 1, "color": "red", "radius": 1e300}]', "radius must be a number from 0"),
    ('[{"x": 1, "y": 1, "color": "red", "radius": 1e999}]', "radius must be a number from 0"),
    ('[{"x": %s, "y": 1, "color": "red"}]' % ("9" * 5000), "a number of 5000 digits"),
    ('[{"x": %s, "y": 1, "color": "red"}]' % ("9" * 400), "a number of 400 digits"),
    ("[" * 100_000 + "]" * 100_000, "nested too deep"),
    ('[{"x": NaN, "y": 1, "color": "red"}]', "x must be a number"),
    ("\xff\xfe not text", "not valid JSON"),
])
def test_numbers_and_nesting_beyond_their_limits_are_one_line(tmp_path, text, reason):
    path = tmp_path / "bad.json"
    path.write_bytes(text.encode("latin-1"))
    with pytest.raises(MarksError, match=reason) as info:
        load_marks(path, _gray())
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert len(str(info.value)) < 200


def test_points_from_python_take_numpy_numbers_and_refuse_huge_ones():
    hint_ab, mask = load_marks([{"x": np.int64(5), "y": np.int64(6), "color": "red",
                                 "radius": np.float32(1)}], _gray())
    assert mask[6, 5] and mask.sum() == 5
    for point in ({"x": 10**5000, "y": 1}, {"x": 1, "y": 1, "radius": 10**400},
                  {"x": 1, "y": 1, "radius": 1e300}):
        with pytest.raises(MarksError, match="must be a number from 0") as info:
            load_marks([{**point, "color": "red"}], _gray())
        assert len(str(info.value)) < 120
    with pytest.raises(MarksError, match="10001 points; at most 10000"):
        load_marks([{"x": 1, "y": 1, "color": "red"}] * 10_001, _gray())


def test_bad_scribble_images_raise_a_clear_error(tmp_path):
    gray = _gray()
    with pytest.raises(MarksError, match="marks are 20x32 but the photo is 40x32"):
        load_marks(Image.new("RGB", (20, 32), "red"), gray)
    gray.save(tmp_path / "copy.png")
    with pytest.raises(MarksError, match="no marks"):
        load_marks(tmp_path / "copy.png", gray)
    with pytest.raises(MarksError, match="no marks"):
        load_marks(Image.new("RGBA", (40, 32), (255, 0, 0, 0)), gray)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(MarksError, match="empty.png: empty file"):
        load_marks(tmp_path / "empty.png", gray)
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(MarksError, match="broken.json: not valid JSON"):
        load_marks(tmp_path / "broken.json", gray)


@pytest.mark.parametrize("shape_in, shape_out", [((866, 1155), (192, 256)), ((100, 77), (33, 20)),
                                                 ((31, 17), (7, 5)), ((64, 64), (64, 64)),
                                                 ((50, 50), (64, 40))])
def test_pool_hints_visits_marks_only_and_matches_the_area_resize(shape_in, shape_out):
    from chromatize.imaging.hints import pool_hints
    from chromatize.imaging.upsample import area_resize

    rng = np.random.default_rng(0)
    mask = rng.random(shape_in) < 0.03
    ab = (rng.normal(size=shape_in + (2,)) * 30).astype(np.float32)
    frac = area_resize(mask.astype(np.float32), shape_out)
    total = area_resize(np.where(mask[..., None], ab, 0), shape_out)
    want_mask = frac > 1e-6
    want = np.where(want_mask[..., None], total / np.maximum(frac, 1e-6)[..., None], 0)
    got, got_mask = pool_hints(ab, mask, shape_out)
    assert (got_mask == want_mask).all()
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_reach_is_painted_per_point_and_none_when_all_default():
    from chromatize.imaging.hints import REACH, load_hints

    points = [{"x": 5, "y": 5, "color": "red", "radius": 1},
              {"x": 30, "y": 20, "color": "blue", "radius": 1, "reach": "local"}]
    _, mask, reach = load_hints(points, _gray())
    assert reach is not None and reach.dtype == np.float32
    assert reach[20, 30] == REACH["local"] and reach[5, 5] == REACH["object"] == 1
    assert mask[20, 30] and mask[5, 5]
    assert load_hints(points[:1], _gray())[2] is None
    with pytest.raises(MarksError, match="reach must be one of local, object, photo"):
        load_hints([{**points[0], "reach": "far"}], _gray())


def test_a_fix_carries_marks_and_decoding_and_a_plain_list_still_reads(tmp_path):
    from chromatize.imaging.hints import load_fix

    points = [{"x": 5, "y": 5, "color": "#c03020", "radius": 2, "reach": "photo"}]
    path = tmp_path / "fix.json"
    path.write_text(json.dumps({"marks": points, "boost": 0.6, "gain": 1.2, "seed": 7,
                                "model": "default", "photo": "a.png", "version": 1,
                                "palette": "#2e4d8b", "strength": 0.8, "restore": "all"}))
    fix = load_fix(path)
    assert (fix.marks, fix.boost, fix.gain, fix.seed, fix.model) == (points, 0.6, 1.2, 7,
                                                                     "default")
    assert (fix.palette, fix.strength, fix.restore) == ("#2e4d8b", 0.8, "all")
    assert load_marks(path, _gray())[1][5, 5]
    path.write_text(json.dumps(points))
    assert load_fix(path).marks == points and load_fix(path).boost is None


def test_a_fix_carries_a_version_or_a_reference_name(tmp_path):
    from chromatize.imaging.hints import load_fix

    path = tmp_path / "fix.json"
    path.write_text(json.dumps({"marks": [], "variant": 3, "k": 4, "strength": 1.0}))
    fix = load_fix(path)
    assert (fix.variant, fix.k, fix.strength, fix.reference) == (3, 4, 1.0, None)
    path.write_text(json.dumps({"marks": [], "variant": 2}))
    assert (load_fix(path).variant, load_fix(path).k) == (2, 4)  # k: 4 unless given
    path.write_text(json.dumps({"marks": [], "reference": "town 1950.jpg", "strength": 2}))
    fix = load_fix(path)
    assert (fix.reference, fix.variant, fix.strength) == ("town 1950.jpg", None, 2.0)


@pytest.mark.parametrize("fix, reason", [
    ({"marks": [], "variant": 5, "k": 4}, r"variant must be a whole number from 1 to k \(4\)"),
    ({"marks": [], "variant": True}, "variant must be a whole number"),
    ({"marks": [], "variant": 1, "k": 17}, "k: variants must be a whole number from 1 to 16"),
    ({"marks": [], "k": 3}, "needs a 'variant'"),
    ({"marks": [], "variant": 1, "palette": "#c03020"}, "not both"),
    ({"marks": [], "reference": 3}, "'reference' must be a non-empty string"),
    ({"marks": [], "boost": 9}, "boost must be a number from 0 to 3"),
    ({"marks": [], "gain": 0}, "gain must be a number above 0"),
    ({"marks": [], "seed": 1.5}, "seed must be a whole number"),
    ({"marks": [], "boots": 1}, r"unknown keys \['boots'\]"),
    ({"marks": [], "model": 3}, "model"),
    ({"points": []}, "object with \"marks\""),
])
def test_bad_fixes_name_the_file_and_the_reason(tmp_path, fix, reason):
    from chromatize.imaging.hints import load_fix

    path = tmp_path / "fix.json"
    path.write_text(json.dumps(fix))
    with pytest.raises(MarksError, match=reason) as info:
        load_fix(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)
