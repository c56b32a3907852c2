"""The data-scaling curve of the shipped default's decoder (issue 23, item 7a).

    nice -n 5 python scripts/scaling_curve.py RUNS [--sizes 1600 3200 6400 all]
        [--steps 800] [--views 1] [--photos ../shared/data/photos] [--cache DIR]
        [--plot docs/scaling.png] [--suffix _adabn --override=--model.adabn=1024 ...]

Run from the repository root. The recipe is ``configs/default.yaml`` with its
EfficientNet-Lite0 encoder frozen the whole run: the decoder trains from cached encoder
features of ``--views`` random crops per photo, for the same number of steps (batch 32,
cosine) on nested subsets of train + train_extra (``data.limit`` photos after a shuffle
seeded by ``data.subset_seed: 0``; ``all`` = every usable photo). The feature cache holds
the photos in that order, so each subset reads the prefix of it and the cache is built
once, a subset at a time. Each run lives in ``RUNS/n<size>`` and is resumed if
interrupted; each finished run is scored on val at full size (``scripts/tune_decoding.py``
at the shipped working size 224 and boost 0.2) while the next one trains. The shipped
``default`` is scored the same way. Prints a Markdown table (also ``RUNS/scaling.md``),
and plots CIEDE2000 against log N when matplotlib is installed. Torch threads: 2 unless
``OMP_NUM_THREADS`` says otherwise.

``--override`` adds config overrides to every run, whose folders then get ``--suffix``:
the AdaBN and L2-SP runs of docs/ablation.md (round 7) are the 1,600-photo point so
changed, e.g. ``--sizes 1600 --suffix _adabn --override=--model.adabn=1024
--override=--data.feature_cache=DIR`` (AdaBN changes the encoder: its own cache).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

BOOSTS = ("0.2",)


def train_command(run: Path, size: str, steps: int, views: int, photos: Path, cache: Path,
                  ) -> list[str]:
    """The ``chromatize train`` command that starts or continues ``run``."""
    cli = [sys.executable, "-m", "chromatize.cli", "train"]
    if (run / "state.json").is_file():
        return cli + ["--resume", str(run), f"--train.max_steps={steps}"]
    return cli + ["configs/default.yaml", f"--run_dir={run}",
                  f"--data.train=[{photos / 'train'},{photos / 'train_extra'}]",
                  f"--data.val={photos / 'val'}", f"--data.feature_cache={cache}",
                  "--data.subset_seed=0", f"--data.limit={'null' if size == 'all' else size}",
                  f"--data.feature_views={views}", "--data.cache=false",
                  f"--train.max_steps={steps}", "--model.freeze_encoder_steps=1000000",
                  f"--train.eval_every={steps}", "--train.ckpt_every=250",
                  "--model.working_size=224", "--model.kwargs.boost=0.2"]


def score_command(model: str, out: Path, photos: Path) -> list[str]:
    return [sys.executable, "scripts/tune_decoding.py", model, "--data", str(photos / "val"),
            "--working-size", "224", "--boost", *BOOSTS, "--json", str(out)]


def finished(run: Path, steps: int) -> bool:
    meta = run / "model.json"
    return meta.is_file() and json.loads(meta.read_text()).get("step") == steps


def row(label: str, photos: str, scores: Path) -> str:
    rows = {f"{r['boost']:g}": r for r in json.loads(scores.read_text())["rows"]}
    cells = [f"{rows[b]['ciede2000']:.2f} / {rows[b]['colorfulness_ratio']:.3f}" for b in BOOSTS]
    return f"| {label} | {photos} | " + " | ".join(cells) + " |"


def plot(points: list[tuple[int, Path]], default: Path, out: Path) -> None:
    """CIEDE2000 against log N at each boost, the shipped default as a line."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plot")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4), dpi=120)
    for b, style in zip(BOOSTS, ("o-", "s--")):
        ys = [next(r["ciede2000"] for r in json.loads(p.read_text())["rows"] if f"{r['boost']:g}" == b)
              for _, p in points]
        line, = ax.plot([n for n, _ in points], ys, style, label=f"decoder, boost {b}")
        ref = next(r["ciede2000"] for r in json.loads(default.read_text())["rows"]
                   if f"{r['boost']:g}" == b)
        ax.axhline(ref, color=line.get_color(), lw=0.8, ls=":", label=f"shipped default, boost {b}")
    ax.set_xscale("log", base=2)
    ax.set_xticks([n for n, _ in points], [f"{n:,}" for n, _ in points])
    ax.set_xlabel("training photos")
    ax.set_ylabel("val CIEDE2000 (lower is better)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out)
    print(f"plot written to {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", type=Path)
    p.add_argument("--sizes", nargs="+", default=["1600", "3200", "6400", "all"])
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--views", type=int, default=1, help="cached random crops per photo")
    p.add_argument("--photos", type=Path, default=Path("../shared/data/photos"))
    p.add_argument("--cache", type=Path, default=Path("~/.cache/chromatize/features/scaling"))
    p.add_argument("--plot", type=Path, default=None)
    p.add_argument("--suffix", default="", help="run folders are RUNS/n<size><suffix>")
    p.add_argument("--override", action="append", default=[], metavar="--KEY=VALUE")
    args = p.parse_args()
    photos, cache = args.photos.resolve(), args.cache.expanduser().resolve()
    env = {"PYTHONPATH": "src", "OMP_NUM_THREADS": "2"} | dict(os.environ)
    scoring: list[subprocess.Popen] = []
    default = args.runs / "default_val.json"
    if not default.is_file():
        scoring.append(subprocess.Popen(score_command("default", default, photos), env=env))
    for size in args.sizes:
        run = args.runs / f"n{size}{args.suffix}"
        if not finished(run, args.steps):
            command = train_command(run, size, args.steps, args.views, photos, cache)
            fresh = "--resume" not in command
            subprocess.run(command + (args.override if fresh else []), env=env, check=True)
        if not (run / "val.json").is_file():
            for proc in scoring:  # at most one scoring beside the training
                proc.wait()
            scoring = [subprocess.Popen(score_command(str(run / "model"), run / "val.json", photos),
                                        env=env)]
    for proc in scoring:
        proc.wait()
    lines = ["| model | training photos | " + " | ".join(
                 f"boost {b}: CIEDE2000 / colourfulness" for b in BOOSTS) + " |",
             "|---|---:|" + "---|" * len(BOOSTS),
             row("shipped `default`", "2,736 (train/)", default)]
    points = []
    for size in args.sizes:
        run = args.runs / f"n{size}{args.suffix}"
        n = json.loads((run / "model.json").read_text())["data"]["train"]["count"]
        lines.append(row(f"decoder, {args.steps} steps of 32", f"{n:,}", run / "val.json"))
        points.append((n, run / "val.json"))
    table = "\n".join(lines)
    print(table)
    (args.runs / "scaling.md").write_text(table + "\n")
    if args.plot is not None:
        plot(points, default, args.plot)


if __name__ == "__main__":
    main()
