"""Hint sweep (Zhang et al. 2017): mean PSNR of guided methods for N random 6x6 hints.

Prints one row per number of hints and one column per method. ``paint`` (hint colours
where given, gray elsewhere) is the floor every guided method should beat; add methods to
``METHODS`` as they land (Levin et al. 2004, the hint network).

    python benchmarks/hint_sweep.py --photos ../shared/data/photos/val --limit 50
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from chromatize.evaluate import list_images, select_photos
from chromatize.hints import SWEEP_NS, HintMethod, hint_sweep, paint_hints

METHODS: dict[str, HintMethod] = {"paint": paint_hints}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=Path("../shared/data/photos/val"))
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    photos, skipped, _ = select_photos(list_images(args.photos), args.size, args.limit, args.seed)
    results, seconds = {}, {}
    for name, method in METHODS.items():
        start = time.perf_counter()
        results[name] = hint_sweep(method, photos, seed=args.seed, size=args.size)
        seconds[name] = time.perf_counter() - start
    print(f"{len(photos)} colour photos at {args.size}x{args.size} "
          f"({len(skipped['not_colour'])} not colour skipped), seed {args.seed}; PSNR (dB)")
    print(f"{'hints':>6} " + " ".join(f"{name:>10}" for name in METHODS))
    for n in SWEEP_NS:
        print(f"{n:>6} " + " ".join(f"{results[name][n]:>10.2f}" for name in METHODS))
    print(f"{'s':>6} " + " ".join(f"{seconds[name]:>10.1f}" for name in METHODS))


if __name__ == "__main__":
    main()
