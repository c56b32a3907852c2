"""Image-level colour priors: the decoding-time way against the learned way (issue 23, item 5).

Every val colour photo is made gray (its own L*, as ``chromatize evaluate`` does) and
colorized with the same image-level inputs, each a 261-bin histogram
(:mod:`chromatize.priors`):

* ``automatic``: none;
* ``same scene``: a reference of the same scene, the photo's left 40% in colour;
* ``palette 5``: 5 k-means colours of the photo's a*b*, equal weights;
* ``unrelated``: another val photo's histogram (the one half the list away);
* ``truth``: the photo's own histogram (the ceiling).

Methods: ``decoding S``: the shipped ``default`` with the decoding-time prior
``p * (h / prior) ** S``; ``learned``: a global-hint model (``--learned``, e.g.
``effnet_lite0_cls_global``) reading the histogram as an input; ``learned + S``: the same
with the decoding-time prior at strength S on top. Scores (``evaluation/metrics.py``):
mean CIEDE2000 over the whole photo and over its right 60% (the part a same-scene reference
does not show), and mean colourfulness and its ratio to the truth's.

    PYTHONPATH=src python benchmarks/priors_learned.py --photos ../shared/data/photos/val \\
        --part default --threads 1 --json /tmp/priors_default.json
    PYTHONPATH=src python benchmarks/priors_learned.py --photos ../shared/data/photos/val \\
        --part learned --learned RUN/model --threads 1 --json /tmp/priors_learned.json
    PYTHONPATH=src python benchmarks/priors_learned.py --report /tmp/priors_default.json \\
        /tmp/priors_learned.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy.cluster.vq import kmeans2

from chromatize import Colorizer, color, priors
from chromatize.decoding import Decoding
from chromatize.evaluation import metrics
from chromatize.evaluation.evaluate import gray_input, list_images, load_truth, select_photos
from chromatize.priors import ImagePrior

CONDITIONS = ("automatic", "same scene", "palette 5", "unrelated", "truth")
LEFT = 0.4  # the share of the photo a same-scene reference shows


def photo_priors(truths: list[np.ndarray]) -> list[dict[str, np.ndarray | None]]:
    """The histograms ``(Q,)`` of every condition for each photo (None: automatic)."""
    whole = [priors.histogram(priors.photo_ab(t)) for t in truths]
    n = len(truths)
    out = []
    for i, t in enumerate(truths):
        ab = priors.photo_ab(t)
        centres, _ = kmeans2(ab, 5, seed=i, minit="++")
        out.append({"automatic": None,
                    "same scene": priors.histogram(priors.photo_ab(t, (0, 0, LEFT, 1))),
                    "palette 5": priors.histogram(centres),
                    "unrelated": whole[(i + n // 2) % n],
                    "truth": whole[i]})
    return out


def score(pred: Image.Image, truth: np.ndarray) -> dict[str, float]:
    """CIEDE2000 over the whole photo and its right 60%, colourfulness and its ratio."""
    rgb = np.asarray(pred.convert("RGB"))
    p, t = metrics.to_lab(rgb), metrics.to_lab(truth)
    x0 = int(round(truth.shape[1] * LEFT))
    left, right = metrics.ciede2000(p[:, :x0], t[:, :x0]), metrics.ciede2000(p[:, x0:], t[:, x0:])
    c, c_true = metrics.colorfulness(rgb), metrics.colorfulness(truth)
    return {"ciede2000": (left * x0 + right * (truth.shape[1] - x0)) / truth.shape[1],
            "ciede2000_right": right, "colorfulness": c,
            "colorfulness_ratio": c / max(c_true, 1e-6)}


def methods(part: str, strengths: list[float], on_top: list[float],
            ) -> list[tuple[str, bool, float | None]]:
    """(name, whether the model reads the histogram, decoding-time strength or None)."""
    if part == "default":
        return [(f"decoding {s:g}", False, s) for s in strengths]
    return [("learned", True, None)] + [(f"learned + {s:g}", True, s) for s in on_top]


def run(colorizer: Colorizer, paths: list[Path], todo: list[tuple[str, bool, float | None]],
        log: Callable[[str], None], shard: tuple[int, int] = (0, 1),
        ) -> tuple[dict[str, dict[str, dict[str, float]]], int]:
    """Mean scores ``{method: {condition: {metric: value}}}`` over the photos of
    ``shard`` (K, N: every N-th of ``paths`` from the K-th; the unrelated photo is chosen
    among all of ``paths``), and their number."""
    truths = [load_truth(p) for p in paths]
    hists = photo_priors(truths)[shard[0]::shard[1]]
    truths = truths[shard[0]::shard[1]]
    sums: dict[str, dict[str, dict[str, float]]] = {}
    t0 = time.perf_counter()
    for i, (truth, hs) in enumerate(zip(truths, hists)):
        gray, _ = gray_input(color.rgb_to_lab_np(truth / 255.0)[..., 0])
        source = colorizer.prepare(gray)
        for cond in CONDITIONS:
            h = hs[cond]
            for name, as_input, strength in todo:
                if h is None and name != todo[0][0]:
                    continue  # automatic: one row, the same for every method
                prior = None if h is None else ImagePrior.from_array(h, strength or 0.0)
                out = colorizer.infer(source, prior=prior if as_input else None)
                d = Decoding(prior=prior if strength else None)
                s = score(colorizer.finish(source, out, d), truth)
                key = name if h is not None else "automatic" + (" (learned)" if as_input else "")
                row = sums.setdefault(key, {}).setdefault(cond, {})
                for k, v in s.items():
                    row[k] = row.get(k, 0.0) + v
        if (i + 1) % 20 == 0:
            log(f"{i + 1}/{len(truths)} photos, {time.perf_counter() - t0:.0f} s")
    n = len(truths)
    return {m: {c: {k: v / n for k, v in row.items()} for c, row in conds.items()}
            for m, conds in sums.items()}, n


def report(files: list[Path]) -> str:
    """A markdown table of the JSON results, one row per method and condition; shards of
    one method (``--shard``) are averaged weighted by their photos."""
    sums: dict[tuple[str, str], dict[str, float]] = {}
    counts: dict[tuple[str, str], int] = {}
    for f in files:
        data = json.loads(f.read_text())
        for method, conds in data["results"].items():
            for cond, r in conds.items():
                row = sums.setdefault((method, cond), {})
                for k, v in r.items():
                    row[k] = row.get(k, 0.0) + v * data["photos"]
                counts[(method, cond)] = counts.get((method, cond), 0) + data["photos"]
    lines = ["| method | input | photos | CIEDE2000 | CIEDE2000 right 60% | colourfulness "
             "| ratio |", "|---|---|---:|---:|---:|---:|---:|"]
    for (method, cond), row in sums.items():
        n = counts[(method, cond)]
        lines.append(f"| {method} | {cond} | {n} | {row['ciede2000'] / n:.2f} | "
                     f"{row['ciede2000_right'] / n:.2f} | {row['colorfulness'] / n:.1f} | "
                     f"{row['colorfulness_ratio'] / n:.3f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=Path, default=Path("../shared/data/photos/val"))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--part", choices=("default", "learned"), default="default")
    ap.add_argument("--model", default="default", help="the model of the decoding-time rows")
    ap.add_argument("--learned", default=None, help="a global-hint checkpoint")
    ap.add_argument("--strengths", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    ap.add_argument("--on-top", type=float, nargs="+", default=[0.25, 0.5])
    ap.add_argument("--shard", default="0/1", help="K/N: every N-th photo from the K-th")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--report", type=Path, nargs="+", default=None)
    args = ap.parse_args()
    if args.report:
        print(report(args.report))
        return
    torch.set_num_threads(args.threads)
    paths, _, _ = select_photos(list_images(args.photos), None, args.limit, 0)
    k, n = (int(v) for v in args.shard.split("/"))
    model = args.model if args.part == "default" else args.learned
    if model is None:
        ap.error("--part learned needs --learned")
    colorizer = Colorizer.load(model, backend="torch")
    t0 = time.perf_counter()
    results, count = run(colorizer, paths, methods(args.part, args.strengths, args.on_top),
                         lambda msg: print(msg, flush=True), (k, n))
    data = {"photos": count, "shard": args.shard, "model": str(model), "seconds": time.perf_counter() - t0,
            "working_size": colorizer.working_size, "results": results}
    if args.json:
        args.json.write_text(json.dumps(data, indent=1))
    print(report([args.json]) if args.json else json.dumps(data, indent=1))


if __name__ == "__main__":
    main()
