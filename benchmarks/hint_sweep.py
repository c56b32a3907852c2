"""Hint sweep (Zhang et al. 2017): mean PSNR of guided methods for N random 6x6 hints.

Prints one row per number of hints and one column per method, and can write the table as
JSON and a plot of PSNR against N. Methods:

* ``gray``: the gray input itself (hints ignored), the score of doing nothing;
* ``paint``: hint colours where given, gray elsewhere, the floor every guided method beats;
* ``levin``: Levin et al. 2004 (``classical.levin_colorize``); with 0 hints it has nothing
  to propagate, so it is defined as the gray input there;
* ``hint-net``: a hint network checkpoint (``--hint-model``) through ``Colorizer``;
* ``marks``: any model (``--model``, the shipped ``default`` unless given) through
  ``Colorizer.colorize(..., hints=...)``: its automatic colours corrected by the hints
  (``chromatize.inference.steer``); with 0 hints it is the automatic colorization.
  ``--reach local|object|photo`` gives every hint that reach (``object``, the default, is
  the engine as tuned; the column is then named ``marks-REACH``).

With ``--json``, methods already in an existing file for the same photos are kept, so
methods can be run (or re-run) one at a time.

    python benchmarks/hint_sweep.py --photos ../shared/data/photos/val --limit 239 \
        --methods gray,paint,levin,hint-net --hint-model runs/hints --threads 1 \
        --json docs/hints.json --plot docs/hints.png
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from chromatize.classical import levin_colorize
from chromatize.evaluation.evaluate import gray_input, list_images, select_photos
from chromatize.evaluation.hint_sweep import SWEEP_NS, HintMethod, hint_sweep, paint_hints
from chromatize.inference.hints import REACH
from chromatize import Colorizer

#: Zhang et al. 2017, PSNR of their hint network on ImageNet (as quoted in the evaluation
#: issue); a different dataset, shown for orientation only.
ZHANG_IMAGENET = {0: 24.4, 5: 27.4, 10: 28.4, 50: 30.4}


def gray(l: np.ndarray, hint_ab: np.ndarray, hint_mask: np.ndarray) -> np.ndarray:
    """The gray input (L* with a* = b* = 0) as sRGB uint8 ``(H, W, 3)``."""
    return paint_hints(l, hint_ab, np.zeros_like(hint_mask))


def levin(l: np.ndarray, hint_ab: np.ndarray, hint_mask: np.ndarray) -> np.ndarray:
    """Levin et al. 2004; the gray input when there is no hint to propagate."""
    if not hint_mask.any():
        return gray(l, hint_ab, hint_mask)
    return np.asarray(levin_colorize(gray_input(l)[0], hint_ab, hint_mask))


def hint_net(checkpoint: str, reach: str | None = None) -> HintMethod:
    """A model given the gray photo (uint8, as a user would) and the hints: hint networks
    take them as input, other models are corrected by them (each hint with ``reach``,
    a name of :data:`chromatize.inference.hints.REACH`, when given)."""
    colorizer = Colorizer.load(checkpoint, device="cpu")

    def colorize(l: np.ndarray, hint_ab: np.ndarray, hint_mask: np.ndarray) -> np.ndarray:
        hints: tuple[np.ndarray, ...] = (hint_ab, hint_mask)
        if reach is not None:
            hints += (np.full(hint_mask.shape, REACH[reach], np.float32),)
        return np.asarray(colorizer.colorize(gray_input(l)[0], hints=hints))

    return colorize


def make_methods(hint_model: str | None, model: str, adapters_model: str | None = None,
                 reach: str | None = None) -> dict[str, Callable[[], HintMethod]]:
    """Method name -> factory (networks are loaded only when asked for)."""
    def load(checkpoint: str | None, flag: str) -> HintMethod:
        if checkpoint is None:
            raise SystemExit(f"this method needs {flag} CHECKPOINT")
        return hint_net(checkpoint)

    return {"gray": lambda: gray, "paint": lambda: paint_hints, "levin": lambda: levin,
            "hint-net": lambda: load(hint_model, "--hint-model"), "marks": lambda: hint_net(model, reach),
            "adapters": lambda: load(adapters_model, "--adapters-model")}


def plot(results: dict[str, dict[int, float]], path: Path, title: str) -> None:
    """PSNR against N on a symlog x axis (N = 0 is on the plot), Zhang's figures dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for name, row in results.items():
        ax.plot(list(row), list(row.values()), marker="o", label=name)
    ax.plot(list(ZHANG_IMAGENET), list(ZHANG_IMAGENET.values()), "k--", marker="x",
            label="Zhang et al. 2017 (ImageNet)")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xticks(SWEEP_NS, [str(n) for n in SWEEP_NS])
    ax.set_xlabel("number of 6x6 hints (N)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=Path("../shared/data/photos/val"))
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default="gray,paint,levin",
                        help="comma-separated: gray, paint, levin, hint-net, marks, adapters")
    parser.add_argument("--hint-model", help="hint network checkpoint for hint-net")
    parser.add_argument("--model", default="default", help="model of the marks method")
    parser.add_argument("--adapters-model", help="hint-adapter checkpoint (marks on its "
                        "hinted output) for the adapters method")
    parser.add_argument("--reach", choices=list(REACH), help="every hint's reach in the "
                        "marks method (default: none given, the engine as tuned)")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--plot", type=Path, help="also plot PSNR vs N here (matplotlib)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    factories = make_methods(args.hint_model, args.model, args.adapters_model, args.reach)
    names = args.methods.split(",")
    unknown = [n for n in names if n not in factories]
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {list(factories)}")
    photos, skipped, _ = select_photos(list_images(args.photos), args.size, args.limit, args.seed)
    title = (f"{len(photos)} colour photos at {args.size}x{args.size} "
             f"({len(skipped['not_colour'])} not colour skipped), seed {args.seed}")
    results: dict[str, dict[int, float]] = {}
    seconds: dict[str, float] = {}
    if args.json and args.json.exists():
        old = json.loads(args.json.read_text())
        if old["title"] == title:  # the same photos: keep the methods not run now
            results = {k: {int(n): v for n, v in row.items()} for k, row in old["psnr"].items()}
            seconds = old["seconds"]
    for name in names:
        method = factories[name]()
        start = time.perf_counter()
        column = f"marks-{args.reach}" if name == "marks" and args.reach else name
        results[column] = hint_sweep(method, photos, seed=args.seed, size=args.size)
        seconds[column] = time.perf_counter() - start
    print(f"{title}; PSNR (dB)")
    print(f"{'hints':>6} " + " ".join(f"{name:>10}" for name in results))
    for n in SWEEP_NS:
        print(f"{n:>6} " + " ".join(f"{results[name][n]:>10.2f}" for name in results))
    print(f"{'s':>6} " + " ".join(f"{seconds[name]:>10.1f}" for name in results))
    if args.json:
        args.json.write_text(json.dumps({"title": title, "psnr": results, "seconds": seconds,
                                         "photos": len(photos)}, indent=1) + "\n")
    if args.plot:
        plot(results, args.plot, title)


if __name__ == "__main__":
    main()
