"""``chromatize colorize`` end to end (in-process) and the batch library under it."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from chromatize import batch, color
from chromatize.batch import BatchOptions, colorize_files
from chromatize.cli import app
from chromatize.inference.pipeline import Colorizer
from conftest import gray_photo, make_color_photo, save_tiny_model, write_huge_png

runner = CliRunner()


def run(*args: str | Path):
    return runner.invoke(app, ["colorize", *map(str, args)])


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def photos(tmp_path) -> Path:
    """A folder of small black-and-white photos in several formats, one in a sub-folder."""
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    gray_photo().save(d / "a.jpg")
    gray_photo(40, 40).save(d / "b.PNG")
    gray_photo().save(d / "sub" / "c.tif")
    gray_photo().save(d / "d.gif")
    (d / "notes.txt").write_text("not a photo, not searched for")
    return d


def test_folder_is_colorized_recursively_into_outdir(photos, tmp_path, tiny_checkpoint):
    out = tmp_path / "out"
    result = run(photos, "-o", out, "--model", tiny_checkpoint)
    assert result.exit_code == 0, result.output
    assert "done 4, skipped 0, failed 0" in result.output
    # Input's format where it can be written (suffix lower-cased), PNG for GIF.
    assert files_under(out) == ["a.jpg", "b.png", "d.png", "sub/c.tif"]
    with Image.open(out / "sub" / "c.tif") as im:
        assert im.format == "TIFF" and im.mode == "RGB" and im.size == (64, 48)


def test_format_option_and_alpha_reattached(tmp_path, tiny_checkpoint):
    src = gray_photo().convert("LA")
    src.putalpha(Image.new("L", src.size, 99))
    src.save(tmp_path / "t.png")
    result = run(tmp_path / "t.png", "-o", tmp_path / "out", "--model", tiny_checkpoint,
                 "--format", "webp")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out" / "t.webp") as im:
        assert im.mode == "RGBA" and np.asarray(im)[..., 3].max() == 99


def test_beside_inputs_and_rerun_skips_done(photos, tiny_checkpoint):
    assert run(photos, "--model", tiny_checkpoint).exit_code == 0
    assert (photos / "a_colorized.jpg").is_file() and (photos / "sub" / "c_colorized.tif").is_file()
    stamp = (photos / "a_colorized.jpg").stat().st_mtime_ns
    # Re-run on the same folder: done outputs are skipped, and they are not taken as inputs.
    again = run(photos, "--model", tiny_checkpoint)
    assert again.exit_code == 0
    assert "done 0, skipped 4, failed 0" in again.output and "output exists" in again.output
    assert (photos / "a_colorized.jpg").stat().st_mtime_ns == stamp
    assert not list(photos.rglob("*_colorized_colorized*"))


def test_existing_output_is_kept_unless_overwrite(photos, tmp_path, tiny_checkpoint):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.jpg").write_bytes(b"mine")
    result = run(photos / "a.jpg", "-o", out, "--model", tiny_checkpoint)
    assert result.exit_code == 0 and "skipped 1" in result.output
    assert (out / "a.jpg").read_bytes() == b"mine"
    result = run(photos / "a.jpg", "-o", out, "--model", tiny_checkpoint, "--overwrite")
    assert result.exit_code == 0 and "done 1" in result.output
    assert Image.open(out / "a.jpg").size == (64, 48)


def test_colour_photo_skipped_unless_recolor(tmp_path, tiny_checkpoint):
    make_color_photo().save(tmp_path / "c.png")
    result = run(tmp_path / "c.png", "-o", tmp_path / "out", "--model", tiny_checkpoint)
    assert result.exit_code == 0 and "already in colour" in result.output
    assert not (tmp_path / "out" / "c.png").exists()
    result = run(tmp_path / "c.png", "-o", tmp_path / "out", "--model", tiny_checkpoint,
                 "--recolor")
    assert result.exit_code == 0 and (tmp_path / "out" / "c.png").is_file()


def test_globs(photos, tmp_path, tiny_checkpoint):
    out = tmp_path / "out"
    result = run(f"{photos}/**/*.tif", f"{photos}/*.jpg", "-o", out, "--model", tiny_checkpoint)
    assert result.exit_code == 0, result.output
    assert files_under(out) == ["a.jpg", "c.tif"]


def test_bad_inputs_fail_one_line_each_and_the_batch_goes_on(tmp_path, tiny_checkpoint):
    d = tmp_path / "in"
    d.mkdir()
    gray_photo().save(d / "good.jpg")
    Image.new("L", (1, 1), 90).save(d / "dot.png")
    (d / "empty.jpg").write_bytes(b"")
    (d / "truncated.jpg").write_bytes((d / "good.jpg").read_bytes()[:300])
    (d / "text.jpg").write_text("hello")
    write_huge_png(d / "huge.png", 20000)
    out = tmp_path / "out"
    result = run(d, tmp_path / "missing.jpg", "-o", out, "--model", tiny_checkpoint)
    assert result.exit_code == 1
    failures = [line for line in result.output.splitlines() if line.startswith("failed:")]
    expected = {"empty.jpg": "empty file", "truncated.jpg": "cannot read image",
                "text.jpg": "not an image", "huge.png": "too large (20000x20000)",
                "missing.jpg": "no such file"}
    assert len(failures) == len(expected)
    for name, reason in expected.items():
        assert any(name in line and reason in line for line in failures), (name, failures)
    assert "done 2, skipped 0, failed 5" in result.output
    assert files_under(out) == ["dot.png", "good.jpg"]  # nothing half-written


def test_unwritable_output_folder(photos, tmp_path, tiny_checkpoint):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    result = run(photos, "-o", blocker / "out", "--model", tiny_checkpoint)
    assert result.exit_code == 1
    assert result.output.count("cannot create output folder") == 4


@pytest.mark.parametrize("beside", [True, False])
def test_read_only_media_fail_each_photo_with_one_line(photos, tmp_path, tiny_checkpoint,
                                                       read_only, beside):
    """Colorizing beside inputs on read-only media, or -o onto a read-only mount: the
    claims cannot be made nor removed (EROFS even for a file that is not there)."""
    out = tmp_path / "ro"
    out.mkdir()
    read_only(photos if beside else out)
    result = run(photos, "--model", tiny_checkpoint, *([] if beside else ["-o", out]))
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len([x for x in lines if x.startswith("failed:")]) == 4
    assert result.output.count("Read-only file system") == 4
    assert lines[-1] == "done 0, skipped 0, failed 4"


def test_file_names_print_as_themselves_not_as_markup(tmp_path, tiny_checkpoint):
    root = tmp_path / "in"
    (root / "a[").mkdir(parents=True)
    gray_photo().save(root / "[red]x[red].png")
    gray_photo().save(root / "a[" / "]b.png")
    (root / "a[" / "]bad.png").write_bytes(b"not a photo")  # its path holds "[/]"
    result = run(root, "-o", tmp_path / "out", "--model", tiny_checkpoint)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert f"failed: {root / 'a[' / ']bad.png'}: cannot read image" in result.output
    assert "done 2, skipped 0, failed 1" in result.output
    again = run(root, "-o", tmp_path / "out", "--model", tiny_checkpoint)
    assert f"skipped: {root / '[red]x[red].png'}: output exists" in again.output


def test_a_glob_through_a_symlink_loop_finds_each_photo_once(tmp_path, tiny_checkpoint):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    gray_photo().save(src / "a.png")
    gray_photo().save(src / "sub" / "b.png")
    (src / "sub" / "loop").symlink_to("..")  # src/sub/loop/sub/loop/... for ever
    (src / ".hidden").mkdir()
    gray_photo().save(src / ".hidden" / "c.png")
    result = run(f"{src}/**/*.png", "-o", tmp_path / "out", "--model", tiny_checkpoint)
    assert result.exit_code == 0, result.output
    assert "done 2, skipped 0, failed 0" in result.output
    assert files_under(tmp_path / "out") == ["a.png", "b.png"]
    # As a folder input does.
    result = run(src, "-o", tmp_path / "out2", "--model", tiny_checkpoint)
    assert files_under(tmp_path / "out2") == ["a.png", "sub/b.png"]


def test_model_problems_exit_2_with_one_line(photos, tmp_path):
    result = run(photos, "--model", tmp_path / "nope")
    assert result.exit_code == 2
    assert "cannot load model" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_no_photos_found(tmp_path, tiny_checkpoint):
    (tmp_path / "empty").mkdir()
    result = run(tmp_path / "empty", "--model", tiny_checkpoint)
    assert result.exit_code == 2 and "no photos found" in result.output


def test_info_still_works(tiny_checkpoint):
    result = runner.invoke(app, ["info", str(tiny_checkpoint)])
    assert result.exit_code == 0 and "unet_tiny" in result.output


# ----------------------------------------------------------------------------- library


def test_same_size_photos_share_a_batch_and_a_bad_one_does_not_sink_it(
        tmp_path, tiny_checkpoint, monkeypatch):
    for i in range(5):
        gray_photo().save(tmp_path / f"p{i}.png")
    colorizer = Colorizer.load(tiny_checkpoint, device="cpu")
    calls: list[int] = []
    real = Colorizer.colorize_batch

    def flaky(self, images, size=None, decoding=None):
        calls.append(len(images))
        if any(np.asarray(im)[0, 0] == 0 for im in images):  # the "bad" photo
            raise RuntimeError("model blew up")
        return real(self, images, size=size, decoding=decoding)

    real_one = Colorizer.infer

    def flaky_one(self, source, hints=None, cache=True):  # one photo (Colorizer.colorize)
        calls.append(1)
        if source.pixels[0, 0] == 0:
            raise RuntimeError("model blew up")
        return real_one(self, source, hints, cache)

    monkeypatch.setattr(Colorizer, "colorize_batch", flaky)
    monkeypatch.setattr(Colorizer, "infer", flaky_one)
    monkeypatch.setattr(batch, "GROUP_PHOTOS", 3)
    bad = gray_photo()
    bad.putpixel((0, 0), 0)
    bad.save(tmp_path / "p1.png")
    progress: list[tuple[int, int]] = []
    summary = colorize_files([tmp_path], colorizer, BatchOptions(out_dir=tmp_path / "out"),
                             progress=lambda *a: progress.append(a))
    # Group [p0, p1, p2] fails as a batch and is redone photo by photo; [p3, p4] is one batch.
    assert calls == [3, 1, 1, 1, 2]
    assert [p.name for p in summary.done] == ["p0.png", "p2.png", "p3.png", "p4.png"]
    assert summary.failed == [(tmp_path / "p1.png",
                               "colorization failed (RuntimeError: model blew up)")]
    assert progress[0] == (0, 5) and progress[-1] == (5, 5)


def test_two_photos_for_one_output_is_a_failure(tmp_path, tiny_checkpoint):
    gray_photo().save(tmp_path / "x.jpg")
    gray_photo().save(tmp_path / "x.png")
    summary = colorize_files([tmp_path / "x.jpg", tmp_path / "x.png"],
                             Colorizer.load(tiny_checkpoint, device="cpu"),
                             BatchOptions(out_dir=tmp_path / "out", fmt="png"))
    assert [p.name for p in summary.done] == ["x.png"]
    assert "same output" in summary.failed[0][1]


def test_output_never_replaces_its_input(photos, tiny_checkpoint):
    before = (photos / "a.jpg").read_bytes()
    result = run(photos / "a.jpg", "-o", photos, "--model", tiny_checkpoint, "--overwrite")
    assert result.exit_code == 1 and "its output would replace it" in result.output
    assert (photos / "a.jpg").read_bytes() == before


def test_outdir_inside_the_input_folder_is_not_searched(photos, tiny_checkpoint):
    assert run(photos, "-o", photos / "out", "--model", tiny_checkpoint).exit_code == 0
    again = run(photos, "-o", photos / "out", "--model", tiny_checkpoint)
    assert "done 0, skipped 4, failed 0" in again.output
    assert files_under(photos / "out") == ["a.jpg", "b.png", "d.png", "sub/c.tif"]


# ------------------------------------------------------------------- samples and marks


@pytest.fixture
def sampler(tmp_path) -> Path:
    return save_tiny_model(tmp_path / "models", "effnet_lite0_cls", width=8)


@pytest.fixture
def hint_model(tmp_path) -> Path:
    return save_tiny_model(tmp_path / "models", "effnet_lite0_hints", width=8)


def test_samples_are_numbered_differ_and_follow_the_seed(tmp_path, sampler):
    gray_photo().save(tmp_path / "a.png")
    for out in ("s1", "s1_again"):
        result = run(tmp_path / "a.png", "-o", tmp_path / out, "--model", sampler,
                     "--samples", "3", "--seed", "1")
        assert result.exit_code == 0, result.output
        assert "done 3, skipped 0, failed 0" in result.output
    assert files_under(tmp_path / "s1") == ["a_1.png", "a_2.png", "a_3.png"]
    first = [np.asarray(Image.open(tmp_path / "s1" / f"a_{i}.png")) for i in (1, 2, 3)]
    again = [np.asarray(Image.open(tmp_path / "s1_again" / f"a_{i}.png")) for i in (1, 2, 3)]
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    assert not np.array_equal(first[0], first[1])
    run(tmp_path / "a.png", "-o", tmp_path / "s2", "--model", sampler, "--samples", "1",
        "--seed", "2")
    assert not np.array_equal(first[0], np.asarray(Image.open(tmp_path / "s2" / "a_1.png")))
    # A seed alone: that one sampled coloring (the page's "use this one"), as the output.
    assert run(tmp_path / "a.png", "-o", tmp_path / "one", "--model", sampler, "--seed",
               "2").exit_code == 0
    assert files_under(tmp_path / "one") == ["a.png"]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "one" / "a.png")),
                          np.asarray(Image.open(tmp_path / "s2" / "a_1.png")))


def test_samples_beside_inputs_are_not_taken_as_inputs_again(tmp_path, sampler):
    d = tmp_path / "in"
    d.mkdir()
    gray_photo().save(d / "a.jpg")
    gray_photo().save(d / "b.png")
    assert run(d / "a.jpg", "--model", sampler, "--samples", "2").exit_code == 0
    assert (d / "a_colorized_1.jpg").is_file() and (d / "a_colorized_2.jpg").is_file()
    (d / "a_colorized_2.jpg").unlink()  # as if interrupted: only the missing one is made
    stamp = (d / "a_colorized_1.jpg").stat().st_mtime_ns
    again = run(d, "--model", sampler, "--samples", "2")
    assert again.exit_code == 0, again.output
    assert "done 3, skipped 0, failed 0" in again.output  # a_2, b_1, b_2
    assert (d / "a_colorized_1.jpg").stat().st_mtime_ns == stamp
    assert files_under(d) == ["a.jpg", "a_colorized_1.jpg", "a_colorized_2.jpg", "b.png",
                              "b_colorized_1.png", "b_colorized_2.png"]
    assert "done 0, skipped 2, failed 0" in run(d, "--model", sampler, "--samples", "2").output


@pytest.mark.parametrize("args, message", [
    (("--samples", "2"), "needs a classification model"),
    (("--seed", "3"), "needs a classification model"),  # a seed alone: one sampled coloring
])
def test_sampling_misuse_is_one_line_exit_2(photos, tiny_checkpoint, args, message):
    result = run(photos, "--model", tiny_checkpoint, *args)
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def _points(path: Path) -> Path:
    path.write_text('[{"x": 10, "y": 10, "color": "#d02020", "radius": 4}, '
                    '{"x": 50, "y": 30, "color": [30, 60, 200]}]')
    return path


def test_marks_steer_a_hint_model(tmp_path, hint_model):
    gray_photo().save(tmp_path / "a.png")
    marks = _points(tmp_path / "marks.json")
    plain = run(tmp_path / "a.png", "-o", tmp_path / "plain", "--model", hint_model)
    hinted = run(tmp_path / "a.png", "-o", tmp_path / "hinted", "--model", hint_model,
                 "--marks", marks)
    assert plain.exit_code == 0 and hinted.exit_code == 0, hinted.output
    with Image.open(tmp_path / "plain" / "a.png") as p, Image.open(tmp_path / "hinted" / "a.png") as h:
        assert p.size == h.size == (64, 48)
        assert not np.array_equal(np.asarray(p), np.asarray(h))


def test_marks_work_with_any_model_but_one_photo(photos, tmp_path, tiny_checkpoint, hint_model):
    marks = _points(tmp_path / "marks.json")
    plain = run(photos / "a.jpg", "-o", tmp_path / "plain", "--model", tiny_checkpoint)
    result = run(photos / "a.jpg", "-o", tmp_path / "marked", "--model", tiny_checkpoint,
                 "--marks", marks)
    assert plain.exit_code == 0 and result.exit_code == 0, result.output
    with Image.open(tmp_path / "marked" / "a.jpg") as m:
        lab = color.rgb_to_lab_np(np.asarray(m.convert("RGB"), np.float64) / 255)
    with Image.open(tmp_path / "plain" / "a.jpg") as p:
        plain_lab = color.rgb_to_lab_np(np.asarray(p.convert("RGB"), np.float64) / 255)
    # the red mark at (10, 10) turns its neighbourhood red (a* up), JPEG or not
    assert lab[8:13, 8:13, 1].mean() > plain_lab[8:13, 8:13, 1].mean() + 10
    result = run(photos, "--model", hint_model, "--marks", marks)
    assert result.exit_code == 2 and "one photo" in result.output
    assert not list(photos.rglob("*_colorized*"))


def test_bad_marks_fail_the_photo_with_one_line(photos, tmp_path, hint_model):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"x": 500, "y": 1, "color": "red"}]')
    result = run(photos / "a.jpg", "--model", hint_model, "--marks", bad)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "failed:" in result.output and "outside the 64x48 photo" in result.output
    assert not (photos / "a_colorized.jpg").exists()


@pytest.mark.parametrize("text, reason", [
    ('[{"x": 1, "y": 1, "color": "red", "radius": 1e300}]', "radius must be a number"),
    ('[{"x": %s, "y": 1, "color": "red"}]' % ("9" * 5000), "a number of 5000 digits"),
    ("[" * 100_000 + "]" * 100_000, "nested too deep"),
])
def test_marks_with_numbers_beyond_their_limits_are_one_line(photos, tmp_path, tiny_checkpoint,
                                                              text, reason):
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    result = run(photos / "a.jpg", "--model", tiny_checkpoint, "--marks", bad)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert f"failed: {photos / 'a.jpg'}: {bad}: " in " ".join(result.output.split())
    assert reason in result.output
    scribbled = runner.invoke(app, ["scribble", str(photos / "a.jpg"), "--marks", str(bad),
                                    "-o", str(tmp_path / "s.png")])
    assert scribbled.exit_code == 2 and reason in scribbled.output
    assert len(scribbled.output.strip().splitlines()) == 1


def test_boost_makes_colours_more_vivid_and_needs_a_classifier(tmp_path, sampler, tiny_checkpoint):
    import json

    from safetensors.torch import load_file, save_file

    # Rebalancing weights that favour saturated bins, as a training set's prior gives.
    weights = load_file(f"{sampler}.safetensors")
    chroma = weights["head.bins"].norm(dim=1)
    weights["head.class_weights"] = 1 + 4 * chroma / chroma.max()
    save_file(weights, f"{sampler}.safetensors")
    assert json.loads(sampler.with_suffix(".json").read_text())["model"]["name"] == "effnet_lite0_cls"
    gray_photo().save(tmp_path / "a.png")
    chroma_of = {}
    for boost in ("0", "2"):
        out = tmp_path / f"b{boost}"
        assert run(tmp_path / "a.png", "-o", out, "--model", sampler, "--boost", boost).exit_code == 0
        lab = color.rgb_to_lab_np(np.asarray(Image.open(out / "a.png")) / 255)
        chroma_of[boost] = np.hypot(lab[..., 1], lab[..., 2]).mean()
    assert chroma_of["2"] > chroma_of["0"]
    result = run(tmp_path / "a.png", "-o", tmp_path / "r", "--model", tiny_checkpoint, "--boost", "1")
    assert result.exit_code == 2 and "classification" in result.output
    # --gain: the same photo, more saturated by about that factor; a classifier only.
    out = tmp_path / "g"
    assert run(tmp_path / "a.png", "-o", out, "--model", sampler, "--boost", "0",
               "--gain", "1.5").exit_code == 0
    lab = color.rgb_to_lab_np(np.asarray(Image.open(out / "a.png")) / 255)
    assert 1.25 < np.hypot(lab[..., 1], lab[..., 2]).mean() / chroma_of["0"] < 1.6
    result = run(tmp_path / "a.png", "-o", tmp_path / "r", "--model", tiny_checkpoint, "--gain", "1.2")
    assert result.exit_code == 2 and "classification" in result.output


@pytest.mark.parametrize("args, message", [
    (["--boost", "inf"], "boost must be a number from 0 to 3, got inf"),
    (["--boost", "nan"], "boost must be a number from 0 to 3, got nan"),
    (["--samples", "1000"], "samples must be a whole number from 1 to 64, got 1000"),
    (["--samples", "2", "--seed", "99999999999999999999999"],
     "seed must be a whole number from 0 to 9223372036854775807, got 99999999999999999999999"),
    (["--gain", "0"], "gain must be a number above 0 and at most 3, got 0.0"),
])
def test_boost_and_samples_out_of_range_are_one_line_and_write_nothing(tmp_path, sampler,
                                                                     args, message):
    gray_photo().save(tmp_path / "a.png")
    result = run(tmp_path / "a.png", "-o", tmp_path / "out", "--model", sampler, *args)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"error: {message}"]
    assert not (tmp_path / "out").exists()


def test_float32_tiff_is_colorized_not_black(tmp_path, tiny_checkpoint):
    gray = np.asarray(gray_photo(), np.float32) / 255
    Image.fromarray(gray, "F").save(tmp_path / "f.tif")
    result = run(tmp_path / "f.tif", "-o", tmp_path / "out", "--model", tiny_checkpoint)
    assert result.exit_code == 0, result.output
    out = color.rgb_to_lab_np(np.asarray(Image.open(tmp_path / "out" / "f.tif")) / 255)
    truth = color.rgb_to_lab_np(np.repeat(gray[..., None], 3, -1).astype(np.float64))
    assert np.abs(out[..., 0] - truth[..., 0]).max() < 1.0


def test_two_runs_into_one_folder_at_once_compute_each_output_once(tmp_path, tiny_checkpoint):
    """Each output is claimed before it is computed, so a second run at the same time
    skips it instead of redoing and replacing it (no --overwrite)."""
    src = tmp_path / "in"
    src.mkdir()
    for i in range(6):
        gray_photo(40 + i, 48).save(src / f"p{i}.png")
    colorizer = Colorizer.load(tiny_checkpoint, device="cpu")
    slow = colorizer.colorize_batch

    def colorize_slowly(*args, **kwargs):
        time.sleep(0.2)  # long enough for the two runs to overlap
        return slow(*args, **kwargs)

    colorizer.colorize_batch = colorize_slowly
    options = BatchOptions(out_dir=tmp_path / "out")
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: colorize_files([src], colorizer, options), range(2)))
    written = [p for r in runs for p in r.done]
    assert sorted(written) == sorted(tmp_path / "out" / f"p{i}.png" for i in range(6))
    assert all(not r.failed for r in runs)
    assert any(reason == batch.SKIP_CLAIMED for r in runs for _, reason in r.skipped)
    assert files_under(tmp_path / "out") == [f"p{i}.png" for i in range(6)]  # no claims left
