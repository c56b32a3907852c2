"""Ship a trained damage detector: choose its thresholds on val photos with synthetic
damage, and write ``src/chromatize/weights/damage.{safetensors,json}``.

    PYTHONPATH=src python scripts/ship_damage.py /work/runs/restore/damage/damage \\
        [--photos ../shared/data/photos/val] [--limit 24] [--out CANDIDATE] [--gate]

Every pair of thresholds (lines, specks) on the grid is scored by the PSNR of the
repaired gray (damage steps only) against the clean gray, averaged over the photos at
damage strengths 0.5, 1 and 2, less the shortfall below CLEAN_DB on the same photos
undamaged (which a detector must leave alone): a threshold that buys recall by touching
clean detail loses. With ``--gate``, a gate (:class:`chromatize.restore.net.Gate`) is
chosen on top of the best pair the same way. Only pairs that leave at most CLEAN_FAILS of
the undamaged copies below CLEAN_DB are eligible: a mean can hide a few clean photos
badly damaged by the repair.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
from pathlib import Path

import numpy as np

from chromatize.restore import damage as dmg
from chromatize.restore.net import Gate, load_detector, save_detector, shipped_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from restore import damage_config, load, psnr, quantize  # noqa: E402

from chromatize.restore.pipeline import to_gray  # noqa: E402
from chromatize.training.damage import draw_damage  # noqa: E402

GRID = (0.3, 0.5, 0.7, 0.85, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995)
STRENGTHS = (0.0, 0.5, 1.0, 2.0)
CLEAN_DB = 40.0
CLEAN_FAILS = 0.05  # share of the undamaged copies allowed below CLEAN_DB
#: Gates tried with --gate (see chromatize.restore.net.Gate): seed, low, high / low, loose.
GATE_GRID = ((0.99, 0.995, 0.998, 0.999), (1e-4, 2e-4, 5e-4, 1e-3, 2e-3), (2, 4),
             (0.7, 0.8, 0.9, 0.95, 0.98, 0.99))


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


class Scorer:
    """Scores thresholds on the cases: the mean PSNR on the damaged copies less the
    mean shortfall below CLEAN_DB on the undamaged ones; -inf when more than
    CLEAN_FAILS of those fall below it. Each case's PSNR at a pair of thresholds is
    computed once."""

    def __init__(self, probs: list[np.ndarray], pairs: list) -> None:
        self.probs, self.pairs, self.memo = probs, pairs, {}
        self.clean = [np.array_equal(d, c) for d, c in pairs]
        self.peak = [p.max(0) for p in probs]

    def case(self, k: int, cut: tuple[float, float]) -> float:
        cut = (round(cut[0], 5), round(cut[1], 5))
        if (k, cut) not in self.memo:
            damaged, clean = self.pairs[k]
            mask = dmg.grow((self.probs[k] > np.array(cut)[:, None, None]).any(0), 1)
            self.memo[k, cut] = psnr(dmg.inpaint(damaged, mask), clean)
        return self.memo[k, cut]

    def __call__(self, cuts: list[tuple[float, float]]) -> float:
        """``cuts``: the thresholds for each case."""
        values = [self.case(k, cut) for k, cut in enumerate(cuts)]
        shortfall = [max(0.0, CLEAN_DB - v) for v, c in zip(values, self.clean) if c]
        if np.mean(np.array(shortfall) > 0) > CLEAN_FAILS:
            return float("-inf")
        return float(np.mean([v for v, c in zip(values, self.clean) if not c])
                     - np.mean(shortfall))

    def gated(self, strict: tuple[float, float], gate: Gate) -> float:
        return self([gate.thresholds(strict, float((peak > gate.seed).mean()))
                     for peak in self.peak])


def best_gate(scorer: Scorer, strict: tuple[float, float]) -> tuple[Gate | None, float]:
    """The gate on GATE_GRID that scores best with the ``strict`` thresholds, and its
    score; None when none beats the thresholds alone."""
    best, top = None, scorer([strict] * len(scorer.pairs))
    for seed, low, span, loose in itertools.product(*GATE_GRID):
        gate = Gate(seed, low, low * span, (loose, loose))
        value = scorer.gated(strict, gate)
        if value > top:
            best, top = gate, value
    return best, top


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="the trained detector (PATH of PATH.safetensors)")
    ap.add_argument("--photos", type=Path, default=Path("../shared/data/photos/val"))
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--out", type=Path, help="where to write it (default: the shipped detector)")
    ap.add_argument("--gate", action="store_true", help="also choose a gate (GATE_GRID)")
    args = ap.parse_args()
    import torch

    detector = load_detector(args.run)
    pairs = cases(args.photos, args.limit)
    with torch.inference_mode():
        probs = [torch.sigmoid(detector.net(torch.from_numpy(d)[None, None]))[0].numpy()
                 for d, _ in pairs]
    scorer = Scorer(probs, pairs)
    scores = {cut: scorer([cut] * len(pairs)) for cut in itertools.product(GRID, GRID)}
    best = max(scores, key=scores.get)
    for cut, value in sorted(scores.items(), key=lambda kv: -kv[1])[:5]:
        print(f"thresholds {cut}: mean PSNR {value:.2f} dB")
    detector.thresholds, detector.gate, top = best, None, scores[best]
    if args.gate:
        detector.gate, top = best_gate(scorer, best)
        print(f"gate {detector.gate}: mean PSNR {top:.2f} dB")
    detector.meta["thresholds_chosen_on"] = {
        "photos": f"{args.limit} of {args.photos.name}, evenly spaced", "strengths": STRENGTHS,
        "grid": GRID, "clean_fails": CLEAN_FAILS, "mean_psnr_db": round(top, 3),
        **({"gate_grid": GATE_GRID} if args.gate else {})}
    out = args.out or shipped_path()
    save_detector(detector, out)
    print(f"wrote {out}.safetensors/.json with thresholds {best}")


if __name__ == "__main__":
    main()
