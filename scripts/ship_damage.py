"""Ship a trained damage detector: choose its thresholds on val photos with synthetic
damage, and write ``src/chromatize/weights/damage.{safetensors,json}``.

    PYTHONPATH=src python scripts/ship_damage.py /work/runs/restore/damage/damage \\
        [--photos ../shared/data/photos/val] [--limit 24] [--out CANDIDATE]

Every pair of thresholds (lines, specks) on the grid is scored by the PSNR of the
repaired gray (damage steps only) against the clean gray, averaged over the photos at
damage strengths 0.5, 1 and 2, less the shortfall below CLEAN_DB on the same photos
undamaged (which a detector must leave alone): a threshold that buys recall by touching
clean detail loses. Only pairs that leave at most CLEAN_FAILS of the undamaged copies
below CLEAN_DB are eligible: a mean can hide a few clean photos badly damaged by the repair.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
from pathlib import Path

import numpy as np

from chromatize.restore import damage as dmg
from chromatize.restore.net import load_detector, save_detector, shipped_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from restore import damage_config, load, psnr, quantize  # noqa: E402

from chromatize.restore.pipeline import to_gray  # noqa: E402
from chromatize.training.damage import draw_damage  # noqa: E402

GRID = (0.3, 0.5, 0.7, 0.85, 0.95, 0.98, 0.99, 0.995, 0.998)
STRENGTHS = (0.0, 0.5, 1.0, 2.0)
CLEAN_DB = 40.0
CLEAN_FAILS = 0.05  # share of the undamaged copies allowed below CLEAN_DB


def cases(photos: Path, limit: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(damaged, clean) gray pairs: every photo at every strength (0: undamaged)."""
    cfg, out = damage_config(), []
    for i, (_, rgb) in enumerate(load(photos, limit)):
        clean = quantize(to_gray(rgb))
        for s in STRENGTHS:
            d = draw_damage(clean, np.random.default_rng([1000 + i, int(s * 100)]),
                            dataclasses.replace(cfg, strength=s))
            out.append((quantize(d.image), clean))
    return out


def score(probs: list[np.ndarray], pairs: list, cut: tuple[float, float]) -> float:
    """Mean PSNR on the damaged copies less the mean shortfall below CLEAN_DB on the
    undamaged ones; -inf when more than CLEAN_FAILS of those fall below it."""
    damaged_db, shortfall = [], []
    for p, (damaged, clean) in zip(probs, pairs):
        mask = dmg.grow((p > np.array(cut)[:, None, None]).any(0), 1)
        value = psnr(dmg.inpaint(damaged, mask), clean)
        if np.array_equal(damaged, clean):
            shortfall.append(max(0.0, CLEAN_DB - value))
        else:
            damaged_db.append(value)
    if np.mean(np.array(shortfall) > 0) > CLEAN_FAILS:
        return float("-inf")
    return float(np.mean(damaged_db) - np.mean(shortfall))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="the trained detector (PATH of PATH.safetensors)")
    ap.add_argument("--photos", type=Path, default=Path("../shared/data/photos/val"))
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--out", type=Path, help="where to write it (default: the shipped detector)")
    args = ap.parse_args()
    import torch

    detector = load_detector(args.run)
    pairs = cases(args.photos, args.limit)
    with torch.inference_mode():
        probs = [torch.sigmoid(detector.net(torch.from_numpy(d)[None, None]))[0].numpy()
                 for d, _ in pairs]
    scores = {cut: score(probs, pairs, cut) for cut in itertools.product(GRID, GRID)}
    best = max(scores, key=scores.get)
    for cut, value in sorted(scores.items(), key=lambda kv: -kv[1])[:5]:
        print(f"thresholds {cut}: mean PSNR {value:.2f} dB")
    detector.thresholds = best
    detector.meta["thresholds_chosen_on"] = {
        "photos": f"{args.limit} of {args.photos.name}, evenly spaced", "strengths": STRENGTHS,
        "grid": GRID, "clean_fails": CLEAN_FAILS, "mean_psnr_db": round(scores[best], 3)}
    out = args.out or shipped_path()
    save_detector(detector, out)
    print(f"wrote {out}.safetensors/.json with thresholds {best}")


if __name__ == "__main__":
    main()
