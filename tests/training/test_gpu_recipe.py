"""What the one-command GPU recipe (configs/gpu/encoder.yaml, scripts/gpu_recipe.sh)
relies on: checkpoints by wall time, the best model by val loss, and packs within a
budget."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from chromatize.training.config import ConfigError, load_config
from chromatize.training.train import Trainer

ROOT = Path(__file__).resolve().parents[2]

TINY = """
model: {name: effnet_lite0, kwargs: {width: 8}}
data: {train: TRAIN, val: TRAIN, crop: 32, workers: 0, val_limit: 2}
loss: {name: l1}
train: {max_steps: 4, batch_size: 4, lr: 1.0e-2, eval_every: 1, ckpt_every: 100,
        log_every: 1, grid_images: 0, seed: 1, keep_best: true, ckpt_minutes: 1.0e-6}
"""


def test_best_model_and_checkpoints_by_wall_time(tmp_path: Path, photo_tree: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.replace("TRAIN", str(photo_tree)))
    trainer = Trainer(load_config(path, [f"--run_dir={tmp_path / 'run'}"]))
    saves = []
    save = trainer.save
    monkeypatch.setattr(trainer, "save", lambda: (saves.append(trainer.step), save()))
    run = trainer.fit()
    assert saves == [1, 2, 3, 4]  # every step: the time budget is tiny, ckpt_every is not
    with open(run / "log.csv") as f:
        losses = {int(r["step"]): float(r["val_loss"]) for r in csv.DictReader(f) if r["val_loss"]}
    best = json.loads((run / "best.json").read_text())
    assert best["step"] == min(losses, key=losses.get)
    assert best["metrics"]["val_loss"] == pytest.approx(min(losses.values()))
    with pytest.raises(ConfigError, match="train.keep_best"):
        Trainer(load_config(path, [f"--run_dir={tmp_path / 'x'}", "--data.val=null"]))
    with pytest.raises(ConfigError, match="train.ckpt_minutes"):
        load_config(path, ["--run_dir=x", "--train.ckpt_minutes=0"])


def test_the_gpu_recipe_config_is_valid() -> None:
    cfg = load_config(ROOT / "configs/gpu/encoder.yaml", ["--run_dir=x"])
    assert cfg.train.keep_best and cfg.train.eval_every == 1000 and cfg.data.device_cache
    assert cfg.train.max_minutes is not None and cfg.train.max_minutes < 10


def test_pack_excludes_and_keeps_within_a_budget(tmp_path: Path, photo_tree: Path) -> None:
    def pack(name: str, *args: str) -> zipfile.ZipFile:
        subprocess.run([sys.executable, str(ROOT / "scripts/pack_photos.py"), str(tmp_path / name),
                        str(photo_tree / "a"), "--side", "16", *args], check=True,
                       env=os.environ | {"PYTHONPATH": str(ROOT / "src")}, capture_output=True)
        return zipfile.ZipFile(tmp_path / name)

    everything = pack("all.zip")
    assert len(everything.namelist()) == 3
    assert len(pack("some.zip", "--exclude", "p1").namelist()) == 2
    budget = sum(i.file_size for i in everything.infolist()) - 1
    packed = pack("budget.zip", "--max-mb", str(budget / 1e6)).infolist()
    assert len(packed) < 3 and sum(i.file_size for i in packed) <= budget
