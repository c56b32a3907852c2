"""One photo of the hint sweep, side by side: gray | hints | Levin | models | truth.

The photo is resized to SIZE x SIZE and given N random 6x6 hints of its true colour,
exactly as in ``hint_sweep.py`` (the hints of photo index 0 for ``--seed``); each hint is
circled in the hints panel. Prints the PSNR of each panel. The model panels: the shipped
default corrected by the hints (``--model``), and, if given, a hint network
(``--hint-model``) and the hint adapters (``--adapters-model``, e.g. the shipped ``hints``).

    python benchmarks/hint_example.py PHOTO --adapters-model hints -o docs/hints_example.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from chromatize.evaluation import metrics
from chromatize.evaluation.evaluate import gray_input, load_truth
from chromatize.evaluation.hint_sweep import paint_hints, sample_hints
from hint_sweep import gray, hint_net, levin

LABEL_ROWS = 22


def circled(rgb: np.ndarray, hint_mask: np.ndarray) -> Image.Image:
    """``rgb`` with a ring around each connected group of hinted pixels, so small hints show."""
    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    labels, _ = ndimage.label(hint_mask)
    for ys, xs in ndimage.find_objects(labels):
        r = max(ys.stop - ys.start, xs.stop - xs.start) // 2 + 4
        cy, cx = (ys.start + ys.stop) / 2, (xs.start + xs.stop) / 2
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=(255, 255, 255), width=2)
        draw.ellipse((cx - r - 2, cy - r - 2, cx + r + 2, cy + r + 2), outline=(0, 0, 0))
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo", type=Path)
    parser.add_argument("--model", default="default", help="model whose colours the hints correct")
    parser.add_argument("--hint-model", help="a hint network checkpoint (optional panel)")
    parser.add_argument("--adapters-model", help="hint adapters, e.g. hints (optional panel)")
    parser.add_argument("--hints", type=int, default=10)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/hints_example.png"))
    args = parser.parse_args()

    truth = load_truth(args.photo, args.size)
    true_lab = metrics.to_lab(truth)
    _, l = gray_input(true_lab[..., 0])
    hint_ab, hint_mask = sample_hints(true_lab, args.hints, np.random.default_rng([args.seed, 0]))
    panels = {
        "gray input": gray(l, hint_ab, hint_mask),
        f"{args.hints} hints": paint_hints(l, hint_ab, hint_mask),
        "Levin et al. 2004": levin(l, hint_ab, hint_mask),
    }
    if args.hint_model:
        panels["hint network"] = hint_net(args.hint_model)(l, hint_ab, hint_mask)
    panels[f"{args.model} + marks"] = hint_net(args.model)(l, hint_ab, hint_mask)
    if args.adapters_model:
        panels[f"{args.adapters_model} + marks"] = hint_net(args.adapters_model)(l, hint_ab, hint_mask)
    panels["truth"] = truth
    side = args.size
    sheet = Image.new("RGB", (side * len(panels), side + LABEL_ROWS), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (name, rgb) in enumerate(panels.items()):
        panel = circled(rgb, hint_mask) if name.endswith("hints") else Image.fromarray(rgb)
        sheet.paste(panel, (i * side, 0))
        psnr = "" if name == "truth" else f"  {metrics.psnr(rgb, truth):.1f} dB"
        draw.text((i * side + 6, side + 5), name + psnr, fill=(0, 0, 0))
        print(f"{name:>20}{psnr}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
