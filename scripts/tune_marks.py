"""Choose the constants of the marks method (``chromatize.inference.steer``) on TRAINING
photos: mean PSNR of the hint sweep at N = 1, 2, 5, 10, 20, one constant moved at a time.

    PYTHONPATH=src python scripts/tune_marks.py --photos ../shared/data/photos/train \
        --limit 60 [--levin] [--model hints]

Prints one line per setting (PSNR per N and their mean); a change is kept when it raises
the mean by more than 0.01 dB. Val is for reporting only (benchmarks/hint_sweep.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from hint_sweep import levin  # noqa: E402

from chromatize import Colorizer  # noqa: E402
from chromatize.evaluation.evaluate import gray_input, list_images, select_photos  # noqa: E402
from chromatize.evaluation.hint_sweep import _square, hint_sweep  # noqa: E402
from chromatize.inference import steer  # noqa: E402

NS = [1, 2, 5, 10, 20]
GRID = {"MODE_ALPHA": [30.0, 300.0], "MODE_RADIUS": [9.0, 16.0],
        "MODE_SIGMA_LOGITS": [8.0, 16.0], "KAPPA": [0.03, 0.3], "SIGMA_XY": [0.3, 0.5],
        "SIGMA_LOGITS": [5.0, 12.0], "SCREEN": [3e-4, 3e-3], "SIGMA_L": [6.0, 15.0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=Path("../shared/data/photos/train"))
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", default="default", help="the model whose colours marks correct")
    parser.add_argument("--levin", action="store_true", help="also print Levin's row")
    parser.add_argument("--grid", type=json.loads, default=GRID,
                        help='JSON {"CONSTANT": [values...]} to try instead of the default grid')
    args = parser.parse_args()
    photos, _, _ = select_photos(list_images(args.photos), 256, args.limit, args.seed)
    photos = [_square(p, 256) for p in photos]
    colorizer = Colorizer.load(args.model, device="cpu", cache_size=len(photos) + 1)

    def marks(l: np.ndarray, ab: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.asarray(colorizer.colorize(gray_input(l)[0], hints=(ab, mask)))

    def run(cfg: dict[str, float]) -> dict[int, float]:
        for key, value in cfg.items():
            setattr(steer, key, value)
        for net in colorizer._cache.values():  # the prepared prior holds screen etc.
            net.memo.clear()
        return hint_sweep(marks, photos, NS)

    def show(name: str, row: dict[int, float]) -> float:
        mean = float(np.mean(list(row.values())))
        print(name, {n: round(v, 2) for n, v in row.items()}, f"mean {mean:.3f}", flush=True)
        return mean

    if args.levin:
        show("levin", hint_sweep(levin, photos, NS))
    base = {key: getattr(steer, key) for key in args.grid}
    best = show(f"current {base}", run(base))
    for key, values in args.grid.items():
        for value in values:
            cfg = dict(base, **{key: value})
            score = show(f"{key}={value}", run(cfg))
            if score > best + 0.01:
                best, base = score, cfg
    print("best", base, f"{best:.3f}")


if __name__ == "__main__":
    main()
