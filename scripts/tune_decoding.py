"""Choose a classification model's decoding settings on val: colour error against vividness.

    PYTHONPATH=src python scripts/tune_decoding.py MODEL [--boost 0 0.15 0.3 ...]
        [--temperature 0.38] [--working-size 256 ...] [--chroma-gain 1.2 ...] [--flip]
        [--multiscale 0.857] [--limit N]
        [--data ../shared/data/photos/val] [--json out.json]

For each (boost, temperature) prints the mean CIEDE2000 and colourfulness ratio over the
val photos at full size, computed as ``chromatize evaluate`` computes them (same gray
input, same metric functions). The settings chosen are written into the shipped model's
JSON (``kwargs.boost`` / ``kwargs.temperature``); this script only measures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from chromatize import Colorizer
from chromatize.evaluation import metrics
from chromatize.evaluation.evaluate import gray_input, list_images, load_truth, select_photos


def _flip_average(colorizer: Colorizer) -> None:
    """Make ``colorizer`` average the network's logits over the photo and its mirror."""
    predict = colorizer.predict

    def flipped(l, hints=None):  # noqa: ANN001, ANN202 - Colorizer.predict's signature
        out, mirror = predict(l), predict(l.flip(-1))
        logits = (out["logits"] + mirror["logits"].flip(-1)) / 2
        return {"logits": logits, "ab": colorizer.model.head.decode(logits)}

    colorizer.predict = flipped  # type: ignore[method-assign]


def _multiscale(colorizer: Colorizer, scale: float) -> None:
    """Make ``colorizer`` average the network's logits at its working size with those at
    ``scale`` times it (sides rounded to multiples of 32), brought back to the same grid."""
    import torch.nn.functional as F

    predict = colorizer.predict

    def both(l, hints=None):  # noqa: ANN001, ANN202 - Colorizer.predict's signature
        out = predict(l)
        size = tuple(max(32, round(n * scale / 32) * 32) for n in l.shape[-2:])
        other = predict(F.interpolate(l, size=size, mode="bilinear", align_corners=False))
        logits = (out["logits"] + F.interpolate(other["logits"], size=out["logits"].shape[-2:],
                                                mode="bilinear", align_corners=False)) / 2
        return {"logits": logits, "ab": colorizer.model.head.decode(logits)}

    colorizer.predict = both  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--data", default="../shared/data/photos/val")
    parser.add_argument("--boost", type=float, nargs="+", default=[0, 0.15, 0.3, 0.45, 0.6])
    parser.add_argument("--temperature", type=float, nargs="+", default=[0.38])
    parser.add_argument("--working-size", type=int, nargs="+", default=[None],
                        help="long side the network sees (default: the checkpoint's)")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--flip", action="store_true", help="test-time flip averaging: the "
                        "logits of the photo and of its mirror image, averaged (2x the "
                        "network's cost; measured here, not shipped)")
    parser.add_argument("--multiscale", type=float, default=None, metavar="SCALE",
                        help="test-time multi-scale: the logits at the working size and at "
                        "SCALE x it, averaged (measured here, not shipped)")
    parser.add_argument("--chroma-gain", type=float, nargs="+", default=[1.0],
                        help="chroma gains of the decoded a*b* (the head's gain, which keeps every "
                        "hue, where the boost moves probability towards rare colours)")
    args = parser.parse_args()
    if any(not 0 < g < float("inf") for g in args.chroma_gain):
        parser.error(f"--chroma-gain: positive numbers only, got {args.chroma_gain}")
    photos, _, _ = select_photos(list_images(Path(args.data)), None, args.limit, 0)
    settings = [(b, t, w, g) for g in args.chroma_gain for w in args.working_size
                for t in args.temperature for b in args.boost]
    colorizers = {}
    for b, t, w, g in settings:
        c = Colorizer.load(args.model, boost=b, device="cpu", working_size=w)
        c.model.head.temperature = t
        if args.flip:
            _flip_average(c)
        if args.multiscale:
            _multiscale(c, args.multiscale)
        c.model.head.gain = g  # the head's chroma gain (ClassificationHead.gain)
        colorizers[(b, t, w, g)] = c
    sums = {s: np.zeros(2) for s in settings}
    for path in photos:
        truth = load_truth(path)
        true_lab = metrics.to_lab(truth)
        gray, _ = gray_input(true_lab[..., 0])
        c_true = metrics.colorfulness(truth)
        for s, c in colorizers.items():
            pred = np.asarray(c.colorize(gray).convert("RGB"))
            sums[s] += (metrics.ciede2000(metrics.to_lab(pred), true_lab),
                        metrics.colorfulness(pred) / max(c_true, 1e-6))
    table = Table(title=f"{args.model} on {len(photos)} photos of {args.data}")
    for col in ("boost", "temperature", "working size", "chroma gain", "CIEDE2000",
                "colourfulness ratio"):
        table.add_column(col, justify="right")
    rows = []
    for (b, t, w, g), total in sums.items():
        de, ratio = total / len(photos)
        w = colorizers[(b, t, w, g)].working_size
        rows.append({"boost": b, "temperature": t, "working_size": w, "chroma_gain": g,
                     "ciede2000": de, "colorfulness_ratio": ratio})
        table.add_row(f"{b:g}", f"{t:g}", f"{w}", f"{g:g}", f"{de:.2f}", f"{ratio:.3f}")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "photos": len(photos), "rows": rows},
                                        indent=2))


if __name__ == "__main__":
    main()
