"""Interactive speed of marks: ``Colorizer.colorize(photo, marks=...)`` with the network's
output already cached, at 1 and 12 megapixels.

A real photo is upscaled to each size and made gray. The first call runs the network (a
cache miss); each later call moves ``--marks`` random point marks (radius 4, the photo's
true colour there) and colours the photo again from the cached output: that re-solve is
what a user waits for after each click. Printed: the first call, the re-solve (median of
``--repeats``, full-size output included), and its parts: the correction at the working
size (``steer.correct``) and everything else (reading the marks, the full-size
composition in strips). The last column counts the network's runs: once per size for
models whose output is cached; hint models (``--model hints``) take the marks as input,
so they run it again for every re-solve.

    python benchmarks/hint_resolve.py --threads 2
    python benchmarks/hint_resolve.py --sizes 1155x866 --marks 50
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from chromatize import Colorizer
from chromatize.inference import steer

DEFAULT_PHOTO = Path(__file__).resolve().parents[2] / "shared/data/photos/val/bsds500_train_100098.jpg"


def random_points(rgb: np.ndarray, n: int, rng: np.random.Generator) -> list[dict]:
    """``n`` point marks with the photo's own colour at uniform random places."""
    h, w = rgb.shape[:2]
    points = []
    for y, x in zip(rng.integers(0, h, n), rng.integers(0, w, n)):
        r, g, b = (int(v) for v in rgb[y, x])
        points.append({"x": int(x), "y": int(y), "color": f"#{r:02x}{g:02x}{b:02x}",
                       "radius": 4})
    return points


class _Timed:
    """Wraps ``steer.correct`` to add up the time spent in it."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.inner = steer.correct

    def __call__(self, *args, **kwargs):  # noqa: ANN002, ANN003 - passes everything through
        start = time.perf_counter()
        try:
            return self.inner(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    parser.add_argument("--sizes", nargs="+", default=["1155x866", "4000x3000"])
    parser.add_argument("--marks", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="default")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    colorizer = Colorizer.load(args.model, device="cpu")
    runs = [0]
    predict = colorizer.predict

    def counted(*a, **kw):  # noqa: ANN002, ANN003, ANN202 - passes everything through
        runs[0] += 1
        return predict(*a, **kw)

    colorizer.predict = counted  # type: ignore[method-assign]
    timed = _Timed()
    steer.correct = timed  # type: ignore[assignment]
    print(f"# {platform.processor() or platform.machine()}, model {args.model}, photo "
          f"{args.photo.name}, {args.marks} point marks, median of {args.repeats}, "
          f"{torch.get_num_threads()} torch threads")
    print(f"{'size':>10} {'MP':>5} {'first call':>10} {'re-solve':>9} {'correction':>10} "
          f"{'rest':>6} {'network runs':>12}")
    original = Image.open(args.photo).convert("RGB")
    rng = np.random.default_rng(0)
    for size in args.sizes:
        w, h = (int(v) for v in size.split("x"))
        rgb = np.asarray(original.resize((w, h), Image.Resampling.BICUBIC))
        gray = np.asarray(Image.fromarray(rgb).convert("L"))
        runs_before = runs[0]
        start = time.perf_counter()
        colorizer.colorize(gray, marks=random_points(rgb, args.marks, rng))
        first = time.perf_counter() - start
        totals, parts = [], []
        for _ in range(args.repeats):
            points = random_points(rgb, args.marks, rng)
            timed.seconds = 0.0
            start = time.perf_counter()
            colorizer.colorize(gray, marks=points)
            totals.append(time.perf_counter() - start)
            parts.append(timed.seconds)
        total, part = statistics.median(totals), statistics.median(parts)
        print(f"{size:>10} {w * h / 1e6:5.1f} {first:10.3f} {total:9.3f} {part:10.3f} "
              f"{total - part:6.3f} {runs[0] - runs_before:>12}")


if __name__ == "__main__":
    main()
