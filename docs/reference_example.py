"""Make docs/reference_before_after.jpg: scikit-image's public-domain ``astronaut``,
``coffee`` and ``chelsea`` made gray and colorized automatically, then with the left 40%
of the colour photo as the reference (the rest was not shown to it), then the truth.

    PYTHONPATH=src python docs/reference_example.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from skimage import data

from chromatize import Colorizer

SIDE = 240
LABELS = ("gray input", "automatic", "reference: the left 40%", "with the reference", "truth")


def main() -> None:
    colorizer = Colorizer.load()
    rows = []
    for photo in (data.astronaut(), data.coffee(), data.chelsea()):
        im = Image.fromarray(photo)
        im = im.resize((SIDE, round(SIDE * im.height / im.width)), Image.LANCZOS)
        rgb = np.asarray(im)
        gray = im.convert("L")
        left = rgb[:, :round(0.4 * rgb.shape[1])]
        shown = (np.asarray(gray.convert("RGB")) * 0.25 + 190).astype(np.uint8)
        shown[:, :left.shape[1]] = left
        rows.append([gray.convert("RGB"), colorizer.colorize(gray), Image.fromarray(shown),
                     colorizer.colorize(gray, reference=left), im])
    height = sum(r[0].height for r in rows)
    sheet = Image.new("RGB", (SIDE * len(LABELS), height + 18), "white")
    draw = ImageDraw.Draw(sheet)
    for i, label in enumerate(LABELS):
        draw.text((i * SIDE + 6, 3), label, fill="black")
    y = 18
    for row in rows:
        for i, image in enumerate(row):
            sheet.paste(image.convert("RGB"), (i * SIDE, y))
        y += row[0].height
    out = Path(__file__).with_name("reference_before_after.jpg")
    sheet.save(out, quality=88)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
