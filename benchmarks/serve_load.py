"""Load on ``chromatize serve``: N concurrent clients for S seconds against a real server.

Starts ``chromatize serve`` (uvicorn, the given model) as a subprocess on a free localhost
port. Each client uploads its own generated photo once, then works as the page does, in a
loop: a colorize with 1 to 5 random colour points (JPEG, the page's preview), and every
fourth request a colour suggestion at a random pixel. With ``--contract`` every request
instead sends the photo itself to ``POST /api/colorize`` (PNG), as a script would.
Prints requests/s, p50/p95 latency (per endpoint and overall), the server's peak RSS and
the errors (there must be none), then stops the server with Ctrl-C (SIGINT) and checks
that it exits cleanly.

    python benchmarks/serve_load.py                        # 8 clients, 30 s, 1 MP photos
    python benchmarks/serve_load.py --clients 8 --seconds 30 --megapixels 0.3 --contract
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict

import httpx
import numpy as np
from PIL import Image


def photo(megapixels: float, seed: int) -> bytes:
    """A gray photo-like JPEG: smooth shapes plus grain."""
    w = int((megapixels * 1e6 * 4 / 3) ** 0.5)
    h = int(w * 3 / 4)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(seed)
    smooth = 128 + 60 * np.sin(x / rng.uniform(40, 120)) * np.cos(y / rng.uniform(40, 120))
    grain = rng.normal(0, 6, (h, w))
    buf = io.BytesIO()
    Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def peak_rss_mib(pid: int) -> float:
    """The process's high-water resident memory (VmHWM, Linux)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def client(url: str, data: bytes, size: tuple[int, int], until: float, seed: int,
           contract: bool, log: list, errors: list) -> None:
    rng = np.random.default_rng(seed)
    w, h = size
    with httpx.Client(base_url=url, timeout=120) as http:
        pid = None
        if not contract:
            try:
                pid = http.post("/api/photos",
                                files={"image": ("p.jpg", data, "image/jpeg")}).json()["id"]
            except (httpx.HTTPError, KeyError, ValueError) as e:
                errors.append(f"upload: {e!r}")
                return
        i = 0
        while time.monotonic() < until:
            i += 1
            if contract:
                endpoint, fields = "colorize", {"format": "png"}
                files = {"image": ("p.jpg", data, "image/jpeg")}
            elif i % 4 == 0:
                endpoint, fields, files = "suggest", {"photo": pid, "x": int(rng.integers(w)),
                                                      "y": int(rng.integers(h))}, {"_": ("", b"")}
            else:
                marks = [{"x": int(rng.integers(w)), "y": int(rng.integers(h)),
                          "color": f"#{int(rng.integers(1 << 24)):06x}", "radius": 4}
                         for _ in range(int(rng.integers(1, 6)))]
                endpoint, files = "colorize", {"_": ("", b"")}
                fields = {"photo": pid, "marks": json.dumps(marks), "format": "jpeg"}
            t0 = time.perf_counter()
            try:
                r = http.post(f"/api/{endpoint}", data=fields, files=files)
                ok = r.status_code == 200
                reason = f"{r.status_code} {r.text[:200]}"
            except httpx.HTTPError as e:
                ok, reason = False, repr(e)
            log.append((endpoint, time.perf_counter() - t0))
            if not ok:
                errors.append(f"{endpoint}: {reason}")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--megapixels", type=float, default=1.0, help="size of each photo")
    parser.add_argument("--model", default="default")
    parser.add_argument("--workers", type=int, help="the server's --workers")
    parser.add_argument("--contract", action="store_true",
                        help="send the photo with every request (POST /api/colorize, PNG)")
    args = parser.parse_args()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "chromatize.cli", "serve", "--port", str(port),
           "--model", args.model] + (["--workers", str(args.workers)] if args.workers else [])
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/api/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                stderr = server.stderr.read() if server.poll() is not None else ""
                sys.exit(f"the server did not start: {stderr}")
            time.sleep(0.2)
        photos = [photo(args.megapixels, seed) for seed in range(args.clients)]
        size = Image.open(io.BytesIO(photos[0])).size
        log: list[tuple[str, float]] = []
        errors: list[str] = []
        start = time.monotonic()
        until = start + args.seconds
        threads = [threading.Thread(target=client, args=(url, photos[i], size, until, i,
                                                         args.contract, log, errors))
                   for i in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - start
        rss = peak_rss_mib(server.pid)
    finally:
        server.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            code = server.wait(timeout=30)
            stderr = server.stderr.read()
        except subprocess.TimeoutExpired:
            server.kill()
            code, stderr = "did not stop within 30 s", ""

    by_endpoint: dict[str, list[float]] = defaultdict(list)
    for endpoint, seconds in log:
        by_endpoint[endpoint].append(seconds)
    every = [s for _, s in log]
    mode = "contract (photo sent every time)" if args.contract else "page-like (photo id, marks)"
    print(f"{args.clients} clients, {elapsed:.1f} s, photos {size[0]}x{size[1]} "
          f"({size[0] * size[1] / 1e6:.2f} MP), {mode}, model {args.model}, "
          f"cores {os.cpu_count()}")
    print(f"requests: {len(every)}  ({len(every) / elapsed:.2f} requests/s)")
    for endpoint, values in sorted(by_endpoint.items()):
        print(f"  {endpoint:9s} n={len(values):4d}  p50 {pct(values, 50):7.0f} ms  "
              f"p95 {pct(values, 95):7.0f} ms")
    mean = statistics.fmean(every) * 1000 if every else float("nan")
    print(f"  {'all':9s} n={len(every):4d}  p50 {pct(every, 50):7.0f} ms  "
          f"p95 {pct(every, 95):7.0f} ms  (mean {mean:.0f} ms)")
    print(f"server peak RSS: {rss:.0f} MiB")
    print(f"errors: {len(errors)}" + "".join(f"\n  {e}" for e in errors[:10]))
    tail = stderr.strip().splitlines()[-3:] if stderr else []
    print(f"Ctrl-C (SIGINT): server exit code {code}"
          + (f"; last stderr lines: {tail}" if code != 0 else ""))
    if errors or code != 0:
        sys.exit(1)


if __name__ == "__main__":
    main()
