"""Latency of ``Colorizer.colorize`` at three photo sizes, per backend, and peak memory.

The model is loaded once per backend (``--backends torch,onnx``: PyTorch and ONNX
Runtime on the same graph, same thread count); each size gets one warm-up call per
backend, then ``--repeats`` rounds that time each backend once in turn (so a change in
the machine's load hits both alike), of which the median is printed. The working
resolution is the model's, but never above the photo's own long side (the seed's rule:
"long side at most N px"). Peak RSS is the process's high-water mark so far (it only
grows), so the row of the largest photo shows what colorizing it costs.

    python benchmarks/latency.py --model CHECKPOINT
    python benchmarks/latency.py --model default --backends torch,onnx --threads 2
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

from chromatize import Colorizer
from chromatize.checkpoint import DEFAULT_WORKING_SIZE
from chromatize.models import create_model

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


def load(args: argparse.Namespace, backend: str) -> Colorizer:
    """The benchmarked model in ``backend`` (``torch`` or ``onnx``)."""
    if not args.arch:
        # no network-output cache: every timed call must run the network, as a new photo does
        return Colorizer.load(args.model, device=args.device, working_size=args.size,
                              backend=backend, cache_size=0)
    torch.manual_seed(0)
    model = create_model(args.arch).eval()
    if backend == "onnx":
        from chromatize.inference.onnx import OnnxModel
        from chromatize.inference.onnx_export import export_graph

        model = OnnxModel(export_graph(model))
    size = args.size or ARCH_WORKING_SIZE.get(args.arch, DEFAULT_WORKING_SIZE)
    return Colorizer(model, device=args.device, working_size=size, cache_size=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="checkpoint path or shipped model name")
    which.add_argument("--arch", help="registered model name, randomly initialised")
    parser.add_argument("--size", type=int, help="working resolution (long side)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, mps or auto")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per size")
    parser.add_argument("--backends", default="torch", help="comma-separated: torch, onnx")
    parser.add_argument("--threads", type=int, help="intra-op threads of both runtimes "
                        "(default: torch's, i.e. OMP_NUM_THREADS or the core count)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # ONNX Runtime sessions follow torch's count

    backends = args.backends.split(",")
    colorizers = {b: load(args, b) for b in backends}
    first = colorizers[backends[0]]
    sync = torch.cuda.synchronize if first.device.startswith("cuda") else (lambda: None)
    name = f"{args.arch} (random weights)" if args.arch else args.model
    print(f"model {name}, working size {first.working_size}, device {first.device}, "
          f"{torch.get_num_threads()} threads, {args.repeats} repeats; median (min) seconds")
    print(f"{'photo':>11}  " + "  ".join(f"{b:>15}" for b in backends) + "  peak RSS MiB")
    for width, height in SIZES:
        photo = synthetic_photo(width, height)
        working = min(first.working_size, max(width, height))
        times: dict[str, list[float]] = {b: [] for b in backends}
        for c in colorizers.values():
            c.colorize(photo, size=working)  # warm-up: allocator, kernels, caches
        for _ in range(args.repeats):
            for b, c in colorizers.items():
                start = time.perf_counter()
                c.colorize(photo, size=working)
                sync()
                times[b].append(time.perf_counter() - start)
        cells = [f"{statistics.median(t):7.3f} ({min(t):.3f})" for t in times.values()]
        print(f"{width:>5}x{height:<5}  " + "  ".join(f"{c:>15}" for c in cells)
              + f"  {peak_rss_mib():12.0f}", flush=True)


if __name__ == "__main__":
    main()
