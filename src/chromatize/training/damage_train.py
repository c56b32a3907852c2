"""Train the damage detector (:class:`chromatize.restore.net.DamageNet`) on synthetic
damage (:mod:`chromatize.training.damage`) drawn over gray crops of training photos.

    python -m chromatize.training.damage_train configs/restore_damage.yaml \\
        [--run /work/runs/restore/damage] [--steps N] [--photos FOLDER]

Every batch is a function of ``(seed, step)`` alone (photos, crops and damage), so a run
resumes exactly from its state files (``state.safetensors`` + ``state.json`` in the run
folder, written every ``save_every`` steps); running the command again continues it.
At the end the detector is written as ``RUN/damage.{safetensors,json}`` (its config, the
photo list and the step inside), ready for ``scripts``/``weights``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from chromatize.version import __version__
from chromatize.checkpoint import git_revision
from chromatize.restore.net import DamageNet, Detector, load_detector, save_detector
from chromatize.restore.pipeline import to_gray
from chromatize.training.config import ConfigError, recipe_main
from chromatize.training.damage import DamageConfig, draw_damage
from chromatize.training.data import list_photos
from chromatize.training.state import resumable_steps

#: Sigma (px) of the blur whose difference from the clean crop stands for what filling
#: a pixel would lose (OpenCV inpainting smooths over about this much).
FILL_BLUR = 1.5
#: The range an undamaged pixel's weight is clipped to when ``neg_ref`` is set.
NEG_CLIP = (0.2, 5.0)


@dataclass
class DetectorTrainConfig:
    """``configs/restore_damage.yaml``: photos, damage, network and schedule."""

    photos: str = "configs/open_photos.txt"
    prefixes: list[str] = field(default_factory=list)  # keep only files starting so
    crop: int = 128
    width: int = 8
    widths: list[int] = field(default_factory=list)  # per level (DamageNet); [] = width
    tophat_sizes: list[int] = field(default_factory=lambda: [5, 11])
    line_lengths: list[int] = field(default_factory=list)  # line evidence planes (DamageNet)
    steps: int = 3000
    batch_size: int = 12
    lr: float = 2.0e-3
    pos_weight: float = 3.0
    # > 0: a damaged pixel weighs pos_weight x its change / delta_ref (clipped to 0.25-4),
    # so the marks that cost most PSNR (and show most) count most; 0: pos_weight alone.
    delta_ref: float = 0.0
    # > 0: an undamaged pixel weighs what filling it would cost (its squared difference
    # from the crop blurred by FILL_BLUR) over neg_ref, clipped to NEG_CLIP: a false mark
    # in flat sky costs little PSNR, one over texture or an edge much; 0: 1 for every one.
    neg_ref: float = 0.0
    # scripts/mine_negatives.py's JSON: places of undamaged photos a detector took for
    # damage; hard_share of the crops are drawn around them (damaged or not as any crop)
    hard_negatives: str = ""
    hard_share: float = 0.0
    strength: list[float] = field(default_factory=lambda: [0.3, 3.0])
    clean_share: float = 0.15  # crops left undamaged (the detector must stay quiet)
    seed: int = 0
    save_every: int = 200
    threads: int = 1
    init: str = ""  # a saved detector (PATH of PATH.safetensors) to start from
    damage: dict[str, Any] = field(default_factory=dict)


def photo_list(cfg: DetectorTrainConfig) -> list[Path]:
    """The training photos: the list, filtered by file-name prefix when given."""
    photos = list_photos(cfg.photos)
    if cfg.prefixes:
        photos = [p for p in photos if p.name.startswith(tuple(cfg.prefixes))]
    return photos


def hard_spots(cfg: DetectorTrainConfig) -> list[tuple[Path, int, int]]:
    """The hard negatives' (photo, x, y), or none without ``hard_negatives``. Raises
    :class:`~chromatize.training.config.ConfigError` for a file that is missing or not
    :file:`scripts/mine_negatives.py`'s JSON."""
    if not cfg.hard_negatives or cfg.hard_share <= 0:
        return []
    try:
        data = json.loads(Path(cfg.hard_negatives).read_text())
        return [(Path(photo), int(x), int(y)) for photo, x, y, *_ in data["spots"]]
    except OSError as e:
        raise ConfigError(f"{cfg.hard_negatives}: cannot read hard negatives "
                          f"({e.strerror or e})") from None
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"{cfg.hard_negatives}: not a list of hard negatives "
                          f"(scripts/mine_negatives.py writes one): {type(e).__name__}") from None


def _crop(path: Path, size: int, rng: np.random.Generator,
          around: tuple[int, int] | None = None) -> np.ndarray:
    """A random ``size`` crop of the photo's gray, float32 in [0, 1], randomly flipped;
    with ``around`` (x, y), one that holds that pixel (at least ``size`` / 4 inside)."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        if min(w, h) < size:
            im = im.resize((max(size, w), max(size, h)))
            w, h = im.size
        if around is not None:  # corners that keep the place size / 4 inside
            tops = (w - size, h - size)
            lo = [max(0, min(c - size + size // 4, top)) for c, top in zip(around, tops)]
            hi = [max(0, min(c - size // 4, top)) for c, top in zip(around, tops)]
            x, y = (int(rng.integers(a, max(a, b) + 1)) for a, b in zip(lo, hi))
        else:
            x, y = int(rng.integers(0, w - size + 1)), int(rng.integers(0, h - size + 1))
        rows = np.asarray(im.crop((x, y, x + size, y + size)))
    gray = to_gray(rows)
    return gray[:, ::-1].copy() if rng.random() < 0.5 else gray


def make_batch(cfg: DetectorTrainConfig, photos: list[Path], damage: DamageConfig,
               step: int, hard: list[tuple[Path, int, int]] | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch ``step``: damaged gray ``(B, 1, S, S)``, masks ``(B, 2, S, S)`` float, how
    far each pixel moved from the clean crop ``(B, 1, S, S)`` in [0, 1], and what
    filling each clean pixel would cost ``(B, 1, S, S)`` (its squared difference from
    the clean crop blurred by FILL_BLUR, in [0, 1]). With ``hard`` (:func:`hard_spots`),
    ``hard_share`` of the crops hold one of those places."""
    rng = np.random.default_rng([cfg.seed, step])
    images, masks, deltas, costs = [], [], [], []
    for _ in range(cfg.batch_size):
        if hard and rng.random() < cfg.hard_share:
            path, x, y = hard[int(rng.integers(len(hard)))]
            clean = _crop(path, cfg.crop, rng, (x, y))
        else:
            clean = _crop(photos[int(rng.integers(len(photos)))], cfg.crop, rng)
        strength = 0.0 if rng.random() < cfg.clean_share else rng.uniform(*cfg.strength)
        out = draw_damage(clean, rng, dataclasses.replace(damage, strength=strength))
        images.append(out.image)
        masks.append(out.mask)
        deltas.append(np.abs(out.image - clean))
        costs.append((clean - cv2.GaussianBlur(clean, (0, 0), FILL_BLUR)) ** 2)
    return (torch.from_numpy(np.stack(images))[:, None],
            torch.from_numpy(np.stack(masks).astype(np.float32)),
            torch.from_numpy(np.stack(deltas).astype(np.float32))[:, None],
            torch.from_numpy(np.stack(costs).astype(np.float32))[:, None])


def pixel_weights(cfg: DetectorTrainConfig, masks: torch.Tensor, delta: torch.Tensor,
                  cost: torch.Tensor | None = None) -> torch.Tensor:
    """The loss weight of each pixel and channel ``(B, 2, S, S)``: ``pos_weight`` (times
    the change over ``delta_ref``, when set) for damaged ones; for undamaged ones 1, or,
    with ``neg_ref`` and ``cost`` (:func:`make_batch`), the cost over ``neg_ref``
    clipped to NEG_CLIP."""
    pos = torch.full_like(delta, cfg.pos_weight)
    if cfg.delta_ref > 0:
        pos = pos * (delta / cfg.delta_ref).clamp(0.25, 4.0)
    neg = torch.ones_like(delta)
    if cfg.neg_ref > 0 and cost is not None:
        neg = (cost / cfg.neg_ref).clamp(*NEG_CLIP)
    return torch.where(masks > 0, pos, neg)


def start_from(net: DamageNet, init: DamageNet) -> None:
    """Load ``init``'s weights into ``net``. Where ``net``'s first layer takes more input
    planes (line evidence added), their weights start at zero, so ``net`` computes
    exactly what ``init`` did and learns from there to use them."""
    state = init.state_dict()
    key = "at_full.0.0.weight"
    mine, theirs = net.state_dict()[key], state[key]
    if mine.shape[1] > theirs.shape[1] and mine.shape[::2] == theirs.shape[::2]:
        grown = torch.zeros_like(mine)
        grown[:, : theirs.shape[1]] = theirs
        state[key] = grown
    net.load_state_dict(state)


def train(cfg: DetectorTrainConfig, run_dir: Path, raw: dict[str, Any],
          stop: int | None = None) -> Path | None:
    """Train (or resume) in ``run_dir``; returns the path of the saved detector, or None
    when ``stop`` (a step) ended the run early, its state saved as an interrupted run's."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    damage = DamageConfig.from_dict(cfg.damage)
    photos, hard = photo_list(cfg), hard_spots(cfg)
    kwargs: dict[str, Any] = {"width": cfg.width, "tophat_sizes": list(cfg.tophat_sizes)}
    if cfg.widths:
        kwargs["widths"] = list(cfg.widths)
    if cfg.line_lengths:
        kwargs["line_lengths"] = list(cfg.line_lengths)
    net = DamageNet(**kwargs)
    if cfg.init:  # a fine-tuning run; its own state, when there is one, overrides
        start_from(net, load_detector(cfg.init, backend="torch").net)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    warm = max(1, cfg.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * 0.5
                                              * (1 + np.cos(np.pi * min(s, cfg.steps) / cfg.steps)))

    def step_loss(step: int) -> torch.Tensor:
        x, y, delta, cost = make_batch(cfg, photos, damage, step, hard)
        return F.binary_cross_entropy_with_logits(net(x), y, pixel_weights(cfg, y, delta, cost))

    step = resumable_steps(run_dir, net, opt, sched, cfg.steps, cfg.save_every, step_loss, stop)
    if step < cfg.steps:
        return None
    meta = {"net": {"name": "DamageNet", "kwargs": kwargs}, "step": step,
            "chromatize_version": __version__, "git_revision": git_revision(),
            "config": raw, "data": {"photos": cfg.photos, "prefixes": cfg.prefixes,
                                    "count": len(photos), "hard_negatives": len(hard)}}
    out = run_dir / "damage"
    save_detector(Detector(net.eval(), meta=meta), out)
    return out


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - command line
    recipe_main(argv, __doc__, DetectorTrainConfig, "/work/runs/restore/damage", train)


if __name__ == "__main__":  # pragma: no cover
    main()
