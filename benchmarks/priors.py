"""Image-level colour priors on val: how much a reference, a palette or a choice of
versions is worth (issue 23), and what they add to the latency.

Every val photo is turned gray (``evaluate.gray_input``), run through the network once,
and decoded several ways; each result is scored at full size against the truth by mean
CIEDE2000 and colourfulness ratio (output over truth, Hasler and Suesstrunk):

* ``automatic``: no prior;
* ``truth``: the photo's own histogram (the ceiling);
* ``reference``: the left 40% of the true colour photo as the reference, the whole gray
  photo colorized; scored on the right 60% (``reference_right``, the headline: those
  pixels' colours were not given; against ``automatic_right``, the automatic result on
  the same pixels) and on the whole photo; ``reference_histogram``: the same reference's
  histogram alone (no cells matched, as before);
* ``truth_local``: the true photo as its own reference, cells matched;
* ``palette5``: 5 colours, k-means of the true photo's a*b*, equal weights;
* ``unrelated``: another val photo (the next one) as the reference (``_histogram``: its
  histogram alone);
* ``best_of_K``: of the K versions (``--variants K``: the automatic result and K - 1
  priors), the one of least CIEDE2000 per photo (an oracle pick, as a person choosing
  would do at best);
* ``auto_prior``: the mean histogram of the index's nearest photos (issue 23's 7c).

    PYTHONPATH=src OMP_NUM_THREADS=1 python benchmarks/priors.py            # full val
    PYTHONPATH=src python benchmarks/priors.py --limit 20 --parts base
    PYTHONPATH=src python benchmarks/priors.py --latency --repeats 7
    python benchmarks/priors.py --shard 1/2 --json a.json & python benchmarks/priors.py \
        --shard 2/2 --json b.json; wait; python benchmarks/priors.py --merge a.json b.json

``--strengths`` takes the grid each method is scored at (``method=s1,s2``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from chromatize import color, priors
from chromatize.decoding import Decoding
from chromatize.evaluation import metrics
from chromatize.evaluation.evaluate import gray_input, list_images, load_truth, select_photos
from chromatize.inference import variants as v
from chromatize.inference.pipeline import Colorizer

GRID = {"reference": (0.4,), "palette5": (0.75,), "unrelated": (0.4,), "truth": (1.0,),
        "truth_local": (), "reference_histogram": (), "unrelated_histogram": (),
        "variants": (1.0,), "auto_prior": (0.1, 0.2, 0.3)}


def histogram_only(prior: priors.ImagePrior) -> priors.ImagePrior:
    """A reference's prior without its photos: the histogram alone, the same for every
    cell (how references were decoded before cells were matched)."""
    return priors.ImagePrior(prior.hist, prior.strength, prior.source)


def palette_of(truth: np.ndarray, k: int = 5) -> list[tuple[tuple[int, int, int], float]]:
    """k-means (seeded) of a photo's a*b* on a small copy -> k colours of equal weight,
    each shown at its cluster's mean L*."""
    from scipy.cluster.vq import kmeans2

    im = Image.fromarray(truth)
    im.thumbnail((128, 128), Image.BOX)
    lab = color.rgb_to_lab_np(np.asarray(im, dtype=np.float64) / 255).reshape(-1, 3)
    _, labels = kmeans2(lab[:, 1:], k, seed=0, minit="++")
    out = []
    for j in range(k):
        members = lab[labels == j]
        if len(members):
            rgb = color.lab_to_rgb_np(members.mean(0)[None, None])[0, 0]
            out.append((tuple(int(c) for c in np.clip(rgb * 255 + 0.5, 0, 255)), 1.0))
    return out


def score(img: Image.Image, truth: np.ndarray, true_lab: np.ndarray, c_true: float,
          cols: slice = slice(None)) -> tuple[float, float]:
    """(mean CIEDE2000, colourfulness ratio) of ``img`` against the truth, over ``cols``."""
    pred = np.asarray(img.convert("RGB"))[:, cols]
    de = metrics.ciede2000(metrics.to_lab(pred), true_lab[:, cols])
    c_ref = c_true if cols == slice(None) else metrics.colorfulness(truth[:, cols])
    return de, metrics.colorfulness(pred) / max(c_ref, 1e-6)


def photo_rows(c: Colorizer, truth: np.ndarray, other: np.ndarray, index: v.Index | None,
               parts: set[str], grid: dict[str, tuple[float, ...]], ks: list[int],
               neighbours: int = v.NEIGHBOURS) -> dict[str, tuple[float, float]]:
    """Every method's (CIEDE2000, colourfulness ratio) for one photo."""
    true_lab = metrics.to_lab(truth)
    c_true = metrics.colorfulness(truth)
    gray, _ = gray_input(true_lab[..., 0])
    source = c.prepare(gray)
    out = c.infer(source, cache=False)
    right = slice(int(round(truth.shape[1] * 0.4)), None)
    rows: dict[str, tuple[float, float]] = {}

    def run(name: str, prior: priors.ImagePrior | None, cols: slice = slice(None)) -> Image.Image:
        img = c.finish(source, out, Decoding(prior=prior))
        rows[name] = score(img, truth, true_lab, c_true, cols)
        return img

    auto = run("automatic", None)
    rows["automatic_right"] = score(auto, truth, true_lab, c_true, right)  # reference_right's baseline
    if "base" in parts:
        for s in grid["truth"]:  # the truth's histogram (issue 23's ceiling)
            run(f"truth@{s}", histogram_only(priors.from_photos([truth], s)))
        for s in grid["truth_local"]:  # the photo as its own reference, cell by cell
            run(f"truth_local@{s}", priors.from_photos([truth], s))
        left = truth[:, :right.start]
        for s in grid["reference"]:
            img = run(f"reference_right@{s}", priors.from_photos([left], s), right)
            rows[f"reference_whole@{s}"] = score(img, truth, true_lab, c_true)
        for s in grid["reference_histogram"]:  # before cells were matched: the histogram
            run(f"reference_histogram_right@{s}",
                histogram_only(priors.from_photos([left], s)), right)
        pal = palette_of(truth)
        for s in grid["palette5"]:
            run(f"palette5@{s}", priors.from_palette(pal, s))
        for s in grid["unrelated"]:
            run(f"unrelated@{s}", priors.from_photos([other], s))
        for s in grid["unrelated_histogram"]:
            run(f"unrelated_histogram@{s}", histogram_only(priors.from_photos([other], s)))
    if index is not None and "variants" in parts:
        emb = v.output_embedding(out)
        for s in grid["variants"]:
            for k in ks:
                # as shipped: the automatic result, then k - 1 priors
                versions = v.versions(index, emb, k, s, neighbours)
                scores = [score(c.finish(source, out, Decoding(prior=p)), truth, true_lab,
                                c_true) for p in versions]
                rows[f"best_of_{k}@{s}"] = min(scores)
                rows[f"version_2_of_{k}@{s}"] = scores[1]
                # the prior whose histogram is nearest the network's mean distribution
                near = 1 + int(np.argmax([np.sqrt(p.array()) @ emb for p in versions[1:]]))
                rows[f"version_nearest_of_{k}@{s}"] = scores[near]
    if index is not None and "auto" in parts:
        emb = v.output_embedding(out)
        for s in grid["auto_prior"]:
            run(f"auto_prior@{s}", v.automatic_prior(index, emb, s))
    return rows


def table(results: dict[str, list[tuple[float, float]]]) -> str:
    """The mean of each method; ``*_right`` rows against the automatic result on the
    same pixels (``automatic_right``)."""
    means = {name: np.mean([r[0] for r in rs]) for name, rs in results.items()}
    lines = ["| method @ strength | photos | CIEDE2000 | vs automatic | colourfulness ratio |",
             "|---|---:|---:|---:|---:|"]
    for name, rs in results.items():
        de = means[name]
        auto = means.get("automatic_right" if "_right" in name else "automatic", np.nan)
        lines.append(f"| {name} | {len(rs)} | {de:.2f} | {de - auto:+.2f} | "
                     f"{np.mean([r[1] for r in rs]):.3f} |")
    return "\n".join(lines)


def latency(c: Colorizer, repeats: int, photo: Path) -> None:
    """Median added time of a reference prior, versions' priors and the automatic prior
    over the automatic colorization, at 640x480 and 12 MP: ``photo`` (a colour photo) is
    resized to each size and colorized from its gray with itself as the reference, so every
    cell matches (the most work a reference adds). ``reference_once``: what a reference
    costs once per run (its network pass and features), before any photo."""
    rng = np.random.default_rng(0)
    index = v.load_index(c.index_path) if c.index_path else None
    print(f"index {c.index_path}: {Path(c.index_path).stat().st_size / 1e6:.2f} MB"
          if c.index_path else "no index")
    colour = Image.open(photo).convert("RGB")
    for w, h in ((640, 480), (4000, 3000)):
        big = colour.resize((w, h), Image.BICUBIC)
        ref = priors.from_photos([np.asarray(big)])
        pal = priors.ImagePrior(ref.hist, priors.PALETTE_STRENGTH)  # a histogram alone
        source = c.prepare(big.convert("L"))
        out = c.infer(source)

        def once() -> None:
            c._exemplars.clear()  # noqa: SLF001 (timing the first use of a reference)
            c.with_exemplar(ref)

        timings = defaultdict(list)
        for _ in range(repeats + 1):
            for name, fn in (
                    ("automatic", lambda: c.finish(source, out)),
                    ("reference", lambda: c.finish(source, out, Decoding(prior=ref))),
                    ("palette", lambda: c.finish(source, out, Decoding(prior=pal))),
                    ("reference_once", once),
                    ("version_priors_k8", lambda: c.variant_priors(out, 8)),
                    ("auto_prior", lambda: v.automatic_prior(
                        index, v.embedding(out.logits), 0.2))):
                if index is None and name in ("version_priors_k8", "auto_prior"):
                    continue
                t0 = time.perf_counter()
                fn()
                timings[name].append(time.perf_counter() - t0)
        med = {k: statistics.median(t[1:]) * 1000 for k, t in timings.items()}
        print(f"{w}x{h}: automatic finish {med['automatic']:.1f} ms; added by a reference "
              f"{med['reference'] - med['automatic']:+.1f} ms (and once per run "
              f"{med['reference_once']:.1f} ms); by a palette "
              f"{med['palette'] - med['automatic']:+.1f} ms"
              + "".join(f"; {k} {med[k]:.1f} ms" for k in ("version_priors_k8", "auto_prior")
                        if k in med))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default")
    ap.add_argument("--val", default=None, help="default: ../shared/data/photos/val (from "
                    "the main checkout; ../../shared/... from a worktree)")
    ap.add_argument("--index", default=None, help="default: the model's shipped index")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--parts", default="base,variants,auto")
    ap.add_argument("--ks", default="4,8")
    ap.add_argument("--neighbours", type=int, default=v.NEIGHBOURS,
                    help="indexed photos the versions are clustered from")
    ap.add_argument("--strengths", nargs="*", default=[], help="method=s1,s2 ...")
    ap.add_argument("--json", default=None, help="write every photo's scores here")
    ap.add_argument("--shard", default="1/1", help="I/N: score every N-th photo from the "
                    "I-th (run N at once, then --merge their JSON files)")
    ap.add_argument("--merge", nargs="*", default=None, help="print the table of these "
                    "JSON files (written by --json) together")
    ap.add_argument("--latency", action="store_true")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--backend", default="torch", help="torch (the scores) or onnx (what a "
                    "user with the onnx extra runs; for --latency)")
    args = ap.parse_args()
    if args.merge:
        results: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for path in args.merge:
            for name, rs in json.loads(Path(path).read_text())["results"].items():
                results[name].extend(rs)
        print(table(results))
        return
    c = Colorizer.load(args.model, device="cpu", backend=args.backend, index=args.index)
    val = Path(args.val) if args.val else next(
        (p for p in (Path("../shared/data/photos/val"), Path("../../shared/data/photos/val"))
         if p.is_dir()), Path("../shared/data/photos/val"))
    if args.latency:
        latency(c, args.repeats, list_images(val)[0])
        return
    grid = dict(GRID)
    for item in args.strengths:
        name, _, values = item.partition("=")
        grid[name] = tuple(float(s) for s in values.split(",") if s)  # "name=": none
    index = v.load_index(c.index_path) if c.index_path else None
    photos, _, _ = select_photos(list_images(val), None, args.limit, 0)
    truths = [load_truth(p) for p in photos]
    shard, shards = (int(x) for x in args.shard.split("/"))
    results: dict[str, list[tuple[float, float]]] = defaultdict(list)
    t0 = time.time()
    mine = range(shard - 1, len(truths), shards)
    for i in mine:
        truth = truths[i]
        rows = photo_rows(c, truth, truths[(i + 1) % len(truths)], index,
                          set(args.parts.split(",")), grid, [int(k) for k in args.ks.split(",")],
                          args.neighbours)
        for name, r in rows.items():
            results[name].append(r)
        print(f"{i + 1}/{len(truths)} {photos[i].name} {time.time() - t0:.0f}s",
              file=sys.stderr, flush=True)
        if args.json:  # after every photo, so a long run that is stopped still counts
            Path(args.json).write_text(json.dumps({"results": results}))
    print(table(results))


if __name__ == "__main__":
    main()
