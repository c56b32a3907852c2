"""Before/after table: the same figures for two source trees, measured interleaved.

Each figure runs in a fresh interpreter with ``PYTHONPATH`` set to one tree's ``src``,
the two trees taking turns (before, after, before, after, ...), so a change in the
machine's load hits both alike; the table prints medians. Figures:

* ``import torch`` (the yardstick of a cold start; the same for both trees);
  these and the other commands also with their CPU seconds (user + system);
* cold ``chromatize colorize one.jpg`` (640x480) and a 12 MP photo, start-up included,
  the ONNX graph already cached (the default ``auto`` backend on the CPU);
* ``chromatize --help``;
* ``Colorizer.colorize`` warm, 640x480 and 12 MP, per backend (no network-output cache),
  wall and CPU seconds;
* the re-solve after new marks (10 point marks, the network output cached), 1 and 12 MP,
  as ``benchmarks/hint_resolve.py`` measures it;
* film: frames per second of ``colorize_video`` on ``docs/example_clip.mp4``.

``--pixels`` also compares the outputs of both trees (every shipped model, both
backends, several decodings, marks): the largest difference in 8-bit levels.

    python benchmarks/before_after.py --before /work/wt/base/src --after src --repeats 5
    python benchmarks/before_after.py --before OLD/src --after src --only cold,help --pixels
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve()
ROOT = HERE.parents[1]
CLIP = ROOT / "docs" / "example_clip.mp4"
PHOTO = ROOT.parent / "shared/data/photos/val/bsds500_train_100098.jpg"
SIZES = {"640x480": (640, 480), "12MP": (4000, 3000), "1MP": (1155, 866)}
FIGURES = ("torch", "cold", "help", "warm", "marks", "video")


def make_photos(folder: Path) -> dict[str, Path]:
    """Gray JPEGs of a real photo (a gradient where it is missing) at each size."""
    if PHOTO.is_file():
        base = Image.open(PHOTO).convert("L")
    else:
        base = Image.fromarray(np.linspace(0, 255, 256 * 256).reshape(256, 256).astype(np.uint8))
    out = {}
    for name, (w, h) in SIZES.items():
        out[name] = folder / f"{name}.jpg"
        base.resize((w, h), Image.Resampling.BICUBIC).save(out[name], quality=92)
    return out


def wall(cmd: list[str], src: str | None) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of ``cmd`` with ``PYTHONPATH=src``; raises if
    it fails."""
    env = {**os.environ, "PYTHONPATH": src or ""}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr[-2000:]}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def worker(src: str, *args: str) -> dict[str, float]:
    """Run this script's ``--worker`` mode in ``src``'s tree; its JSON answer."""
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run([sys.executable, str(HERE), "--worker", *args], env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"worker {args} failed in {src}: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- workers


def _median_call(fn, repeats: int) -> tuple[float, float]:  # noqa: ANN001 - any callable
    """Median wall and CPU seconds (all the process's threads) of ``fn()`` after a warm-up.
    On a loaded machine the wall time favours code with more threads (each gets its share
    of the cores), so the CPU time is printed beside it."""
    fn()  # warm-up: allocator, kernels, caches
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def work_warm(photos: dict[str, str], backend: str, repeats: int) -> dict[str, float]:
    from chromatize import Colorizer

    colorizer = Colorizer.load("default", device="cpu", backend=backend, cache_size=0)
    out = {}
    for key in ("640x480", "12MP"):
        gray = np.asarray(Image.open(photos[key]))
        out[key], out[f"{key} CPU"] = _median_call(lambda: colorizer.colorize(gray), repeats)
    return out


def _points(h: int, w: int, rng: np.random.Generator, n: int = 10) -> list[dict]:
    colours = ["#c03030", "#3060c0", "#30a040", "#d0b040"]
    return [{"x": int(x), "y": int(y), "color": colours[i % 4], "radius": 4}
            for i, (y, x) in enumerate(zip(rng.integers(0, h, n), rng.integers(0, w, n)))]


def work_marks(photos: dict[str, str], repeats: int) -> dict[str, float]:
    from chromatize import Colorizer

    colorizer = Colorizer.load("default", device="cpu")
    out = {}
    for key in ("1MP", "12MP"):
        gray = np.asarray(Image.open(photos[key]))
        rng = np.random.default_rng(0)
        colorizer.colorize(gray, marks=_points(*gray.shape, rng))  # runs the network once
        out[key], out[f"{key} CPU"] = _median_call(
            lambda: colorizer.colorize(gray, marks=_points(*gray.shape, rng)), repeats)
    return out


def work_video() -> dict[str, float]:
    from chromatize.video import colorize_video

    with tempfile.TemporaryDirectory() as tmp:
        stats = colorize_video(CLIP, Path(tmp) / "out.mp4", model="default")
    return {"fps": stats.fps}


def work_pixels(photos: dict[str, str], folder: str) -> dict[str, float]:
    """Save the outputs this tree gives for each model, backend and decoding (options
    that ``Colorizer.load`` and ``colorize`` have taken since before this round)."""
    from chromatize import Colorizer

    gray = np.asarray(Image.open(photos["640x480"]))
    marks = _points(*gray.shape, np.random.default_rng(1))
    cases = {"plain": ({}, {}), "boost": ({"boost": 1.0}, {}), "gain": ({"gain": 1.3}, {}),
             "samples": ({}, {"samples": 2, "seed": 3}), "marks": ({}, {"marks": marks})}
    for model in ("default", "open", "hints"):
        for backend in ("torch", "onnx") if model != "hints" else ("auto",):
            for case, (load, call) in cases.items():
                c = Colorizer.load(model, device="cpu", backend=backend, **load)
                got = c.colorize(gray, **call)
                for i, image in enumerate(got if isinstance(got, list) else [got]):
                    image.save(Path(folder) / f"{model}-{backend}-{case}-{i}.png")
    return {"saved": float(len(list(Path(folder).glob("*.png"))))}


def run_worker(args: list[str]) -> None:
    kind, rest = args[0], args[1:]
    photos = json.loads(rest[0]) if rest else {}
    if kind == "warm":
        result = work_warm(photos, rest[1], int(rest[2]))
    elif kind == "marks":
        result = work_marks(photos, int(rest[1]))
    elif kind == "video":
        result = work_video()
    else:
        result = work_pixels(photos, rest[1])
    print(json.dumps(result))


# ----------------------------------------------------------------------------- driver


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "chromatize.cli", *args]


def one_round(trees: dict[str, str], figures: set[str], photos: dict[str, Path], tmp: Path,
              repeats: int, record, backends: list[str]) -> None:  # noqa: ANN001
    """Every figure once per tree, the trees in the given order; ``record(row, tree,
    value)`` keeps each figure, ``backends`` those of the warm figures."""
    as_json = json.dumps({k: str(v) for k, v in photos.items()})
    for tree, src in trees.items():
        timed = {}
        if "torch" in figures:
            timed["python -c 'import torch'"] = ([sys.executable, "-c", "import torch"], None)
        if "cold" in figures:
            for key in ("640x480", "12MP"):
                timed[f"cold `chromatize colorize` {key}"] = (_cli(
                    "colorize", str(photos[key]), "-o", str(tmp / tree), "--overwrite", "-q"), src)
        if "help" in figures:
            timed["`chromatize --help`"] = (_cli("--help"), src)
        for row, (cmd, path) in timed.items():
            seconds, cpu = wall(cmd, path)
            record(f"{row} (s)", tree, seconds)
            record(f"{row} CPU (s)", tree, cpu)
        if "warm" in figures:
            for backend in backends:
                for key, v in worker(src, "warm", as_json, backend, str(repeats)).items():
                    record(f"colorize {key} warm, {backend} (s)", tree, v)
        if "marks" in figures:
            for key, v in worker(src, "marks", as_json, str(repeats)).items():
                record(f"re-solve after new marks {key} (s)", tree, v)
        if "video" in figures:
            record("video example_clip.mp4 (fps)", tree, worker(src, "video")["fps"])


def compare_pixels(trees: dict[str, str], photos: dict[str, Path], tmp: Path) -> None:
    as_json = json.dumps({k: str(v) for k, v in photos.items()})
    folders = {}
    for tree, src in trees.items():
        folders[tree] = tmp / f"pixels-{tree}"
        folders[tree].mkdir()
        worker(src, "pixels", as_json, str(folders[tree]))
    (a, fa), (b, fb) = folders.items()
    print(f"\n| output ({a} vs {b}) | max level diff | pixels differing |\n|---|---:|---:|")
    for path in sorted(fa.glob("*.png")):
        x = np.asarray(Image.open(path)).astype(np.int16)
        y = np.asarray(Image.open(fb / path.name)).astype(np.int16)
        diff = np.abs(x - y)
        print(f"| {path.stem} | {diff.max()} | {(diff.max(-1) > 0).mean():.2%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the old tree's src folder")
    parser.add_argument("--after", required=True, help="the new tree's src folder")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of every figure")
    parser.add_argument("--calls", type=int, default=3, help="timed calls per worker")
    parser.add_argument("--only", default=",".join(FIGURES), help="comma-separated figures")
    parser.add_argument("--pixels", action="store_true", help="also compare the outputs")
    parser.add_argument("--backends", default="onnx,torch", help="of the warm figures")
    args = parser.parse_args()
    trees = {"before": str(Path(args.before).resolve()), "after": str(Path(args.after).resolve())}
    figures = set(args.only.split(","))
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, load average {os.getloadavg()}, "
          f"{os.cpu_count()} CPUs")
    values: dict[str, dict[str, list[float]]] = {}

    def record(row: str, tree: str, value: float) -> None:
        values.setdefault(row, {t: [] for t in trees})[tree].append(value)
        print(f"  {row} [{tree}] {value:.3f}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        photos = make_photos(tmp)
        for src in trees.values():  # the ONNX graph cached, as a cold start expects
            wall(_cli("colorize", str(photos["640x480"]), "-o", str(tmp / "warm"),
                      "--overwrite", "-q"), src)
        for r in range(args.repeats):
            order = dict(list(trees.items())[:: 1 if r % 2 == 0 else -1])
            one_round(order, figures, photos, tmp, args.calls, record, args.backends.split(","))
        print(f"\n| figure | before | after | after/before | n |\n|---|---:|---:|---:|---:|")
        for row, per in values.items():
            b, a = statistics.median(per["before"]), statistics.median(per["after"])
            print(f"| {row} | {b:.3f} | {a:.3f} | {a / b:.2f} | {len(per['after'])} |")
        if args.pixels:
            compare_pixels(trees, photos, tmp)
    print(f"# done {time.strftime('%H:%M')}, load average {os.getloadavg()}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        run_worker(sys.argv[2:])
    else:
        main()
