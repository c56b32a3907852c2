"""Folder throughput of the CLI: images/s of ``chromatize colorize DIR -o OUT``.

Runs the command as a user would (a fresh process), once on a single photo to measure the
fixed start-up cost (imports, model loading) and once on the whole folder; prints the
total rate and the steady rate with start-up taken out, and the CPU seconds per photo
(user + system of the command's process tree: the cost that scales out). Without
``--model`` a randomly initialised checkpoint of ``--arch`` is used (speed does not
depend on the weights); without ``--photos`` N photos of ``--size`` are generated. CLI
options go after ``--``, e.g. ``-- --engine ray --workers 2`` or ``-- --backend torch``.

    python benchmarks/throughput.py -n 50
    python benchmarks/throughput.py --photos ../shared/data/photos/val -n 100 --model runs/x/best
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_photos(folder: Path, n: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    """``n`` smooth random colour JPEGs of ``size`` (w, h): a blurred noise field."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        small = (rng.random((8, 8, 3)) * 255).astype(np.uint8)
        image = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
        paths.append(folder / f"photo_{i:04d}.jpg")
        image.save(paths[-1], quality=90)
    return paths


def random_checkpoint(folder: Path, arch: str) -> Path:
    from chromatize.checkpoint import save_checkpoint
    from chromatize.models import create_model

    path = folder / arch
    save_checkpoint(path, create_model(arch).eval(), arch, {})
    return path


def cpu_seconds() -> float:
    """CPU time (user + system) of the child processes waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_cli(in_dir: Path, out_dir: Path, model: Path | str, extra: list[str],
            ) -> tuple[float, float]:
    """Wall and CPU seconds ``chromatize colorize in_dir -o out_dir --model model`` takes
    (CPU: the command's own process tree, so not Ray's workers); exits on failure."""
    cmd = [sys.executable, "-m", "chromatize.cli", "colorize", str(in_dir), "-o", str(out_dir),
           "--model", str(model), *extra]
    start, cpu = time.perf_counter(), cpu_seconds()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"command failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr.strip()}")
    return seconds, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, help="folder of photos (default: generated)")
    parser.add_argument("-n", type=int, default=50, help="number of photos")
    parser.add_argument("--size", default="512x384", help="generated photo size WxH")
    parser.add_argument("--model", help="checkpoint (default: random --arch weights)")
    parser.add_argument("--arch", default="effnet_lite0")
    parser.add_argument("extra", nargs="*", help="more CLI options, after --")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        in_dir, one_dir = tmp / "in", tmp / "one"
        in_dir.mkdir()
        one_dir.mkdir()
        if args.photos:
            sources = sorted(p for p in args.photos.iterdir() if p.is_file())[: args.n]
            for p in sources:
                shutil.copy(p, in_dir / p.name)
        else:
            w, h = (int(v) for v in args.size.split("x"))
            sources = make_photos(in_dir, args.n, (w, h))
        shutil.copy(in_dir / sources[0].name, one_dir / sources[0].name)
        model = args.model or random_checkpoint(tmp, args.arch)

        startup, startup_cpu = run_cli(one_dir, tmp / "out_one", model, args.extra)
        total, total_cpu = run_cli(in_dir, tmp / "out", model, args.extra)
        n = len(sources)
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, "
              f"torch threads {os.environ.get('OMP_NUM_THREADS', 'default')}, "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"{'photos':>8} {'total s':>9} {'images/s':>9} {'1-photo s':>10} "
              f"{'steady images/s':>16} {'steady CPU s/photo':>19}")
        steady = (n - 1) / max(total - startup, 1e-9)
        cpu = (total_cpu - startup_cpu) / (n - 1)
        print(f"{n:>8} {total:>9.2f} {n / total:>9.2f} {startup:>10.2f} {steady:>16.2f} "
              f"{cpu:>19.3f}")


if __name__ == "__main__":
    main()
