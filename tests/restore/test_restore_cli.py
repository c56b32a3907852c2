"""``chromatize restore`` and ``chromatize colorize --restore`` end to end (in-process):
the batch rules of ``colorize`` (names, skips, one line per bad file, no overwrite)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from chromatize.batch import BatchOptions, colorize_files
from chromatize.cli import app
from chromatize.restore import Repair
from conftest import gray_photo, make_color_photo

runner = CliRunner()


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def make_inputs(root: Path) -> Path:
    d = root / "in"
    (d / "sub").mkdir(parents=True)
    gray_photo().save(d / "a.jpg")
    sepia = np.asarray(gray_photo(40, 40).convert("RGB"), np.float32) * [1.0, 0.85, 0.65]
    Image.fromarray(sepia.astype(np.uint8)).save(d / "sub" / "sepia.png")
    make_color_photo().save(d / "colour.png")
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (d / "empty.tif").write_bytes(b"")
    return d


def test_restore_folder_like_colorize(tmp_path):
    d, out = make_inputs(tmp_path), tmp_path / "out"
    result = runner.invoke(app, ["restore", str(d), "-o", str(out), "--steps", "all"])
    assert result.exit_code == 1, result.output  # two bad files
    failed = [ln for ln in result.output.splitlines() if ln.startswith("failed:")]
    assert len(failed) == 2 and all("Traceback" not in ln for ln in result.output.splitlines())
    assert any("broken.jpg" in ln and "cannot read image" in ln for ln in failed)
    assert any("empty.tif" in ln and "empty file" in ln for ln in failed)
    assert "colour.png: already in colour" in result.output
    assert "done 2, skipped 1, failed 2" in result.output
    assert files_under(out) == ["a.jpg", "sub/sepia.png"]  # colorize's names
    with Image.open(out / "sub" / "sepia.png") as im:
        assert im.mode == "L" and im.size == (40, 40)
    stamp = (out / "a.jpg").stat().st_mtime_ns
    again = runner.invoke(app, ["restore", str(d / "a.jpg"), "-o", str(out)])
    assert again.exit_code == 0 and "output exists" in again.output
    assert (out / "a.jpg").stat().st_mtime_ns == stamp


def test_restore_needs_an_output_folder_and_known_steps(tmp_path):
    gray_photo().save(tmp_path / "a.png")
    result = runner.invoke(app, ["restore", str(tmp_path / "a.png")])
    assert result.exit_code == 2 and "--out-dir" in result.output
    result = runner.invoke(app, ["restore", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"),
                                 "--steps", "cracks,glue"])
    assert result.exit_code == 2 and "unknown repair step 'glue'" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_colorize_with_restore(tmp_path, tiny_checkpoint):
    gray_photo().save(tmp_path / "a.png")
    args = ["colorize", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--model",
            str(tiny_checkpoint)]
    result = runner.invoke(app, [*args, "--restore", "cracks,dust,grain,fade"])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out" / "a.png") as im:
        assert im.mode == "RGB" and im.size == (64, 48)
    bad = runner.invoke(app, [*args, "--restore", "everything", "--overwrite"])
    assert bad.exit_code == 2 and "unknown repair step 'everything'" in bad.output


def test_library_repair_only_batch_keeps_alpha(tmp_path):
    src = gray_photo().convert("LA")
    src.putalpha(Image.new("L", src.size, 120))
    src.save(tmp_path / "t.png")
    summary = colorize_files([tmp_path / "t.png"], None,
                             BatchOptions(out_dir=tmp_path / "out", restore=Repair()))
    assert summary.done == [tmp_path / "out" / "t.png"] and not summary.failed
    with Image.open(tmp_path / "out" / "t.png") as im:
        assert im.mode == "LA" and np.asarray(im)[..., 1].max() == 120
