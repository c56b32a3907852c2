"""Training throughput on this machine, phase by phase, in steady state.

    PYTHONPATH=src python benchmarks/train_speed.py [--steps 30] [--photos 256]

Runs real training steps (``Trainer.fit``: loader or feature cache, forward, loss,
backward, Adam) for each recipe and phase and prints images/s over the steps after a
warm-up. Recipes: the shipped recipe (``configs/default.yaml``: cached encoder features,
bf16 autocast, channels_last) and the previous one (the same model and loss from photos
each step, float32: ``configs/ablation/cls_norebal.yaml``'s settings), each with the
encoder frozen and with it training. Building the feature cache is timed apart (it is
done once per data set). Uses the first ``--photos`` training photos; run from the
repository root.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from chromatize.training.config import load_config
from chromatize.training.data import list_photos
from chromatize.training.train import Trainer

OLD = ["--data.feature_cache=null", "--train.precision=fp32", "--train.channels_last=false",
       "--model.frozen_blocks=0", "--data.train={list}"]
NEW = ["--data.feature_cache={cache}", "--data.train={list}"]
# label -> (overrides, encoder frozen)
RECIPES = {
    "previous, encoder frozen": (OLD, True),
    "previous, encoder training": (OLD, False),
    "shipped, encoder frozen": (NEW, True),
    "shipped, encoder training (blocks 5-15)": (NEW, False),
}


def images_per_s(overrides: list[str], frozen: bool, steps: int, warmup: int,
                 run: Path) -> tuple[float, float]:
    """(images/s of the timed steps, seconds spent building a cache before them)."""
    n = warmup + steps
    cfg = load_config("configs/default.yaml", [
        *overrides, f"--run_dir={run}", f"--train.max_steps={n}", f"--train.log_every={steps}",
        f"--model.freeze_encoder_steps={n if frozen else 0}", "--data.val=null",
        f"--train.ckpt_every={10 * n}", "--train.warmup_steps=0"])
    t0 = time.perf_counter()
    trainer = Trainer(cfg)
    setup = time.perf_counter() - t0
    trainer.fit()
    with (run / "log.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["images_per_s"]]
    # log_every = steps: the last row averages exactly the steps after the warm-up
    return float(rows[-1]["images_per_s"]), setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=30, help="steps before timing")
    parser.add_argument("--photos", type=int, default=256, help="training photos used")
    args = parser.parse_args()
    cfg = load_config("configs/default.yaml", ["--run_dir=x"])
    sources = cfg.data.train if isinstance(cfg.data.train, list) else [cfg.data.train]
    paths = [p for s in sources for p in list_photos(s)][:args.photos]
    table = Table(title=f"training speed, batch {cfg.train.batch_size}, crop {cfg.data.crop}, "
                        f"{torch.get_num_threads()} torch threads")
    for col in ("recipe", "train img/s", "set-up s"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "photos.txt"
        listing.write_text("\n".join(str(p.resolve()) for p in paths))
        for i, (name, (overrides, frozen)) in enumerate(RECIPES.items()):
            filled = [o.format(list=listing, cache=Path(tmp) / "cache") for o in overrides]
            speed, setup = images_per_s(filled, frozen, args.steps, args.warmup,
                                        Path(tmp) / f"run{i}")
            table.add_row(name, f"{speed:.1f}", f"{setup:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
