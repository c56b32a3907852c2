"""``colorize_video`` and ``chromatize video`` on tiny generated clips: what the output
keeps (frames, size, rate, time stamps, audio, L*), bad inputs, no overwrite, no partial
output."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av", reason="PyAV is not installed (pip install 'chromatize[video]')")
pytest.importorskip("cv2", reason="OpenCV is not installed (pip install 'chromatize[video]')")

from typer.testing import CliRunner  # noqa: E402

import av  # noqa: E402

from chromatize import color  # noqa: E402
from chromatize.cli import app  # noqa: E402
from chromatize import Colorizer  # noqa: E402
from chromatize.video import VideoError, colorize_video  # noqa: E402
from chromatize.video.io import default_output  # noqa: E402
from video_helpers import (audio_payloads, pan_frames, read_video, write_audio_only,  # noqa: E402
                           write_clip)

runner = CliRunner()


@pytest.fixture
def colorizer(tiny_checkpoint) -> Colorizer:
    return Colorizer.load(tiny_checkpoint, device="cpu")


@pytest.fixture
def clip(tmp_path) -> Path:
    """10 frames 64x48 at 12 fps in a Matroska file (time base 1/1000) with an AAC track."""
    path = tmp_path / "film.mkv"
    write_clip(path, pan_frames(10), rate=12, audio=True)
    return path


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_output_keeps_frames_size_rate_time_stamps_and_audio(clip, tmp_path, colorizer):
    out = tmp_path / "out.mp4"
    stats = colorize_video(clip, out, colorizer=colorizer)
    src_frames, src_times, src = read_video(clip)
    frames, times, facts = read_video(out)
    assert stats.frames == len(frames) == len(src_frames) == 10
    assert facts["size"] == src["size"] == (64, 48) and facts["codec"] == "h264"
    assert facts["rate"] == src["rate"] == 12
    assert times == pytest.approx(src_times, abs=1e-3)
    assert facts["audio"] == ["aac"] and stats.audio_streams == 1
    assert audio_payloads(out) == audio_payloads(clip)  # copied packet by packet
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not the temporary file's 0o600
    # Colour added, lightness kept: the output's gray matches the input's up to codec noise.
    chroma = [np.ptp(f.astype(int), axis=-1).mean() for f in frames]
    assert min(chroma) > 1
    for f, g in zip(frames, src_frames):
        y = f.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        assert np.abs(y - g[..., 0]).mean() < 4


def test_odd_sizes_and_other_containers(tmp_path, colorizer):
    src = tmp_path / "odd.mkv"
    write_clip(src, [f[:47, :63].copy() for f in pan_frames(4)], rate=25,
               time_base=Fraction(1, 90000))
    for name in ("odd.mov", "odd_out.mkv", "odd.avi"):
        colorize_video(src, tmp_path / name, colorizer=colorizer)
        frames, _, facts = read_video(tmp_path / name)
        assert len(frames) == 4 and facts["size"] == (63, 47), name


def test_default_output_is_beside_the_input():
    assert default_output(Path("a/film.avi")) == Path("a/film_colorized.avi")
    assert default_output(Path("a/film.MKV")) == Path("a/film_colorized.mkv")
    assert default_output(Path("a/film.ogv")) == Path("a/film_colorized.mp4")


@pytest.mark.parametrize("kind", ["missing", "garbage", "text", "audio_only", "image", "folder"])
def test_bad_inputs_are_one_line_errors(kind, tmp_path, colorizer):
    path = {"missing": tmp_path / "nope.mp4", "garbage": tmp_path / "garbage.mp4",
            "text": tmp_path / "notes.txt", "audio_only": tmp_path / "song.m4a",
            "image": tmp_path / "photo.png", "folder": tmp_path / "dir"}[kind]
    if kind == "garbage":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, np.uint8).tobytes())
    elif kind == "text":
        path.write_text("just some notes\n" * 20)
    elif kind == "audio_only":
        write_audio_only(path)
    elif kind == "image":
        from PIL import Image

        Image.fromarray(pan_frames(1)[0]).save(path)
    elif kind == "folder":
        path.mkdir()
    with pytest.raises(VideoError, match=str(path.name)):
        colorize_video(path, tmp_path / "out.mp4", colorizer=colorizer)
    result = runner.invoke(app, ["video", str(path), "-o", str(tmp_path / "out.mp4")])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("error:"), result.output
    assert str(path.name) in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out.mp4").exists()


def test_audio_only_and_unwritable_suffix_messages(tmp_path, colorizer, clip):
    write_audio_only(tmp_path / "song.m4a")
    with pytest.raises(VideoError, match="no video stream"):
        colorize_video(tmp_path / "song.m4a", tmp_path / "o.mp4", colorizer=colorizer)
    with pytest.raises(VideoError, match="cannot write .gif"):
        colorize_video(clip, tmp_path / "o.gif", colorizer=colorizer)


def test_audio_the_container_cannot_hold_is_a_clear_error(tmp_path, colorizer):
    src = tmp_path / "pcm.mkv"
    write_clip(src, pan_frames(3), audio=True, audio_codec="pcm_s16le")
    with pytest.raises(VideoError, match=r"out\.webm: .*pcm_s16le.*try \.mkv"):
        colorize_video(src, tmp_path / "out.webm", colorizer=colorizer)
    assert files(tmp_path) == ["ckpt", "pcm.mkv"]  # nothing written
    colorize_video(src, tmp_path / "out.mkv", colorizer=colorizer)  # Matroska holds PCM
    assert read_video(tmp_path / "out.mkv")[2]["audio"] == ["pcm_s16le"]


def test_existing_output_is_kept_without_overwrite(clip, tmp_path, tiny_checkpoint):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    result = runner.invoke(app, ["video", str(clip), "-o", str(out), "-m", str(tiny_checkpoint)])
    assert result.exit_code == 2 and "output exists" in result.output
    assert out.read_bytes() == b"precious"
    result = runner.invoke(app, ["video", str(clip), "-o", str(out), "-m", str(tiny_checkpoint),
                                 "--overwrite", "--no-temporal"])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "10 frames" in result.output
    assert len(read_video(out)[0]) == 10


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_interrupted_run_leaves_no_partial_output(error, clip, tmp_path, colorizer):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "kept.mp4").write_bytes(b"old")

    def stop_after_three(done: int, total: int | None) -> None:
        if done == 3:
            raise error()

    for name in ("new.mp4", "kept.mp4"):
        with pytest.raises(error):
            colorize_video(clip, out_dir / name, colorizer=colorizer, overwrite=True,
                           progress=stop_after_three)
    assert files(out_dir) == ["kept.mp4"]  # no temporary file, no half film
    assert (out_dir / "kept.mp4").read_bytes() == b"old"


def test_missing_model_is_one_line(clip, tmp_path):
    result = runner.invoke(app, ["video", str(clip), "-o", str(tmp_path / "o.mp4"),
                                 "-m", str(tmp_path / "no_model")])
    assert result.exit_code == 2 and result.output.startswith("error:")
    assert "checkpoint not found" in result.output
    assert not (tmp_path / "o.mp4").exists()


def test_gain_is_taken_by_the_cli_and_checked_before_any_frame(clip, tmp_path, tiny_checkpoint):
    """``chromatize video --gain``: a classifier's colours come out more saturated; a model
    that cannot take it (a regression head) fails in one line and writes nothing."""
    from conftest import save_tiny_model

    cls = save_tiny_model(tmp_path, "effnet_lite0_cls", width=8)
    chroma = {}
    for gain in ("1", "2"):
        out = tmp_path / f"g{gain}.mp4"
        result = runner.invoke(app, ["video", str(clip), "-o", str(out), "-m", str(cls),
                                     "--gain", gain, "--no-temporal", "-q"])
        assert result.exit_code == 0, result.output
        with av.open(str(out)) as container:
            frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
        lab = color.rgb_to_lab_np(frame / 255)
        chroma[gain] = np.hypot(lab[..., 1], lab[..., 2]).mean()
    assert chroma["2"] > 1.3 * chroma["1"]
    result = runner.invoke(app, ["video", str(clip), "-o", str(tmp_path / "r.mp4"),
                                 "-m", str(tiny_checkpoint), "--gain", "1.2"])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "classification" in result.output and not (tmp_path / "r.mp4").exists()


def test_what_killed_runs_left_is_swept(clip, tmp_path, colorizer):
    """A SIGKILLed run leaves its temporary file (and claim); the next run into the
    folder removes those whose process is gone, and never a live run's."""
    import subprocess
    import sys
    import time

    from chromatize.io import STALE_SECONDS

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    out = tmp_path / "out"
    out.mkdir()
    left = [out / f".film.mp4.{dead}.k2j3h4x9.tmp", out / ".film.mp4.claim",
            out / ".older.mp4.k2j3h4x9.part"]  # the last: an older version's, by age
    for path in left:
        path.write_text(dead)
    old = time.time() - STALE_SECONDS - 60
    os.utime(left[2], (old, old))
    live = out / f".other.mp4.{os.getpid()}.abcdefgh.tmp"
    live.write_text("a live run's")
    colorize_video(clip, out / "film.mp4", colorizer=colorizer)
    assert files(out) == [live.name, "film.mp4"]


def test_a_second_run_never_replaces_a_finished_film(clip, tmp_path, colorizer):
    out = tmp_path / "out.mp4"
    # A run that holds the claim (this process: alive) keeps a second run away...
    claim = tmp_path / ".out.mp4.claim"
    claim.write_text(str(os.getpid()))
    with pytest.raises(VideoError, match="being colorized by another run"):
        colorize_video(clip, out, colorizer=colorizer)
    claim.unlink()

    # ...and a film that another program finishes while this run writes is kept.
    def finished_elsewhere(done: int, total: int | None) -> None:
        if done == 3:
            out.write_bytes(b"the other run's film")

    with pytest.raises(VideoError, match="appeared while this run wrote"):
        colorize_video(clip, out, colorizer=colorizer, progress=finished_elsewhere)
    assert out.read_bytes() == b"the other run's film"
    assert files(tmp_path) == ["ckpt", "film.mkv", "out.mp4"]  # no temporary, no claim


def _faststart_mp4(path: Path, n: int) -> None:
    """``n`` frames of noise (big packets) as an MP4 with its index first (faststart)."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=12)
        stream.height, stream.width, stream.pix_fmt = 48, 64, "yuv420p"
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 255, (48, 64), np.uint8), "gray")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def test_a_truncated_film_says_how_many_frames_it_lost(tmp_path, tiny_checkpoint):
    whole = tmp_path / "whole.mp4"
    _faststart_mp4(whole, 20)
    with av.open(str(whole)) as c:
        packets = [(p.pos, p.size) for p in c.demux(c.streams.video[0]) if p.size]
    cut = tmp_path / "[cut].mp4"  # cut after a whole packet: it reads cleanly, only shorter
    cut.write_bytes(whole.read_bytes()[:packets[11][0] + packets[11][1]])
    out = tmp_path / "out.mp4"
    result = runner.invoke(app, ["video", str(cut), "-o", str(out), "-m", str(tiny_checkpoint),
                                 "--no-temporal"])
    assert result.exit_code == 1, result.output
    words = " ".join(result.output.split())
    assert f"warning: {cut}: the file says 20 frames but only 12 could be read" in words
    assert f"wrote {out}: 12 frames" in words
    assert len(read_video(out)[0]) == 12  # what could be read is kept
    result = runner.invoke(app, ["video", str(whole), "-o", str(tmp_path / "w.mp4"),
                                 "-m", str(tiny_checkpoint), "--no-temporal"])
    assert result.exit_code == 0 and "warning" not in result.output


def test_boost_out_of_range_is_the_same_one_line_as_colorize(clip, tmp_path):
    from conftest import save_tiny_model

    cls = save_tiny_model(tmp_path, "effnet_lite0_cls", width=8)
    for boost in ("-1", "3.5"):
        result = runner.invoke(app, ["video", str(clip), "-o", str(tmp_path / "b.mp4"),
                                     "-m", str(cls), "--boost", boost])
        assert result.exit_code == 2, result.output
        assert result.output.startswith("error: boost must be a number from 0 to 3")
    assert not (tmp_path / "b.mp4").exists()
