"""Tiny generated clips for the video tests (PyAV writes them; nothing is read from disk)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from conftest import make_color_photo


def texture(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A gray uint8 ``(h, w)`` picture with edges and gradients, for motion to be seen."""
    gray = np.asarray(make_color_photo(h, w, seed=seed).convert("L"), dtype=np.float32)
    rng = np.random.default_rng(seed)
    for _ in range(12):  # more blocks: the flow needs structure everywhere
        r, c = rng.integers(0, h - 8), rng.integers(0, w - 8)
        gray[r:r + rng.integers(4, 16), c:c + rng.integers(4, 16)] = rng.integers(20, 235)
    return gray.astype(np.uint8)


def pan_frames(n: int, h: int = 48, w: int = 64, step: int = 2, seed: int = 0) -> list[np.ndarray]:
    """``n`` gray frames of a window moving right by ``step`` pixels a frame."""
    big = texture(h, w + step * n, seed)
    return [np.ascontiguousarray(big[:, step * t:step * t + w]) for t in range(n)]


def write_clip(path: Path, frames: list[np.ndarray], rate: int = 12, codec: str = "libx264",
               audio: bool = False, time_base: Fraction | None = None,
               audio_codec: str = "aac") -> None:
    """Write gray ``frames`` as a video (``codec``), optionally with a mono tone
    (``audio_codec``: ``aac`` or ``pcm_s16le``) lasting as long as the video."""
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=rate)
        vs.height, vs.width = frames[0].shape
        vs.pix_fmt = "yuv420p" if frames[0].shape[0] % 2 == 0 and frames[0].shape[1] % 2 == 0 \
            else "yuv444p"
        if time_base is not None:
            vs.time_base = vs.codec_context.time_base = time_base
        tb = time_base or Fraction(1, rate)
        astream = out.add_stream(audio_codec, rate=16000, layout="mono") if audio else None
        for i, g in enumerate(frames):
            f = av.VideoFrame.from_ndarray(g, format="gray")
            f.pts, f.time_base = round(Fraction(i, rate) / tb), tb
            out.mux(vs.encode(f))
        out.mux(vs.encode(None))
        if astream is not None:
            t = np.arange(round(16000 * len(frames) / rate)) / 16000
            tone = (0.3 * np.sin(2 * np.pi * 440 * t))[None]
            af = (av.AudioFrame.from_ndarray(tone.astype(np.float32), format="fltp", layout="mono")
                  if audio_codec == "aac" else
                  av.AudioFrame.from_ndarray((tone * 32767).astype(np.int16), format="s16",
                                             layout="mono"))
            af.sample_rate, af.pts = 16000, 0
            out.mux(astream.encode(af))
            out.mux(astream.encode(None))


def write_audio_only(path: Path) -> None:
    with av.open(str(path), "w") as out:
        a = out.add_stream("aac", rate=16000)
        af = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.float32), format="fltp",
                                        layout="mono")
        af.sample_rate, af.pts = 16000, 0
        out.mux(a.encode(af))
        out.mux(a.encode(None))


def read_video(path: Path) -> tuple[list[np.ndarray], list[float], dict]:
    """RGB frames, their times in seconds, and facts about the file."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames, times = [], []
        for f in c.decode(s):
            frames.append(f.to_ndarray(format="rgb24"))
            times.append(float(f.time))
        facts = {"rate": s.average_rate, "size": (s.width, s.height), "codec": s.codec_context.name,
                 "audio": [a.codec_context.name for a in c.streams.audio]}
    return frames, times, facts


def audio_payloads(path: Path) -> list[bytes]:
    """The bytes of every audio packet, in order."""
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]
