"""Video I/O with PyAV: read a film's frames, write new frames with the film's own time
stamps, and copy its audio packets unchanged.

Reading demuxes the video stream and the audio streams together, in file order, so that
audio packets can be passed straight to the output muxer while video frames go through the
colorizer one at a time: memory stays bounded whatever the length of the film (only the
codecs' own few frames of look-ahead are held). Writing goes to a temporary file beside the
target, renamed over it only once it is complete, so an interrupted run (an error, Ctrl-C)
leaves nothing behind and an existing output can be trusted to be whole; the target is
claimed meanwhile, so two runs never write one output.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from chromatize.errors import ChromatizeError
from chromatize.io import OUTPUT_EXISTS, atomic_path, claim_output, output_taken, release_output

#: Output containers by file suffix (FFmpeg's muxer names).
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska",
              ".webm": "webm", ".avi": "avi"}
#: x264's speed/size trade-off: ``veryfast`` costs a few ms a frame at 640x360 on one
#: core, so encoding stays small beside the network; CRF 18 is visually lossless.
X264_OPTIONS = {"preset": "veryfast", "crf": "18"}


class VideoError(ChromatizeError):
    """A video cannot be read or written; the message names the file and the reason."""


@dataclass(frozen=True)
class VideoInfo:
    """What the output must keep of the input's video stream."""

    width: int
    height: int
    frames: int  # the container's count; 0 when it does not say
    rate: Fraction | None  # frames per second (average); None when unknown
    time_base: Fraction | None
    codec: str
    audio: int  # number of audio streams


def default_output(path: Path) -> Path:
    """``film.avi`` -> ``film_colorized.avi``: the input's container where we can write it,
    MP4 otherwise."""
    suffix = path.suffix.lower() if path.suffix.lower() in CONTAINERS else ".mp4"
    return path.with_name(f"{path.stem}_colorized{suffix}")


def container_format(path: Path) -> str:
    """FFmpeg's muxer for an output path, by its suffix; :class:`VideoError` if we cannot
    write it."""
    suffix = path.suffix.lower()
    if suffix not in CONTAINERS:
        raise VideoError(f"{path}: cannot write {suffix or 'files without a suffix'}; "
                         f"use one of {', '.join(sorted(CONTAINERS))}")
    return CONTAINERS[suffix]


def video_codec(container_format: str) -> str:
    """The encoder for a container: VP9 for WebM, H.264 elsewhere (MPEG-4 part 2 if this
    FFmpeg build lacks libx264)."""
    if container_format == "webm":
        return "libvpx-vp9"
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


class VideoReader:
    """An open video file: its first video stream, decoded frame by frame, and its audio
    packets. Use as a context manager; raises :class:`VideoError` for missing, unreadable
    or non-video files."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise VideoError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise VideoError(f"{self.path}: is a folder, not a video file")
        try:
            self.container = av.open(str(self.path), "r")
        except av.FFmpegError as e:
            raise VideoError(f"{self.path}: not a readable video ({_reason(e)})") from None
        if not self.container.streams.video:
            self.container.close()
            raise VideoError(f"{self.path}: no video stream in this file")
        if self.container.format.name == "image2" or self.container.format.name.endswith("_pipe"):
            self.container.close()
            raise VideoError(f"{self.path}: a still image, not a video "
                             "(photos are colorized by `chromatize colorize`)")
        self.stream = self.container.streams.video[0]
        # Frame-level threads: decoding overlaps with the colorizer's own work.
        self.stream.thread_type = "AUTO"
        self.audio = list(self.container.streams.audio)
        ctx = self.stream.codec_context
        if not ctx.width or not ctx.height:
            self.container.close()
            raise VideoError(f"{self.path}: the video stream has no frame size "
                             "(unsupported codec?)")
        self.info = VideoInfo(width=ctx.width, height=ctx.height, frames=self.stream.frames or 0,
                              rate=self.stream.average_rate or self.stream.guessed_rate,
                              time_base=self.stream.time_base, codec=ctx.name,
                              audio=len(self.audio))

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.container.close()

    def read(self) -> Iterator[av.VideoFrame | av.Packet]:
        """Video frames (decoded) and audio packets (as stored), in file order."""
        try:
            for packet in self.container.demux(self.stream, *self.audio):
                if packet.stream.type == "video":
                    yield from packet.decode()
                elif packet.dts is not None:  # not the demuxer's empty end-of-stream packet
                    yield packet
        except av.FFmpegError as e:
            raise VideoError(f"{self.path}: cannot decode the video ({_reason(e)})") from None


class VideoWriter:
    """Writes colour frames shaped like the input's video stream, and copies its audio.

    ``path`` is the final file name; the container follows its suffix (:data:`CONTAINERS`).
    Frames keep the given time stamps (in the input stream's time base), so frame count,
    rate and timing are those of the input."""

    def __init__(self, path: Path, reader: VideoReader, stream_path: Path) -> None:
        self.path = path
        fmt = container_format(path)
        self.container = av.open(str(stream_path), "w", format=fmt)
        info = reader.info
        self.codec = video_codec(fmt)
        rate = info.rate or Fraction(25)
        self.time_base = _time_base(info.time_base, rate)
        self.stream = self.container.add_stream(self.codec, rate=rate)
        self.stream.width, self.stream.height = info.width, info.height
        # 4:2:0 needs even sides; odd-sized films keep their size in 4:4:4.
        even = info.width % 2 == 0 and info.height % 2 == 0
        self.stream.pix_fmt = "yuv420p" if even or self.codec == "mpeg4" else "yuv444p"
        self.stream.time_base = self.time_base
        self.stream.codec_context.time_base = self.time_base
        if self.codec == "libx264":
            self.stream.options = dict(X264_OPTIONS)
        elif self.codec == "mpeg4":
            self.stream.codec_context.bit_rate = int(info.width * info.height * 8)
        try:
            # PyAV refuses a codec the container cannot hold (ValueError) here, FFmpeg's
            # muxer others when the header is written.
            self.audio = {s.index: self.container.add_stream_from_template(s)
                          for s in reader.audio}
            self.container.start_encoding()
        except (av.FFmpegError, ValueError) as e:
            names = ", ".join(s.codec_context.name for s in reader.audio)
            self.abort()
            reason = _reason(e) if isinstance(e, av.FFmpegError) else str(e)
            raise VideoError(f"{path}: cannot write this film as {path.suffix} ({reason}"
                             + (f"; audio {names}: try .mkv" if names else "") + ")") from None
        self.frames = 0
        self._last_pts: int | None = None

    def write(self, rgb: np.ndarray, pts: int | None, time_base: Fraction | None) -> None:
        """Encode one frame: sRGB uint8 ``(H, W, 3)`` shown at ``pts * time_base`` seconds
        (``pts`` None: the next frame at the nominal rate)."""
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        if pts is not None and time_base is not None and time_base != self.time_base:
            pts = round(pts * time_base / self.time_base)
        if pts is None:
            rate = self.stream.average_rate or Fraction(25)
            pts = round(self.frames / rate / self.time_base)
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1  # encoders refuse repeated time stamps (broken files)
        frame.pts, frame.time_base = pts, self.time_base
        self._last_pts = pts
        self.container.mux(self.stream.encode(frame))
        self.frames += 1

    def copy(self, packet: av.Packet) -> None:
        """Mux an audio packet of the input unchanged."""
        packet.stream = self.audio[packet.stream.index]
        self.container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        self.container.mux(self.stream.encode(None))
        self.container.close()

    def abort(self) -> None:
        try:
            self.container.close()
        except av.FFmpegError:
            pass  # the file is being thrown away; a broken trailer does not matter


@contextmanager
def atomic_output(path: Path, overwrite: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path``, renamed to ``path`` when the block ends normally
    and deleted otherwise (errors, Ctrl-C; after SIGKILL the next write into the folder
    sweeps it, see :func:`chromatize.io.atomic_path`). Refuses an existing ``path``
    unless ``overwrite``; ``path`` is claimed meanwhile, as the batch claims photos, so
    a second run into it is refused at once, and a file that appears anyway is kept."""
    if output_taken(path, overwrite):
        raise VideoError(f"{path}: {OUTPUT_EXISTS}")
    if not path.parent.is_dir():
        raise VideoError(f"{path}: the folder {path.parent} does not exist")
    try:
        if not claim_output(path):
            raise VideoError(f"{path}: being colorized by another run; wait for it to end")
    except OSError as e:
        raise VideoError(f"{path}: cannot write there ({e.strerror or e})") from None
    started = False
    try:
        with atomic_path(path, overwrite) as tmp:
            started = True
            yield tmp
    except FileExistsError:
        raise VideoError(f"{path}: {OUTPUT_EXISTS}; it appeared while this run wrote "
                         "(kept; nothing replaced)") from None
    except OSError as e:
        if started:
            raise
        raise VideoError(f"{path}: cannot write there ({e.strerror or e})") from None
    finally:
        release_output(path)


def _time_base(source: Fraction | None, rate: Fraction) -> Fraction:
    """A time base in which both the input's ticks and one frame (``1 / rate``) are whole:
    the input's time stamps stay exact and the last frame lasts exactly one frame, so the
    output's frame rate is the input's even when its time base is coarse (1/1000)."""
    if source is None:
        return Fraction(1, rate.numerator) if rate.numerator <= 1_000_000 else Fraction(1, 90000)
    fine = Fraction(1, math.lcm(source.denominator, rate.numerator))
    return fine if fine.denominator <= 1_000_000 and (source / fine).denominator == 1 else source


def _reason(error: av.FFmpegError) -> str:
    """FFmpeg's message without the file name PyAV appends (we name the file ourselves)."""
    return (error.strerror or str(error)).rstrip(".").lower()
