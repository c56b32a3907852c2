"""The temporal filter: colours follow the motion, flicker drops, scene cuts restart it."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("av", reason="PyAV is not installed (pip install 'chromatize[video]')")
pytest.importorskip("cv2", reason="OpenCV is not installed (pip install 'chromatize[video]')")

from chromatize import color  # noqa: E402
from chromatize import Colorizer  # noqa: E402
from chromatize.color import luminance  # noqa: E402
from chromatize.video import TemporalConfig, TemporalFilter, colorize_video  # noqa: E402
from video_helpers import pan_frames, read_video, texture, write_clip  # noqa: E402

STEP = 2  # pixels a frame the test pans move


def noisy_predictions(frames: list[np.ndarray], seed: int = 0) -> list[np.ndarray]:
    """ab ``(2, h, w)`` tied to the scene (a function of the pixel's brightness) plus fresh
    noise each frame: what a network that flickers gives."""
    rng = np.random.default_rng(seed)
    return [np.stack([f / 4 - 30, 20 - f / 8]).astype(np.float32)
            + rng.normal(0, 6, (2, *f.shape)).astype(np.float32) for f in frames]


def pan_flicker(abs_: list[np.ndarray]) -> float:
    """Mean |Δab| between consecutive frames of a pan, compensated by the known motion,
    away from the border where new content enters."""
    return float(np.mean([np.hypot(*(b[:, :, 8:-8] - a[:, :, 8 + STEP:-8 + STEP])).mean()
                          for a, b in zip(abs_, abs_[1:])]))


def test_filter_carries_colour_along_the_motion():
    frames = [luminance(f) for f in pan_frames(12, 48, 96, STEP)]
    preds = noisy_predictions([f * 2.55 for f in frames])
    filt = TemporalFilter()
    out = [filt(l, ab) for l, ab in zip(frames, preds)]
    assert filt.cuts == 0 and filt.confidence > 0.5
    assert pan_flicker(out) < 0.5 * pan_flicker(preds)
    # The carried colours are the scene's, not smeared: the error to the noise-free colour
    # falls too.
    truth = [np.stack([f * 2.55 / 4 - 30, 20 - f * 2.55 / 8]) for f in frames]
    err_in = np.mean([np.abs(p - t)[:, :, 8:-8].mean() for p, t in zip(preds[4:], truth[4:])])
    err_out = np.mean([np.abs(o - t)[:, :, 8:-8].mean() for o, t in zip(out[4:], truth[4:])])
    assert err_out < 0.8 * err_in


def test_scene_cut_restarts_from_the_new_prediction():
    a, b = luminance(texture(48, 96, seed=1)), luminance(texture(48, 96, seed=7)[::-1].copy())
    filt = TemporalFilter()
    filt(a, np.full((2, 48, 96), 40, np.float32))
    pred = np.full((2, 48, 96), -40, np.float32)
    assert np.array_equal(filt(b, pred), pred)
    assert filt.cuts == 1


def test_brightness_flicker_is_not_a_cut():
    """Old film brightens and darkens from frame to frame; the colours must hold."""
    l = luminance(texture(48, 96, seed=2))
    filt = TemporalFilter(TemporalConfig(weight=0.9))
    filt(l, np.full((2, 48, 96), 30, np.float32))
    out = filt(np.clip(l + 12, 0, 100), np.zeros((2, 48, 96), np.float32))
    assert filt.cuts == 0
    assert np.median(out) > 20  # mostly the carried 30, not the new 0


def test_weight_must_leave_room_for_new_colour():
    with pytest.raises(ValueError, match="weight"):
        TemporalFilter(TemporalConfig(weight=1.0))


def test_temporal_video_flickers_less_than_frame_by_frame(tmp_path):
    """End to end on a synthetic pan with the shipped model at a small working size."""
    src = tmp_path / "pan.mp4"
    write_clip(src, pan_frames(12, 64, 112, STEP, seed=3), rate=25)
    colorizer = Colorizer.load(device="cpu", working_size=64)
    flicker = {}
    for temporal in (False, True):
        out = tmp_path / f"out_{temporal}.mp4"
        stats = colorize_video(src, out, colorizer=colorizer, temporal=temporal)
        assert stats.cuts == 0
        abs_ = [color.rgb_to_lab_np(f / 255)[..., 1:].transpose(2, 0, 1)
                for f in read_video(out)[0]]
        flicker[temporal] = pan_flicker(abs_)
    assert flicker[True] < 0.7 * flicker[False], flicker
