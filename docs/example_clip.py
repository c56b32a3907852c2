"""Make the README's example film, ``docs/example_clip.mp4``: three gray shots (a pan, a
zoom, a diagonal pan) over scikit-image's public-domain sample photos ``rocket``,
``coffee`` and ``chelsea``, 480x270 at 25 fps, with a quiet tone as its sound track (to
show that audio is copied). Deterministic; needs the ``video`` extra.

    python docs/example_clip.py [OUTPUT]
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data

W, H, RATE, SHOT = 480, 270, 25, 32


def shot(photo: np.ndarray, kind: str) -> list[np.ndarray]:
    """``SHOT`` gray frames of a moving window over ``photo`` (RGB, scaled to cover it)."""
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    scale = max(1.45 * W / gray.shape[1], 1.45 * H / gray.shape[0])
    big = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    bh, bw = big.shape
    frames = []
    for t in range(SHOT):
        u = t / (SHOT - 1)
        if kind == "pan":
            s, x, y = 1.0, u * (bw - W), (bh - H) / 2
        elif kind == "zoom":  # 1.4 photo pixels per frame pixel down to 1.0, on the centre
            s = 1.4 - 0.4 * u
            x, y = (bw - s * W) / 2, (bh - s * H) / 2
        else:  # diagonal
            s, x, y = 1.0, u * (bw - W), u * (bh - H)
        m = np.array([[s, 0, x], [0, s, y]], np.float64)
        frames.append(cv2.warpAffine(big, m, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP))
    return frames


def main(out: Path) -> None:
    frames = (shot(data.rocket(), "pan") + shot(data.coffee(), "zoom")
              + shot(data.chelsea(), "diagonal"))
    with av.open(str(out), "w") as container:
        video = container.add_stream("libx264", rate=RATE)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        video.options = {"crf": "26", "preset": "veryslow"}
        audio = container.add_stream("aac", rate=16000)
        audio.bit_rate = 24000
        for i, gray in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(gray), format="gray")
            frame.pts, frame.time_base = i, Fraction(1, RATE)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        t = np.arange(16000 * len(frames) // RATE) / 16000
        tone = 0.05 * np.sin(2 * np.pi * 220 * t) * np.minimum(1, np.minimum(t, t[-1] - t) * 4)
        sound = av.AudioFrame.from_ndarray(tone.astype(np.float32)[None], format="fltp",
                                           layout="mono")
        sound.sample_rate, sound.pts = 16000, 0
        container.mux(audio.encode(sound))
        container.mux(audio.encode(None))
    print(f"wrote {out}: {len(frames)} frames {W}x{H} at {RATE} fps, "
          f"{out.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("example_clip.mp4"))
