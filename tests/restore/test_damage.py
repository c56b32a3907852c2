"""The synthetic damage generator, the detectors and inpainting."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from chromatize.restore import damage as dmg
from chromatize.restore.net import DamageNet, Detector, DetectorError, load_detector, save_detector
from chromatize.training.damage import DamageConfig, draw_damage
from restore_helpers import smooth_scene, with_cracks


def test_generator_is_reproducible_and_its_masks_are_the_visible_damage():
    clean = smooth_scene()
    a = draw_damage(clean, np.random.default_rng(3), DamageConfig(strength=3))
    b = draw_damage(clean, np.random.default_rng(3), DamageConfig(strength=3))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert a.image.dtype == np.float32 and a.mask.shape == (2, *clean.shape)
    assert 0 <= a.image.min() and a.image.max() <= 1
    assert a.mask[0].any() and a.mask[1].any()  # lines and specks
    changed = np.abs(a.image - clean) > 1e-6
    assert not (a.mask.any(0) & ~changed).any()  # a masked pixel is changed
    # Outside the damage and its 1 px soft edge, nothing visible changed.
    outside = ~dmg.grow(a.mask.any(0), 1)
    assert np.abs(a.image - clean)[outside].max() <= DamageConfig().mask_delta


def test_generator_strength_scales_and_zero_draws_nothing():
    clean = smooth_scene(128, 128)
    masks = [draw_damage(clean, np.random.default_rng(1), DamageConfig(strength=s)).mask.mean()
             for s in (0.0, 1.0, 4.0)]
    assert masks[0] == 0 and masks[1] < masks[2]
    none = draw_damage(clean, np.random.default_rng(1), DamageConfig(strength=0))
    assert np.array_equal(none.image, clean)


def test_generator_grain_and_fade():
    clean = smooth_scene()
    cfg = DamageConfig(strength=0, grain=(0.03, 0.03), fade=(0.4, 0.4))
    out = draw_damage(clean, np.random.default_rng(0), cfg).image
    assert np.ptp(out) < np.ptp(clean)  # faded
    assert dmg.noise_sigma(out) > 3 * dmg.noise_sigma(clean)  # grainy


def test_config_from_yaml_mapping_checks_keys():
    cfg = DamageConfig.from_dict({"cracks": [1, 2], "strength": 2.0})
    assert cfg.cracks == (1, 2) and cfg.strength == 2.0
    with pytest.raises(KeyError, match="crackz"):
        DamageConfig.from_dict({"crackz": [1, 2]})


def test_morph_detector_finds_cracks_and_leaves_clean_pixels_alone():
    clean = smooth_scene()
    damaged, truth = with_cracks(clean)
    found = dmg.detect_morph(damaged).any(0)
    recall = (truth & dmg.grow(found, 1)).sum() / truth.sum()
    precision = (found & dmg.grow(truth, 1)).sum() / max(found.sum(), 1)
    assert recall > 0.8 and precision > 0.8, (recall, precision)
    assert dmg.detect_morph(clean).any(0).mean() < 0.002


def test_learned_detector_ranks_cracks_above_clean_pixels_and_leaves_clean_alone():
    """The shipped detector's thresholds are strict (chosen on val photos, where texture
    looks like damage), so on this scene it is judged by its probabilities: crack pixels
    above nearly every clean one."""
    import torch

    try:
        detector = load_detector()
    except DetectorError as e:
        pytest.skip(str(e))
    clean = smooth_scene()
    damaged, truth = with_cracks(clean)
    with torch.inference_mode():
        p = torch.sigmoid(detector.net(torch.from_numpy(damaged)[None, None]))[0].max(0)[0]
    p = p.numpy()
    assert np.median(p[truth]) > np.percentile(p[~dmg.grow(truth, 1)], 99)
    assert detector(clean).any(0).mean() < 0.002


def test_inpainting_changes_only_masked_pixels_and_fills_them():
    clean = smooth_scene()
    damaged, truth = with_cracks(clean)
    mask = dmg.grow(truth, 1)
    for method in dmg.INPAINT_METHODS:
        out = dmg.inpaint(damaged, mask, method)
        assert np.array_equal(out[~mask], damaged[~mask])
        assert np.abs(out - clean)[truth].mean() < 0.25 * np.abs(damaged - clean)[truth].mean()
    assert np.array_equal(dmg.inpaint(damaged, np.zeros_like(mask)), damaged)


def test_detector_weights_round_trip(tmp_path):
    net = DamageNet(width=4).eval()
    save_detector(Detector(net, (0.3, 0.6), {"net": {"kwargs": {"width": 4}}}), tmp_path / "d")
    back = load_detector(tmp_path / "d")
    assert back.thresholds == (0.3, 0.6)
    gray = smooth_scene(37, 41)  # any size, not a multiple of 4
    assert np.array_equal(back(gray), Detector(net, (0.3, 0.6))(gray))
    assert back(gray).shape == (2, 37, 41)
    (tmp_path / "d.safetensors").write_bytes(b"junk")
    with pytest.raises(DetectorError, match="cannot load"):
        load_detector(tmp_path / "d")


@pytest.mark.parametrize("kwargs", [{"width": 4}, {"width": 4, "line_lengths": [15]}])
def test_detector_runs_in_onnx_runtime_as_in_pytorch_and_rebuilds_a_damaged_graph(
        tmp_path, monkeypatch, kwargs):
    pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed")
    pytest.importorskip("onnx", reason="onnx is not installed")
    monkeypatch.setenv("CHROMATIZE_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(0)
    save_detector(Detector(DamageNet(**kwargs).eval(), (0.4, 0.6),
                           {"net": {"kwargs": kwargs}}), tmp_path / "d")
    onnx, torch_ = load_detector(tmp_path / "d"), load_detector(tmp_path / "d", "torch")
    assert onnx.session is not None and torch_.session is None
    graphs = list((tmp_path / "cache").glob("damage-*.onnx"))
    assert len(graphs) == 1  # exported once, kept
    gray = smooth_scene(57, 83)  # any size: the graph's height and width are free
    np.testing.assert_allclose(onnx.logits(gray), torch_.logits(gray), atol=1e-4)
    graphs[0].write_bytes(b"cut short")  # a crash mid-write: exported again, replaced
    again = load_detector(tmp_path / "d")
    assert again.session is not None and graphs[0].stat().st_size > 1000
    np.testing.assert_allclose(again.logits(gray), torch_.logits(gray), atol=1e-4)


def test_line_evidence_answers_lines_more_than_specks_and_texture():
    """The line planes, on the marked pixels: a thin line (between two orientations)
    stands out; a speck and random texture (answering in every orientation) much less.
    Each kernel averages (sums to 1)."""
    from torch.nn import functional as F

    from chromatize.restore.net import line_kernels, tophats

    kernels = line_kernels(15)
    assert kernels.shape == (8, 1, 15, 15) and torch.allclose(kernels.sum((1, 2, 3)), torch.ones(8))
    line, speck = torch.zeros(1, 1, 64, 64), torch.zeros(1, 1, 64, 64)
    for i in range(8, 56):
        line[0, 0, i, i // 3 + 10] = 1.0
    speck[0, 0, 30:33, 30:33] = 1.0
    texture = (torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0)) < 0.25)

    def evidence(x: torch.Tensor) -> float:
        """Mean line evidence on the marked pixels away from the border."""
        along = F.conv2d(tophats(x.float(), 11)[0], kernels, padding=7)
        on = x[0, 0] > 0
        return float((along.amax(1) - along.mean(1))[0][12:52, 12:52][on[12:52, 12:52]].mean())

    assert evidence(line) > 0.3
    assert evidence(line) > 5 * evidence(speck)
    assert evidence(line) > 2.5 * evidence(texture)
    with pytest.raises(ValueError, match="odd"):
        line_kernels(14)


class _Bright(Detector):
    """A detector whose lines' log-odds are the gray's brightness: (gray - 0.5) x 20."""

    def logits(self, gray: np.ndarray) -> np.ndarray:
        return np.stack([(gray - 0.5) * 20, np.full_like(gray, -20)]).astype(np.float32)


def test_the_gate_loosens_thresholds_only_for_a_photo_that_shows_damage(monkeypatch):
    from chromatize.restore import pipeline
    from chromatize.restore.net import Gate

    gate = Gate(seed=0.999, low=0.001, high=0.01, loose=(0.8, 0.8))
    assert gate.thresholds((0.9999, 0.99), 0.0) == pytest.approx((0.9999, 0.99))
    assert gate.thresholds((0.9999, 0.99), 0.5) == pytest.approx((0.8, 0.8))
    middle = gate.thresholds((0.9999, 0.99), 0.003)
    assert 0.8 < middle[0] < 0.9999 and 0.8 < middle[1] < 0.99
    detector = _Bright(DamageNet(width=2), (0.9999, 0.9999), gate=gate)
    repair = pipeline.Repair(("cracks",), detector)

    def photo(seeds: int) -> np.ndarray:
        """Gray 0.2 with a faint line (0.6: log-odds 2, under the strict threshold, over
        the loose one) and ``seeds`` pixels at 0.95 (log-odds 9, over the seed)."""
        g = np.full((90, 120), 0.2, np.float32)
        g[45, 10:110] = 0.6
        g.flat[np.linspace(0, 40 * 120, seeds, dtype=int)] = 0.95
        return (g * 255 + 0.5).astype(np.uint8)

    for seeds, repaired in ((3, False), (300, True)):  # 0.03% / 2.8% of the photo
        out = pipeline.restore_pixels(photo(seeds), repair)
        assert (out[45, 20:100] < 100).all() == repaired
        # Many tiles: each pixel's seed counted once, the same verdict; the logits kept
        # from the first pass or computed again give the same repair.
        monkeypatch.setattr(pipeline, "STRIP_ROWS", 32)
        monkeypatch.setattr(pipeline, "TILE_COLS", 48)
        tiled = pipeline.restore_pixels(photo(seeds), repair)
        assert (tiled[45, 20:100] < 100).all() == repaired
        monkeypatch.setattr(pipeline, "LOGIT_CACHE_BYTES", 3000)  # none kept: all run again
        assert np.array_equal(pipeline.restore_pixels(photo(seeds), repair), tiled)
        monkeypatch.undo()


def test_a_gate_is_saved_and_loaded_with_the_detector(tmp_path):
    from chromatize.restore.net import Gate

    gate = Gate(seed=0.998, low=1e-4, high=4e-4, loose=(0.9, 0.85))
    save_detector(Detector(DamageNet(width=2).eval(), (0.99, 0.98),
                           {"net": {"kwargs": {"width": 2}}}, gate=gate), tmp_path / "d")
    back = load_detector(tmp_path / "d", "torch")
    assert back.gate == gate and back.thresholds == (0.99, 0.98)
    save_detector(Detector(back.net, (0.99, 0.98), back.meta), tmp_path / "e")  # gate dropped
    assert load_detector(tmp_path / "e", "torch").gate is None
    info = tmp_path / "d.json"
    info.write_text(info.read_text().replace('"high": 0.0004', '"high": 0.0001'))
    with pytest.raises(DetectorError, match="a gate that does not fit"):
        load_detector(tmp_path / "d", "torch")
