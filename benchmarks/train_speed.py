"""Training throughput on this machine: the data loader alone, and whole training steps.

    PYTHONPATH=src python benchmarks/train_speed.py [--steps 4] [--warmup 2]

For each recipe (the seed's ``unet_thesis`` at 256x256, batch 8, and the shipped model's
``configs/default.yaml`` in both phases, encoder frozen and trained) prints images/s of the loader alone
(as configured: workers, cache) and of training steps (loader + forward + backward +
Adam), both in steady state after warm-up steps. Run from the repository root.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from chromatize.training.config import load_config
from chromatize.training.data import train_loader
from chromatize.training.train import Trainer

# label -> (config, overrides)
RECIPES = {"unet_thesis (thesis_l1)": ("configs/thesis_l1.yaml", []),
           "default, encoder frozen": ("configs/default.yaml", []),
           "default, encoder trained": ("configs/default.yaml", ["--model.freeze_encoder_steps=0"])}


def images_per_s(batches, n: int, warmup: int, batch_size: int) -> float:
    """Images/s over ``n`` items of the iterator ``batches`` after ``warmup`` items."""
    for _ in range(warmup):
        next(batches)
    t0 = time.perf_counter()
    for _ in range(n):
        next(batches)
    return n * batch_size / (time.perf_counter() - t0)


def measure(config: Path, overrides: list[str], steps: int, warmup: int, run_dir: Path,
            ) -> tuple[float, float]:
    cfg = load_config(config, [f"--run_dir={run_dir}", f"--train.max_steps={warmup + steps}",
                               *overrides])
    trainer = Trainer(cfg)
    bs = cfg.train.batch_size
    loader = train_loader(trainer.train_data, cfg.data, bs, cfg.train.seed)
    load_speed = images_per_s(iter(loader), steps * 4, warmup, bs)

    return load_speed, images_per_s(trainer.train_steps(), steps, warmup, bs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    table = Table(title=f"training speed, {torch.get_num_threads()} torch threads")
    for col in ("recipe", "crop", "batch", "workers", "cache", "loader img/s", "train img/s"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, (path, overrides)) in enumerate(RECIPES.items()):
            cfg = load_config(path, overrides)
            load, train = measure(Path(path), overrides, args.steps, args.warmup, Path(tmp) / str(i))
            d = cfg.data
            table.add_row(name, str(d.crop), str(cfg.train.batch_size), str(d.workers),
                          str(d.cache), f"{load:.1f}", f"{train:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
