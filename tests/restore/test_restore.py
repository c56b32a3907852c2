"""``chromatize.restore.restore``: what it changes, what it leaves alone, what it returns."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from chromatize.errors import UsageError
from chromatize.restore import STEPS, Repair, parse_steps, restore
from chromatize.restore import pipeline, tone
from chromatize.restore.damage import detect_morph
from chromatize.training.damage import DamageConfig, draw_damage
from restore_helpers import smooth_scene, with_cracks


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def u8(g: np.ndarray) -> np.ndarray:
    return (np.clip(g, 0, 1) * 255 + 0.5).astype(np.uint8)


@pytest.mark.parametrize("text,steps", [
    ("all", STEPS), ("1", STEPS), ("dust,cracks", ("cracks", "dust")), (" grain ", ("grain",)),
    ("", ()), ("0", ()), ("none", ()), (None, ()), (["fade"], ("fade",)),
])
def test_parse_steps(text, steps):
    assert parse_steps(text) == steps


def test_unknown_step_is_a_user_error():
    with pytest.raises(UsageError, match="unknown repair step 'scratch'"):
        parse_steps("cracks,scratch")
    with pytest.raises(UsageError, match="inpaint"):
        Repair(inpaint="magic")


def test_clean_photo_is_left_almost_unchanged():
    clean = u8(smooth_scene(160, 200))
    out = restore(clean)
    assert out.mode == "L" and out.size == (200, 160)
    assert psnr(out, clean) >= 40


def test_cracks_are_repaired_and_the_rest_is_untouched():
    clean = smooth_scene()
    damaged, truth = with_cracks(clean)
    out = np.asarray(restore(u8(damaged), Repair(("cracks", "dust"), detector="morph")))
    assert psnr(out, u8(clean)) > psnr(u8(damaged), u8(clean)) + 6
    far = ~pipeline.dmg.grow(truth, 4)
    assert np.array_equal(out[far], u8(damaged)[far])


def test_tiles_join_without_seams(monkeypatch):
    """A photo larger than a tile gives what one tile over the whole photo gives."""
    clean = smooth_scene(150, 90)
    damaged = draw_damage(clean, np.random.default_rng(0), DamageConfig(strength=3)).image
    repair = Repair(("cracks", "dust"), detector="morph")
    whole = pipeline.restore_pixels(u8(damaged), repair)
    monkeypatch.setattr(pipeline, "STRIP_ROWS", 40)
    monkeypatch.setattr(pipeline, "TILE_COLS", 50)
    assert np.array_equal(pipeline.restore_pixels(u8(damaged), repair), whole)


def test_tiles_join_without_seams_for_the_deepest_network(monkeypatch):
    """The margin covers what a four-level detector with line evidence sees, so tiles
    change nothing."""
    from chromatize.restore.net import DamageNet, Detector

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = DamageNet(widths=(2, 3, 4, 5), line_lengths=(15,)).eval()
    gray = smooth_scene(300, 260)
    logits = Detector(net).logits(gray)
    # thresholds that mark 1% of the pixels, as a trained detector marks damage
    detector = Detector(net, tuple(float(np.quantile(1 / (1 + np.exp(-l)), 0.99)) for l in logits))
    damaged = draw_damage(gray, np.random.default_rng(1), DamageConfig(strength=2)).image
    repair = Repair(("cracks", "dust"), detector=detector)
    whole = pipeline.restore_pixels(u8(damaged), repair)
    monkeypatch.setattr(pipeline, "STRIP_ROWS", 96)
    monkeypatch.setattr(pipeline, "TILE_COLS", 128)
    assert np.array_equal(pipeline.restore_pixels(u8(damaged), repair), whole)


def test_fade_is_undone_without_clipping_and_grain_is_reduced():
    clean = smooth_scene(128, 128)
    span = np.percentile(clean, 99.8) - np.percentile(clean, 0.2)
    faded = 0.35 + 0.4 * (clean - clean.min()) / np.ptp(clean)
    out = np.asarray(restore(u8(faded), "fade"), np.float32) / 255
    assert np.ptp(out) > 0.95 and np.ptp(faded) < 0.45 and span > 0
    assert (out >= 254.5 / 255).mean() < 0.01 and (out <= 0.5 / 255).mean() < 0.01
    rng = np.random.default_rng(0)
    noisy = u8(clean + rng.normal(0, 0.04, clean.shape))
    assert tone.grain_sigma(noisy.astype(np.float32) / 255) > tone.GRAIN_SIGMA
    out = restore(noisy, "grain")
    assert psnr(out, u8(clean)) > psnr(noisy, u8(clean)) + 3


def test_texture_is_not_taken_for_grain():
    # Fine texture everywhere, strong in some places and faint in others (bark, grass,
    # a carpet): it raises the noise the flattest blocks show as much as grain does, but
    # unevenly, so it is left alone; the same photo with grain over it is denoised.
    yy, xx = np.mgrid[:128, :128]
    weave = np.where((yy + xx) % 2 == 0, 1.0, -1.0) * (0.01 + 0.12 * xx / 127)
    textured = u8(0.5 + weave * (0.5 + 0.5 * np.sin(yy / 9.0)))
    sigma, evenness = pipeline.dmg.noise_floor(textured.astype(np.float32) / 255)
    assert sigma > tone.GRAIN_SIGMA and evenness < tone.GRAIN_EVENNESS
    assert np.array_equal(np.asarray(restore(textured, "grain")), textured)
    rng = np.random.default_rng(0)
    grainy = u8(smooth_scene(128, 128) + rng.normal(0, 0.04, (128, 128)))
    assert tone.grain_sigma(grainy.astype(np.float32) / 255) > tone.GRAIN_SIGMA
    assert not np.array_equal(np.asarray(restore(grainy, "grain")), grainy)


def test_grain_of_a_large_photo_is_measured_on_neighbouring_rows():
    # 3.6 MP of fine stripes that change smoothly down the photo: clean, and measured so
    # in full; rows sampled 3 apart would see them change sharply and call them grain.
    yy, xx = np.mgrid[:3000, :1200]
    stripes = u8(0.5 + 0.05 * np.where(xx % 2 == 0, 1.0, -1.0) * np.sin(yy / 2.5))
    whole = tone.grain_sigma(stripes.astype(np.float32) / 255)
    assert whole == 0.0 and tone.grain_sigma(pipeline._bands(stripes)) == 0.0
    assert tone.grain_sigma(pipeline._sample(stripes)) > 0  # what single rows would say
    assert np.array_equal(np.asarray(restore(stripes, "grain")), stripes)
    rng = np.random.default_rng(0)
    grainy = u8(0.5 + 0.2 * np.sin(xx / 200) + rng.normal(0, 0.04, xx.shape))
    assert abs(tone.grain_sigma(pipeline._bands(grainy))
               - tone.grain_sigma(grainy.astype(np.float32) / 255)) < 0.002


def test_a_clean_low_contrast_photo_is_not_taken_for_faded():
    # Blacks at 0.08 and whites at 0.75: a dim photo, as many clean ones are; fading
    # lifts the blacks further (a fade of 0.2 towards mid-gray puts them at 0.16).
    clean = smooth_scene(128, 128)
    dim = 0.08 + 0.67 * (clean - clean.min()) / np.ptp(clean)
    assert np.array_equal(np.asarray(restore(u8(dim), "fade")), u8(dim))
    faded = 0.2 * 0.5 + 0.8 * dim
    assert not np.array_equal(np.asarray(restore(u8(faded), "fade")), u8(faded))


def test_inputs_sepia_sixteen_bit_and_alpha():
    gray = u8(smooth_scene())
    sepia = np.stack([gray, (gray * 0.85).astype(np.uint8), (gray * 0.6).astype(np.uint8)], -1)
    out = restore(Image.fromarray(sepia), "fade")
    assert out.mode == "L" and out.size == (128, 96)
    sixteen = Image.fromarray(gray.astype(np.uint16) * 257)
    assert restore(sixteen, "cracks").mode == "I;16"
    rgba = Image.fromarray(sepia).convert("RGBA")
    rgba.putalpha(77)
    out = restore(rgba, "dust")
    assert out.mode == "LA" and np.asarray(out)[..., 1].max() == 77


def test_morph_detector_sorts_lines_from_specks():
    clean = smooth_scene()
    damaged, truth = with_cracks(clean)
    damaged[70:73, 100:103] = 0.98  # a speck of dust
    lines, specks = detect_morph(damaged)
    assert lines[truth].mean() > 0.7 and specks[70:73, 100:103].mean() > 0.6
    assert not lines[70:73, 100:103].any()
