import numpy as np
import pytest
import skimage.color as skc
from PIL import Image

from chromatize.checkpoint import CheckpointError
from chromatize.checkpoint import resolve_model
from chromatize.errors import UsageError
from chromatize.decoding import LIMITS
from chromatize.inference.pipeline import Colorizer
from chromatize.imaging.upsample import guided_coefficients
from conftest import save_tiny_model


def _l_star(im: Image.Image) -> np.ndarray:
    return skc.rgb2lab(np.asarray(im.convert("RGB")) / 255)[..., 0]


@pytest.mark.parametrize("size", [(1, 1), (37, 23), (300, 200)])
def test_output_keeps_input_lightness_at_any_size(tiny_checkpoint, color_photo, size):
    gray = color_photo.convert("L").resize(size)
    out = Colorizer.load(tiny_checkpoint, device="cpu").colorize(gray)
    assert out.size == gray.size and out.mode == "RGB"
    assert np.abs(_l_star(out) - _l_star(gray)).max() <= 1.0


def test_inputs_array_path_alpha_and_batch(tiny_checkpoint, color_photo, tmp_path):
    c = Colorizer.load(tiny_checkpoint, device="cpu")
    gray = color_photo.convert("L")
    from_pil = np.asarray(c.colorize(gray))
    assert np.array_equal(np.asarray(c.colorize(np.asarray(gray))), from_pil)
    gray.save(tmp_path / "g.png")
    assert np.array_equal(np.asarray(c.colorize(tmp_path / "g.png")), from_pil)
    la = gray.convert("LA")
    la.putalpha(Image.new("L", gray.size, 77))
    out = c.colorize(la)
    assert out.mode == "RGBA" and np.asarray(out)[..., 3].max() == 77
    batch = c.colorize_batch([gray, gray.resize((20, 30)), gray])
    assert np.array_equal(np.asarray(batch[0]), from_pil)
    assert batch[1].size == (20, 30)


def test_sixteen_bit_gray(tiny_checkpoint, color_photo):
    arr16 = (np.asarray(color_photo.convert("L")).astype(np.uint16) * 257)
    out = Colorizer.load(tiny_checkpoint, device="cpu").colorize(arr16)
    ref = _l_star(color_photo.convert("L"))
    assert np.abs(_l_star(out) - ref).max() <= 1.0


def test_guided_upsampling_follows_luminance_edges():
    import torch

    # Low-res ab is a blurry ramp; the guide has a sharp edge: the upsampled ab should
    # be nearly constant on each side of the edge (colour does not bleed across it).
    h, w = 16, 16
    guide = torch.zeros(1, 1, h, w)
    guide[..., w // 2:] = 1.0
    ab = torch.linspace(-40, 40, w).expand(1, 2, h, w).clone()
    a, b = guided_coefficients(guide, ab, radius=2, eps=1e-4)
    out = a * guide + b
    step = 80 / (w - 1)
    jump = (out[..., w // 2] - out[..., w // 2 - 1]).abs().mean()
    assert jump > 2.5 * step
    inner = out[..., 1 : w // 2 - 3]
    assert inner.std() < ab[..., 1 : w // 2 - 3].std()


def test_default_model_missing_is_a_clear_error(monkeypatch, tmp_path):
    import chromatize.checkpoint as p

    monkeypatch.setattr(p, "shipped_model_path", lambda name="default": tmp_path / name)
    with pytest.raises(CheckpointError, match="default"):
        resolve_model(None)


def _saved(tmp_path, name, **kw):
    return Colorizer.load(save_tiny_model(tmp_path, name, **kw), device="cpu")


def test_samples_differ_are_reproducible_and_keep_lightness(tmp_path, color_photo):
    c = _saved(tmp_path, "effnet_lite0_cls", width=8)
    gray = color_photo.convert("L")
    a = c.colorize(gray, samples=3, seed=1)
    b = c.colorize(gray, samples=3, seed=1)
    assert len(a) == 3 and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))
    assert not np.array_equal(np.asarray(a[0]), np.asarray(a[1]))
    assert all(np.abs(_l_star(x) - _l_star(gray)).max() <= 1.0 for x in a)
    # The default stays one deterministic image.
    assert isinstance(c.colorize(gray), Image.Image)


def test_samples_need_a_classification_model(tiny_checkpoint, color_photo):
    with pytest.raises(ValueError, match="classification"):
        Colorizer.load(tiny_checkpoint, device="cpu").colorize(color_photo.convert("L"), samples=2)


def test_hint_models_take_the_hints_as_input(tmp_path, color_photo):
    gray = color_photo.convert("L")
    h, w = gray.size[1], gray.size[0]
    hint_ab = np.zeros((h, w, 2), np.float32)
    mask = np.zeros((h, w), bool)
    hint_ab[10:20, 10:20] = (60, -40)
    mask[10:20, 10:20] = True
    c = _saved(tmp_path, "effnet_lite0_hints", width=8)
    plain = np.asarray(c.colorize(gray))
    hinted = np.asarray(c.colorize(gray, hints=(hint_ab, mask)))
    assert not np.array_equal(plain, hinted)
    assert np.array_equal(plain, np.asarray(c.colorize(gray, hints=(hint_ab, mask & False))))
    # no mark at all: the automatic result, from the cached output of the first call
    assert (c.cache_info()["misses"], c.cache_info()["hits"]) == (1, 1)


def test_working_shape_caps_and_rounds():
    from chromatize.inference.pipeline import working_shape

    assert working_shape(3000, 4000, 1000, 32) == (736, 992)  # long side at most ~1000
    assert working_shape(480, 640, 1000, 32) == (480, 640)  # never enlarged
    assert working_shape(1, 1, 256, 32) == (32, 32)
    h, w = working_shape(1080, 1920, 256, 32)
    assert h % 32 == 0 and w % 32 == 0 and w == 256


def test_shipped_default_model_colours_a_gray_photo(color_photo):
    colorizer = Colorizer.load(device="cpu")  # the weights shipped inside the package
    assert colorizer.info["model"]["name"] == "effnet_lite0_cls" and colorizer.can_sample
    gray = color_photo.convert("L").resize((160, 120))
    out = colorizer.colorize(gray)
    assert out.size == gray.size
    assert np.abs(_l_star(out) - _l_star(gray)).max() <= 1.0
    lab = skc.rgb2lab(np.asarray(out) / 255)
    assert np.hypot(lab[..., 1], lab[..., 2]).mean() > 1.0  # it adds colour


def test_shipped_hints_model_is_the_default_until_marked(color_photo):
    """`--model hints`: the default plus hint adapters. No marks: the default's colours,
    bit for bit (same backend); marks: their colour exactly where drawn, and the adapters
    change the colours the default's marks solver alone would give."""
    gray = color_photo.convert("L").resize((160, 120))
    hints = Colorizer.load("hints", device="cpu", backend="torch")
    default = Colorizer.load("default", device="cpu", backend="torch")
    assert hints.takes_hints and hints.info["model"]["name"] == "effnet_lite0_cls_adapters"
    assert np.array_equal(np.asarray(hints.colorize(gray)), np.asarray(default.colorize(gray)))
    truth = np.asarray(color_photo.convert("RGB").resize((160, 120)))
    marks = [{"x": 40, "y": 30, "color": [int(v) for v in truth[30, 40]], "radius": 3}]
    out = np.asarray(hints.colorize(gray, marks=marks))
    # the mark's a*b* (the photo's own colour there: in gamut), up to 8-bit rounding
    lab, want = skc.rgb2lab(out / 255), skc.rgb2lab(truth / 255)
    assert np.abs(lab[30, 40, 1:] - want[30, 40, 1:]).max() < 2
    assert not np.array_equal(out, np.asarray(default.colorize(gray, marks=marks)))


@pytest.mark.parametrize("kwargs, message", [
    ({"working_size": -5}, "working size must be a positive whole number"),
    ({"working_size": 2.5}, "working size must be a positive whole number"),
    ({"boost": float("inf")}, "boost must be a number from 0 to 3"),
    ({"boost": float("nan")}, "boost must be a number from 0 to 3"),
    ({"boost": -0.5}, "boost must be a number from 0 to 3"),
    ({"gain": 0.0}, "gain must be a number above 0 and at most 3"),
    ({"gain": float("nan")}, "gain must be a number above 0 and at most 3"),
    ({"gain": 3.5}, "gain must be a number above 0 and at most 3"),
])
def test_out_of_range_settings_are_refused(tmp_path, kwargs, message):
    ckpt = (save_tiny_model(tmp_path, "effnet_lite0_cls", width=8)
            if {"boost", "gain"} & set(kwargs) else None)
    with pytest.raises(UsageError, match=message):
        Colorizer.load(ckpt or save_tiny_model(tmp_path, "unet_tiny"), device="cpu", **kwargs)


@pytest.mark.parametrize("image, message", [
    (np.zeros((0, 0), np.uint8), "a photo of 0x0 pixels has nothing to colorize"),
    (np.zeros((5, 0, 3), np.uint8), "a photo of 0x5 pixels"),
    (Image.new("L", (0, 0)), "a photo of 0x0 pixels"),
    (None, "a photo must be a path, a PIL image or a numpy array, got NoneType"),
    ([[1, 2], [3, 4]], "got list"),
    (np.zeros((4, 4), np.int32), "unsupported array"),
])
def test_what_is_not_a_photo_is_a_usage_error(tiny_checkpoint, image, message):
    colorizer = Colorizer.load(tiny_checkpoint, device="cpu")
    with pytest.raises(UsageError, match=message):
        colorizer.colorize(image)


def test_sizes_and_samples_out_of_range_are_refused(tmp_path, color_photo):
    colorizer = Colorizer.load(save_tiny_model(tmp_path, "effnet_lite0_cls", width=8), device="cpu")
    with pytest.raises(UsageError, match="working size must be a positive whole number"):
        colorizer.colorize(color_photo, size=-5)
    with pytest.raises(UsageError, match=f"samples must be a whole number from 1 to {LIMITS['samples'][1]}, got 1000"):
        colorizer.colorize(color_photo, samples=1000)
    with pytest.raises(UsageError, match="seed must be a whole number from 0 to 9223372036854775807"):
        colorizer.colorize(color_photo, samples=2, seed=10**23)
    assert len(colorizer.colorize(color_photo, samples=2)) == 2


def test_one_torch_thread_restores_the_setting_and_nests():
    import threading

    import torch

    from chromatize.threads import one_torch_thread

    before = torch.get_num_threads()
    seen = []

    def inner():
        with one_torch_thread():
            seen.append(torch.get_num_threads())

    with one_torch_thread():
        seen.append(torch.get_num_threads())
        t = threading.Thread(target=inner)
        t.start()
        t.join()
        seen.append(torch.get_num_threads())  # the other block left; this one still holds
    assert seen == [1, 1, 1] and torch.get_num_threads() == before


def test_strips_in_parallel_give_the_sequential_result():
    import numpy as np
    import torch

    from chromatize.imaging import upsample

    rng = np.random.default_rng(0)
    src = (rng.random((700, 300)) * 255).astype(np.uint8)
    coef = torch.randn(4, 40, 30) * 3
    want = np.concatenate([upsample._apply(c, torch.from_numpy(upsample.color.luminance(
        src[r0:r1]))).numpy() for r0, r1, c in upsample._strips(coef, src.shape)], 1)
    got_rgb = np.asarray(upsample.compose(src, coef))
    lab = upsample.color.rgb_to_lab_np(got_rgb / 255)
    # The composed photo's ab is the strips' ab (up to 8-bit rounding and gamut fitting).
    inside = np.abs(want).max(0) < 20
    assert np.median(np.abs(lab[..., 1:].transpose(2, 0, 1) - want)[:, inside]) < 1.0


def test_chroma_gain_scales_every_decoding_path(tmp_path):
    """A checkpoint's ``gain`` scales the decoded a*b*: its own decoding, a per-call boost
    and samples all come out about that much more saturated than the same weights at 1."""
    photo = Image.fromarray(np.tile(np.linspace(100, 160, 64, dtype=np.uint8), (64, 1)))  # mid-grays: room in the gamut
    plain = Colorizer.load(save_tiny_model(tmp_path / "a", "effnet_lite0_cls", width=8), device="cpu")
    gained = Colorizer.load(save_tiny_model(tmp_path / "b", "effnet_lite0_cls", width=8, gain=1.5),
                            device="cpu")
    assert gained.model.head.gain == 1.5 and plain.model.head.gain == 1

    def chroma(image: Image.Image) -> float:
        return float(np.hypot(*skc.rgb2lab(np.asarray(image))[..., 1:].transpose(2, 0, 1)).mean())

    for kw in ({}, {"boost": 0.5}, {"samples": 1, "seed": 0}):
        a, b = plain.colorize(photo, **kw), gained.colorize(photo, **kw)
        a, b = (x[0] if isinstance(x, list) else x for x in (a, b))
        assert chroma(a) > 1
        assert 1.35 < chroma(b) / chroma(a) < 1.65, (kw, chroma(a), chroma(b))
    # The same gain given at load time, over the checkpoint's own (1.5 -> 1.2 here).
    path = save_tiny_model(tmp_path / "b", "effnet_lite0_cls", width=8, gain=1.5)
    reloaded = Colorizer.load(path, device="cpu", gain=1.2)
    assert reloaded.decoding.gain == 1.2 and reloaded.model.head.gain == 1.5  # model unchanged
    ratio = chroma(reloaded.colorize(photo)) / chroma(plain.colorize(photo))
    assert 1.1 < ratio < 1.3, ratio
    with pytest.raises(UsageError, match="gain needs a classification model"):
        Colorizer.load(save_tiny_model(tmp_path / "c", "unet_tiny"), device="cpu", gain=1.2)


@pytest.mark.parametrize("gain", [-1, 0, "1.2", None, float("inf")])
def test_a_bad_chroma_gain_in_a_checkpoint_is_one_clear_error(tmp_path, gain):
    import json

    ckpt = save_tiny_model(tmp_path, "effnet_lite0_cls", width=8)
    meta_path = ckpt.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["model"]["kwargs"]["gain"] = gain
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"gain must be a positive number") as e:
        Colorizer.load(ckpt, device="cpu")
    assert "\n" not in str(e.value)
