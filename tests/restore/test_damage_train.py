"""The damage detector's trainer: a few steps on generated photos, saved, resumed exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from chromatize.restore.net import DamageNet, load_detector
from chromatize.training.config import ConfigError, from_dict
from chromatize.training.damage_train import (DetectorTrainConfig, make_batch, photo_list,
                                              hard_spots, pixel_weights, start_from, train)
from conftest import make_color_photo


@pytest.fixture
def config(tmp_path) -> DetectorTrainConfig:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        make_color_photo(40 + 8 * i, 56, seed=i).save(folder / f"ok_{i}.png")
    make_color_photo(seed=9).save(folder / "other_0.png")
    return from_dict(DetectorTrainConfig, {
        "photos": str(folder), "prefixes": ["ok_"], "crop": 32, "width": 4, "steps": 4,
        "batch_size": 2, "save_every": 100, "damage": {"dust": [5.0, 10.0]}})


def test_batches_depend_on_seed_and_step_only(config):
    photos = photo_list(config)
    assert [p.name for p in photos] == ["ok_0.png", "ok_1.png", "ok_2.png"]
    from chromatize.training.damage import DamageConfig

    damage = DamageConfig.from_dict(config.damage)
    x1, y1, _, c1 = make_batch(config, photos, damage, 7)
    x2, y2, _, c2 = make_batch(config, photos, damage, 7)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and torch.equal(c1, c2)
    assert x1.shape == (2, 1, 32, 32) and y1.shape == (2, 2, 32, 32)
    assert c1.shape == (2, 1, 32, 32) and float(c1.min()) >= 0
    assert not torch.equal(make_batch(config, photos, damage, 8)[0], x1)


def test_train_saves_a_detector_and_resumes_exactly(config, tmp_path):
    straight = train(config, tmp_path / "a", {})
    assert train(config, tmp_path / "b", {}, stop=2) is None
    resumed = train(config, tmp_path / "b", {})
    wa = load_file(str(straight) + ".safetensors")
    wb = load_file(str(resumed) + ".safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    detector = load_detector(straight)
    assert detector.meta["step"] == 4 and detector.meta["data"]["count"] == 3
    assert detector(np.zeros((20, 24), np.float32)).shape == (2, 20, 24)


def test_an_eighth_level_trains_saves_and_loads(config, tmp_path):
    config.widths, config.delta_ref = [4, 6, 8, 12], 0.2
    saved = train(config, tmp_path / "deep", {})
    detector = load_detector(saved, backend="torch")
    assert detector.meta["net"]["kwargs"]["widths"] == [4, 6, 8, 12]
    assert detector.net.at_eighth is not None
    assert detector(np.zeros((21, 30), np.float32)).shape == (2, 21, 30)


def test_pixel_weights_follow_the_change_when_asked(config):
    masks = torch.tensor([[[[1.0, 1.0, 0.0]], [[0.0, 1.0, 1.0]]]])  # (1, 2, 1, 3)
    delta = torch.tensor([[[[0.01, 0.5, 0.3]]]])  # (1, 1, 1, 3)
    plain = pixel_weights(config, masks, delta)
    assert plain.tolist() == [[[[3.0, 3.0, 1.0]], [[1.0, 3.0, 3.0]]]]
    config.delta_ref = 0.1
    weighted = pixel_weights(config, masks, delta)  # 3 x (0.25 floor, 4 cap, 3)
    assert torch.allclose(weighted, torch.tensor([[[[0.75, 12.0, 1.0]], [[1.0, 12.0, 9.0]]]]))


def test_undamaged_pixels_weigh_what_filling_them_would_cost(config):
    masks = torch.tensor([[[[1.0, 0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0, 0.0]]]])  # (1, 2, 1, 4)
    delta = torch.tensor([[[[0.5, 0.0, 0.0, 0.0]]]])
    cost = torch.tensor([[[[0.0, 1e-6, 2e-3, 1.0]]]])  # flat, flat, texture, an edge
    assert pixel_weights(config, masks, delta, cost)[0, :, 0, 1:].eq(1).all()  # off: 1
    config.neg_ref = 1e-3
    w = pixel_weights(config, masks, delta, cost)
    assert w[0, 0, 0, 0] == 3.0  # a damaged pixel keeps its own weight
    assert torch.allclose(w[0, 0, 0, 1:], torch.tensor([0.2, 2.0, 5.0]))  # NEG_CLIP
    assert torch.equal(w[0, 1, 0], torch.tensor([0.2, 0.2, 2.0, 5.0]))


def test_init_starts_from_a_saved_detector(config, tmp_path):
    first = train(config, tmp_path / "a", {})
    config.init, config.lr, config.steps = str(first), 0.0, 2
    tuned = train(config, tmp_path / "b", {})
    wa = load_file(str(first) + ".safetensors")
    wb = load_file(str(tuned) + ".safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_line_evidence_starts_from_a_detector_without_it_exactly(config, tmp_path):
    """Added input planes start at zero weight: the first step computes what the
    detector it starts from computed; then they train."""
    config.steps = 2
    first = train(config, tmp_path / "a", {})
    before = load_detector(first, backend="torch")
    config.init, config.line_lengths = str(first), [7]
    net = DamageNet(width=4, tophat_sizes=(5, 11), line_lengths=(7,))
    start_from(net, before.net)
    gray = torch.rand(1, 1, 40, 36)
    with torch.no_grad():
        assert torch.allclose(net(gray), before.net(gray))
    config.steps, config.lr = 3, 1e-2
    after = load_detector(train(config, tmp_path / "b", {}), backend="torch")
    assert after.meta["net"]["kwargs"]["line_lengths"] == [7]
    assert float(after.net.state_dict()["at_full.0.0.weight"][:, 5:].abs().sum()) > 0


def test_hard_negatives_put_their_place_in_the_crop(config, tmp_path):
    """hard_share of the crops hold a mined place: here a white speck on black, in every
    crop when the share is 1, and in few of the random ones."""
    from PIL import Image

    from chromatize.training.damage import DamageConfig

    photo = np.zeros((96, 120, 3), np.uint8)
    photo[70:73, 90:93] = 255
    Image.fromarray(photo).save(tmp_path / "speck.png")
    (tmp_path / "hard.json").write_text(json.dumps(
        {"detector": "test", "level": 0.5, "spots": [[str(tmp_path / "speck.png"), 91, 71, 0.9]]}))
    config.photos, config.prefixes, config.clean_share = str(tmp_path), [], 1.0
    config.hard_negatives, config.hard_share, config.batch_size = str(tmp_path / "hard.json"), 1.0, 16
    hard = hard_spots(config)
    assert hard == [(tmp_path / "speck.png", 91, 71)]
    x = make_batch(config, photo_list(config), DamageConfig(), 3, hard)[0]
    assert (x.amax((1, 2, 3)) > 0.9).all()
    (tmp_path / "bad.json").write_text('{"spots": [["a.png", "x"]]}')
    for bad, reason in (("missing.json", "cannot read"), ("bad.json", "not a list")):
        config.hard_negatives = str(tmp_path / bad)
        with pytest.raises(ConfigError, match=reason):
            hard_spots(config)
    config.hard_share = 0.0
    assert hard_spots(config) == []
    x = make_batch(config, photo_list(config), DamageConfig(), 3)[0]
    assert (x.amax((1, 2, 3)) > 0.9).float().mean() < 0.5


def test_unknown_config_key_fails():
    with pytest.raises(ConfigError, match="unknown config key 'stpes'"):
        from_dict(DetectorTrainConfig, {"stpes": 3})


def test_the_shipped_recipes_parse():
    from pathlib import Path

    from chromatize.training.config import read_yaml
    from chromatize.training.damage import DamageConfig
    from chromatize.training.refine_train import RefineTrainConfig

    root = Path(__file__).resolve().parents[2] / "configs"
    detector = from_dict(DetectorTrainConfig, read_yaml(root / "restore_damage.yaml"))
    assert detector.widths == [8, 24, 48, 96] and detector.delta_ref > 0
    for task in ("inpaint", "denoise"):
        refine = from_dict(RefineTrainConfig, read_yaml(root / f"restore_{task}.yaml"))
        assert refine.task == task
        DamageConfig.from_dict(refine.damage)
    DamageConfig.from_dict(detector.damage)
    stages = sorted(root.glob("restore_damage*.yaml"))
    assert len(stages) >= 7  # the stages and the variants measured beside them
    for stage in stages:
        DamageConfig.from_dict(from_dict(DetectorTrainConfig, read_yaml(stage)).damage)


def test_the_trainers_command_lines_end_a_bad_config_in_one_line(tmp_path):
    from chromatize.training import damage_train, refine_train

    for module in (damage_train, refine_train):
        with pytest.raises(SystemExit, match=r"^error: .*missing\.yaml: cannot read config"):
            module.main([str(tmp_path / "missing.yaml")])
    (tmp_path / "bad.yaml").write_text("stpes: 3\n")
    with pytest.raises(SystemExit, match="^error: unknown config key 'stpes'"):
        damage_train.main([str(tmp_path / "bad.yaml")])


def test_mining_hard_negatives_writes_the_places_a_detector_marks(tmp_path):
    """scripts/mine_negatives.py with a tiny detector and level 0 (every pixel marked):
    one region per photo, centred on it, in the JSON a run reads."""
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image

    from chromatize.restore.net import Detector, save_detector

    root = Path(__file__).resolve().parents[2]
    for i in range(2):
        Image.fromarray(np.full((40, 60, 3), 60 * i + 50, np.uint8)).save(tmp_path / f"p{i}.png")
    (tmp_path / "list.txt").write_text("p0.png\np1.png\n")
    save_detector(Detector(DamageNet(width=4).eval(), meta={"net": {"kwargs": {"width": 4}}}),
                  tmp_path / "d")
    run = subprocess.run([sys.executable, str(root / "scripts/mine_negatives.py"),
                          str(tmp_path / "list.txt"), "--detector", str(tmp_path / "d"),
                          "--out", str(tmp_path / "hard.json"), "--level", "0"],
                         capture_output=True, text=True, cwd=root)
    assert run.returncode == 0, run.stderr
    spots = json.loads((tmp_path / "hard.json").read_text())["spots"]
    assert [Path(s[0]).name for s in spots] == ["p0.png", "p1.png"]
    assert all(abs(s[1] - 30) <= 1 and abs(s[2] - 20) <= 1 and 0 < s[3] <= 1 for s in spots)
    config = DetectorTrainConfig(hard_negatives=str(tmp_path / "hard.json"), hard_share=0.5)
    assert [p.name for p, _, _ in hard_spots(config)] == ["p0.png", "p1.png"]
