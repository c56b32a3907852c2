"""Photo I/O: formats and modes, orientation, metadata, bad files, colour detection, writes."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageCms

from chromatize.color import is_color
from chromatize.io import (PhotoError, claim_output, read_photo, release_output,
                           write_photo)
from conftest import gray_photo, make_color_photo, write_huge_png


def toned(gray: Image.Image, dark: tuple[float, ...], light: tuple[float, ...]) -> Image.Image:
    """A toned print: each gray level gets its own tint, from ``dark`` to ``light``."""
    g = np.asarray(gray, dtype=np.float64)[..., None] / 255
    rgb = g * (np.array(dark) * (1 - g) + np.array(light) * g)
    return Image.fromarray(np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8))


# ----------------------------------------------------------------------------- reading


@pytest.mark.parametrize("suffix,mode_in,mode_out", [
    (".jpg", "L", "L"), (".jpg", "RGB", "RGB"), (".png", "L", "L"), (".png", "RGB", "RGB"),
    (".tif", "L", "L"), (".webp", "RGB", "RGB"), (".bmp", "L", "L"), (".bmp", "1", "L"),
    (".png", "P", "RGB"), (".jpg", "CMYK", "RGB"),
])
def test_formats_and_modes_read_as_gray_or_rgb(tmp_path, suffix, mode_in, mode_out):
    src = make_color_photo().convert(mode_in)
    path = tmp_path / f"x{suffix}"
    src.save(path)
    photo = read_photo(path)
    assert photo.image.mode == mode_out and photo.image.size == src.size
    assert photo.alpha is None and photo.path == path
    # Pixels survive (up to JPEG/WebP loss): compare luminance with the original.
    ref = np.asarray(src.convert("L"), dtype=float)
    assert np.abs(np.asarray(photo.image.convert("L"), dtype=float) - ref).mean() < 4


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_gray_keeps_its_precision(tmp_path, suffix):
    arr = (np.arange(48 * 64).reshape(48, 64) * 21 + 5).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / f"x{suffix}")
    photo = read_photo(tmp_path / f"x{suffix}")
    assert photo.image.mode == "I;16"
    assert np.array_equal(np.asarray(photo.image), arr)


def test_gif_reads_its_first_frame(tmp_path):
    frames = [Image.new("L", (32, 32), v) for v in (40, 200)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    assert np.asarray(read_photo(tmp_path / "a.gif").image.convert("L")).mean() == pytest.approx(40, abs=1)


@pytest.mark.parametrize("mode,mode_out", [("LA", "L"), ("RGBA", "RGB"), ("PA", "RGB")])
def test_alpha_is_split_off(tmp_path, mode, mode_out):
    src = make_color_photo().convert(mode.replace("PA", "P"))
    alpha = Image.linear_gradient("L").resize(src.size)
    if mode == "PA":
        src.info["transparency"] = 0  # palette index 0 is transparent
        alpha = src.convert("RGBA").getchannel("A")
    else:
        src.putalpha(alpha)
    src.save(tmp_path / "a.png")
    photo = read_photo(tmp_path / "a.png")
    assert photo.image.mode == mode_out
    assert np.array_equal(np.asarray(photo.alpha), np.asarray(alpha))


def test_exif_rotated_jpeg_is_upright_and_loses_its_orientation(tmp_path):
    src = gray_photo(32, 64)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to view
    exif[0x010F] = "ChromatizeCam"  # Make
    src.save(tmp_path / "r.jpg", exif=exif)
    photo = read_photo(tmp_path / "r.jpg")
    assert photo.image.size == (32, 64)
    kept = Image.Exif()
    kept.load(photo.exif)
    assert kept.get(0x0112, 1) == 1 and kept[0x010F] == "ChromatizeCam"


def test_cmyk_jpeg_becomes_rgb_with_paper_white_kept(tmp_path):
    cmyk = Image.new("CMYK", (16, 16), (0, 0, 0, 0))  # no ink: paper white
    cmyk.save(tmp_path / "c.jpg")
    assert np.asarray(read_photo(tmp_path / "c.jpg").image).min() > 240


# ----------------------------------------------------------------------------- bad files


def test_bad_files_raise_one_clear_error(tmp_path):
    good = tmp_path / "good.jpg"
    gray_photo().save(good, quality=90)
    cases = {
        "truncated.jpg": good.read_bytes()[: good.stat().st_size // 2],
        "text.jpg": b"this is not a photo\n",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(PhotoError, match=rf"^{tmp_path / name}: cannot read image \(.+\)$"):
            read_photo(tmp_path / name)
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(PhotoError, match="empty.jpg: empty file"):
        read_photo(tmp_path / "empty.jpg")
    with pytest.raises(PhotoError, match="no such file"):
        read_photo(tmp_path / "missing.png")
    with pytest.raises(PhotoError, match="is a folder"):
        read_photo(tmp_path)


def test_huge_photo_is_refused_before_decoding(tmp_path):
    write_huge_png(tmp_path / "huge.png", 20000)
    assert (tmp_path / "huge.png").stat().st_size < 1_000_000
    with pytest.raises(PhotoError, match=r"too large \(20000x20000\), more than 200 megapixels"):
        read_photo(tmp_path / "huge.png")
    gray_photo().save(tmp_path / "small.png")
    with pytest.raises(PhotoError, match="too large"):
        read_photo(tmp_path / "small.png", max_pixels=1000)


def test_one_pixel_photo_reads(tmp_path):
    Image.new("L", (1, 1), 128).save(tmp_path / "dot.png")
    assert read_photo(tmp_path / "dot.png").image.size == (1, 1)


# ----------------------------------------------------------------------------- colour


def as_scanned(image: Image.Image) -> Image.Image:
    """``image`` with scanner noise and JPEG artefacts, as a real scan would have."""
    noise = np.random.default_rng(0).normal(0, 4, (image.height, image.width, 1))
    noisy = Image.fromarray(np.clip(np.asarray(image) + noise, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    noisy.save(buf, "JPEG", quality=75)
    return Image.open(buf).convert("RGB")


def test_colour_detection():
    gray = gray_photo()
    color = make_color_photo()
    assert not is_color(gray)
    assert not is_color(as_scanned(gray.convert("RGB")))
    assert not is_color(as_scanned(toned(gray, (1.1, 0.85, 0.6), (1.0, 0.95, 0.85))))  # sepia
    assert not is_color(as_scanned(toned(gray, (0.95, 0.97, 1.05), (0.97, 0.98, 1.03))))  # blue
    assert is_color(as_scanned(color))
    assert is_color(as_scanned(Image.blend(gray.convert("RGB"), color, 0.1)))  # faded colour


# ----------------------------------------------------------------------------- writing


def test_write_never_overwrites_unless_asked_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous")
    with pytest.raises(PhotoError, match="output exists"):
        write_photo(make_color_photo(), target)
    assert target.read_bytes() == b"previous"
    write_photo(make_color_photo(), target, overwrite=True)
    assert Image.open(target).size == (64, 48)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_failed_write_leaves_nothing(tmp_path):
    # JPEG cannot hold 16-bit gray: the encoder fails, and no file may remain.
    sixteen = Image.fromarray(np.zeros((8, 8), np.uint16))
    with pytest.raises(PhotoError, match=r"out\.jpg: cannot write"):
        write_photo(sixteen, tmp_path / "out.jpg")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folder_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(PhotoError, match=r"file/sub/out\.png: cannot write"):
        write_photo(make_color_photo(), tmp_path / "file" / "sub" / "out.png")


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp", ".tif"])
def test_icc_profile_and_exif_are_kept_where_they_fit(tmp_path, suffix):
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    gray_icc = srgb[:16] + b"GRAY" + srgb[20:]  # same profile claiming gray data
    exif = Image.Exif()
    exif[0x010F] = "ChromatizeCam"
    img = make_color_photo()
    write_photo(img, tmp_path / f"a{suffix}", icc_profile=srgb, exif=exif.tobytes())
    write_photo(img, tmp_path / f"b{suffix}", icc_profile=gray_icc)
    with Image.open(tmp_path / f"a{suffix}") as a, Image.open(tmp_path / f"b{suffix}") as b:
        assert a.info.get("icc_profile") == srgb and a.getexif()[0x010F] == "ChromatizeCam"
        assert not b.info.get("icc_profile")


def test_jpeg_of_rgba_is_flattened_onto_white(tmp_path):
    img = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    write_photo(img, tmp_path / "a.jpg")
    with Image.open(tmp_path / "a.jpg") as out:
        assert out.mode == "RGB" and np.asarray(out).min() > 250
    write_photo(img, tmp_path / "a.png")
    assert Image.open(tmp_path / "a.png").mode == "RGBA"


# ----------------------------------------------------------------------------- float photos


@pytest.mark.parametrize("top", [1.0, 255.0, 65535.0, 1e6])
def test_float32_tiff_reads_as_its_gray_levels(tmp_path, top):
    """A real 32-bit float TIFF (Pillow mode F): 0..1 as scientific TIFFs hold it, and
    other evident ranges; never all black."""
    gray = np.asarray(gray_photo(), np.float64) / 255
    path = tmp_path / "float.tif"
    Image.fromarray((gray * top).astype(np.float32), "F").save(path)
    before = path.read_bytes()
    with Image.open(path) as im:
        assert im.mode == "F"  # what Pillow writes and reads back
    photo = read_photo(path)
    assert photo.image.mode == "I;16"
    # Beyond the 16-bit range the photo's own maximum is white.
    expected = gray / gray.max() if top > 65535 else gray
    assert np.abs(np.asarray(photo.image) / 65535 - expected).max() < 1e-4
    assert path.read_bytes() == before


@pytest.mark.parametrize("top", [255, 65535, 1_000_000])
def test_32_bit_integer_tiff_reads_by_its_range(tmp_path, top):
    """Mode I (32-bit integers) holding 8-bit values was taken as 16-bit: nearly black."""
    levels = np.asarray(gray_photo(), np.int64)  # 0..255
    path = tmp_path / "int32.tif"
    Image.fromarray((levels * top // 255).astype(np.int32), "I").save(path)
    with Image.open(path) as im:
        assert im.mode == "I"
    photo = read_photo(path)
    assert photo.image.mode == "I;16"
    got = np.asarray(photo.image) / 65535
    # Beyond the 16-bit range the photo's own maximum is white.
    expected = levels / (levels.max() if top > 65535 else 255)
    assert np.abs(got - expected).max() < 2e-3


def test_16_bit_pgm_stays_16_bit_even_when_dark(tmp_path):
    """Pillow opens 16-bit PGM as mode I too; its samples are 16-bit, dark or not."""
    dark = np.asarray(gray_photo(), np.uint16)  # values of at most 255 in 16 bits
    path = tmp_path / "dark.pgm"
    Image.fromarray(dark).save(path)
    with Image.open(path) as im:
        assert im.mode == "I"
    assert np.array_equal(np.asarray(read_photo(path).image), dark)


# ----------------------------------------------------------------------------- stale files, claims


def _dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout)


KILLED_WRITER = """
import sys, time
from chromatize.io import atomic_write_file
def write(tmp):
    tmp.write_bytes(b"half a photo")
    print("writing", flush=True)
    time.sleep(60)
atomic_write_file(sys.argv[1], write)
"""


def test_a_write_killed_by_sigkill_leaves_a_temporary_the_next_write_removes(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(out / "a.png")],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (left,) = out.iterdir()
    assert left.name.startswith(".a.png.") and left.name.endswith(".tmp")
    keep = [out / ".notes.tmp", out / "b.png.123.x.tmp"]  # not ours: never touched
    for p in keep:
        p.write_text("user file")
    live = out / f".c.png.{os.getpid()}.abcd1234.tmp"  # a write under way in this process
    live.write_text("in progress")
    dead_claim = out / ".d.png.claim"
    dead_claim.write_text(str(_dead_pid()))
    write_photo(make_color_photo(), out / "b.png")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["b.png", live.name, *(p.name for p in keep)])


def test_claims_are_exclusive_until_released_and_a_dead_runs_claim_is_taken_over(tmp_path):
    target = tmp_path / "x.png"
    assert claim_output(target) and not claim_output(target)
    release_output(target)
    assert claim_output(target)
    release_output(target)
    (tmp_path / ".x.png.claim").write_text(str(_dead_pid()))
    assert claim_output(target)
    assert (tmp_path / ".x.png.claim").read_text() == str(os.getpid())
