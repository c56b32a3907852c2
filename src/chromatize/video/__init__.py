"""Colorize films: ``colorize_video("film.mp4", "film_colorized.mp4")``.

Needs the ``video`` extra (PyAV for reading and writing, OpenCV for optical flow):
``pip install "chromatize[video]"``.
"""

from chromatize.video.colorize import FrameColorizer, VideoStats, colorize_video
from chromatize.video.io import VideoError
from chromatize.video.temporal import TemporalConfig, TemporalFilter

__all__ = ["FrameColorizer", "TemporalConfig", "TemporalFilter", "VideoError", "VideoStats",
           "colorize_video"]
