"""Whether a reference's strength should follow how well it agrees with the network.

A reference of another scene harms (docs/priors.md), so the default strength is a
compromise. Could the strength follow the agreement of the reference's histogram ``h``
with what the network already finds likely, strong for a same-scene reference and weak
for an unrelated one? Measured on **training** photos (so a gate could be fitted without
touching val): for each photo, a same-scene reference (its left 40%, scored on the right
60%), an unrelated one (the next photo) and a palette of 5, each decoded at several
strengths, with two agreement features:

* ``bc``: the Bhattacharyya coefficient of ``h`` and the network's mean distribution;
* ``llr``: the mean over cells of ``log sum_q p(q) h(q) / prior(q)`` (how much the
  reference raises the likelihood of the network's own distribution).

Then, for each constant strength, the best linear gate ``s(x) = smin + (smax - smin) *
clip((x - lo) / (hi - lo))`` that harms unrelated references no more.

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/prior_gate.py --every 14 --limit 200 \
        --json gate.json
    python benchmarks/prior_gate.py --report gate.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from priors import palette_of, score  # noqa: E402

STRENGTHS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5]
KINDS = ("same", "unrel", "pal")


def features(out, hist: np.ndarray, train_prior: np.ndarray) -> tuple[float, float]:  # noqa: ANN001
    from chromatize import priors
    from chromatize.inference import variants as v

    bc = float(np.sqrt(hist) @ v.output_embedding(out))
    z = np.asarray(out.logits, np.float64).reshape(len(out.logits), -1)
    p = np.exp(z - z.max(0))
    p /= p.sum(0)
    floor = priors.FLOOR / len(hist)
    ratio = np.maximum(hist, floor) / np.maximum(train_prior / train_prior.sum(), floor)
    return bc, float(np.mean(np.log(ratio @ p)))


def measure(photos: list[Path]) -> list[dict]:
    from chromatize import priors
    from chromatize.decoding import Decoding
    from chromatize.evaluation import metrics
    from chromatize.evaluation.evaluate import gray_input
    from chromatize.inference.pipeline import Colorizer

    c = Colorizer.load("default", device="cpu", backend="torch")
    train_prior = c.model.classification_head().prior.detach().cpu().numpy().astype(np.float64)
    rows = []
    for i, path in enumerate(photos):
        truth = np.asarray(Image.open(path).convert("RGB"))
        other = np.asarray(Image.open(photos[(i + 1) % len(photos)]).convert("RGB"))
        true_lab = metrics.to_lab(truth)
        if np.hypot(true_lab[..., 1], true_lab[..., 2]).mean() < 4:
            continue
        c_true = metrics.colorfulness(truth)
        source = c.prepare(gray_input(true_lab[..., 0])[0])
        out = c.infer(source, cache=False)
        right = slice(int(round(truth.shape[1] * 0.4)), None)
        rec: dict = {"path": str(path)}
        for kind, cols in zip(KINDS, (right, slice(None), slice(None))):
            try:
                ref = (priors.from_palette(palette_of(truth), 1.0) if kind == "pal" else
                       priors.from_photos([truth[:, :right.start] if kind == "same" else other], 1.0))
            except priors.PriorError:  # a gray neighbour
                continue
            rec[kind + "_feat"] = features(out, ref.array(), train_prior)
            rec[kind] = [score(c.finish(source, out, Decoding(
                prior=priors.ImagePrior(ref.hist, s) if s else None)), truth, true_lab, c_true,
                cols)[0] for s in STRENGTHS]
        rows.append(rec)
        print(f"{i + 1}/{len(photos)}", flush=True)
    return rows


def report(rows: list[dict]) -> None:
    s_grid = np.array(STRENGTHS)

    def gain(g, fi: int) -> dict[str, float]:  # noqa: ANN001
        return {k: float(np.mean([np.interp(g(r[k + "_feat"][fi]), s_grid, r[k]) - r[k][0]
                                  for r in rows if k in r])) for k in KINDS}

    print("| strength | same scene | unrelated | palette | best gate (feature): same / unrelated / palette |")
    print("|---:|---:|---:|---:|---|")
    gates = {}
    for fi, name in enumerate(("bc", "llr")):
        x = np.concatenate([[r[k + "_feat"][fi] for r in rows if k in r] for k in KINDS[:2]])
        gates[name] = [(gain(g, fi), g) for lo in np.percentile(x, range(0, 70, 5))
                       for hi in np.percentile(x, range(30, 101, 5)) if hi > lo
                       for smin in (0.0, 0.1, 0.2) for smax in (0.4, 0.5, 0.6, 0.8, 1.0)
                       for g in [lambda v, lo=lo, hi=hi, a=smin, b=smax:
                                 a + (b - a) * float(np.clip((v - lo) / (hi - lo), 0, 1))]]
    for s in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6):
        e = gain(lambda _, s=s: s, 0)
        best = []
        for name, found in gates.items():
            ok = [f for f, _ in found if f["unrel"] <= e["unrel"]]
            b = min(ok, key=lambda f: f["same"])
            best.append(f"{b['same']:+.2f} / {b['unrel']:+.2f} / {b['pal']:+.2f} ({name})")
        print(f"| {s} | {e['same']:+.2f} | {e['unrel']:+.2f} | {e['pal']:+.2f} | {'; '.join(best)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", default="../shared/data/photos/train")
    ap.add_argument("--every", type=int, default=14)
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--json", default=None)
    ap.add_argument("--report", default=None, help="print the table of this JSON")
    args = ap.parse_args()
    if args.report:
        report(json.loads(Path(args.report).read_text())["rows"])
        return
    photos = sorted(p for p in Path(args.photos).iterdir() if p.is_file())[::args.every][:args.limit]
    rows = measure(photos)
    if args.json:
        Path(args.json).write_text(json.dumps({"strengths": STRENGTHS, "rows": rows}))
    report(rows)


if __name__ == "__main__":
    main()
