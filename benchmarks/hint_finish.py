"""Where a hint model's gain comes from: the hint sweep (``hint_sweep.py``'s protocol) for
three ways of finishing a hint model's output.

* ``net``: the network's hinted colours alone, upsampled as usual (no marks solver);
* ``shipped``: ``Colorizer.colorize(hints=...)``: the marks solver on the hinted output,
  reading the hinted logits (what users get);
* ``base_logits``: the marks solver on the hinted colours, reading the automatic
  (no-hint) logits for its non-local weights, confidence and mode choice.

    PYTHONPATH=src python benchmarks/hint_finish.py --photos ../shared/data/photos/train \
        --limit 40 hints RUN/model

Prints the PSNR at N = 1, 2, 5, 10, 20 and their mean per model and way.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from chromatize.evaluation.evaluate import gray_input, list_images, select_photos
from chromatize.evaluation.hint_sweep import HintMethod, hint_sweep
from chromatize.inference.pipeline import Colorizer

NS = (1, 2, 5, 10, 20)
WAYS = ("net", "shipped", "base_logits")


def finish(colorizer: Colorizer, way: str) -> HintMethod:
    """The sweep method that finishes ``colorizer``'s hinted output in ``way``, through the
    Colorizer's stages (prepare, infer, finish)."""
    def method(l: np.ndarray, hint_ab: np.ndarray, hint_mask: np.ndarray) -> np.ndarray:
        gray = gray_input(l)[0]
        hints = (hint_ab, hint_mask)
        if way == "shipped":
            return np.asarray(colorizer.colorize(gray, hints=hints))
        source = colorizer.prepare(gray)
        hinted = colorizer.infer(source, hints)
        if way == "net":  # the hinted colours as they are: no logits, no marks solver
            return np.asarray(colorizer.finish(source, replace(hinted, logits=None)))
        base = colorizer.infer(source)  # the automatic logits for the solver's weights
        return np.asarray(colorizer.finish(source, replace(hinted, logits=base.logits,
                                                           memo={}), hints=hints))

    return method


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="hint models (checkpoints or shipped names)")
    parser.add_argument("--photos", type=Path, default=Path("../shared/data/photos/train"))
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    photos, _, _ = select_photos(list_images(args.photos), 256, args.limit, args.seed)
    for name in args.models:
        colorizer = Colorizer.load(name, device="cpu")
        if not colorizer.takes_hints:
            parser.error(f"{name}: not a hint model")
        for way in WAYS:
            start = time.perf_counter()
            row = hint_sweep(finish(colorizer, way), photos, ns=NS, seed=args.seed)
            print(f"{name} {way:>11} " + " ".join(f"{n}:{v:.2f}" for n, v in row.items())
                  + f"  mean {np.mean(list(row.values())):.2f}  {time.perf_counter() - start:.0f} s",
                  flush=True)


if __name__ == "__main__":
    main()
