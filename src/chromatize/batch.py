"""Colorize many photo files: find them, plan their outputs, skip what is done, report.

A batch never stops at a bad file: every photo ends up in exactly one list of the
:class:`BatchSummary` (done, skipped or failed, the latter two with a reason). Outputs
are written atomically, so an output that exists is complete, and re-running an
interrupted batch skips those photos.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from chromatize.io import (IMAGE_SUFFIXES, MAX_PIXELS, SUFFIX_FORMATS, WRITABLE, Photo,
                           PhotoError, is_color, read_photo, write_photo)
from chromatize.pipeline import Colorizer

#: Photos are sent to the model in groups of at most this many photos and pixels, so
#: same-size photos share a forward pass while memory stays bounded.
GROUP_PHOTOS = 8
GROUP_PIXELS = 24_000_000
SUFFIX_BESIDE = "_colorized"

SKIP_EXISTS = "output exists (pass --overwrite to replace it)"
SKIP_COLOR = "already in colour (pass --recolor to colorize its luminance)"

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Job:
    """One photo to colorize and where its result goes."""

    source: Path
    output: Path


@dataclass
class BatchSummary:
    """What became of each photo: outputs written, and sources skipped or failed with why."""

    done: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.done) + len(self.skipped) + len(self.failed)


def _has_magic(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _photos_in(folder: Path) -> list[Path]:
    """Image files under ``folder``, recursively, hidden files and folders left out."""
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def find_photos(inputs: Sequence[str | os.PathLike[str]],
                exclude: Callable[[Path, Path | None], bool] | None = None,
                ) -> tuple[list[tuple[Path, Path | None]], list[tuple[Path, str]]]:
    """Expand files, folders (recursively) and glob patterns.

    Returns ``(found, missing)``: ``found`` pairs each photo with the folder it was found
    in (None for a file named directly or matched by a glob), in order, without
    duplicates; ``missing`` lists inputs that match nothing, with the reason. Files for
    which ``exclude(file, folder)`` is true are left out of folder and glob expansions
    (a file named directly is always kept).
    """
    found: dict[Path, Path | None] = {}
    missing: list[tuple[Path, str]] = []

    def add(f: Path, root: Path | None) -> None:
        if f not in found and not (exclude and exclude(f, root)):
            found[f] = root

    for item in inputs:
        text = os.fspath(item)
        p = Path(text)
        if p.is_dir():
            for f in _photos_in(p):
                add(f, p)
        elif p.exists():
            found.setdefault(p, None)
        elif _has_magic(text):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
            for m in matches:
                if m.is_dir():
                    for f in _photos_in(m):
                        add(f, m)
                elif m.suffix.lower() in IMAGE_SUFFIXES:
                    add(m, None)
            if not matches:
                missing.append((p, "no file matches this pattern"))
        else:
            missing.append((p, "no such file or folder"))
    return list(found.items()), missing


def output_path(source: Path, root: Path | None, out_dir: Path | None,
                suffix: str | None = None) -> Path:
    """Where the result for ``source`` goes.

    With ``out_dir``: ``out_dir/<stem>.<ext>``, keeping the sub-folders below ``root``
    (the folder the photo was found in). Without: ``<stem>_colorized.<ext>`` beside the
    source. ``ext`` is ``suffix`` (``.png``, ``.jpg``, ``.webp``, ``.tif``), else the
    source's own suffix when that format can be written, else ``.png``.
    """
    if suffix is None:
        own = source.suffix.lower()
        suffix = own if own in SUFFIX_FORMATS else WRITABLE["PNG"]
    if out_dir is None:
        return source.with_name(source.stem + SUFFIX_BESIDE + suffix)
    sub = source.parent.relative_to(root) if root is not None else Path()
    return out_dir / sub / (source.stem + suffix)


def plan_jobs(inputs: Sequence[str | os.PathLike[str]], out_dir: Path | None = None,
              fmt: str | None = None) -> tuple[list[Job], list[tuple[Path, str]]]:
    """Inputs -> (jobs, failures). Photos found in folders or by globs that are this
    command's own outputs (inside ``out_dir``, or ``*_colorized.*`` beside their inputs)
    are left out; a photo whose output would replace it, or the output of another
    photo, is a failure. ``fmt`` is ``png``, ``jpg``, ``webp`` or ``tif`` (None: the
    input's format)."""
    suffix = "." + fmt.lower() if fmt else None
    if suffix is not None and suffix not in SUFFIX_FORMATS:
        raise ValueError(f"output format must be one of png, jpg, webp, tif; got {fmt!r}")
    out_abs = out_dir.resolve() if out_dir is not None else None

    def own_output(p: Path, root: Path | None) -> bool:
        if out_abs is None:
            return p.stem.endswith(SUFFIX_BESIDE)
        # An output folder inside the searched one holds earlier results, not inputs.
        return p.resolve().is_relative_to(out_abs) and (root is None or root.resolve() != out_abs)

    found, failed = find_photos(inputs, exclude=own_output)
    jobs: list[Job] = []
    taken: dict[Path, Path] = {}
    for source, root in found:
        out = output_path(source, root, out_dir, suffix)
        if out.resolve() == source.resolve():
            failed.append((source, "its output would replace it; choose another -o or --format"))
            continue
        if out in taken:
            failed.append((source, f"same output {out} as {taken[out]}"))
            continue
        taken[out] = source
        jobs.append(Job(source, out))
    return jobs, failed


def _groups(items: Iterator[tuple[Job, Photo]]) -> Iterator[list[tuple[Job, Photo]]]:
    """Consecutive photos in groups of at most GROUP_PHOTOS photos and GROUP_PIXELS pixels."""
    group: list[tuple[Job, Photo]] = []
    pixels = 0
    for job, photo in items:
        n = photo.image.width * photo.image.height
        if group and (len(group) >= GROUP_PHOTOS or pixels + n > GROUP_PIXELS):
            yield group
            group, pixels = [], 0
        group.append((job, photo))
        pixels += n
    if group:
        yield group


def colorize_files(inputs: Sequence[str | os.PathLike[str]], colorizer: Colorizer,
                   out_dir: str | os.PathLike[str] | None = None, fmt: str | None = None,
                   overwrite: bool = False, recolor: bool = False, size: int | None = None,
                   max_pixels: int = MAX_PIXELS, progress: Progress | None = None,
                   ) -> BatchSummary:
    """Colorize every photo in ``inputs`` (files, folders, glob patterns).

    Results go to ``out_dir`` (or beside the inputs, see :func:`output_path`) in format
    ``fmt`` (default: the input's), with the input's alpha, ICC profile and EXIF where
    the format allows. Existing outputs are skipped unless ``overwrite``; photos already
    in colour are skipped unless ``recolor``. ``size`` is the working resolution (long
    side) and ``max_pixels`` the largest photo read. ``progress(finished, total)`` is
    called once before the first photo and after each one.
    """
    out = Path(out_dir) if out_dir is not None else None
    jobs, failed = plan_jobs(inputs, out, fmt)
    summary = BatchSummary(failed=failed)
    total = len(jobs) + len(failed)

    def report() -> None:
        if progress is not None:
            progress(summary.total, total)

    report()
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            reason = f"cannot create output folder {out} ({e.strerror or e})"
            summary.failed.extend((job.source, reason) for job in jobs)
            report()
            return summary

    def readable() -> Iterator[tuple[Job, Photo]]:
        """The photos to colorize; the others go to the summary as they are met."""
        for job in jobs:
            if job.output.exists() and not overwrite:
                summary.skipped.append((job.source, SKIP_EXISTS))
            else:
                try:
                    photo = read_photo(job.source, max_pixels=max_pixels)
                except PhotoError as e:
                    summary.failed.append((job.source, _reason(e, job.source)))
                else:
                    if recolor or not is_color(photo.image):
                        yield job, photo
                        continue
                    summary.skipped.append((job.source, SKIP_COLOR))
            report()

    for group in _groups(readable()):
        for (job, photo), result in zip(group, _colorize_group(colorizer, group, size)):
            if isinstance(result, str):
                summary.failed.append((job.source, result))
            else:
                _write(summary, job, photo, result, overwrite)
            report()
    return summary


def _reason(error: Exception, path: Path) -> str:
    """A PhotoError's message without the leading ``path: `` (the summary names the file)."""
    text = str(error)
    return text.removeprefix(f"{path}: ")


def _colorize_group(colorizer: Colorizer, group: list[tuple[Job, Photo]], size: int | None,
                    ) -> list[Image.Image | str]:
    """Colorized images, one per photo, or the reason one failed. A failing batch is
    retried photo by photo so that one bad photo does not sink the others."""
    images = [photo.image for _, photo in group]
    if len(images) > 1:
        try:
            return list(colorizer.colorize_batch(images, size=size))
        except Exception:  # noqa: BLE001 - retried photo by photo below
            pass
    results: list[Image.Image | str] = []
    for image in images:
        try:
            results.append(colorizer.colorize(image, size=size))
        except Exception as e:  # noqa: BLE001 - reported as this photo's failure
            results.append(f"colorization failed ({type(e).__name__}: {e})")
    return results


def _write(summary: BatchSummary, job: Job, photo: Photo, result: Image.Image,
           overwrite: bool) -> None:
    """Write one result with the source's alpha, ICC profile and EXIF; record the outcome."""
    if photo.alpha is not None:
        result.putalpha(photo.alpha)
    try:
        write_photo(result, job.output, overwrite=overwrite, icc_profile=photo.icc_profile,
                    exif=photo.exif)
    except PhotoError as e:
        summary.failed.append((job.source, _reason(e, job.output)))
        return
    summary.done.append(job.output)
