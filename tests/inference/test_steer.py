"""Colour marks on a model's colours (``Colorizer.colorize(marks=...)``), suggestions at a
point, the network-output cache, and the shared propagation solver."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from chromatize import Colorizer, color
from chromatize.cli import app
from chromatize.color import luminance
from chromatize.errors import UsageError
from chromatize.inference.hints import MarksError
from chromatize.inference.pipeline import SuggestError
from chromatize.inference.propagate import affinity_system, propagate
from chromatize.decoder import decode_ab
from conftest import save_tiny_model

RED = (40.0, 25.0)  # in the sRGB gamut at the L* of gray 90 (37.6)


def _lab(image: Image.Image) -> np.ndarray:
    return color.rgb_to_lab_np(np.asarray(image.convert("RGB"), np.float64) / 255)


def _hex(ab: tuple[float, float], gray: int) -> str:
    l = float(luminance(np.array([[gray]], np.uint8))[0, 0])
    rgb = color.lab_to_rgb_np(np.array([l, *ab]))
    return "#" + "".join(f"{round(v * 255):02x}" for v in rgb)


def _two_regions(h: int = 48, w: int = 96) -> Image.Image:
    """Dark gray (90) on the left, light gray (170) on the right: one strong edge."""
    gray = np.full((h, w), 90, np.uint8)
    gray[:, w // 2:] = 170
    return Image.fromarray(gray, "L")


@pytest.fixture
def classifier(tmp_path) -> Colorizer:
    """A tiny random classification model, counting its forward calls in ``.calls``."""
    c = Colorizer.load(save_tiny_model(tmp_path, "effnet_lite0_cls", width=8), device="cpu",
                       backend="torch")  # counts the torch module's forward calls
    c.calls = 0  # type: ignore[attr-defined]

    def count(*_: object) -> None:
        c.calls += 1  # type: ignore[attr-defined]

    c.model.register_forward_hook(count)
    return c


def _red_mark(x: int = 12, y: int = 24, gray: int = 90) -> list[dict]:
    return [{"x": x, "y": y, "color": _hex(RED, gray), "radius": 2}]


def test_marked_pixels_keep_the_marks_colour(classifier):
    photo = _two_regions()
    lab = _lab(classifier.colorize(photo, marks=_red_mark()))
    disc = lab[22:27, 10:15][np.hypot(*np.mgrid[-2:3, -2:3]) <= 2]
    np.testing.assert_allclose(disc[:, 1:], np.tile(RED, (len(disc), 1)), atol=1.5)
    # and L* stays the photo's everywhere
    np.testing.assert_allclose(lab[..., 0], luminance(np.asarray(photo)), atol=0.6)


@pytest.mark.parametrize("name", ["effnet_lite0_hints", "effnet_lite0_cls_adapters"])
def test_hint_networks_keep_the_marks_colour_too(tmp_path, name):
    """Networks that take hints as input are corrected by the marks like any other model."""
    torch.manual_seed(0)
    c = Colorizer.load(save_tiny_model(tmp_path, name, width=8), device="cpu")
    lab = _lab(c.colorize(_two_regions(), marks=_red_mark()))
    disc = lab[22:27, 10:15][np.hypot(*np.mgrid[-2:3, -2:3]) <= 2]
    np.testing.assert_allclose(disc[:, 1:], np.tile(RED, (len(disc), 1)), atol=1.5)


def test_marks_spread_over_similar_lightness_and_stop_at_edges(classifier):
    photo = _two_regions()
    auto = _lab(classifier.colorize(photo))[..., 1:]
    marked = _lab(classifier.colorize(photo, marks=_red_mark()))[..., 1:]
    wanted = np.asarray(RED) - auto[24, 12]
    moved = ((marked - auto) @ wanted) / (wanted @ wanted)  # 1 = fully the mark's correction
    assert moved[:, :40].mean() > 0.6  # the mark's region (same lightness) takes it
    assert np.abs(moved[:, 56:]).mean() < 0.1  # across the strong edge: the network's


def test_far_from_marks_the_network_colours_stay(classifier):
    ramp = np.tile(np.linspace(60, 200, 256).astype(np.uint8), (32, 1))
    photo = Image.fromarray(ramp, "L")
    auto = _lab(classifier.colorize(photo))[..., 1:]
    l = float(luminance(ramp[:1, 6:7])[0, 0])
    mark = [{"x": 6, "y": 16, "color": _hex(RED, int(ramp[0, 6])), "radius": 2}]
    marked = _lab(classifier.colorize(photo, marks=mark))[..., 1:]
    change = np.hypot(*(marked - auto).transpose(2, 0, 1))
    assert l > 0 and change[:, :12].mean() > 10
    assert change[:, 230:].mean() < 0.25 * change[:, :12].mean()


def test_no_marks_is_the_automatic_result_exactly(classifier, color_photo):
    gray = color_photo.convert("L")
    auto = np.asarray(classifier.colorize(gray))
    assert np.array_equal(np.asarray(classifier.colorize(gray, marks=[])), auto)
    empty = (np.zeros((48, 64, 2), np.float32), np.zeros((48, 64), bool))
    assert np.array_equal(np.asarray(classifier.colorize(gray, hints=empty)), auto)
    # ... and the same as the batched path (colorize_batch) that folders take
    assert np.array_equal(np.asarray(classifier.colorize_batch([gray])[0]), auto)


def test_cache_runs_the_network_once_per_photo(classifier, color_photo, tmp_path):
    gray = color_photo.convert("L")
    classifier.colorize(gray)
    classifier.colorize(gray, marks=_red_mark(10, 10))
    classifier.colorize(gray, marks=_red_mark(30, 20), boost=0.7)
    classifier.suggest(gray, 5, 5)
    gray.save(tmp_path / "g.png")
    classifier.colorize(tmp_path / "g.png")  # the same pixels read from a file
    assert classifier.calls == 1
    assert classifier.cache_info() == {"hits": 4, "misses": 1, "size": 1, "max_size": 8}
    classifier.colorize(gray, size=32)  # another working size is another network run
    other = Image.fromarray(np.asarray(gray)[::-1].copy())
    classifier.colorize(other)
    assert classifier.calls == 3 and classifier.cache_info()["size"] == 3


def test_cache_is_bounded_and_least_recently_used_goes(tmp_path):
    c = Colorizer.load(save_tiny_model(tmp_path, "effnet_lite0_cls", width=8), device="cpu",
                       cache_size=2)
    photos = [Image.fromarray(np.full((16, 16), v, np.uint8)) for v in (50, 100, 150)]
    for p in (photos[0], photos[1], photos[0], photos[2], photos[0]):
        c.colorize(p)
    assert c.cache_info() == {"hits": 2, "misses": 3, "size": 2, "max_size": 2}
    c.colorize(photos[1])  # evicted by photos[2]
    assert c.cache_info()["misses"] == 4


def test_concurrent_calls_agree_with_sequential_ones(classifier, color_photo):
    gray = color_photo.convert("L")
    marks = [_red_mark(5 + 6 * i, 20) for i in range(6)]
    expected = [np.asarray(classifier.colorize(gray, marks=m)) for m in marks]
    classifier.cache_clear()
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda m: np.asarray(classifier.colorize(gray, marks=m)), marks))
    assert all(np.array_equal(a, b) for a, b in zip(expected, got))


def test_boost_per_call_leaves_the_model_alone(classifier, color_photo):
    gray = color_photo.convert("L")
    weights = classifier.model.head.class_weights
    weights.copy_(torch.linspace(0.2, 5, len(weights)))  # rare colours weigh more
    before = np.asarray(classifier.colorize(gray))
    vivid = np.asarray(classifier.colorize(gray, boost=2.0))
    assert classifier.model.head.boost == 0
    assert not np.array_equal(before, vivid)
    assert np.array_equal(np.asarray(classifier.colorize(gray)), before)
    with pytest.raises(UsageError, match="boost must be"):
        classifier.colorize(gray, boost=-1)


def test_suggest_gives_k_sorted_colours_led_by_the_predicted_one(classifier):
    head = classifier.model.head
    q = int(np.argmin(np.hypot(*(head.bins.numpy() - (30, 20)).T)))
    head.conv.bias.data[q] += 6  # a confident network: bin q is the likely colour
    photo = _two_regions()
    colours = classifier.suggest(photo, 20.5, 10, k=4)
    assert len(colours) == 4 and all(c.startswith("#") and len(c) == 7 for c, _ in colours)
    probs = [p for _, p in colours]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6
    predicted = _lab(classifier.colorize(photo))[10, 20, 1:]
    top = color.rgb_to_lab_np(np.array([int(colours[0][0][i:i + 2], 16) / 255
                                        for i in (1, 3, 5)]))[1:]
    assert np.hypot(*(top - predicted)) < 8 and probs[0] > 0.5


def test_suggest_at_the_edges_is_as_sure_as_inside(classifier):
    """The network's distribution is sampled at the pixel's centre; past the outer cell
    centres it was blended with zeros (grid_sample's default padding): flatter."""
    head = classifier.model.head
    head.conv.bias.data[int(np.argmin(np.hypot(*(head.bins.numpy() - (30, 20)).T)))] += 6
    photo = Image.new("L", (96, 48), 90)  # the same everywhere, edges included
    inside = classifier.suggest(photo, 40, 20, k=1)[0][1]
    for x, y in ((95, 20), (40, 47), (95, 47), (0, 0), (95.9, 47.9)):
        assert classifier.suggest(photo, x, y, k=1)[0][1] == pytest.approx(inside, abs=0.02)
    # numpy's integers are numbers like any other
    assert classifier.suggest(photo, np.int64(95), np.int32(47), k=1)[0][1] == pytest.approx(
        inside, abs=0.02)


@pytest.mark.parametrize("x, y, k, message", [
    (96, 0, 6, "outside the 96x48 photo"), (-1, 0, 6, "outside"), (0, 48.5, 6, "outside"),
    (0, 0, 0, "k must be"),
    pytest.param(10**5000, 0, 6, "x=an integer of about 5001 digits is outside", id="huge"),
    (float("nan"), 0, 6, "outside"),
])
def test_suggest_rejects_bad_points(classifier, x, y, k, message):
    with pytest.raises(SuggestError, match=message):
        classifier.suggest(_two_regions(), x, y, k=k)


def test_regression_models_take_marks_but_give_no_suggestions(tiny_checkpoint):
    c = Colorizer.load(tiny_checkpoint, device="cpu")
    photo = _two_regions()
    lab = _lab(c.colorize(photo, marks=_red_mark()))
    assert np.abs(lab[24, 12, 1:] - RED).max() < 1.5
    with pytest.raises(SuggestError, match="classification model"):
        c.suggest(photo, 1, 1)
    with pytest.raises(UsageError, match="boost needs a classification model"):
        c.colorize(photo, boost=0.5)


def test_bad_marks_raise_marks_error(classifier, tmp_path):
    with pytest.raises(MarksError, match="outside the 96x48 photo"):
        classifier.colorize(_two_regions(), marks=[{"x": 96, "y": 0, "color": "red"}])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(MarksError, match="not valid JSON"):
        classifier.colorize(_two_regions(), marks=bad)


def test_screened_propagation_decays_and_plain_propagation_fills():
    l = np.full((40, 200), 50, np.float32)
    target = np.zeros((40, 200, 1), np.float32)
    mask = np.zeros((40, 200), bool)
    target[18:22, 0:4], mask[18:22, 0:4] = 10, True
    plain = propagate(l, target, mask)[..., 0]
    screened = propagate(l, target, mask, np.full(l.shape, 1e-2, np.float32))[..., 0]
    assert np.abs(plain - 10).max() < 0.5  # one mark, no data term: it fills everything
    assert screened[:, 190:].max() < 0.5 and screened[20, 5] > 5  # decays away from it
    a_mat, _ = affinity_system(l, target, mask, np.full(l.shape, 1e-2))
    assert abs(a_mat - a_mat.T).max() == 0


# ----------------------------------------------------------------------------- CLI

runner = CliRunner()


def test_cli_colorize_with_json_points_and_suggest(tmp_path):
    model = save_tiny_model(tmp_path, "effnet_lite0_cls", width=8)
    _two_regions().save(tmp_path / "photo.png")
    (tmp_path / "points.json").write_text(json.dumps(_red_mark()))
    result = runner.invoke(app, ["colorize", str(tmp_path / "photo.png"), "-o",
                                 str(tmp_path / "out"), "--model", str(model),
                                 "--marks", str(tmp_path / "points.json")])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out" / "photo.png") as out:
        assert np.abs(_lab(out)[24, 12, 1:] - RED).max() < 1.5
    result = runner.invoke(app, ["suggest", str(tmp_path / "photo.png"), "--at", "12,24",
                                 "-k", "3", "--json", "--model", str(model)])
    assert result.exit_code == 0, result.output
    colours = json.loads(result.output)
    assert len(colours) == 3 and set(colours[0]) == {"color", "probability"}
    result = runner.invoke(app, ["suggest", str(tmp_path / "photo.png"), "--at", "12,24",
                                 "--model", str(model)])
    assert result.exit_code == 0 and len(result.output.strip().splitlines()) == 6


@pytest.mark.parametrize("args, message", [
    (["--at", "12"], "expected X,Y"),
    (["--at", "a,b"], "expected X,Y"),
    (["--at", "500,3"], "outside the 96x48 photo"),
])
def test_cli_suggest_errors_are_one_line(tmp_path, args, message):
    model = save_tiny_model(tmp_path, "effnet_lite0_cls", width=8)
    _two_regions().save(tmp_path / "photo.png")
    result = runner.invoke(app, ["suggest", str(tmp_path / "photo.png"), *args,
                                 "--model", str(model)])
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_cli_suggest_needs_a_classification_model(tmp_path, tiny_checkpoint):
    _two_regions().save(tmp_path / "photo.png")
    result = runner.invoke(app, ["suggest", str(tmp_path / "photo.png"), "--at", "1,1",
                                 "--model", str(tiny_checkpoint)])
    assert result.exit_code == 2 and "classification model" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_resolve_from_the_memo_equals_a_fresh_solve():
    from chromatize import Colorizer

    rng = np.random.default_rng(3)
    gray = (rng.random((70, 90)) * 255).astype(np.uint8)
    marks = [{"x": 10, "y": 12, "color": "#c02020", "radius": 3},
             {"x": 60, "y": 50, "color": "#2040c0", "radius": 2}]
    warm = Colorizer.load("default", device="cpu")
    warm.colorize(gray, marks=[{"x": 40, "y": 30, "color": "#20c020", "radius": 3}])
    again = np.asarray(warm.colorize(gray, marks=marks))
    assert warm.cache_info()["misses"] == 1
    fresh = np.asarray(Colorizer.load("default", device="cpu").colorize(gray, marks=marks))
    assert np.array_equal(again, fresh)


def test_propagate_reuses_its_pyramid_for_new_marks_with_the_same_result():
    from chromatize.inference.propagate import propagate

    rng = np.random.default_rng(1)
    l = np.cumsum(rng.random((150, 170)), 1).astype(np.float32) / 1.7
    screen = np.full(l.shape, 1e-3, np.float32)
    cache: dict = {}
    for seed in (2, 3):  # two sets of marks on the same photo
        r = np.random.default_rng(seed)
        mask = np.zeros(l.shape, bool)
        mask[r.integers(0, 150, 8), r.integers(0, 170, 8)] = True
        target = np.where(mask[..., None], r.normal(size=l.shape + (2,)) * 20, 0).astype(np.float32)
        fresh = propagate(l, target, mask, screen, coarsest_side=32)
        kept = propagate(l, target, mask, screen, coarsest_side=32, cache=cache)
        assert np.array_equal(fresh, kept)
    assert ("pyramid", 32) in cache


def test_a_mark_settles_the_networks_hesitation_for_pixels_like_it():
    """Step 0 of steer: where the network hesitates between red and blue, a red mark makes
    the pixels with that hesitation red, and pixels the network is sure of (a gray region
    of the same lightness, with no edge between) keep their colour. Spreading the mark's
    correction alone (no step 0) leaks into the gray region."""
    from chromatize.inference import steer

    from chromatize.models.heads import ClassificationHead

    bins = torch.tensor([RED, (-10.0, -40.0), (0.0, 0.0)])
    head = ClassificationHead(1)  # its decoding, over three bins
    head.bins = bins
    h, w = 8, 32
    logits = torch.zeros(3, h, w)
    logits[:2, :, : w // 2] = 5.0  # left half: red or blue, even odds
    logits[2, :, w // 2:] = 10.0  # right half: surely gray
    l = np.full((h, w), 50.0, np.float32)
    ab = decode_ab(logits[None], bins)[0]
    prior = ab.permute(1, 2, 0).numpy()
    mark_ab = np.zeros((h, w, 2), np.float32)
    mark = np.zeros((h, w), bool)
    mark[4, 1] = True
    mark_ab[4, 1] = RED

    def colours(decoded_by: ClassificationHead | None) -> np.ndarray:
        p = steer.prepare(l, prior, ab, logits, bins, decoded_by)
        return prior + steer.correct(p, mark_ab, mark)

    settled = colours(head)
    spread = colours(None)
    far_left = (4, w // 2 - 2)
    assert np.abs(prior[far_left] - RED).max() > 15  # the network alone: between the two
    assert np.abs(settled[far_left] - RED).max() < 0.5
    np.testing.assert_allclose(settled[:, -4:], prior[:, -4:], atol=0.5)
    assert np.abs(spread[:, -4:] - prior[:, -4:]).max() > 3
    np.testing.assert_allclose(settled[mark], [RED], atol=1e-3)


def test_a_large_painted_layer_reads_a_bounded_subset_of_marks(classifier, monkeypatch):
    """Steps 0 and 1 weigh cells against marked cells: a layer painted over half the photo
    is read as an evenly spaced subset there (bounded memory), and stays exact."""
    from chromatize.inference import steer

    monkeypatch.setattr(steer, "MAX_NONLOCAL_MARKS", 16)
    seen: list[int] = []
    affinity = steer._affinity

    def spy(l_net, features, ys, xs, sigma, reach=None):  # noqa: ANN001, ANN202
        seen.append(len(ys))
        return affinity(l_net, features, ys, xs, sigma, reach)

    monkeypatch.setattr(steer, "_affinity", spy)
    photo = _two_regions()
    layer = np.zeros((48, 96, 4), np.uint8)
    layer[:, :40] = (*[round(v * 255) for v in color.lab_to_rgb_np(np.array([37.6, *RED]))], 255)
    lab = _lab(classifier.colorize(photo, marks=Image.fromarray(layer, "RGBA")))
    assert seen and max(seen) == 16
    np.testing.assert_allclose(lab[4:44, 4:36, 1:].reshape(-1, 2).mean(0), RED, atol=2)


def test_a_points_reach_limits_or_widens_its_correction(classifier):
    """On a ramp, the change far from a point grows with its reach; the point itself
    keeps its colour whatever the reach."""
    ramp = np.tile(np.linspace(60, 200, 256).astype(np.uint8), (32, 1))
    photo = Image.fromarray(ramp, "L")
    auto = _lab(classifier.colorize(photo))[..., 1:]
    far = {}
    for reach in ("local", "object", "photo"):
        mark = [{"x": 100, "y": 16, "color": _hex(RED, int(ramp[0, 100])), "radius": 2,
                 "reach": reach}]
        marked = _lab(classifier.colorize(photo, marks=mark))[..., 1:]
        assert np.abs(marked[16, 100] - RED).max() < 1.5
        change = np.hypot(*(marked - auto).transpose(2, 0, 1))
        far[reach] = change[:, 150:].mean()
    assert far["local"] < 0.5 * far["object"] and far["object"] < 0.8 * far["photo"], far


def test_gain_per_call_leaves_the_model_alone(classifier, color_photo):
    gray = color_photo.convert("L")
    before = _lab(classifier.colorize(gray))
    vivid = _lab(classifier.colorize(gray, gain=2.0))
    assert classifier.model.head.gain == 1
    chroma = lambda lab: np.hypot(lab[..., 1], lab[..., 2]).mean()  # noqa: E731
    assert chroma(vivid) > 1.3 * chroma(before)
    assert np.array_equal(_lab(classifier.colorize(gray)), before)
    with pytest.raises(UsageError, match="gain must be"):
        classifier.colorize(gray, gain=0)


def test_cli_reads_a_fix_and_its_decoding_and_options_given_win(tmp_path):
    model = save_tiny_model(tmp_path, "effnet_lite0_cls", width=8)
    _two_regions().save(tmp_path / "photo.png")
    fix = {"marks": _red_mark(), "boost": 1.5, "gain": 1.4, "seed": 3, "model": str(model)}
    (tmp_path / "fix.json").write_text(json.dumps(fix))
    (tmp_path / "points.json").write_text(json.dumps(_red_mark()))

    def run(out: str, *args: str) -> np.ndarray:
        result = runner.invoke(app, ["colorize", str(tmp_path / "photo.png"), "-o",
                                     str(tmp_path / out), *args])
        assert result.exit_code == 0, result.output
        with Image.open(tmp_path / out / "photo.png") as image:
            return np.asarray(image.convert("RGB")).astype(int)

    from_fix = run("fix", "--marks", str(tmp_path / "fix.json"))
    by_hand = run("hand", "--marks", str(tmp_path / "points.json"), "--model", str(model),
                  "--boost", "1.5", "--gain", "1.4", "--seed", "3")
    assert np.abs(from_fix - by_hand).max() <= 1
    plain = run("plain", "--marks", str(tmp_path / "points.json"), "--model", str(model))
    assert np.abs(from_fix - plain).max() > 3  # the fix's decoding did apply
    overridden = run("over", "--marks", str(tmp_path / "fix.json"), "--boost", "0",
                     "--gain", "1")
    same = run("same", "--marks", str(tmp_path / "points.json"), "--model", str(model),
               "--boost", "0", "--gain", "1", "--seed", "3")
    assert np.abs(overridden - same).max() <= 1 and np.abs(overridden - from_fix).max() > 3
