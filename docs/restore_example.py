"""Make docs/restore_before_after.jpg: an "old print" made from scikit-image's astronaut
photo (NASA, public domain) with synthetic damage, fading, grain and a sepia tone, then
``chromatize restore`` and ``colorize`` on it, side by side.

    PYTHONPATH=src python docs/restore_example.py
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from skimage import data

from chromatize import Colorizer, color
from chromatize.restore import restore
from chromatize.restore.pipeline import to_gray
from chromatize.training.damage import DamageConfig, draw_damage

SIDE = 320


def old_print(gray: np.ndarray) -> Image.Image:
    """Faded, cracked, dusty, grainy, sepia-toned and JPEG-compressed."""
    cfg = DamageConfig(strength=2.5, fade=(0.3, 0.3), grain=(0.02, 0.02))
    damaged = draw_damage(gray, np.random.default_rng(4), cfg).image
    lum = color.luminance((damaged * 255 + 0.5).astype(np.uint8)).astype(np.float64)
    t = lum / 100
    chroma, hue = 22 * np.sin(np.pi * t) ** 0.7, np.deg2rad(55 + 30 * t)
    lab = np.stack([lum, chroma * np.cos(hue), chroma * np.sin(hue)], -1)
    rgb = (np.clip(color.lab_to_rgb_np(lab), 0, 1) * 255 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=85)
    return Image.open(buf).convert("RGB")


def main() -> None:
    photo = Image.fromarray(data.astronaut()).resize((SIDE, SIDE), Image.LANCZOS)
    scan = old_print(to_gray(np.asarray(photo)))
    repaired = restore(scan)
    colorizer = Colorizer.load()
    panels = [("old print (synthetic)", scan), ("colorize", colorizer.colorize(scan)),
              ("restore", repaired.convert("RGB")),
              ("restore + colorize", colorizer.colorize(repaired))]
    sheet = Image.new("RGB", (SIDE * len(panels), SIDE + 18), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (label, image) in enumerate(panels):
        sheet.paste(image.convert("RGB"), (i * SIDE, 18))
        draw.text((i * SIDE + 6, 3), label, fill="black")
    out = Path(__file__).with_name("restore_before_after.jpg")
    sheet.save(out, quality=88)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
