"""CPU time of one re-solve of ``chromatize serve``: ``POST /api/colorize`` with new points.

Process CPU time, not wall time: on a shared machine the wall time of a request is mostly
waiting for a core, while its CPU time is the work the server does. The photo is uploaded
once (``/api/photos``); each request sends ``--points`` random points, as the page does
after a recolour (photos larger than ``--preview`` as a preview of that long side).

    python benchmarks/serve_resolve.py --side 512
    python benchmarks/serve_resolve.py --side 1600          # a 768 px preview, as the page
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time

import numpy as np
from PIL import Image

from chromatize.server import create_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--side", type=int, default=512, help="the photo's side (square)")
    parser.add_argument("--points", type=int, default=6)
    parser.add_argument("--preview", type=int, default=768)
    parser.add_argument("--repeats", type=int, default=12, help="the first two are dropped")
    parser.add_argument("--model", default="default")
    args = parser.parse_args()

    from fastapi.testclient import TestClient
    from skimage import data

    photo = Image.fromarray(data.astronaut()).convert("L").resize((args.side, args.side))
    buf = io.BytesIO()
    photo.save(buf, "PNG")
    client = TestClient(create_app(args.model))
    upload = {"image": ("photo.png", buf.getvalue(), "image/png")}
    pid = client.post("/api/photos", files=upload).json()["id"]
    rng = np.random.default_rng(0)
    times = []
    for _ in range(args.repeats):
        marks = [{"x": int(rng.uniform(0.15, 0.85) * args.side),
                  "y": int(rng.uniform(0.15, 0.85) * args.side), "color": "#c03030",
                  "radius": 4} for _ in range(args.points)]
        fields = {"photo": pid, "marks": json.dumps(marks), "format": "jpeg"}
        if args.side > args.preview:
            fields["preview"] = str(args.preview)
        start = time.process_time()
        response = client.post("/api/colorize", files={k: (None, v) for k, v in fields.items()})
        times.append((time.process_time() - start) * 1000)
        response.raise_for_status()
    print(f"{args.side} px photo, {args.points} points: median CPU time of a re-solve "
          f"{statistics.median(times[2:]):.0f} ms over {len(times) - 2} requests")


if __name__ == "__main__":
    main()
