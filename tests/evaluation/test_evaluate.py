import csv
import json
import os

import numpy as np
import pytest
import torch
from conftest import make_color_photo
from typer.testing import CliRunner

from chromatize.evaluation import metrics
from chromatize.checkpoint import save_checkpoint
from chromatize.cli import app
from chromatize.evaluation.evaluate import EvaluationError, evaluate, gray_input
from chromatize.models import create_model


@pytest.fixture
def photo_dir(tmp_path):
    """4 colour photos, 1 gray photo and 1 unreadable file."""
    d = tmp_path / "photos"
    d.mkdir()
    for i in range(4):
        make_color_photo(32, 32, seed=i).save(d / f"c{i}.png")
    make_color_photo(32, 32, seed=9).convert("L").convert("RGB").save(d / "gray.jpg")
    (d / "broken.jpg").write_bytes(b"not a jpeg")
    return d


@pytest.fixture
def second_checkpoint(tmp_path):
    torch.manual_seed(1)
    path = tmp_path / "ckpt" / "other"
    save_checkpoint(path, create_model("unet_tiny").eval(), "unet_tiny", {}, working_size=64)
    return path


def test_gray_input_keeps_the_photos_lightness():
    lab = metrics.to_lab(np.asarray(make_color_photo()))
    gray, input_l = gray_input(lab[..., 0])
    assert gray.dtype == np.uint8 and gray.shape == lab.shape[:2]
    # Nearest of 256 gray levels: within half a level step (< 0.5 L* above L* = 5).
    assert np.abs(input_l - lab[..., 0]).max() < 0.5


def test_evaluate_writes_outputs_and_skips_non_colour(tiny_checkpoint, photo_dir, tmp_path):
    out = tmp_path / "report"
    result = evaluate([str(tiny_checkpoint)], photo_dir, out)
    assert result["evaluated"] == 4
    assert result["skipped"] == {"not_colour": 1, "unreadable": 1, "too_small": 0}
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved["metrics"]) == {str(tiny_checkpoint), "gray", "mean-colour"}
    assert saved["metrics"]["gray"]["colorfulness"]["mean"] == 0
    assert saved["metrics"]["mean-colour"]["colorfulness"]["mean"] > 0
    rows = list(csv.DictReader((out / "per_image.csv").open()))
    assert len(rows) == 4 * 3 and {r["image"] for r in rows} == {f"c{i}.png" for i in range(4)}
    page = (out / "report.html").read_text()
    assert page.count("data:image/jpeg;base64,") >= 4 * 3
    for heading in ("Summary", "Random examples", "Desaturated", "Colour bleeding",
                    "Inconsistent colours", "Edge pollution"):
        assert heading in page
    with pytest.raises(EvaluationError, match="already exists"):
        evaluate([str(tiny_checkpoint)], photo_dir, out)


def test_two_models_side_by_side_with_size_and_limit(tiny_checkpoint, second_checkpoint,
                                                      photo_dir, tmp_path):
    models = [str(tiny_checkpoint), str(second_checkpoint)]
    result = evaluate(models, photo_dir, tmp_path / "r", size=24, limit=2, seed=3)
    assert result["evaluated"] == 2 and list(result["metrics"])[:2] == models
    a, b = (result["metrics"][m]["ciede2000"]["mean"] for m in models)
    assert a != b
    page = (tmp_path / "r" / "report.html").read_text()
    assert "grid-template-columns:repeat(4," in page  # gray | A | B | truth


def test_cli_evaluate(tiny_checkpoint, photo_dir, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli"
    res = runner.invoke(app, ["evaluate", str(photo_dir), "--model", str(tiny_checkpoint),
                              "-o", str(out), "--size", "32", "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert "PSNR" in res.output and "1 not colour" in res.output
    assert json.loads((out / "metrics.json").read_text())["size"] == 32

    res = runner.invoke(app, ["evaluate", str(photo_dir), "--model", "no-such-model",
                              "-o", str(tmp_path / "d")])
    assert res.exit_code == 2 and "no-such-model" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["evaluate", str(tmp_path / "none"), "--model",
                              str(tiny_checkpoint), "-o", str(tmp_path / "x")])
    assert res.exit_code == 2 and "not a folder" in res.output


def test_a_strip_photo_is_skipped_and_named_the_rest_scored(tiny_checkpoint, photo_dir,
                                                            tmp_path):
    make_color_photo(2, 300, seed=5).save(photo_dir / "strip.png")
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["evaluate", str(photo_dir), "--model",
                                      str(tiny_checkpoint), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"skipped: {photo_dir / 'strip.png'}: too small" in " ".join(result.output.split())
    info = json.loads((out / "metrics.json").read_text())
    assert info["evaluated"] == 4 and info["skipped_files"]["too_small"] == ["strip.png"]


@pytest.mark.parametrize("where", ["file", "below_a_file"])
def test_report_folder_that_cannot_be_written_is_one_line(tiny_checkpoint, photo_dir,
                                                          tmp_path, where):
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    out = a_file if where == "file" else a_file / "report"
    result = CliRunner().invoke(app, ["evaluate", str(photo_dir), "--model",
                                      str(tiny_checkpoint), "-o", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {out}: report folder")
    assert a_file.read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_report_folder_is_one_line(tiny_checkpoint, photo_dir, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(EvaluationError, match="not writable"):
        evaluate([str(tiny_checkpoint)], photo_dir, locked)
