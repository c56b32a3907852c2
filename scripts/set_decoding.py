"""Change a shipped model's decoding settings (boost, chroma gain, working size), weights
untouched.

    PYTHONPATH=src python scripts/set_decoding.py NAME [--boost 0.2] [--gain 1.25] \
        [--working-size 224] --chosen-by "scripts/tune_decoding.py ... on ../shared/data/photos/val"

Rewrites ``src/chromatize/weights/NAME.json`` atomically: ``model.kwargs.boost`` and
``.gain`` and the top-level ``working_size`` (what ``Colorizer.load(NAME)`` reads), and the ``decoding``
record, which keeps the settings it replaces under ``previous``. Choose the values with
``scripts/tune_decoding.py`` first; this script only writes them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from chromatize.io import atomic_write_bytes
from chromatize.models import create_model

WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "chromatize" / "weights"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name")
    parser.add_argument("--boost", type=float, default=None)
    parser.add_argument("--gain", type=float, default=None, help="chroma gain of the decoded a*b*")
    parser.add_argument("--working-size", type=int, default=None)
    parser.add_argument("--chosen-by", required=True, help="how the values were chosen")
    args = parser.parse_args()
    path = WEIGHTS / f"{args.name}.json"
    if not path.is_file():
        raise SystemExit(f"error: {args.name}: no shipped model of that name in {WEIGHTS}")
    if args.working_size is not None and args.working_size < 32:
        raise SystemExit(f"error: --working-size must be at least 32, got {args.working_size}")
    meta = json.loads(path.read_text())
    decoding = dict(meta.get("decoding", {}))
    previous = {"boost": meta["model"]["kwargs"].get("boost"),
                "gain": meta["model"]["kwargs"].get("gain", 1.0),
                "working_size": meta.get("working_size"), "chosen_by": decoding.get("chosen_by")}
    if args.boost is not None:
        meta["model"]["kwargs"]["boost"] = decoding["boost"] = args.boost
    if args.gain is not None:
        meta["model"]["kwargs"]["gain"] = decoding["gain"] = args.gain
    if args.working_size is not None:
        meta["working_size"] = decoding["working_size"] = args.working_size
    decoding.update(chosen_by=args.chosen_by, previous=previous)
    meta["decoding"] = decoding
    try:  # the model must still build with the new settings before the file changes
        create_model(meta["model"]["name"], **meta["model"]["kwargs"])
    except (KeyError, TypeError, ValueError) as e:
        raise SystemExit(f"error: {args.name}: {e}") from None
    atomic_write_bytes(path, json.dumps(meta, indent=2, default=str).encode())
    kw = meta["model"]["kwargs"]
    print(f"{path}: boost {kw.get('boost')}, gain {kw.get('gain', 1.0)}, working size {meta['working_size']}")


if __name__ == "__main__":
    main()
