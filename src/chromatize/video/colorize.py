"""Colorize a film: frames stream from the reader through the network, the temporal filter
and the guided upsampler to the writer, one at a time.

Per frame: L* of a small copy (the network's working size) -> the network's ab -> (the
temporal filter, at the working size) -> guided upsampling to the full size, joined with
the frame's own L*, exactly as :class:`~chromatize.Colorizer` does for a photo.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import numpy as np
import torch
import torch.nn.functional as F

from chromatize.decoding import Decoding
from chromatize.errors import UsageError
from chromatize.inference.pipeline import NetworkOutput, Source, working_shape
from chromatize.threads import one_torch_thread
from chromatize.video.io import (VideoError, VideoReader, VideoWriter, atomic_output,
                                 container_format, default_output)
from chromatize.video.temporal import TemporalConfig, TemporalFilter

if TYPE_CHECKING:
    from chromatize.inference.pipeline import Colorizer

Progress = Callable[[int, int | None], None]


@dataclass
class VideoStats:
    """What :func:`colorize_video` did."""

    input: str
    output: str
    frames: int
    width: int
    height: int
    fps: float  # frames colorized per second of wall time
    seconds: float
    working_shape: tuple[int, int]  # (h, w) the network saw
    temporal: bool
    cuts: int  # scene cuts detected (the filter restarted)
    audio_streams: int  # copied unchanged
    codec: str
    # CPU milliseconds per frame of each stage's own thread: decoding + network + temporal
    # filter, and upsampling + encoding (the codecs' helper threads not included). On an
    # otherwise idle machine with a core per stage, fps is about 1000 / the larger one.
    stage_cpu_ms: tuple[float, float] = (0.0, 0.0)
    # The frames the container says it holds (0 when it does not say).
    expected_frames: int = 0

    @property
    def missing_frames(self) -> int:
        """Frames the container promised but that could not be read (a truncated file)."""
        return max(0, self.expected_frames - self.frames)


class FrameColorizer:
    """Colours frames one after another: a :class:`~chromatize.Colorizer` plus, if
    ``temporal``, the state that carries colours from frame to frame.

    ``size`` is the network's working resolution (long side), default the model's;
    ``decoding`` decodes every frame (default: the colorizer's)."""

    def __init__(self, colorizer: Colorizer, temporal: bool = True, size: int | None = None,
                 config: TemporalConfig | None = None, decoding: Decoding | None = None,
                 ) -> None:
        self.colorizer = colorizer
        self.decoding = colorizer.resolve(decoding)
        self.size = size or colorizer.working_size
        self.filter = TemporalFilter(config) if temporal else None

    def shape(self, h: int, w: int) -> tuple[int, int]:
        """The working shape (h, w) of frames of size ``h`` x ``w``."""
        return working_shape(h, w, self.size, self.colorizer.model.size_multiple)

    def low_res(self, gray: np.ndarray) -> tuple[Source, NetworkOutput]:
        """Gray frame ``(H, W)`` uint8 -> the colorizer's :class:`Source` of it and the
        network's output, decoded as the colorizer's decoding says and carried along the
        motion by the temporal filter (its ``ab`` final: ``logits`` None)."""
        source = self.colorizer.prepare(gray, self.size)
        out = self.colorizer.decode(self.colorizer.infer(source, cache=False), self.decoding)
        ab = torch.as_tensor(out.ab)[None]  # ONNX Runtime gives numpy
        if self.filter is not None:
            # The flow needs finer pixels than the network's output (often a quarter of
            # the working size): carry the colours at the working size.
            h, w = source.l_small.shape
            ab_fine = F.interpolate(ab, size=(h, w), mode="bilinear", align_corners=False)
            ab_fine = self.filter(source.l_small, ab_fine[0].numpy())
            ab = F.adaptive_avg_pool2d(torch.from_numpy(ab_fine)[None], ab.shape[-2:])
        return source, replace(out, ab=ab[0], logits=None)

    def finish(self, source: Source, output: NetworkOutput) -> np.ndarray:
        """The colorizer's last stage for :meth:`low_res`'s output: colour frame
        ``(H, W, 3)`` uint8 with the frame's own L*."""
        return np.asarray(self.colorizer.finish(source, output))

    def __call__(self, gray: np.ndarray) -> np.ndarray:
        """Gray frame ``(H, W)`` uint8 -> colour frame ``(H, W, 3)`` uint8 with the same L*."""
        return self.finish(*self.low_res(gray))


#: Frames decoded and through the network ahead of the writer: enough to keep both stages
#: busy, few enough to keep memory flat (each holds one gray frame).
QUEUE_FRAMES = 8
_DONE = object()


def _network_stage(reader: VideoReader, frames: FrameColorizer, cpu: list[float],
                   ) -> Iterator[Any]:
    """Decode and run the network (and the temporal filter) in a second thread, so that
    it overlaps the full-size upsampling and the encoding done by the caller. Yields the
    reader's audio packets and, for frames, ``(source, output, pts, time_base)``, in
    order; errors of the thread are raised here. Appends the thread's CPU seconds to
    ``cpu``."""
    items: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_FRAMES)
    stop = threading.Event()

    def put(item: Any) -> None:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def work() -> None:
        start = time.thread_time()
        try:
            for item in reader.read():
                if stop.is_set():
                    return
                if isinstance(item, av.Packet):
                    put(item)
                else:
                    gray = item.to_ndarray(format="gray")
                    put((*frames.low_res(gray), item.pts, item.time_base))
            put(_DONE)
        except BaseException as e:  # handed to the caller's thread, raised there
            put(e)
        finally:
            cpu.append(time.thread_time() - start)

    thread = threading.Thread(target=work, name="chromatize-video-network", daemon=True)
    thread.start()
    try:
        while (item := items.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def colorize_video(input: str | os.PathLike[str], output: str | os.PathLike[str] | None = None,
                   *, model: str | os.PathLike[str] | None = None,
                   colorizer: Colorizer | None = None, boost: float | None = None,
                   gain: float | None = None, decoding: Decoding | None = None,
                   temporal: bool = True, overwrite: bool = False,
                   progress: Progress | None = None, size: int | None = None,
                   config: TemporalConfig | None = None) -> VideoStats:
    """Colorize the video ``input`` into ``output`` (default ``<stem>_colorized<suffix>``
    beside it, MP4 when the input's container cannot be written).

    Keeps the frame count, size, rate and time stamps, copies the audio streams unchanged
    and keeps each frame's L*. ``model`` (a checkpoint path or shipped name) loads a
    :class:`~chromatize.Colorizer`, or pass a loaded ``colorizer``. ``decoding`` (or its
    shortcuts ``boost`` and ``gain``) decodes every frame, e.g. with one reference or
    palette for the whole film (:class:`~chromatize.decoding.Decoding`). ``temporal``
    carries colours along optical flow (False: each frame on its own). ``size``: the
    network's working resolution (long side). ``progress(done, total)`` is called after
    each frame (``total`` None when the container does not say).

    Decoding, the network and the filter run in a second thread beside the upsampling and
    encoding; meanwhile torch is set to one thread (restored afterwards).

    Raises :class:`VideoError` for bad input or output (missing, unreadable, no video
    stream, existing output without ``overwrite``); the output is written atomically.
    A film that ends early (cut off, but readable up to there) is colorized as far as it
    goes: see ``VideoStats.missing_frames``.
    """
    src = Path(input)
    with VideoReader(src) as reader:
        dst = Path(output) if output is not None else default_output(src)
        container_format(dst)  # before the model loads: a wrong suffix fails at once
        if dst.exists() and src.resolve() == dst.resolve():
            raise VideoError(f"{dst}: the output would replace the input")
        if colorizer is None:
            from chromatize.inference.pipeline import Colorizer

            colorizer = Colorizer.load(model)
        elif model is not None:
            raise UsageError("pass a model or a colorizer, not both")
        decoding = colorizer.resolve(decoding, boost=boost, gain=gain)
        frames = FrameColorizer(colorizer, temporal=temporal, size=size, config=config,
                                decoding=decoding)
        total = reader.info.frames or None
        start, cpu_start, cpu_network = time.perf_counter(), time.thread_time(), []
        with atomic_output(dst, overwrite=overwrite) as tmp, one_torch_thread():
            writer = VideoWriter(dst, reader, tmp)
            try:
                for item in _network_stage(reader, frames, cpu_network):
                    if isinstance(item, av.Packet):
                        writer.copy(item)
                        continue
                    source, output, pts, time_base = item
                    writer.write(frames.finish(source, output), pts, time_base)
                    if progress is not None:
                        progress(writer.frames, total)
                writer.close()
            except BaseException:
                writer.abort()
                raise
        seconds = time.perf_counter() - start
        cpu_writer = time.thread_time() - cpu_start
    info, n = reader.info, max(writer.frames, 1)
    return VideoStats(
        input=str(src), output=str(dst), frames=writer.frames, width=info.width,
        height=info.height, fps=writer.frames / max(seconds, 1e-9), seconds=seconds,
        working_shape=frames.shape(info.height, info.width), temporal=temporal,
        cuts=frames.filter.cuts if frames.filter else 0, audio_streams=info.audio,
        codec=writer.codec, expected_frames=info.frames,
        stage_cpu_ms=(1000 * sum(cpu_network) / n, 1000 * cpu_writer / n))
