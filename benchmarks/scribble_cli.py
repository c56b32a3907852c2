"""End-to-end wall time of ``chromatize scribble`` (Levin et al., no network) on a photo
with coloured strokes, and where the time goes.

A real photo is upscaled to ``--size`` and made gray (saved as JPEG); ``--strokes`` random
5 px lines in the photo's own colours are drawn on a copy (saved as PNG), as a user would
draw them. The command runs in a fresh interpreter ``--repeats`` times (best is printed).
Then, in this process: the import of the command's modules (fresh interpreter), reading
the photo, reading the strokes, the propagation with guided upsampling and the
conversion to RGB (``levin_colorize``), and writing the PNG.

    python benchmarks/scribble_cli.py
    python benchmarks/scribble_cli.py --size 4000x3000 --repeats 1
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

DEFAULT_PHOTO = Path(__file__).resolve().parents[2] / "shared/data/photos/val/bsds500_train_100098.jpg"


def make_inputs(photo: Path, size: tuple[int, int], strokes: int, folder: Path,
                ) -> tuple[Path, Path]:
    """The gray photo (JPEG) and a copy with ``strokes`` coloured lines (PNG)."""
    rgb = Image.open(photo).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    gray = rgb.convert("L")
    gray.save(folder / "photo.jpg", quality=92)
    scribble = gray.convert("RGB")
    draw = ImageDraw.Draw(scribble)
    rng = np.random.default_rng(0)
    pixels = np.asarray(rgb)
    for _ in range(strokes):
        x, y = int(rng.integers(0, size[0])), int(rng.integers(0, size[1]))
        end = (x + int(rng.integers(-80, 81)), y + int(rng.integers(-80, 81)))
        draw.line([(x, y), end], fill=tuple(int(v) for v in pixels[y, x]), width=5)
    scribble.save(folder / "strokes.png")
    return folder / "photo.jpg", folder / "strokes.png"


def timed(fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201 - a stopwatch
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    parser.add_argument("--size", default="1155x866")
    parser.add_argument("--strokes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        photo, strokes = make_inputs(args.photo, (w, h), args.strokes, folder)
        command = [sys.executable, "-m", "chromatize.cli", "scribble", str(photo), "--marks",
                   str(strokes), "-o", str(folder / "out.png"), "--overwrite"]
        walls = []
        for _ in range(args.repeats):
            _, seconds = timed(subprocess.run, command, check=True, capture_output=True)
            walls.append(seconds)
        _, imports = timed(subprocess.run, [sys.executable, "-c",
                                            "import chromatize.cli, chromatize.classical"],
                           check=True)
        from chromatize.classical import levin_colorize
        from chromatize.imaging.hints import load_marks
        from chromatize.io import read_source, write_photo

        (src, _), t_read = timed(read_source, photo)
        (hint_ab, mask), t_marks = timed(load_marks, strokes, src)
        out, t_solve = timed(levin_colorize, src, hint_ab, mask)
        _, t_write = timed(write_photo, out, folder / "out2.png")
    print(f"# {w}x{h} ({w * h / 1e6:.1f} MP), {args.strokes} strokes "
          f"({int(mask.sum())} marked pixels)")
    print(f"chromatize scribble, wall time: best {min(walls):.2f} s of {args.repeats} "
          f"({', '.join(f'{t:.2f}' for t in walls)})")
    print(f"  imports {imports:.2f} s | read photo {t_read:.2f} s | read strokes "
          f"{t_marks:.2f} s | propagate + upsample + RGB {t_solve:.2f} s | write PNG "
          f"{t_write:.2f} s")


if __name__ == "__main__":
    main()
