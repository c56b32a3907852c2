"""Find hard negatives for the damage detector: the places of *undamaged* training
photos where a detector marks damage (thin bright texture: mullions, wires, highlights).
A training run with ``hard_negatives: FILE`` and ``hard_share`` draws that share of its
crops around them (:mod:`chromatize.training.damage_train`).

    PYTHONPATH=src python scripts/mine_negatives.py configs/open_photos.txt \\
        --detector /work/runs/restore/damage_v10c/damage --out /work/runs/restore/hard.json \\
        [--level 0.5] [--per-photo 4]

Writes JSON: ``{"detector", "level", "spots": [[photo, x, y, peak], ...]}``, the photo as
listed, (x, y) the centre of a marked region in pixels of the photo as decoded, ``peak``
the highest probability there; at most ``--per-photo`` regions per photo, the strongest.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from chromatize.errors import ChromatizeError
from chromatize.io import atomic_write_bytes
from chromatize.restore.net import load_detector
from chromatize.restore.pipeline import to_gray
from chromatize.training.data import list_photos


def spots(prob: np.ndarray, level: float, per_photo: int) -> list[tuple[int, int, float]]:
    """The centres and peaks of the regions of ``prob`` ``(H, W)`` above ``level``, the
    ``per_photo`` strongest first."""
    n, labels, _, centres = cv2.connectedComponentsWithStats((prob > level).astype(np.uint8))
    if n <= 1:
        return []
    peaks = np.zeros(n)
    np.maximum.at(peaks, labels.ravel(), prob.ravel())
    order = np.argsort(-peaks[1:])[:per_photo] + 1
    return [(int(centres[i][0]), int(centres[i][1]), round(float(peaks[i]), 4)) for i in order]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photos", help="a folder or a .txt list of training photos")
    ap.add_argument("--detector", help="PATH of PATH.safetensors (default: the shipped one)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--level", type=float, default=0.5)
    ap.add_argument("--per-photo", type=int, default=4)
    args = ap.parse_args()
    try:
        detector = load_detector(args.detector)
        listed = list_photos(args.photos)
    except ChromatizeError as e:
        raise SystemExit(f"error: {e}") from None
    found = []
    for k, path in enumerate(listed):
        try:
            with Image.open(path) as im:
                gray = to_gray(np.asarray(im.convert("RGB")))
        except (OSError, ValueError) as e:  # one line, and the rest carry on
            print(f"skipped: {path}: {e}", file=sys.stderr)
            continue
        prob = 1 / (1 + np.exp(-detector.logits(gray).max(0)))
        found += [[str(path), x, y, p] for x, y, p in spots(prob, args.level, args.per_photo)]
        if k % 250 == 0:
            print(f"{k}/{len(listed)} photos, {len(found)} spots", file=sys.stderr, flush=True)
    atomic_write_bytes(args.out, json.dumps({"detector": args.detector or "shipped",
                                             "level": args.level, "spots": found}).encode())
    print(f"wrote {args.out}: {len(found)} spots in {len(listed)} photos")


if __name__ == "__main__":
    main()
