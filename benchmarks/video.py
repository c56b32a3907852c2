"""Video benchmark: flicker, colour error and speed, frame by frame against temporal.

Clips:

* ``pan``, ``pan_diag``, ``zoom``: colour photos from ``val`` (upscaled 2x) seen through a
  moving 640x360 window, so the motion and the true colours of every frame are known
  exactly; the input is their gray version (same luminance), stored losslessly.
* real clips given with ``--real PATH`` (made gray here; their colours are the truth;
  their motion is estimated by DIS flow at full size on the true frames, keeping only
  pixels whose forward and backward flows agree within half a pixel).

Metrics (on the decoded output files):

* flicker: mean |Δab| (Euclidean, Lab units) between consecutive frames after warping the
  earlier one by the motion, over pixels visible in both;
* CIEDE2000 against the true colours (``skimage.color.deltaE_ciede2000``), mean;
* fps: frames per second of wall time of ``colorize_video`` (decode, network, filter,
  upsampling, encode), and CPU milliseconds per frame (all threads; load-independent).

``--sweep`` first measures the temporal weight on the synthetic clips (network outputs
cached, in memory, no codec) to choose ``DEFAULT_WEIGHT``.

    PYTHONPATH=src python benchmarks/video.py --sweep --real box.mp4 --out docs/video_frames.jpg
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch
from PIL import Image, ImageDraw
from skimage.color import deltaE_ciede2000, rgb2lab

from chromatize import Colorizer, color
from chromatize.video import FrameColorizer, TemporalConfig, colorize_video

SIZE = (640, 360)


@dataclass
class Clip:
    name: str
    truth: list[np.ndarray]  # RGB uint8 (H, W, 3)
    # Affine 2x3 maps, frame t coordinates -> frame t-1 coordinates (None: estimate).
    motion: list[np.ndarray] | None
    fps: Fraction = Fraction(25)

    @property
    def gray(self) -> list[np.ndarray]:
        return [to_gray(f) for f in self.truth]


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """The gray uint8 frame of the same luminance (so of the same L*) as ``rgb``."""
    lin = color.srgb_to_linear(torch.from_numpy(rgb.astype(np.float32) / 255))
    y = lin @ torch.tensor(color.XYZ_FROM_RGB[1], dtype=torch.float32)
    return (color.linear_to_srgb(y).clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


def pick_photos(val: Path, n: int) -> list[Path]:
    """The ``n`` most colourful landscape photos among the first 40 of ``val`` that are
    at least 480 px wide (a fixed, reproducible choice)."""
    found = []
    for p in sorted(val.glob("*.jpg")):
        im = Image.open(p)
        if im.width >= 480 and im.width > im.height * 1.25:
            lab = rgb2lab(np.asarray(im.convert("RGB").resize((128, 96))))
            found.append((float(np.hypot(lab[..., 1], lab[..., 2]).mean()), p))
        if len(found) == 40:
            break
    return [p for _, p in sorted(found, reverse=True)[:n]]


def synthetic_clip(name: str, photo: Path, frames: int) -> Clip:
    """Render a pan, a diagonal pan or a zoom over ``photo`` (upscaled 2x)."""
    big = np.asarray(Image.open(photo).convert("RGB").resize(
        (2 * Image.open(photo).width, 2 * Image.open(photo).height), Image.LANCZOS))
    w, h = SIZE
    maps = []  # frame -> photo, 3x3
    for t in range(frames):
        if name == "pan":
            m = [[1, 0, 4 * t], [0, 1, (big.shape[0] - h) // 2], [0, 0, 1]]
        elif name == "pan_diag":
            m = [[1, 0, 3 * t], [0, 1, 2 * t], [0, 0, 1]]
        else:  # zoom in on the centre: 1.5 photo pixels per frame pixel down to 1.0
            s = 1.5 - 0.5 * t / max(1, frames - 1)
            cx, cy = big.shape[1] / 2, big.shape[0] / 2
            m = [[s, 0, cx - s * w / 2], [0, s, cy - s * h / 2], [0, 0, 1]]
        maps.append(np.array(m, np.float64))
    truth = [cv2.warpAffine(big, m[:2], SIZE, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
             for m in maps]
    motion = [(np.linalg.inv(maps[t - 1]) @ maps[t])[:2] for t in range(1, frames)]
    return Clip(f"{name} ({photo.stem})", truth, [np.eye(3)[:2]] + motion)


def real_clip(path: Path, frames: int) -> Clip:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        truth = []
        for f in c.decode(s):
            truth.append(f.to_ndarray(format="rgb24"))
            if len(truth) == frames:
                break
        return Clip(path.name, truth, None, s.average_rate or Fraction(25))


def write_gray(path: Path, clip: Clip) -> None:
    """The gray clip as lossless H.264 (qp 0: the luma the colorizer reads is exact)."""
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=clip.fps)
        s.height, s.width = clip.truth[0].shape[:2]
        s.pix_fmt, s.options = "yuv420p", {"qp": "0", "preset": "ultrafast"}
        for i, g in enumerate(clip.gray):
            f = av.VideoFrame.from_ndarray(g, format="gray")
            f.pts = i
            out.mux(s.encode(f))
        out.mux(s.encode(None))


def read_rgb(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def lab(rgb: np.ndarray) -> np.ndarray:
    return rgb2lab(rgb).astype(np.float32)


def estimated_motion(truth: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per frame t >= 1: (map to frame t-1 coordinates (H, W, 2), trusted mask (H, W))."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    out = []
    h, w = truth[0].shape[:2]
    grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), -1)
    for prev, cur in zip(truth, truth[1:]):
        g0, g1 = to_gray(prev), to_gray(cur)
        back = dis.calc(g1, g0, None)
        fwd = dis.calc(g0, g1, None)
        m = grid + back
        fb = back + cv2.remap(fwd, m, None, cv2.INTER_LINEAR)
        inside = (m[..., 0] >= 0) & (m[..., 0] <= w - 1) & (m[..., 1] >= 0) & (m[..., 1] <= h - 1)
        out.append((m, inside & (np.hypot(fb[..., 0], fb[..., 1]) < 0.5)))
    return out


def flicker(frames: list[np.ndarray], clip: Clip, motion_cache: dict) -> float:
    """Mean |Δab| between consecutive frames after motion compensation (Lab units)."""
    h, w = frames[0].shape[:2]
    if clip.motion is None:
        if clip.name not in motion_cache:
            motion_cache[clip.name] = estimated_motion(clip.truth)
        pairs = motion_cache[clip.name]
    total, count = 0.0, 0
    prev_ab = lab(frames[0])[..., 1:]
    for t in range(1, len(frames)):
        ab = lab(frames[t])[..., 1:]
        if clip.motion is not None:
            m = clip.motion[t]
            warped = cv2.warpAffine(prev_ab, m, (w, h),
                                    flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
            ones = cv2.warpAffine(np.ones((h, w), np.float32), m, (w, h),
                                  flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
            valid = ones > 0.999
        else:
            mp, valid = pairs[t - 1]
            warped = cv2.remap(prev_ab, mp, None, cv2.INTER_LINEAR)
        d = np.hypot(*(ab - warped).transpose(2, 0, 1))
        total += float(d[valid].sum())
        count += int(valid.sum())
        prev_ab = ab
    return total / max(count, 1)


def ciede(frames: list[np.ndarray], truth: list[np.ndarray], step: int = 1) -> float:
    return float(np.mean([deltaE_ciede2000(lab(f), lab(t)).mean()
                          for f, t in zip(frames[::step], truth[::step])]))


class _Replay:
    """A Colorizer stand-in that runs the network once per distinct input and replays
    its output, so a sweep over filter settings costs no extra network time."""

    def __init__(self, colorizer: Colorizer) -> None:
        self.model, self.working_size = colorizer.model, colorizer.working_size
        self._colorizer, self._cache = colorizer, {}

    def predict(self, l: torch.Tensor) -> dict[str, torch.Tensor]:
        key = hash(l.numpy().tobytes())
        if key not in self._cache:
            self._cache[key] = self._colorizer.predict(l)
        return self._cache[key]


def sweep(clips: list[Clip], colorizer: Colorizer, weights: list[float]) -> None:
    print("\n## Temporal weight sweep (in memory, no codec)\n")
    print("| clip | setting | flicker | CIEDE2000 |")
    print("|---|---|---:|---:|")
    replay = _Replay(colorizer)
    motion_cache: dict = {}
    for clip in clips:
        grays = clip.gray
        settings = [("frame by frame", None)] + [(f"weight {w:g}", w) for w in weights]
        for label, w in settings:
            fc = FrameColorizer(replay, temporal=w is not None,  # type: ignore[arg-type]
                                config=TemporalConfig(weight=w) if w is not None else None)
            out = [fc(g) for g in grays]
            print(f"| {clip.name} | {label} | {flicker(out, clip, motion_cache):.2f} | "
                  f"{ciede(out, clip.truth, step=4):.2f} |", flush=True)


def run_files(clips: list[Clip], colorizer: Colorizer, frames_image: Path | None) -> None:
    print("\n## Through colorize_video (files, H.264 out)\n")
    print("| clip | frames | mode | flicker | CIEDE2000 | fps (loaded) | CPU ms/frame: "
          "network stage, writer stage, all |")
    print("|---|---:|---|---:|---:|---:|---|")
    motion_cache: dict = {}
    shown = []
    with tempfile.TemporaryDirectory() as tmp:
        for clip in clips:
            src = Path(tmp) / "gray.mp4"
            write_gray(src, clip)
            truth_flicker = flicker(clip.truth, clip, motion_cache)
            outs = {}
            for temporal in (False, True):
                dst = Path(tmp) / f"out_{temporal}.mp4"
                cpu = time.process_time()
                stats = colorize_video(src, dst, colorizer=colorizer, temporal=temporal,
                                       overwrite=True)
                cpu_ms = (time.process_time() - cpu) / stats.frames * 1000
                out = read_rgb(dst)
                outs[temporal] = out
                mode = "temporal" if temporal else "frame by frame"
                print(f"| {clip.name} | {stats.frames} | {mode} "
                      f"| {flicker(out, clip, motion_cache):.2f} "
                      f"| {ciede(out, clip.truth, step=2):.2f} | {stats.fps:.1f} | "
                      f"{stats.stage_cpu_ms[0]:.0f}, {stats.stage_cpu_ms[1]:.0f}, {cpu_ms:.0f} |",
                      flush=True)
            print(f"| {clip.name} | | true colours | {truth_flicker:.2f} | 0 | | |", flush=True)
            shown.append((clip, outs))
    if frames_image is not None:
        save_frames(shown, frames_image)


def save_frames(shown: list, path: Path) -> None:
    """Rows: clips; columns: three frames ten apart, frame by frame over temporal."""
    tiles = []
    for clip, outs in shown:
        idx = [len(clip.truth) // 2 + k for k in (0, 5, 10)]
        idx = [i for i in idx if i < len(clip.truth)]
        h, w = clip.truth[0].shape[:2]
        for label, o in (("frame by frame", outs[False]), ("temporal", outs[True])):
            row = Image.fromarray(np.concatenate(
                [cv2.resize(o[i], (256, round(256 * h / w))) for i in idx], 1))
            draw = ImageDraw.Draw(row)
            text = f"{clip.name.split(' ')[0]}: {label}"
            draw.rectangle(draw.textbbox((4, 4), text), fill=(0, 0, 0))
            draw.text((4, 4), text, fill=(255, 255, 255))
            tiles.append(np.asarray(row))
    width = max(t.shape[1] for t in tiles)
    grid = np.concatenate([np.pad(t, ((0, 4), (0, width - t.shape[1]), (0, 0)), constant_values=255)
                           for t in tiles])
    Image.fromarray(grid).save(path, quality=85)
    print(f"\nwrote {path}")


def memory(colorizer: Colorizer, photo: Path, frames: int) -> None:
    """Resident memory while colorizing a long synthetic pan: flat in the frame count."""
    clip = synthetic_clip("pan", photo, 48)
    clip.truth = [clip.truth[i % 48] for i in range(frames)]  # loops: same memory per frame
    clip.motion = None
    rss = []

    def sample(done: int, total: int | None) -> None:
        with open("/proc/self/statm") as f:
            rss.append(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20)

    with tempfile.TemporaryDirectory() as tmp:
        write_gray(Path(tmp) / "gray.mp4", clip)
        del clip
        colorize_video(Path(tmp) / "gray.mp4", Path(tmp) / "out.mp4", colorizer=colorizer,
                       progress=sample)
    print(f"\nmemory: resident {rss[min(24, len(rss) - 1)]:.0f} MiB after 25 frames, "
          f"{rss[len(rss) // 2]:.0f} MiB after {len(rss) // 2}, {rss[-1]:.0f} MiB after "
          f"{len(rss)} (peak of the process "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photos", type=Path, default=Path("../shared/data/photos/val"),
                    help="colour photos to make the synthetic clips from")
    ap.add_argument("--frames", type=int, default=48, help="frames per synthetic clip")
    ap.add_argument("--real", type=Path, action="append", default=[], help="a colour clip")
    ap.add_argument("--real-frames", type=int, default=60)
    ap.add_argument("--sweep", action="store_true", help="measure the temporal weight first")
    ap.add_argument("--sweep-only", action="store_true", help="only the sweep")
    ap.add_argument("--weights", default="0,0.5,0.7,0.8,0.85,0.9,0.95")
    ap.add_argument("--model", default=None)
    ap.add_argument("--size", type=int, default=None, help="working size (long side)")
    ap.add_argument("--out", type=Path, default=None, help="JPEG of frames side by side")
    ap.add_argument("--memory", type=int, default=0, help="also run a pan of this many frames")
    args = ap.parse_args()
    torch.set_num_threads(1)
    colorizer = Colorizer.load(args.model, device="cpu", working_size=args.size)
    print(f"model {args.model or 'default'}, working size {colorizer.working_size}, "
          f"torch threads 1, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
          file=sys.stderr)
    photos = pick_photos(args.photos, 3)
    clips = [synthetic_clip(n, p, args.frames) for n, p in zip(("pan", "pan_diag", "zoom"), photos)]
    clips += [real_clip(p, args.real_frames) for p in args.real]
    if args.sweep or args.sweep_only:
        sweep(clips, colorizer, [float(w) for w in args.weights.split(",")])
    if args.sweep_only:
        return
    run_files(clips, colorizer, args.out)
    if args.memory:
        memory(colorizer, photos[0], args.memory)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()
