"""A picture grid for the docs: one row per photo, columns gray | each model | truth.

    python scripts/picture_grid.py -m "L1 (seed)=runs/x/model" -m "ours=default" \
        --skimage astronaut coffee --photo some.jpg -o docs/grid.png

Photos are shrunk to ``--height`` rows; each model colorizes the gray version (the
photo's own L*), exactly as ``chromatize evaluate`` feeds it.
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image, ImageDraw

from chromatize.evaluation.evaluate import gray_input
from chromatize.evaluation.metrics import to_lab
from chromatize import Colorizer

LABEL_H = 18


def load(name: str, height: int) -> np.ndarray:
    """uint8 RGB ``(height, w, 3)`` of a scikit-image sample (``skimage:NAME``) or a file."""
    if name.startswith("skimage:"):
        import skimage.data

        rgb = getattr(skimage.data, name.split(":", 1)[1])()
        im = Image.fromarray(rgb).convert("RGB")
    else:
        im = Image.open(name).convert("RGB")
    w = round(im.width * height / im.height)
    return np.asarray(im.resize((w, height), Image.LANCZOS))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", action="append", required=True, help="LABEL=PATH_OR_NAME")
    ap.add_argument("--photo", nargs="*", default=[])
    ap.add_argument("--skimage", nargs="*", default=[])
    ap.add_argument("--height", type=int, default=160)
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()

    models = [(label, Colorizer.load(path, device="cpu"))
              for label, path in (m.split("=", 1) for m in args.model)]
    names = [f"skimage:{n}" for n in args.skimage] + args.photo
    rows = []
    for name in names:
        truth = load(name, args.height)
        gray8, _ = gray_input(to_lab(truth)[..., 0])
        cells = [np.repeat(gray8[..., None], 3, axis=2)]
        cells += [np.asarray(c.colorize(gray8).convert("RGB")) for _, c in models]
        cells.append(truth)
        rows.append(cells)
    labels = ["gray input"] + [label for label, _ in models] + ["truth"]
    col_w = [max(r[i].shape[1] for r in rows) for i in range(len(labels))]
    sheet = Image.new("RGB", (sum(col_w) + 4 * len(col_w), LABEL_H + len(rows) * (args.height + 4)),
                      "white")
    draw = ImageDraw.Draw(sheet)
    x = 0
    for i, label in enumerate(labels):
        draw.text((x + 2, 3), label, fill="black")
        for j, cells in enumerate(rows):
            sheet.paste(Image.fromarray(cells[i]), (x, LABEL_H + j * (args.height + 4)))
        x += col_w[i] + 4
    sheet.save(args.output)
    print(f"wrote {args.output}: {len(rows)} photos x {len(labels)} columns")


if __name__ == "__main__":
    main()
