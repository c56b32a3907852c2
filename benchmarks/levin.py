"""Speed of scribble propagation (Levin et al.): ``levin_colorize`` at 1 and 12 megapixels.

A real photo is upscaled to each size and turned gray; ``--scribbles`` random marks
(discs of radius 3) take their colour from the original photo. The time is that of the
whole ``levin_colorize`` call (luminance, reduced solve, guided upsampling, conversion to
RGB), best of ``--repeats``. Also printed: the size actually solved (see
``chromatize.classical.levin.MAX_PIXELS``), the relative residual ``|Ax - b| / |b|`` of the
cascade's solution of that system and, with ``--exact``, its mean and 99th percentile
distance in a*b* to an exact solution (algebraic multigrid, pyamg, tolerance 1e-8).

``--threads`` sets torch's threads (the colour conversion): on a machine shared with other
jobs, two OpenMP threads spinning against each other made it 10x slower than one.

    python benchmarks/levin.py
    python benchmarks/levin.py --sizes 1155x866 --exact --threads 1
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from chromatize import color
from chromatize.classical import levin
from chromatize.imaging.hints import pool_hints
from chromatize.imaging.upsample import area_resize
from chromatize.color import luminance

DEFAULT_PHOTO = Path(__file__).resolve().parents[2] / "shared/data/photos/val/bsds500_train_100098.jpg"


def scribbles(rgb: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` discs of radius 3 at random places with the photo's own colour there."""
    h, w = rgb.shape[:2]
    rng = np.random.default_rng(seed)
    mask = np.zeros((h, w), bool)
    yy, xx = np.ogrid[:7, :7]
    disc = (yy - 3) ** 2 + (xx - 3) ** 2 <= 9
    for y, x in zip(rng.integers(0, h - 7, n), rng.integers(0, w - 7, n)):
        mask[y:y + 7, x:x + 7] |= disc
    hint_ab = np.zeros((h, w, 2), np.float32)
    hint_ab[mask] = color.rgb_to_lab_np(rgb[mask].astype(np.float32) / 255)[:, 1:]
    return hint_ab, mask


def solve_quality(l: np.ndarray, hint_ab: np.ndarray, mask: np.ndarray,
                  exact: bool) -> tuple[tuple[int, int], float, float, float]:
    """Solved shape, relative residual and (with ``exact``) mean/p99 ab error."""
    h, w = l.shape
    scale = min(1.0, np.sqrt(levin.MAX_PIXELS / (h * w)))
    shape = (round(h * scale), round(w * scale))
    l_s = area_resize(l, shape) if scale < 1 else l
    ab_s, mask_s = pool_hints(hint_ab, mask, shape) if scale < 1 else (hint_ab, mask)
    x = levin.solve_levin(l_s, ab_s, mask_s).reshape(-1, 2).astype(np.float64)
    a_mat, b = levin.affinity_system(l_s, ab_s, mask_s)
    residual = float(np.linalg.norm(a_mat @ x - b) / np.linalg.norm(b))
    if not exact:
        return shape, residual, float("nan"), float("nan")
    import pyamg

    ml = pyamg.smoothed_aggregation_solver(a_mat, symmetry="hermitian")
    ref = np.stack([ml.solve(b[:, c], tol=1e-8, accel="cg") for c in range(2)], -1)
    err = np.abs(x - ref)
    return shape, residual, float(err.mean()), float(np.percentile(err, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    parser.add_argument("--sizes", nargs="+", default=["1155x866", "4000x3000"])
    parser.add_argument("--scribbles", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--exact", action="store_true", help="compare with an exact solve")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"# {platform.processor() or platform.machine()}, photo {args.photo.name}, "
          f"{args.scribbles} scribbles, best of {args.repeats}, "
          f"{torch.get_num_threads()} torch threads")
    print(f"{'size':>10} {'MP':>5} {'solved at':>10} {'seconds':>8} {'residual':>9} "
          f"{'ab err':>7} {'p99':>6}")
    original = Image.open(args.photo).convert("RGB")
    for size in args.sizes:
        w, h = (int(v) for v in size.split("x"))
        rgb = np.asarray(original.resize((w, h), Image.Resampling.BICUBIC))
        gray = Image.fromarray(rgb).convert("L")
        hint_ab, mask = scribbles(rgb, args.scribbles)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            levin.levin_colorize(gray, hint_ab, mask)
            times.append(time.perf_counter() - start)
        shape, residual, err, p99 = solve_quality(luminance(np.asarray(gray)), hint_ab, mask,
                                                  args.exact)
        print(f"{size:>10} {w * h / 1e6:5.1f} {shape[1]:>4}x{shape[0]:<5} {min(times):8.2f} "
              f"{residual:9.1e} {err:7.2f} {p99:6.2f}")


if __name__ == "__main__":
    main()
