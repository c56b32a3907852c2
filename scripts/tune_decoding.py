"""Choose a classification model's decoding settings on val: colour error against vividness.

    PYTHONPATH=src python scripts/tune_decoding.py MODEL [--boost 0 0.15 0.3 ...]
        [--temperature 0.38] [--working-size 256 ...] [--chroma-gain 1.2 ...] [--flip]
        [--multiscale 0.857] [--bayes-ciede 1.0] [--limit N]
        [--data ../shared/data/photos/val] [--json out.json]

For each (boost, temperature) prints the mean CIEDE2000 and colourfulness ratio over the
val photos at full size, computed as ``chromatize evaluate`` computes them (same gray
input, same metric functions). The settings chosen are written into the shipped model's
JSON (``kwargs.boost`` / ``kwargs.temperature``); this script only measures. Every setting
is a :class:`~chromatize.decoding.Decoding` passed down the Colorizer's stages; test-time
augmentation replaces the network pass (``infer``) and the expected-CIEDE2000 decoding is
a registered strategy, so nothing is patched.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from chromatize.decoding import Decoding
from chromatize.inference.pipeline import Colorizer, NetworkOutput
from chromatize.evaluation import metrics
from chromatize.evaluation.evaluate import gray_input, list_images, load_truth, select_photos


def _logits(colorizer: Colorizer, l, flip: bool, multiscale: float | None):  # noqa: ANN001, ANN202
    """The network's logits ``(1, Q, h, w)`` for L* ``(1, 1, h, w)``, averaged with those of
    its mirror image (``flip``) and of a copy ``multiscale`` times the size (sides rounded
    to multiples of 32), brought back to the same grid: test-time augmentation."""
    import torch.nn.functional as F

    logits = colorizer.predict(l)["logits"]
    if flip:
        logits = (logits + colorizer.predict(l.flip(-1))["logits"].flip(-1)) / 2
    if multiscale:
        size = tuple(max(32, round(n * multiscale / 32) * 32) for n in l.shape[-2:])
        other = colorizer.predict(F.interpolate(l, size=size, mode="bilinear",
                                                align_corners=False))["logits"]
        logits = (logits + F.interpolate(other, size=logits.shape[-2:], mode="bilinear",
                                         align_corners=False)) / 2
    return logits


def _register_bayes_ciede(beta: float, step: float = 2.5) -> str:
    """Register the decoding strategy ``bayes_ciede``: each cell takes the colour of least
    expected CIEDE2000 under the network's distribution (softmax at temperature 1, after
    the boost and any prior) instead of the annealed mean: candidates on a ``step`` grid
    of a*b* near the bins, a soft minimum over them at temperature ``beta`` (0: the hard
    argmin). With equal L*, CIEDE2000 between two colours depends on their a*b* only, so
    the cost of every candidate against every bin is one fixed matrix."""
    import torch
    import torch.nn.functional as F
    from skimage.color import deltaE_ciede2000

    from chromatize.decoder import register_strategy

    cache: dict[str, torch.Tensor] = {}

    def tables(bins: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not cache:
            b = bins.cpu().double().numpy()
            grid = np.arange(-110, 110 + 1e-9, step)
            cand = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
            cand = cand[np.sqrt(((cand[:, None] - b[None]) ** 2).sum(-1)).min(1) <= 7.5]

            def lab(ab: np.ndarray) -> np.ndarray:  # at one L*: CIEDE2000 reads a*b* alone
                return np.concatenate([np.full((len(ab), 1), 50.0), ab], 1)

            cache["cost"] = torch.from_numpy(deltaE_ciede2000(lab(cand)[:, None],
                                                              lab(b)[None])).float()
            cache["cand"] = torch.from_numpy(cand).float()
        return cache["cost"], cache["cand"]

    @register_strategy("bayes_ciede")
    def decode(logits: torch.Tensor, bins: torch.Tensor, temperature: float) -> torch.Tensor:
        cost, cand = tables(torch.as_tensor(bins))
        expected = torch.einsum("bqhw,mq->bmhw", F.softmax(logits, 1), cost)
        if beta <= 0:
            return cand[expected.argmin(1)].permute(0, 3, 1, 2)
        return torch.einsum("bmhw,mc->bchw", F.softmax(-expected / beta, 1), cand)

    return "bayes_ciede"


def _colorize(colorizer: Colorizer, gray: np.ndarray, decoding: Decoding, flip: bool,
              multiscale: float | None) -> np.ndarray:
    """One photo through the Colorizer's stages, with test-time augmentation (if asked)
    standing in for the plain network pass."""
    import torch

    source = colorizer.prepare(gray)
    if flip or multiscale:
        logits = _logits(colorizer, torch.from_numpy(source.l_small)[None, None], flip,
                         multiscale)
        output = NetworkOutput(source.l_small, colorizer.head.decode(logits)[0], logits[0])
    else:
        output = colorizer.infer(source)
    return np.asarray(colorizer.finish(source, output, decoding).convert("RGB"))


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
    strategy = ("annealed_mean" if args.bayes_ciede is None
                else _register_bayes_ciede(args.bayes_ciede))
    settings = [(b, t, w, g) for g in args.chroma_gain for w in args.working_size
                for t in args.temperature for b in args.boost]
    colorizers = {w: Colorizer.load(args.model, device="cpu", working_size=w, backend="torch")
                  for w in args.working_size}
    sums = {s: np.zeros(2) for s in settings}
    for path in photos:
        truth = load_truth(path)
        true_lab = metrics.to_lab(truth)
        gray, _ = gray_input(true_lab[..., 0])
        c_true = metrics.colorfulness(truth)
        for b, t, w, g in settings:
            decoding = Decoding(boost=b, temperature=t, gain=g, strategy=strategy)
            pred = _colorize(colorizers[w], gray, decoding, args.flip, args.multiscale)
            sums[(b, t, w, g)] += (metrics.ciede2000(metrics.to_lab(pred), true_lab),
                                   metrics.colorfulness(pred) / max(c_true, 1e-6))
    table = Table(title=f"{args.model} on {len(photos)} photos of {args.data}")
    for col in ("boost", "temperature", "working size", "chroma gain", "CIEDE2000",
                "colourfulness ratio"):
        table.add_column(col, justify="right")
    rows = []
    for (b, t, w, g), total in sums.items():
        de, ratio = total / len(photos)
        w = colorizers[w].working_size
        rows.append({"boost": b, "temperature": t, "working_size": w, "chroma_gain": g,
                     "ciede2000": de, "colorfulness_ratio": ratio})
        table.add_row(f"{b:g}", f"{t:g}", f"{w}", f"{g:g}", f"{de:.2f}", f"{ratio:.3f}")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "photos": len(photos), "rows": rows},
                                        indent=2))


if __name__ == "__main__":
    main()
