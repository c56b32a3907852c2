"""Colorize many photo files: find them, plan their outputs, skip what is done, report.

A batch never stops at a bad file: every photo ends up in exactly one list of the
:class:`BatchSummary` (done, skipped or failed, the latter two with a reason). Outputs
are written atomically, so an output that exists is complete, and re-running an
interrupted batch skips those photos.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from chromatize.color import is_color
from chromatize.decoding import Decoding, check_capabilities, check_number
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
from chromatize.imaging.hints import Marks, MarksError, load_hints
from chromatize.inference.pipeline import Colorizer, check_size

if TYPE_CHECKING:
    from chromatize.restore import Repair

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


def _glob(pattern: str) -> list[Path]:
    """The files and folders ``pattern`` matches, sorted. ``**`` spans folders but, as a
    folder input, does not follow symlinked folders (the standard ``glob`` does, and
    walks a link loop forty levels deep, each level the same photos again); hidden names
    match only a pattern that spells them out, as with ``glob``."""
    parts = Path(pattern).parts
    first = next(i for i, part in enumerate(parts) if _has_magic(part))
    root = Path(*parts[:first]) if first else Path()
    rest = parts[first:]
    hidden_asked = any(part.startswith(".") for part in rest)
    return sorted(m for m in root.glob(str(Path(*rest)))
                  if hidden_asked or not any(q.startswith(".")
                                             for q in m.relative_to(root).parts))


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
            matches = _glob(text)
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
    :func:`sample_outputs`), reproducible with ``seed`` (a seed without ``samples``: the
    one coloring sampled with it, written as the photo's output); ``marks`` (see
    :mod:`chromatize.imaging.hints`) are colour marks for a single photo: hint models
    take them as input, other models' colours are corrected by them
    (:meth:`Colorizer.colorize`). ``decoding`` (boost, gain, an image-level prior...)
    applies to every photo, over the colorizer's own. ``variants=K`` writes K versions
    per photo, named as samples are, from the colour photos of ``index`` (default: the
    model's own) most like it, at ``variant_strength`` (default
    :data:`chromatize.inference.variants.VARIANT_STRENGTH`); with ``variant`` (1..K),
    only that version is written, as the photo's output (a fix saved by the page that
    started from a version). ``restore`` repairs each
    photo's gray first (:mod:`chromatize.restore`); without a colorizer the repaired gray
    is the result.
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
    restore: Repair | None = None
    variants: int | None = None
    index: Path | None = None
    variant_strength: float | None = None
    variant: int | None = None

    def outputs(self, job: Job) -> list[Path]:
        """The files one job writes: its output, or one per sample or version."""
        many = self.samples if self.samples is not None else self.variants
        if self.variant is not None:
            many = None
        return [job.output] if many is None else sample_outputs(job.output, many)


#: An engine runs planned jobs into a summary, calling ``done(finished)`` with the number
#: of photos finished so far (the planner's failures included) as it goes.
Engine = Callable[[list[Job], BatchSummary, Callable[[int], None]], None]


def run_batch(inputs: Sequence[str | os.PathLike[str]], options: BatchOptions, engine: Engine,
              progress: Progress | None = None) -> BatchSummary:
    """The one batch planner that every engine runs: list the photos of ``inputs`` (files,
    folders, glob patterns) and plan their outputs (:func:`plan_jobs`), refuse marks for
    more than one photo, create the output folder, then let ``engine`` colorize the jobs
    into the :class:`BatchSummary`. ``progress(finished, total)`` is called once before
    the first photo and as photos finish. Raises :class:`~chromatize.errors.UsageError`
    before any photo is read."""
    jobs, failed = plan_jobs(inputs, options.out_dir, options.fmt)
    total = len(jobs) + len(failed)
    if options.marks is not None and total != 1:
        raise UsageError(f"marks belong to one photo, but the inputs hold {total}")
    summary = BatchSummary(failed=failed)

    def done(finished: int) -> None:
        if progress is not None:
            progress(finished, total)

    done(summary.total)
    if options.out_dir is not None:
        try:
            options.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            reason = f"cannot create output folder {options.out_dir} ({e.strerror or e})"
            summary.failed.extend((job.source, reason) for job in jobs)
            done(summary.total)
            return summary
    if jobs:
        engine(jobs, summary, done)
    return summary


def colorize_files(inputs: Sequence[str | os.PathLike[str]], colorizer: Colorizer | None,
                   options: BatchOptions = BatchOptions(), progress: Progress | None = None,
                   ) -> BatchSummary:
    """Colorize every photo in ``inputs`` (files, folders, glob patterns) as ``options``
    say, with the input's alpha, ICC profile and EXIF where the format allows: the
    planner (:func:`run_batch`) with this process as the engine.

    ``progress(finished, total)`` is called once before the first photo and after each
    one. A photo is skipped when all its outputs exist. With no ``colorizer`` the photos
    are only repaired (``options.restore``, ``chromatize restore``). Raises
    :class:`~chromatize.errors.UsageError` for options the model or the inputs do not
    allow, before any photo is read.
    """
    if colorizer is None:
        if options.restore is None:
            raise UsageError("nothing to do: no model and no repair")
    else:
        check_options(options, colorizer.can_sample, colorizer.index_path)
    return run_batch(inputs, options, lambda jobs, summary, done: colorize_jobs(
        jobs, colorizer, options, summary, done), progress)


def check_options(options: BatchOptions, classification: bool,
                  model_index: Path | None = None) -> None:
    """Raise :class:`~chromatize.errors.UsageError` for options that a model with (or
    without) a ``classification`` head does not allow: what a loaded
    :class:`Colorizer` or a checkpoint's recorded capabilities say
    (:func:`chromatize.checkpoint.read_capabilities`). ``model_index``: the model's own
    index of colour photos for versions, if it ships one."""
    check_size(options.size)
    one = 1 if options.seed is not None else None  # a seed alone: one sampled coloring
    check_capabilities(replace(options.decoding, samples=options.samples or one,
                               seed=options.seed), classification)
    if options.variants is None:
        if options.index is not None or options.variant_strength is not None:
            raise UsageError("an index and a versions' strength apply to --variants")
        if options.variant is not None:
            raise UsageError("a version (variant) needs the number of versions (variants)")
        return
    check_number("variants", options.variants)
    if options.variant is not None and not 1 <= options.variant <= options.variants:
        raise UsageError(f"variant must be from 1 to {options.variants}, got {options.variant}")
    if not classification:
        raise UsageError("versions need a classification model (a colour distribution per "
                         "pixel); this model predicts ab directly")
    if options.samples is not None or options.decoding.prior is not None:
        raise UsageError("versions choose the photo's colours themselves: give --variants "
                         "without --samples, --reference or --palette")
    if options.variant_strength is not None:
        check_number("strength", options.variant_strength)
    index = options.index if options.index is not None else model_index
    if index is None:
        raise UsageError("this model has no index of colour photos for --variants; build "
                         "one with `chromatize index PHOTOS -o my.index` and pass --index")
    from chromatize.inference.variants import load_index

    load_index(index)  # a bad index file is one line, before any photo


def colorize_jobs(jobs: Sequence[Job], colorizer: Colorizer | None, options: BatchOptions,
                  summary: BatchSummary, done: Callable[[int], None] | None = None) -> None:
    """Run planned jobs (skip, read, colorize, write atomically), recording each photo's
    outcome in ``summary`` and calling ``done(summary.total)`` after each: the local
    engine, which every other engine (``chromatize.batch_ray``'s workers) runs its photos
    through too, so that the rules and the outputs are the same."""
    run = _Run(colorizer, options, summary, done)
    try:
        run.colorize(jobs)
    finally:
        run.release_all()


@dataclass
class _Run:
    """One batch under way: what is done so far, and the progress reported."""

    colorizer: Colorizer | None
    options: BatchOptions
    summary: BatchSummary
    done: Callable[[int], None] | None
    #: Outputs this run has claimed (see :func:`chromatize.io.claim_output`) and not yet
    #: written or given up.
    claimed: list[Path] = field(default_factory=list)

    def report(self) -> None:
        if self.done is not None:
            self.done(self.summary.total)

    def colorize(self, jobs: Sequence[Job]) -> None:
        """Skip, read, colorize and write the planned ``jobs``."""
        opts = self.options
        # Samples, seeds, versions and marks are per photo: no batches to share.
        per_photo = (opts.samples is not None or opts.seed is not None
                     or opts.variants is not None or opts.marks is not None)
        most = 1 if per_photo else GROUP_PHOTOS
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
                        yield job, _repaired(photo, opts.restore)
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
                if not claim_output(p):
                    self._release(job)
                    return SKIP_CLAIMED
            except OSError:
                continue  # an unwritable folder: no claim; the write reports it, with why
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


def _repaired(photo: Photo, repair: Repair | None) -> Photo:
    if repair is None:
        return photo
    from chromatize.restore import restore_photo

    return restore_photo(photo, repair)


def _colorize_group(colorizer: Colorizer | None, group: list[tuple[Job, Photo]],
                    options: BatchOptions) -> list[list[Image.Image] | str]:
    """Each photo's colorings, or the reason it failed. A failing batch is retried photo by
    photo so that one bad photo does not sink the others."""
    if colorizer is None:  # repair only: the repaired gray is the result
        from chromatize.restore import with_alpha

        return [[with_alpha(photo.image, photo.alpha)] for _, photo in group]
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
    """One photo's colorings (``samples`` of them, else one: with a ``seed``, the one
    sampled with it), or the reason it failed."""
    try:
        hints = None if options.marks is None else load_hints(options.marks, image)
    except MarksError as e:
        return str(e)
    if hints is not None and hints[2] is None:
        hints = hints[:2]
    samples = 1 if options.seed is not None and options.samples is None else options.samples
    try:
        result = colorizer.colorize(image, size=options.size, samples=samples,
                                    seed=options.seed, hints=hints, decoding=options.decoding,
                                    variants=options.variants, index=options.index,
                                    strength=options.variant_strength,
                                    variant=options.variant)
    except Exception as e:  # noqa: BLE001 - reported as this photo's failure
        return f"colorization failed ({type(e).__name__}: {e})"
    return result if isinstance(result, list) else [result]
