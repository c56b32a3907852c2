"""Choose a classification model's decoding settings on val: colour error against vividness.

    PYTHONPATH=src python scripts/tune_decoding.py MODEL [--boost 0 0.15 0.3 ...]
        [--temperature 0.38] [--working-size 256 ...] [--chroma-gain 1.2 ...] [--flip]
        [--multiscale 0.857] [--bayes-ciede 1.0] [--limit N]
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


def _bayes_ciede(colorizer: Colorizer, beta: float, step: float = 2.5) -> None:
    """Make ``colorizer`` decode each cell as the colour of least expected CIEDE2000 under
    the network's distribution (softmax at temperature 1, after the boost) instead of the
    annealed mean: candidates on a ``step`` grid of a*b* near the bins, a soft minimum
    over them at temperature ``beta`` (0: the hard argmin). With equal L*, CIEDE2000
    between two colours depends on their a*b* only, so the cost of every candidate
    against every bin is one fixed matrix."""
    import torch
    import torch.nn.functional as F
    from skimage.color import deltaE_ciede2000

    head = colorizer.model.head
    bins = head.bins.cpu().double().numpy()
    grid = np.arange(-110, 110 + 1e-9, step)
    cand = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    cand = cand[np.sqrt(((cand[:, None] - bins[None]) ** 2).sum(-1)).min(1) <= 7.5]
    def lab(ab: np.ndarray) -> np.ndarray:  # at one L*: CIEDE2000 then reads a*b* alone
        return np.concatenate([np.full((len(ab), 1), 50.0), ab], 1)

    cost = torch.from_numpy(deltaE_ciede2000(lab(cand)[:, None], lab(bins)[None])).float()
    cand_t = torch.from_numpy(cand).float()
    predict = colorizer.predict

    def decode(l, hints=None):  # noqa: ANN001, ANN202 - Colorizer.predict's signature
        out = predict(l)
        p = F.softmax(head.decoding_logits(out["logits"]), 1)  # (B, Q, h, w)
        expected = torch.einsum("bqhw,mq->bmhw", p, cost)
        if beta <= 0:
            ab = cand_t[expected.argmin(1)].permute(0, 3, 1, 2)
        else:
            ab = torch.einsum("bmhw,mc->bchw", F.softmax(-expected / beta, 1), cand_t)
        return {"logits": out["logits"], "ab": ab}

    colorizer.predict = decode  # type: ignore[method-assign]


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
    parser.add_argument("--bayes-ciede", type=float, default=None, metavar="BETA",
                        help="decode the colour of least expected CIEDE2000 under the "
                        "network's distribution, a soft minimum at temperature BETA (0: "
                        "hard); replaces the annealed mean and its temperature (measured "
                        "here, not shipped)")
    parser.add_argument("--chroma-gain", type=float, nargs="+", default=[1.0],
                        help="chroma gains of the decoded a*b* (the head's gain, which keeps every "
                        "hue, where the boost moves probability towards rare colours)")
    args = parser.parse_args()
    if any(not 0 < g < float("inf") for g in args.chroma_gain):
        parser.error(f"--chroma-gain: positive numbers only, got {args.chroma_gain}")
    if args.bayes_ciede is not None and (args.bayes_ciede < 0 or args.chroma_gain != [1.0]):
        parser.error("--bayes-ciede: a number >= 0, and no --chroma-gain with it")
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
        if args.bayes_ciede is not None:
            _bayes_ciede(c, args.bayes_ciede)
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
