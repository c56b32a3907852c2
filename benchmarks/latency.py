"""Latency of ``Colorizer.colorize`` at three photo sizes, and the process's peak memory.

The model is loaded once; each size gets one warm-up call, then ``--repeats`` timed
calls, of which the median is printed. The working resolution is the model's, but never
above the photo's own long side (the seed's rule: "long side at most N px"). Peak RSS is the process's high-water mark so far
(it only grows), so the row of the largest photo shows what colorizing it costs.

    python benchmarks/latency.py --model CHECKPOINT
    python benchmarks/latency.py --arch unet_thesis --device cpu --repeats 5

``--arch`` uses a randomly initialised registered model: latency does not depend on the
weights.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time

import numpy as np
import torch
from PIL import Image

from chromatize.checkpoint import DEFAULT_WORKING_SIZE
from chromatize.models import create_model
from chromatize import Colorizer

SIZES = [(640, 480), (1920, 1080), (4000, 3000)]
# Working resolution (long side) of an architecture when no checkpoint says otherwise:
# the thesis U-Net infers at up to 1000 px; the others at the checkpoint default.
ARCH_WORKING_SIZE = {"unet_thesis": 1000}


def synthetic_photo(width: int, height: int) -> Image.Image:
    """A gray photo-like image: smooth gradients plus grain (8-bit ``L``)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    smooth = 128 + 60 * np.sin(x / 97) * np.cos(y / 131)
    grain = np.random.default_rng(0).normal(0, 8, (height, width)).astype(np.float32)
    return Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8), "L")


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (2**20 if sys.platform == "darwin" else 2**10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="checkpoint path or shipped model name")
    which.add_argument("--arch", help="registered model name, randomly initialised")
    parser.add_argument("--size", type=int, help="working resolution (long side)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, mps or auto")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per size")
    args = parser.parse_args()

    if args.arch:
        torch.manual_seed(0)
        size = args.size or ARCH_WORKING_SIZE.get(args.arch, DEFAULT_WORKING_SIZE)
        colorizer = Colorizer(create_model(args.arch), device=args.device, working_size=size)
        name = f"{args.arch} (random weights)"
    else:
        colorizer = Colorizer.load(args.model, device=args.device, working_size=args.size)
        name = args.model
    sync = torch.cuda.synchronize if colorizer.device.type == "cuda" else (lambda: None)
    print(f"model {name}, working size {colorizer.working_size}, device {colorizer.device}, "
          f"torch threads {torch.get_num_threads()}, {args.repeats} repeats")
    print(f"{'photo':>11}  {'median s':>9}  {'min s':>7}  {'peak RSS MiB':>12}")
    for width, height in SIZES:
        photo = synthetic_photo(width, height)
        working = min(colorizer.working_size, max(width, height))
        colorizer.colorize(photo, size=working)  # warm-up: allocator, kernels, caches
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            colorizer.colorize(photo, size=working)
            sync()
            times.append(time.perf_counter() - start)
        print(f"{width:>5}x{height:<5}  {statistics.median(times):9.3f}  {min(times):7.3f}  "
              f"{peak_rss_mib():12.0f}", flush=True)


if __name__ == "__main__":
    main()
