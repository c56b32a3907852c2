"""The learned repairs compared with OpenCV's: a correction of Telea's fill, a denoiser;
their trainer resumes exactly, and inpainting never touches a pixel outside the mask."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from chromatize.errors import UsageError
from chromatize.restore import damage as dmg
from chromatize.restore.net import DetectorError
from chromatize.restore.refine import RefineNet, Refiner, load_refiner, save_refiner
from chromatize.training.config import from_dict
from chromatize.training.damage import DamageConfig
from chromatize.training.damage_train import photo_list
from chromatize.training.refine_train import RefineTrainConfig, make_batch, train
from conftest import make_color_photo
from restore_helpers import smooth_scene, with_cracks


@pytest.fixture
def config(tmp_path) -> RefineTrainConfig:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(2):
        make_color_photo(48, 56, seed=i).save(folder / f"p_{i}.png")
    return from_dict(RefineTrainConfig, {
        "photos": str(folder), "crop": 32, "widths": [4, 6, 8], "steps": 4,
        "batch_size": 2, "save_every": 100, "damage": {"cracks": [3.0, 6.0]}})


def test_a_new_network_changes_nothing_and_inpainting_keeps_the_rest():
    damaged, truth = with_cracks(smooth_scene())
    refiner = Refiner(RefineNet("inpaint", (4, 6, 8)).eval())
    # The last layer starts at zero: at first the fill is Telea's exactly.
    assert np.allclose(refiner.inpaint(damaged, truth), dmg.inpaint(damaged, truth), atol=1e-6)
    with torch.no_grad():
        refiner.net.out.bias.fill_(0.3)  # a network that changes every pixel it sees
    out = refiner.inpaint(damaged, truth)
    assert np.array_equal(out[~truth], damaged[~truth])
    assert not np.allclose(out[truth], dmg.inpaint(damaged, truth)[truth])
    noisy = smooth_scene() + 0.0
    assert np.allclose(Refiner(RefineNet("denoise", (4, 6, 8)).eval()).denoise(noisy), noisy,
                       atol=1e-6)


@pytest.mark.parametrize("task", ["inpaint", "denoise"])
def test_batches_train_save_and_resume_exactly(config, tmp_path, task):
    config.task = task
    photos = photo_list(config)
    x, m, y = make_batch(config, photos, DamageConfig.from_dict(config.damage), 3)
    assert x.shape == m.shape == y.shape == (2, 1, 32, 32)
    assert torch.equal(x, make_batch(config, photos, DamageConfig.from_dict(config.damage), 3)[0])
    if task == "inpaint":  # the fill differs from the clean crop only inside the mask
        assert 0 < m.mean() < 1 and torch.equal(x[m == 0], y[m == 0])
    else:
        assert m.mean() == 1 and not torch.equal(x, y)
    straight = train(config, tmp_path / "a", {})
    assert train(config, tmp_path / "b", {}, stop=2) is None
    resumed = train(config, tmp_path / "b", {})
    wa, wb = (load_file(f"{p}.safetensors") for p in (straight, resumed))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert load_refiner(straight).net.task == task


def test_a_missing_or_foreign_file_is_a_clear_error(tmp_path):
    with pytest.raises(DetectorError, match="cannot load the repair network"):
        load_refiner(tmp_path / "nothing")
    (tmp_path / "x.json").write_text('{"format": "something-else"}')
    with pytest.raises(DetectorError, match="not a refine net"):
        load_refiner(tmp_path / "x")


def test_learned_inpainting_runs_in_onnx_runtime_as_in_pytorch(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed")
    pytest.importorskip("onnx", reason="onnx is not installed")
    monkeypatch.setenv("CHROMATIZE_CACHE", str(tmp_path / "cache"))
    net = RefineNet("inpaint", (4, 6, 8)).eval()
    with torch.no_grad():
        net.out.weight.normal_(0, 0.1)  # not the identity: the graph must carry the weights
    save_refiner(Refiner(net, {"net": {"kwargs": {"task": "inpaint", "widths": [4, 6, 8]}}}),
                 tmp_path / "r")
    onnx, torch_ = load_refiner(tmp_path / "r"), load_refiner(tmp_path / "r", "torch")
    assert onnx.session is not None and torch_.session is None
    assert len(list((tmp_path / "cache").glob("refine-*.onnx"))) == 1
    damaged, truth = with_cracks(smooth_scene(57, 83))
    np.testing.assert_allclose(onnx.inpaint(damaged, truth), torch_.inpaint(damaged, truth),
                               atol=1e-4)


def test_repair_fills_with_a_learned_inpainting_and_keeps_the_rest(tmp_path):
    from chromatize.restore import pipeline

    net = RefineNet("inpaint", (4, 6, 8)).eval()
    with torch.no_grad():
        net.out.bias.fill_(0.1)
    save_refiner(Refiner(net, {"net": {"kwargs": {"task": "inpaint", "widths": [4, 6, 8]}}}),
                 tmp_path / "inpaint")
    damaged, truth = with_cracks(smooth_scene())
    u8 = (damaged * 255 + 0.5).astype(np.uint8)

    def found(gray: np.ndarray) -> np.ndarray:
        return np.stack([truth, np.zeros_like(truth)])

    def run(how) -> np.ndarray:  # noqa: ANN001
        return pipeline.restore_pixels(u8, pipeline.Repair(("cracks",), found, how))

    telea, learned = run("telea"), run(load_refiner(tmp_path / "inpaint").inpaint)
    inside = dmg.grow(truth, pipeline.GROW)
    assert np.array_equal(learned[~inside], u8[~inside])
    assert np.abs(learned[inside].astype(int) - telea[inside]).mean() > 10  # bias 0.1 = 25
    with pytest.raises(UsageError, match="inpaint must be one of telea, ns or a callable"):
        pipeline.Repair(inpaint="magic")
