"""Train a learned repair (:class:`chromatize.restore.refine.RefineNet`) on synthetic
damage (:mod:`chromatize.training.damage`) over gray crops of training photos:

* ``task: inpaint``: the true damage mask (grown by 1 px) filled by OpenCV's Telea, and
  the network's correction of that fill, scored by the squared error inside the mask;
* ``task: denoise``: the generator's grain (sigma drawn from ``grain``), scored by the
  squared error everywhere.

    python -m chromatize.training.refine_train configs/restore_inpaint.yaml \\
        [--run /work/runs/restore/inpaint] [--steps N] [--photos LIST]

As with the detector's trainer, every batch is a function of ``(seed, step)``, and a run
resumes exactly from its state files in the run folder; the network is written as
``RUN/refine.{safetensors,json}``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from chromatize.checkpoint import git_revision
from chromatize.restore import damage as dmg
from chromatize.restore.refine import RefineNet, Refiner, save_refiner
from chromatize.training.config import recipe_main
from chromatize.training.damage import DamageConfig, draw_damage
from chromatize.training.damage_train import _crop, photo_list
from chromatize.training.state import resumable_steps
from chromatize.version import __version__


@dataclass
class RefineTrainConfig:
    """``configs/restore_inpaint.yaml`` / ``restore_denoise.yaml``."""

    task: str = "inpaint"
    photos: str = "configs/open_photos.txt"
    prefixes: list[str] = field(default_factory=list)
    crop: int = 96
    widths: list[int] = field(default_factory=lambda: [16, 32, 64])
    steps: int = 2000
    batch_size: int = 8
    lr: float = 1.0e-3
    strength: list[float] = field(default_factory=lambda: [0.5, 2.0])  # inpaint: damage
    grain: list[float] = field(default_factory=lambda: [0.01, 0.05])  # denoise: sigma
    seed: int = 0
    save_every: int = 200
    threads: int = 1
    damage: dict[str, Any] = field(default_factory=dict)


def make_batch(cfg: RefineTrainConfig, photos: list[Path], damage: DamageConfig,
               step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch ``step``: input gray ``(B, 1, S, S)`` (Telea-filled or grainy), where the
    loss counts ``(B, 1, S, S)`` in {0, 1} (the mask; all ones for denoising) and the
    clean gray ``(B, 1, S, S)``, all float32 in [0, 1]."""
    rng = np.random.default_rng([cfg.seed, step])
    inputs, masks, targets = [], [], []
    for _ in range(cfg.batch_size):
        clean = _crop(photos[int(rng.integers(len(photos)))], cfg.crop, rng)
        if cfg.task == "inpaint":
            out = draw_damage(clean, rng, dataclasses.replace(
                damage, strength=rng.uniform(*cfg.strength), grain=(0.0, 0.0), fade=(0.0, 0.0)))
            mask = dmg.grow(out.mask.any(0), 1)
            inputs.append(dmg.inpaint(out.image, mask))
        else:
            out = draw_damage(clean, rng, dataclasses.replace(
                damage, strength=0.0, grain=tuple(cfg.grain), fade=(0.0, 0.0)))
            mask = np.ones_like(clean, bool)
            inputs.append(out.image)
        masks.append(mask)
        targets.append(clean)
    return tuple(torch.from_numpy(np.stack(a).astype(np.float32))[:, None]
                 for a in (inputs, masks, targets))  # type: ignore[return-value]


def train(cfg: RefineTrainConfig, run_dir: Path, raw: dict[str, Any],
          stop: int | None = None) -> Path | None:
    """Train (or resume) in ``run_dir``; returns the saved network's path, or None when
    ``stop`` ended the run early (its state saved)."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    damage, photos = DamageConfig.from_dict(cfg.damage), photo_list(cfg)  # type: ignore[arg-type]
    net = RefineNet(cfg.task, tuple(cfg.widths))  # type: ignore[arg-type]
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + np.cos(np.pi * min(s, cfg.steps) / cfg.steps)))

    def step_loss(step: int) -> torch.Tensor:
        x, m, y = make_batch(cfg, photos, damage, step)
        out = net(x, m) if cfg.task == "inpaint" else net(x)
        return (((out - y) ** 2) * m).sum() / m.sum().clamp(min=1)

    step = resumable_steps(run_dir, net, opt, sched, cfg.steps, cfg.save_every, step_loss, stop,
                           label="mse")
    if step < cfg.steps:
        return None
    meta = {"net": {"name": "RefineNet", "kwargs": {"task": cfg.task, "widths": list(cfg.widths)}},
            "step": step, "chromatize_version": __version__, "git_revision": git_revision(),
            "config": raw, "data": {"photos": cfg.photos, "count": len(photos)}}
    out = run_dir / "refine"
    save_refiner(Refiner(net.eval(), meta), out)
    return out


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - command line
    recipe_main(argv, __doc__, RefineTrainConfig, "/work/runs/restore/refine", train)


if __name__ == "__main__":  # pragma: no cover
    main()
