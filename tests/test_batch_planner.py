"""The one batch planner (run_batch) that the local and Ray engines run."""

from __future__ import annotations

from pathlib import Path

import pytest

from chromatize.batch import BatchOptions, BatchSummary, Job, run_batch
from chromatize.errors import UsageError
from conftest import gray_photo


def photos(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        gray_photo().save(folder / f"p{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


def test_plans_outputs_reports_progress_and_hands_jobs_to_the_engine(tmp_path):
    src = photos(tmp_path / "in", 3)
    seen: list[list[Job]] = []
    progress: list[tuple[int, int]] = []

    def engine(jobs, summary, done):
        seen.append(list(jobs))
        for i, job in enumerate(jobs):
            summary.done.append(job.output)
            done(summary.total)

    summary = run_batch([src], BatchOptions(out_dir=tmp_path / "out"), engine,
                        lambda a, b: progress.append((a, b)))
    assert [j.source.name for j in seen[0]] == ["broken.png", "p0.png", "p1.png", "p2.png"]
    assert all(j.output.parent == tmp_path / "out" for j in seen[0])
    assert (tmp_path / "out").is_dir() and summary.total == 4
    assert progress[0] == (0, 4) and progress[-1] == (4, 4)


def test_marks_for_several_photos_are_refused_before_any_work(tmp_path):
    src = photos(tmp_path / "in", 2)
    with pytest.raises(UsageError, match="marks belong to one photo"):
        run_batch([src], BatchOptions(out_dir=tmp_path / "out", marks=[]),
                  lambda *a: pytest.fail("the engine ran"))
    assert not (tmp_path / "out").exists()


def test_an_output_folder_that_cannot_be_made_fails_every_photo_in_one_line(tmp_path):
    src = photos(tmp_path / "in", 2)
    (tmp_path / "file").write_text("a file where the folder should go")
    summary = run_batch([src], BatchOptions(out_dir=tmp_path / "file" / "out"),
                        lambda *a: pytest.fail("the engine ran"))
    assert len(summary.failed) == 3
    assert all("cannot create output folder" in why for _, why in summary.failed)


def test_nothing_found_runs_nothing(tmp_path):
    summary = run_batch([str(tmp_path / "missing*.png")], BatchOptions(),
                        lambda *a: pytest.fail("the engine ran"))
    assert isinstance(summary, BatchSummary) and summary.done == []
