"""Colorize many photo files: find them, plan their outputs, skip what is done, report.

A batch never stops at a bad file: every photo ends up in exactly one list of the
:class:`BatchSummary` (done, skipped or failed, the latter two with a reason). Outputs
are written atomically, so an output that exists is complete, and re-running an
interrupted batch skips those photos.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from chromatize.color import is_color
from chromatize.decoding import Decoding, check_number
from chromatize.errors import UsageError
from chromatize.io import (
    IMAGE_SUFFIXES,
    MAX_PIXELS,
    SUFFIX_FORMATS,
    OUTPUT_EXISTS,
    WRITABLE,
    Photo,
    PhotoError,
    claim_output,
    list_photos,
    output_taken,
    read_photo,
    release_output,
    write_photo,
)
from chromatize.inference.hints import Marks, MarksError, load_marks
from chromatize.inference.pipeline import Colorizer
from chromatize.inference.variants import load_index

#: Photos are sent to the model in groups of at most this many photos and pixels, so
#: same-size photos share a forward pass while memory stays bounded.
GROUP_PHOTOS = 8
GROUP_PIXELS = 24_000_000
SUFFIX_BESIDE = "_colorized"
#: Stems of this command's own outputs beside their inputs: ``_colorized`` or, with
#: samples, ``_colorized_<i>``.
_BESIDE_STEM = re.compile(re.escape(SUFFIX_BESIDE) + r"(_\d+)?$")

SKIP_EXISTS = OUTPUT_EXISTS
SKIP_COLOR = "already in colour (pass --recolor to colorize its luminance)"
SKIP_CLAIMED = "being colorized by another run into the same folder"

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
            for f in list_photos(p):
                add(f, p)
        elif p.exists():
            found.setdefault(p, None)
        elif _has_magic(text):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
            for m in matches:
                if m.is_dir():
                    for f in list_photos(m):
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


def sample_outputs(output: Path, samples: int) -> list[Path]:
    """Where the ``samples`` colorings of one photo go: ``<stem>_1.<ext>`` ..
    ``<stem>_K.<ext>`` beside ``output`` (its :func:`output_path`)."""
    return [output.with_stem(f"{output.stem}_{i}") for i in range(1, samples + 1)]


def plan_jobs(inputs: Sequence[str | os.PathLike[str]], out_dir: Path | None = None,
              fmt: str | None = None) -> tuple[list[Job], list[tuple[Path, str]]]:
    """Inputs -> (jobs, failures). Photos found in folders or by globs that are this
    command's own outputs (inside ``out_dir``, or ``*_colorized.*`` beside their inputs)
    are left out; a photo whose output would replace it, or the output of another
    photo, is a failure. ``fmt`` is ``png``, ``jpg``, ``webp`` or ``tif`` (None: the
    input's format)."""
    suffix = "." + fmt.lower() if fmt else None
    if suffix is not None and suffix not in SUFFIX_FORMATS:
        raise UsageError(f"output format must be one of png, jpg, webp, tif; got {fmt!r}")
    out_abs = out_dir.resolve() if out_dir is not None else None

    def own_output(p: Path, root: Path | None) -> bool:
        if out_abs is None:
            return _BESIDE_STEM.search(p.stem) is not None
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


def _groups(items: Iterator[tuple[Job, Photo]], most: int,
            ) -> Iterator[list[tuple[Job, Photo]]]:
    """Consecutive photos in groups of at most ``most`` photos and GROUP_PIXELS pixels."""
    group: list[tuple[Job, Photo]] = []
    pixels = 0
    for job, photo in items:
        n = photo.image.width * photo.image.height
        if group and (len(group) >= most or pixels + n > GROUP_PIXELS):
            yield group
            group, pixels = [], 0
        group.append((job, photo))
        pixels += n
    if group:
        yield group


@dataclass(frozen=True)
class BatchOptions:
    """What to do with the photos of a batch (the options of ``chromatize colorize``).

    Results go to ``out_dir`` (or beside the inputs, see :func:`output_path`) in format
    ``fmt`` (``png``, ``jpg``, ``webp``, ``tif``; default: the input's). Existing outputs
    are skipped unless ``overwrite``; photos already in colour are skipped unless
    ``recolor``. ``size`` is the working resolution (long side) and ``max_pixels`` the
    largest photo read. ``samples=K`` writes K plausible colorings per photo (see
    :func:`sample_outputs`), reproducible with ``seed``; ``marks`` (see
    :mod:`chromatize.inference.hints`) are colour marks for a single photo: hint models
    take them as input, other models' colours are corrected by them
    (:meth:`Colorizer.colorize`). ``decoding`` (boost, gain, an image-level prior...)
    applies to every photo, over the colorizer's own. ``variants=K`` writes K versions
    per photo, named as samples are, from the colour photos of ``index`` (default: the
    model's own) most like it, at ``variant_strength`` (default
    :data:`chromatize.inference.variants.VARIANT_STRENGTH`).
    """

    out_dir: Path | None = None
    fmt: str | None = None
    overwrite: bool = False
    recolor: bool = False
    size: int | None = None
    max_pixels: int = MAX_PIXELS
    samples: int | None = None
    seed: int | None = None
    marks: Marks | None = None
    decoding: Decoding = field(default_factory=Decoding)
    variants: int | None = None
    index: Path | None = None
    variant_strength: float | None = None

    def outputs(self, job: Job) -> list[Path]:
        """The files one job writes: its output, or one per sample or version."""
        many = self.samples if self.samples is not None else self.variants
        return [job.output] if many is None else sample_outputs(job.output, many)


def colorize_files(inputs: Sequence[str | os.PathLike[str]], colorizer: Colorizer,
                   options: BatchOptions = BatchOptions(), progress: Progress | None = None,
                   ) -> BatchSummary:
    """Colorize every photo in ``inputs`` (files, folders, glob patterns) as ``options``
    say, with the input's alpha, ICC profile and EXIF where the format allows.

    ``progress(finished, total)`` is called once before the first photo and after each
    one. A photo is skipped when all its outputs exist. Raises
    :class:`~chromatize.errors.UsageError` for options the model or the inputs do not
    allow, before any photo is read.
    """
    check_options(colorizer, options)
    jobs, failed = plan_jobs(inputs, options.out_dir, options.fmt)
    if options.marks is not None and len(jobs) + len(failed) != 1:
        raise UsageError(f"marks belong to one photo, but the inputs hold "
                         f"{len(jobs) + len(failed)}")
    run = _Run(colorizer, options, BatchSummary(failed=failed), len(jobs) + len(failed),
               progress)
    run.report()
    if options.out_dir is not None:
        try:
            options.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            reason = f"cannot create output folder {options.out_dir} ({e.strerror or e})"
            run.summary.failed.extend((job.source, reason) for job in jobs)
            run.report()
            return run.summary
    try:
        run.colorize(jobs)
    finally:
        run.release_all()
    return run.summary


def check_options(colorizer: Colorizer, options: BatchOptions) -> None:
    """Raise :class:`~chromatize.errors.UsageError` for options the model does not allow."""
    colorizer.check(samples=options.samples, size=options.size)
    colorizer.resolve(options.decoding)
    if options.seed is not None and options.samples is None:
        raise UsageError("a seed only applies to samples")
    if options.variants is None:
        if options.index is not None or options.variant_strength is not None:
            raise UsageError("an index and a versions' strength apply to --variants")
        return
    check_number("variants", options.variants)
    if not colorizer.can_sample:
        raise UsageError("versions need a classification model (a colour distribution per "
                         "pixel); this model predicts ab directly")
    if options.samples is not None or options.decoding.prior is not None:
        raise UsageError("versions choose the photo's colours themselves: give --variants "
                         "without --samples, --reference or --palette")
    if options.variant_strength is not None:
        check_number("strength", options.variant_strength)
    index = options.index if options.index is not None else colorizer.index_path
    if index is None:
        raise UsageError("this model has no index of colour photos for --variants; build "
                         "one with `chromatize index PHOTOS -o my.index` and pass --index")
    load_index(index)  # a bad index file is one line, before any photo


def colorize_jobs(jobs: Sequence[Job], colorizer: Colorizer, options: BatchOptions,
                  summary: BatchSummary) -> None:
    """Run planned jobs (skip, read, colorize, write atomically), recording each photo's
    outcome in ``summary``: what :func:`colorize_files` does after planning, and what
    every other engine (``chromatize.batch_ray``) runs its photos through, so that the
    rules and the outputs are the same."""
    run = _Run(colorizer, options, summary, len(jobs), None)
    try:
        run.colorize(jobs)
    finally:
        run.release_all()


@dataclass
class _Run:
    """One batch under way: what is done so far, and the progress reported."""

    colorizer: Colorizer
    options: BatchOptions
    summary: BatchSummary
    total: int
    progress: Progress | None
    #: Outputs this run has claimed (see :func:`chromatize.io.claim_output`) and not yet
    #: written or given up.
    claimed: list[Path] = field(default_factory=list)

    def report(self) -> None:
        if self.progress is not None:
            self.progress(self.summary.total, self.total)

    def colorize(self, jobs: Sequence[Job]) -> None:
        """Skip, read, colorize and write the planned ``jobs``."""
        opts = self.options
        # Samples, versions and marks are per photo: no batches to share.
        one = opts.samples is not None or opts.variants is not None or opts.marks is not None
        most = 1 if one else GROUP_PHOTOS
        # Groups never straddle chunks of GROUP_PHOTOS planned jobs: a photo's companions
        # in a forward pass (which can move float rounding, and so an 8-bit level) are
        # then the same whichever engine runs its chunk.
        for start in range(0, len(jobs), GROUP_PHOTOS):
            for group in _groups(self.readable(jobs[start:start + GROUP_PHOTOS]), most):
                self.finish(group, _colorize_group(self.colorizer, group, opts))

    def readable(self, jobs: Sequence[Job]) -> Iterator[tuple[Job, Photo]]:
        """The photos to colorize, their missing outputs claimed; the others go to the
        summary as they are met."""
        opts = self.options
        for job in jobs:
            skip = self._claim(job)
            if skip is not None:
                self.summary.skipped.append((job.source, skip))
            else:
                try:
                    photo = read_photo(job.source, max_pixels=opts.max_pixels)
                except PhotoError as e:
                    self.summary.failed.append((job.source, _reason(e, job.source)))
                else:
                    if opts.recolor or not is_color(photo.image):
                        yield job, photo
                        continue
                    self.summary.skipped.append((job.source, SKIP_COLOR))
                self._release(job)
            self.report()

    def _claim(self, job: Job) -> str | None:
        """Claim the job's missing outputs, or say why the job is skipped. The outputs are
        looked at again once claimed: another run may have finished them meanwhile."""
        opts = self.options
        todo = [p for p in opts.outputs(job) if not output_taken(p, opts.overwrite)]
        if not todo:
            return SKIP_EXISTS
        for p in todo:
            try:
                got = claim_output(p)
            except OSError:
                got = True  # an unwritable folder: the write reports it, with its reason
            if not got:
                self._release(job)
                return SKIP_CLAIMED
            self.claimed.append(p)
        if all(output_taken(p, opts.overwrite) for p in opts.outputs(job)):
            self._release(job)
            return SKIP_EXISTS
        return None

    def _release(self, job: Job) -> None:
        for p in self.options.outputs(job):
            if p in self.claimed:
                self.claimed.remove(p)
                release_output(p)

    def release_all(self) -> None:
        """Drop every claim still held (the batch ended or was interrupted)."""
        for p in self.claimed:
            release_output(p)
        self.claimed.clear()

    def finish(self, group: list[tuple[Job, Photo]],
               results: list[list[Image.Image] | str]) -> None:
        """Write each photo's results (or record why it failed)."""
        for (job, photo), result in zip(group, results):
            if isinstance(result, str):
                self.summary.failed.append((job.source, result))
            else:
                for image, path in zip(result, self.options.outputs(job)):
                    # Of an interrupted photo's samples, only the missing ones are written.
                    if not output_taken(path, self.options.overwrite):
                        self._write(job.source, path, photo, image)
            self._release(job)
            self.report()

    def _write(self, source: Path, output: Path, photo: Photo, result: Image.Image) -> None:
        """Write one result with the source's ICC profile and EXIF; record the outcome."""
        try:
            write_photo(result, output, overwrite=self.options.overwrite,
                        icc_profile=photo.icc_profile, exif=photo.exif)
        except PhotoError as e:
            self.summary.failed.append((source, _reason(e, output)))
            return
        self.summary.done.append(output)


def _reason(error: Exception, path: Path) -> str:
    """A PhotoError's message without the leading ``path: `` (the summary names the file)."""
    text = str(error)
    return text.removeprefix(f"{path}: ")


def _colorize_group(colorizer: Colorizer, group: list[tuple[Job, Photo]],
                    options: BatchOptions) -> list[list[Image.Image] | str]:
    """Each photo's colorings, or the reason it failed. A failing batch is retried photo by
    photo so that one bad photo does not sink the others."""
    # Photos, not bare images: the colorizer gives each result its photo's alpha.
    images = [photo for _, photo in group]
    if len(images) > 1:
        try:
            return [[image] for image in colorizer.colorize_batch(images, size=options.size,
                                                                   decoding=options.decoding)]
        except Exception:  # noqa: BLE001 - retried photo by photo below
            pass
    return [_colorize_one(colorizer, image, options) for image in images]


def _colorize_one(colorizer: Colorizer, image: Photo, options: BatchOptions,
                  ) -> list[Image.Image] | str:
    """One photo's colorings (``samples`` of them, else one), or the reason it failed."""
    try:
        hints = None if options.marks is None else load_marks(options.marks, image)
    except MarksError as e:
        return str(e)
    try:
        result = colorizer.colorize(image, size=options.size, samples=options.samples,
                                    seed=options.seed, hints=hints, decoding=options.decoding,
                                    variants=options.variants, index=options.index,
                                    strength=options.variant_strength)
    except Exception as e:  # noqa: BLE001 - reported as this photo's failure
        return f"colorization failed ({type(e).__name__}: {e})"
    return result if isinstance(result, list) else [result]
