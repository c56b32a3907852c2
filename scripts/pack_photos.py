"""Pack training photos small enough to travel to a device machine (at most 64 MiB with
the repository): each photo's centre square, resized to SIDE px, as WebP, in one zip.

    python scripts/pack_photos.py OUT.zip --side 160 --quality 65 \
        ../shared/data/photos/train ../shared/data/photos/train_extra

Round 2's GPU fine-tune (configs/finetune_gpu.yaml, docs/ablation.md) trained on such a
pack: 12,682 photos in 46 MB. Unpack it there with ``python -m zipfile -e OUT.zip DIR``.

``--exclude PREFIX`` leaves out photos whose file name starts with it (e.g. ``pacs_``);
``--max-mb MB`` takes the photos in a shuffled order (seed 0) and stops before the pack
would exceed MB megabytes, so a random share of them fits a budget.
"""

from __future__ import annotations

import argparse
import io
import random
import zipfile
from multiprocessing import Pool
from pathlib import Path

from PIL import Image

from chromatize.training.data import decode

SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def shrink(job: tuple[Path, int, int]) -> bytes | None:
    """One photo -> WebP bytes of its centre square at ``side`` px, or None if unreadable."""
    path, side, quality = job
    try:
        im = decode(path, side).convert("RGB")  # upright, as the training loader reads it
    except (OSError, ValueError):
        return None
    w, h = im.size
    s = side / min(w, h)
    im = im.resize((max(side, round(w * s)), max(side, round(h * s))), Image.LANCZOS)
    w, h = im.size
    left, top = (w - side) // 2, (h - side) // 2
    buf = io.BytesIO()
    im.crop((left, top, left + side, top + side)).save(buf, "WEBP", quality=quality, method=6)
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--side", type=int, default=160)
    parser.add_argument("--quality", type=int, default=65)
    parser.add_argument("--exclude", nargs="+", default=[], metavar="PREFIX")
    parser.add_argument("--max-mb", type=float, default=None)
    args = parser.parse_args()
    missing = [str(f) for f in args.folders if not f.is_dir()]
    if missing:
        parser.error(f"not a folder: {', '.join(missing)}")
    paths = [p for folder in args.folders for p in sorted(folder.iterdir())
             if p.suffix.lower() in SUFFIXES and not p.name.startswith(tuple(args.exclude))]
    if args.max_mb is not None:
        paths = [paths[i] for i in random.Random(0).sample(range(len(paths)), len(paths))]
    total, packed = 0, 0
    with Pool() as pool, zipfile.ZipFile(args.output, "w", zipfile.ZIP_STORED) as z:
        for path, data in zip(paths, pool.imap(shrink, [(p, args.side, args.quality)
                                                        for p in paths], chunksize=32)):
            if data is None:
                print(f"{path}: unreadable, skipped")
                continue
            if args.max_mb is not None and total + len(data) > args.max_mb * 1e6:
                pool.terminate()
                break
            z.writestr(f"{path.parent.name[:2]}_{path.stem}.webp", data)
            total, packed = total + len(data), packed + 1
    print(f"{packed} of {len(paths)} photos, {total / 1e6:.1f} MB in {args.output}")


if __name__ == "__main__":
    main()
