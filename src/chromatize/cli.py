"""The ``chromatize`` command line: a thin layer over the Python API.

Each command parses its options, calls one library function and reports the result. A
:class:`~chromatize.errors.ChromatizeError` (something the user can fix) becomes one
``error: ...`` line and exit code 2; any other exception is a bug and keeps its
traceback. Heavy modules (torch, the models) are imported inside the commands that need
them, so ``chromatize --help`` and every ``--help`` stay fast.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import MofNCompleteColumn, Progress, ProgressColumn, Task
from rich.text import Text

from chromatize.errors import ChromatizeError, UsageError

if TYPE_CHECKING:
    from chromatize.batch import BatchSummary

#: ``chromatize.io.MAX_PIXELS``, repeated so that --help does not import numpy and Pillow
#: (a test checks that the two agree).
MAX_PIXELS = 200_000_000
#: ``chromatize.server.app.MAX_PIXELS``, the server's own, lower limit (likewise).
SERVE_MAX_PIXELS = 50_000_000


# Options that several commands share, declared once.
ModelOption = Annotated[str | None, typer.Option(
    "--model", "-m", help="Checkpoint path or a shipped model: default (the default), open "
    "(free of research-use terms) or hints (default plus hint adapters, for --marks).")]
SizeOption = Annotated[int | None, typer.Option(
    "--size", min=16, help="Working resolution (long side in pixels); default: the model's.")]
DeviceOption = Annotated[str, typer.Option("--device", help="cpu, cuda, mps or auto.")]
RestoreOption = Annotated[str | None, typer.Option(
    "--restore", help="Repair the gray first: all, or some of cracks,dust,grain,fade "
    "(see chromatize restore).")]
GainOption = Annotated[float | None, typer.Option(
    "--gain", help="Classification models: multiply the colours' saturation, every hue "
    "kept (1 as trained; ~1.2-1.35 vivid; at most 3).")]

BoostOption = Annotated[float | None, typer.Option(
    "--boost", help="Classification models: favour rare, saturated colours (0 muted, "
    "~0.5-1 vivid; at most 3).")]
ReferenceOption = Annotated[list[str] | None, typer.Option(
    "--reference", help="A colour photo of the same place, people or era whose colours "
    "this photo has (repeatable; PATH:x0,y0,x1,y1 takes a region). The network still "
    "places the colours. Classification models.")]
PaletteOption = Annotated[str | None, typer.Option(
    "--palette", help="Colours you know the photo has, e.g. '#8b2e2e,#2e4d8b:0.3,#d8b48a' "
    "(optional weights after ':'). Classification models.")]
StrengthOption = Annotated[float | None, typer.Option(
    "--strength", help="How strongly --reference, --palette or --variants steer the "
    "colours (defaults 0.4, 0.75 and 1; 0 off; at most 3).")]

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Colorize black-and-white photographs.")
console = Console()
err_console = Console(stderr=True)


def say(*parts: str | tuple[str, str], err: bool = False) -> None:
    """Print one line made of ``parts``: plain strings exactly as they are, ``(text,
    style)`` pairs styled. Nothing is read as Rich markup, so file names and messages
    that quote the user (``[red]x.jpg``, ``a[/]b.png``, ``[r, g, b]``) print as
    themselves; soft_wrap keeps the line whole."""
    (err_console if err else console).print(Text.assemble(*parts), highlight=False,
                                            soft_wrap=True)


def fail(message: str, code: int = 2) -> None:
    """Print one clear error line and exit with ``code``."""
    say(("error:", "red"), " ", message, err=True)
    raise typer.Exit(code)


def command(*args: Any, **kwargs: Any) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``app.command`` whose function reports a :class:`ChromatizeError` as one line."""

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(fn)
        def run(*a: Any, **kw: Any) -> None:
            try:
                fn(*a, **kw)
            except ChromatizeError as e:
                fail(str(e))

        return app.command(*args, **kwargs)(run)

    return register


@command()
def info(model: str = typer.Argument(..., help="Checkpoint path or shipped model name.")) -> None:
    """Print what a checkpoint contains: model, kwargs, training config, data, metrics."""
    import json

    from chromatize.checkpoint import describe_model

    desc = describe_model(model)
    console.print_json(json.dumps(desc, default=str))


@command()
def evaluate(
    data_dir: Path = typer.Argument(..., help="Folder of colour photos (ground truth)."),
    model: list[str] = typer.Option(
        ..., "--model", "-m", help="Checkpoint path or shipped model name; repeat to compare."),
    out: Path = typer.Option(Path("report"), "--out", "-o", help="Report folder."),
    size: int | None = typer.Option(
        None, "--size", min=8, help="Resize photos to SIZE x SIZE first (256: Zhang/DDColor)."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most this many photos."),
    seed: int = typer.Option(0, "--seed", help="Picks the --limit photos and the examples."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, mps or auto."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing report."),
    threads: int | None = typer.Option(
        None, "--threads", min=1, help="CPU threads for torch (1 is fastest on a busy machine)."),
) -> None:
    """Score models on colour photos made gray; write metrics.json, per_image.csv, report.html."""
    from rich.table import Table

    from chromatize.evaluation.evaluate import evaluate as run_evaluation
    from chromatize.evaluation.metrics import SUMMARY_METRICS

    if threads:
        import torch

        torch.set_num_threads(threads)
    with Progress(console=err_console, transient=True) as bar:
        task = bar.add_task("evaluating", total=None)
        result = run_evaluation(model, data_dir, out, size=size, limit=limit, seed=seed,
                                device=device, overwrite=overwrite,
                                progress=lambda i, n: bar.update(task, completed=i, total=n))
    table = Table(title=f"{result['evaluated']} photos (mean / median); skipped: "
                  + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in result["skipped"].items()))
    table.add_column("metric")
    for method in result["metrics"]:
        table.add_column(Text(method), justify="right")  # a path: not markup
    for key, (label, higher) in SUMMARY_METRICS.items():
        table.add_row(f"{label} {'↑' if higher else '↓'}",
                      *(f"{v[key]['mean']:.3f} / {v[key]['median']:.3f}"
                        for v in result["metrics"].values()))
    console.print(table)
    for reason in ("unreadable", "too_small"):
        for name in result["skipped_files"][reason]:
            say(("skipped:", "yellow"), f" {data_dir / name}: {reason.replace('_', ' ')}")
    say(f"report: {out / 'report.html'}")


@command()
def scribble(
    gray: Path = typer.Argument(..., help="Black-and-white photo."),
    marks: Path = typer.Option(..., "--marks", help="Scribble image (strokes on a copy of "
                               "the photo, or a transparent layer) or JSON list of points."),
    output: Path = typer.Option(..., "-o", "--output", help="Output image."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
    max_pixels: int = typer.Option(MAX_PIXELS, "--max-pixels", min=1, help="Refuse photos "
                                   "larger than this many pixels (decompression bombs)."),
) -> None:
    """Colour a photo from a few colour marks (Levin et al. 2004)."""
    from chromatize.classical import levin_colorize_marks
    from chromatize.io import read_photo, write_photo

    image = levin_colorize_marks(read_photo(gray, max_pixels=max_pixels), marks)
    write_photo(image, output, overwrite=overwrite)
    say(f"wrote {output}")


@command()
def transfer(
    gray: Path = typer.Argument(..., help="Photo to colour (a colour photo is recoloured)."),
    reference: Path = typer.Option(..., "--reference", help="Photo whose colours to take."),
    output: Path = typer.Option(..., "-o", "--output", help="Output image."),
    method: str = typer.Option("reinhard", "--method", help="reinhard or welsh."),
    rect: list[str] = typer.Option([], "--rect", help="welsh only, repeatable: matching "
                                   "rectangles x0,y0,x1,y1:x0,y0,x1,y1 (target:reference)."),
    samples: int = typer.Option(200, "--samples", help="welsh only: reference samples."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
    max_pixels: int = typer.Option(MAX_PIXELS, "--max-pixels", min=1, help="Refuse photos "
                                   "larger than this many pixels (decompression bombs)."),
) -> None:
    """Colour a photo from a reference photo (Reinhard et al. 2001, Welsh et al. 2002)."""
    from chromatize.classical.transfer import parse_rect_pair, reinhard_transfer, welsh_transfer
    from chromatize.io import read_photo, write_photo

    if method not in ("reinhard", "welsh"):
        fail(f"--method must be reinhard or welsh, got {method!r}")
    if rect and method != "welsh":
        fail("--rect only applies to --method welsh")
    rects = [parse_rect_pair(r) for r in rect]
    target, ref = read_photo(gray, max_pixels), read_photo(reference, max_pixels)
    try:
        if method == "welsh":
            image = welsh_transfer(target, ref, samples=samples, rects=rects)
        else:
            image = reinhard_transfer(target, ref)
    except UsageError as e:  # rectangles outside the photos: name the photo
        fail(f"{gray}: {e}")
    write_photo(image, output, overwrite=overwrite)
    say(f"wrote {output}")


@command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(
    ctx: typer.Context,
    config: str | None = typer.Argument(
        None, help="Experiment YAML (e.g. configs/default.yaml); optional with --resume."),
    resume: Path | None = typer.Option(
        None, "--resume", help="Continue this run folder (its config.yaml unless CONFIG is given)."),
) -> None:
    """Train a model. Override any config key with --section.key=VALUE, e.g.
    --train.max_steps=2 --data.workers=0. Works under torchrun for several processes."""
    import logging
    import os

    from rich.logging import RichHandler

    from chromatize.training.config import run_config
    from chromatize.training.train import train as run_training

    # Typer hands unknown options to the optional CONFIG argument when it is omitted.
    tokens = ([config] if config is not None else []) + list(ctx.args)
    overrides = [t for t in tokens if t.startswith("--")]
    paths = [t for t in tokens if not t.startswith("--")]
    if len(paths) > 1:
        fail(f"expected one config file, got {' '.join(paths)} (overrides need --key=VALUE)")
    # Under torchrun every process scans the data; only rank 0 reports it.
    quiet = os.environ.get("RANK", "0") != "0"
    logging.basicConfig(level=logging.ERROR if quiet else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=err_console, show_path=False)])
    run_dir = run_training(run_config(paths[0] if paths else None, overrides, resume),
                           resume=resume)
    say(f"model written to {run_dir / 'model.json'}")


@command("ab-prior")
def ab_prior(
    source: list[str] = typer.Argument(..., help="Training photos: folders or .txt lists."),
    output: Path = typer.Option(..., "-o", "--output", help="JSON file to write."),
    side: int = typer.Option(64, "--side", min=8, help="Short side photos are shrunk to."),
) -> None:
    """Compute the ab colour distribution of a training set, for class rebalancing
    (loss rebalanced_ce, loss.kwargs.prior)."""
    from chromatize.training.quantize import compute_prior_file

    summary = compute_prior_file(source, output, side=side)
    say(f"wrote {output}: {summary['count']} photos ({summary['skipped_gray']} gray, "
        f"{summary['skipped_unreadable']} unreadable skipped)")


@command("index")
def index_command(
    inputs: list[str] = typer.Argument(..., help="Colour photos: files, folders (searched "
                                       "recursively), glob patterns or .txt lists of paths."),
    output: Path = typer.Option(..., "-o", "--output", help="Index file to write, e.g. "
                                "town.index (its JSON goes beside it)."),
    model: ModelOption = None,
    terms: str = typer.Option("", "--terms", help="The photos' terms (licence, source), "
                              "written into the index's JSON."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing index."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Index colour photos for --variants (versions from the photos most like each one):
    e.g. colour photos of a town and era, then `colorize --variants 4 --index town.index`."""
    from chromatize.batch import find_photos
    from chromatize.inference.pipeline import Colorizer
    from chromatize.inference.variants import write_index

    photos: list[Path] = []
    for item in inputs:
        if item.endswith(".txt") and Path(item).is_file():
            lines = (ln.strip() for ln in Path(item).read_text().splitlines())
            photos.extend(Path(item).parent / ln for ln in lines if ln and ln[0] != "#")
        else:
            found, missing = find_photos([item])
            if missing:
                raise UsageError(f"{missing[0][0]}: {missing[0][1]}")
            photos.extend(p for p, _ in found)
    colorizer = Colorizer.load(model, device="cpu", backend="torch")
    with Progress(*Progress.get_default_columns(), MofNCompleteColumn(), console=err_console,
                  disable=quiet, transient=True) as bar:
        task = bar.add_task("indexing", total=len(photos))
        index, skipped = write_index(photos, output, colorizer, terms, progress=lambda done,
                                     total: bar.update(task, completed=done))
    for path, reason in skipped:
        err_console.print(f"[yellow]skipped:[/yellow] {path}: {reason}", highlight=False,
                          soft_wrap=True)
    console.print(f"wrote {output}: {len(index)} photos ({len(skipped)} left out)")


class Engine(str, Enum):
    local = "local"
    ray = "ray"


class Backend(str, Enum):
    auto = "auto"
    torch = "torch"
    onnx = "onnx"


@command()
def export(
    model: str = typer.Argument(..., help="Checkpoint path or shipped model name."),
    output: Path = typer.Option(..., "-o", "--output", help="ONNX file to write (.onnx)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing file."),
) -> None:
    """Export a model's network to ONNX, for `colorize --model FILE.onnx` (ONNX Runtime)."""
    from chromatize.inference.onnx_export import export_model

    say(f"wrote {export_model(model, output, overwrite=overwrite)}")


class _RateColumn(ProgressColumn):
    """Images per second, from Rich's own moving speed estimate."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:.2f} img/s", style="progress.data.speed")


class OutputFormat(str, Enum):
    png = "png"
    jpg = "jpg"
    webp = "webp"
    tif = "tif"


def _print_summary(summary: BatchSummary, quiet: bool) -> None:
    """Each failure on its own line; skips listed per reason (counted when many)."""
    for path, reason in summary.failed:
        say(("failed:", "red"), f" {path}: {reason}", err=True)
    if quiet:
        return
    by_reason: dict[str, list[Path]] = {}
    for path, reason in summary.skipped:
        by_reason.setdefault(reason, []).append(path)
    for reason, paths in by_reason.items():
        if len(paths) > 10:
            say(("skipped:", "yellow"), f" {len(paths)} photos: {reason}")
            continue
        for path in paths:
            say(("skipped:", "yellow"), f" {path}: {reason}")
    say(f"done {len(summary.done)}, skipped {len(summary.skipped)}, "
        f"failed {len(summary.failed)}")


# The options of colorize that only it takes.
SamplesOption = Annotated[int | None, typer.Option("--samples", help="Write K plausible "
                                           "colorings per photo as <stem>_1..<stem>_K "
                                           "(classification models; K at most 64).")]
SeedOption = Annotated[int | None, typer.Option("--seed", help="Seed of --samples (default 0); "
                                        "alone: the one coloring sampled with it.")]
VariantsOption = Annotated[int | None, typer.Option("--variants", help="Write K versions per "
                                            "photo as <stem>_1..<stem>_K: the automatic result, "
                                            "then each with the colours of a group of the "
                                            "indexed colour photos most like it, the likeliest "
                                            "first (K at most 16; --strength sets how "
                                            "strongly).")]
IndexOption = Annotated[Path | None, typer.Option("--index", help="--variants: an index of your "
                                          "own colour photos (`chromatize index`); default: the "
                                          "model's.")]
MarksOption = Annotated[Path | None, typer.Option("--marks", help="Colour marks for a single "
                                          "photo: strokes drawn on a copy, a transparent layer, "
                                          "a JSON list of points, or a fix saved by `chromatize "
                                          "serve` (its boost, gain, seed, palette, strength, "
                                          "version, restore and model apply unless given "
                                          "here; its reference photo is given with "
                                          "--reference). Any "
                                          "model.")]
BackendOption = Annotated[Backend, typer.Option("--backend", help="Run a checkpoint in "
                                        "torch or onnx (ONNX Runtime); auto: onnx on the CPU when "
                                        "installed.")]
EngineOption = Annotated[Engine, typer.Option("--engine", help="local: this process; ray: "
                                      "a Ray Data pipeline over a pool of workers.")]
AddressOption = Annotated[str | None, typer.Option("--address", help="--engine ray: the cluster "
                                           "(auto, or HOST:PORT); default: a local Ray instance.")]
WorkersOption = Annotated[int | None, typer.Option("--workers", min=1, help="--engine ray: number "
                                           "of workers (default: one per CPU of the cluster).")]
ConnectTimeoutOption = Annotated[float | None, typer.Option("--connect-timeout", min=0.1, help="--engine ray: seconds to wait for the "
            "cluster at --address to answer (default 30).")]


@command()
def colorize(
    inputs: list[str] = typer.Argument(..., help="Photos, folders (searched recursively) "
                                       "or glob patterns such as 'scans/**/*.tif'."),
    out_dir: Path | None = typer.Option(None, "-o", "--out-dir", help="Output folder; "
                                        "default: beside each input as <stem>_colorized.<ext>."),
    model: ModelOption = None,
    fmt: OutputFormat | None = typer.Option(None, "--format", "-f", help="Output format; "
                                            "default: the input's (PNG if it cannot be written)."),
    size: SizeOption = None,
    device: DeviceOption = "auto",
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    recolor: bool = typer.Option(False, "--recolor", help="Also colorize photos that are "
                                 "already in colour (from their luminance)."),
    max_pixels: int = typer.Option(MAX_PIXELS, "--max-pixels", min=1, help="Refuse photos "
                                   "larger than this many pixels (decompression bombs)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only failures."),
    samples: SamplesOption = None,
    seed: SeedOption = None,
    variants: VariantsOption = None,
    index: IndexOption = None,
    marks: MarksOption = None,
    boost: BoostOption = None,
    gain: GainOption = None,
    reference: ReferenceOption = None,
    palette: PaletteOption = None,
    strength: StrengthOption = None,
    restore: RestoreOption = None,
    backend: BackendOption = Backend.auto,
    engine: EngineOption = Engine.local,
    address: AddressOption = None,
    workers: WorkersOption = None,
    connect_timeout: ConnectTimeoutOption = None,
) -> None:
    """Colorize black-and-white photos. Exit code 0 only if no photo failed."""
    from chromatize.batch import BatchOptions

    _check_engine(engine, address, workers, connect_timeout, marks)
    fix = _read_fix(marks)
    variant = None
    if fix is not None:  # its decoding reproduces the page's result; options given here win
        model, boost, gain, palette, strength, restore, fix_seed = _with_fix(
            fix, model, boost, gain, palette, strength, restore, seed)
        seed = fix_seed if samples is None else seed  # a fix's seed is one coloring
        variants, variant = _fix_version(fix, variants, samples, reference, palette)
        _warn_missing_reference(fix, marks, reference, quiet)
    decoding = _decoding(boost, gain, reference, palette,
                         strength if variants is None else None, max_pixels)
    options = BatchOptions(out_dir=out_dir, fmt=fmt.value if fmt else None,
                           overwrite=overwrite, recolor=recolor, size=size,
                           max_pixels=max_pixels, samples=samples, seed=seed, marks=marks,
                           decoding=decoding, restore=_repair(restore), variants=variants,
                           index=index, variant_strength=None if variants is None else strength,
                           variant=variant)
    run = _batch_runner(model, options, device, backend.value, engine is Engine.ray, address,
                        workers, connect_timeout)
    columns = (*Progress.get_default_columns(), MofNCompleteColumn(), _RateColumn())
    with Progress(*columns, console=err_console, disable=quiet, transient=True) as bar:
        task = bar.add_task("colorizing", total=None)
        summary = run(inputs, lambda done, total: bar.update(task, completed=done, total=total))
    _end_batch(summary, inputs, quiet)


def _warn_missing_reference(fix: Any, marks: Path, reference: list[str] | None,
                            quiet: bool) -> None:
    """A fix made with a reference photo cannot hold it: say so when it is not given."""
    if fix.reference and not reference and not quiet:
        say(("warning:", "yellow"), f" {marks.name} was made with the reference photo "
            f"{fix.reference!r}: give it with --reference to reproduce it", err=True)


def _check_engine(engine: Engine, address: str | None, workers: int | None,
                  connect_timeout: float | None, marks: Path | None) -> None:
    """The engine's options, checked together: one line for a combination that cannot be."""
    if engine is Engine.local and (address, workers, connect_timeout) != (None, None, None):
        fail("--address, --workers and --connect-timeout apply to --engine ray")
    if engine is Engine.ray and marks is not None:
        fail("--marks colour a single photo; use --engine local")


def _end_batch(summary: BatchSummary, inputs: list[str], quiet: bool) -> None:
    """Report a batch; exit code 1 when a photo failed."""
    if summary.total == 0:
        fail("no photos found in " + " ".join(inputs))
    _print_summary(summary, quiet)
    if summary.failed:
        raise typer.Exit(1)


def _repair(steps: str | None) -> Any:
    """``--restore`` / ``--steps`` -> a :class:`chromatize.restore.Repair`, or None."""
    if steps is None:
        return None
    try:
        from chromatize.restore import Repair, parse_steps
    except ImportError as e:
        fail(f"repair needs OpenCV: pip install 'chromatize[restore]' ({e})")
    chosen = parse_steps(steps)
    return Repair(chosen) if chosen else None


@command("restore")
def restore_photos(
    inputs: list[str] = typer.Argument(..., help="Photos, folders (searched recursively) "
                                       "or glob patterns such as 'scans/**/*.tif'."),
    out_dir: Path = typer.Option(..., "-o", "--out-dir", help="Output folder."),
    steps: str = typer.Option("all", "--steps", help="all, or some of cracks,dust,grain,fade."),
    fmt: OutputFormat | None = typer.Option(None, "--format", "-f", help="Output format; "
                                            "default: the input's (PNG if it cannot be written)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    recolor: bool = typer.Option(False, "--recolor", help="Also repair photos that are "
                                 "in colour (their luminance)."),
    max_pixels: int = typer.Option(MAX_PIXELS, "--max-pixels", min=1, help="Refuse photos "
                                   "larger than this many pixels (decompression bombs)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only failures."),
) -> None:
    """Repair old photos (cracks, scratches, dust, grain, fading) and write them gray,
    named as colorize names them. Exit code 0 only if no photo failed."""
    from chromatize.batch import BatchOptions, colorize_files

    repair = _repair(steps)
    if repair is None:
        fail("--steps names no repair step")
    options = BatchOptions(out_dir=out_dir, fmt=fmt.value if fmt else None, overwrite=overwrite,
                           recolor=recolor, max_pixels=max_pixels, restore=repair)
    with Progress(*Progress.get_default_columns(), MofNCompleteColumn(), console=err_console,
                  disable=quiet, transient=True) as bar:
        task = bar.add_task("repairing", total=None)
        summary = colorize_files(inputs, None, options, progress=lambda finished, total:
                                 bar.update(task, completed=finished, total=total))
    _end_batch(summary, inputs, quiet)



def _with_fix(fix: Any, model: str | None, boost: float | None, gain: float | None,
              palette: str | None, strength: float | None, restore: str | None,
              seed: int | None) -> tuple[Any, ...]:
    """The settings of a fix saved by the page where the command line gives none, so that
    its result is reproduced: (model, boost, gain, palette, strength, restore, seed)."""
    return (model or fix.model, _given(boost, fix.boost), _given(gain, fix.gain),
            _given(palette, fix.palette), _given(strength, fix.strength),
            _given(restore, fix.restore), _given(seed, fix.seed))


def _given(option: Any, from_file: Any) -> Any:
    """A command-line option, or the file's setting where the option was not given."""
    return from_file if option is None else option


def _fix_version(fix: Any, variants: int | None, samples: int | None,
                 reference: list[str] | None, palette: str | None,
                 ) -> tuple[int | None, int | None]:
    """(variants, variant): the fix's version (``variant`` of ``k``, written alone as the
    photo's output), unless the command line asks for versions, samples or colours of
    its own."""
    if fix.variant is None or variants is not None or samples is not None or reference \
            or (palette is not None and palette != fix.palette):
        return variants, None
    return fix.k, fix.variant


def _batch_runner(model: str | None, options: Any, device: str, backend: str, ray: bool,
                  address: str | None, workers: int | None, connect_timeout: float | None,
                  ) -> Callable[[list[str], Callable[[int, int], None]], BatchSummary]:
    """``run(inputs, progress)``: the batch on Ray, or in this process with the model
    loaded here, now (before any progress bar, so a model that fails is one line)."""
    if ray:
        from chromatize.batch_ray import colorize_files_ray

        timeout = {} if connect_timeout is None else {"connect_timeout": connect_timeout}
        return lambda inputs, progress: colorize_files_ray(
            inputs, model, options, device=device, backend=backend, address=address,
            workers=workers, progress=progress, **timeout)
    from chromatize.batch import colorize_files
    from chromatize.inference.pipeline import Colorizer

    try:
        colorizer = Colorizer.load(model, device=device, backend=backend)
    except UsageError:
        raise  # an option out of range, not the model's fault: reported as it is
    except ChromatizeError as e:
        fail(f"cannot load model: {e}")
    return lambda inputs, progress: colorize_files(inputs, colorizer, options,
                                                   progress=progress)


def _read_fix(marks: Path | None) -> Any:
    """The settings of a fix saved by the page (:func:`chromatize.imaging.hints.load_fix`)
    when ``marks`` is a JSON file; None otherwise, or when it cannot be read: the batch
    then reports that for the photo, as for any marks."""
    if marks is None or marks.suffix.lower() != ".json":
        return None
    from chromatize.imaging.hints import MarksError, load_fix

    try:
        return load_fix(marks)
    except MarksError:
        return None


def _given(option: Any, from_file: Any) -> Any:
    """A command-line option, or the file's setting where the option was not given."""
    return from_file if option is None else option


class _FpsColumn(ProgressColumn):
    """Frames per second, from Rich's own moving speed estimate."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:.1f} fps", style="progress.data.speed")


@command()
def video(
    source: Path = typer.Argument(..., help="Black-and-white film: any file FFmpeg reads."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Output video (.mp4, "
                                       ".mkv, .mov, .webm, .avi); default: <stem>_colorized "
                                       "beside the input, in its container if writable."),
    model: ModelOption = None,
    boost: BoostOption = None,
    gain: GainOption = None,
    reference: ReferenceOption = None,
    palette: PaletteOption = None,
    strength: StrengthOption = None,
    temporal: bool = typer.Option(True, "--temporal/--no-temporal", help="Carry colours "
                                  "along the motion (steady colours); --no-temporal colours "
                                  "each frame on its own."),
    size: int | None = typer.Option(None, "--size", min=16, help="Working resolution of the "
                                    "network (long side); default: the model's."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Colorize a black-and-white film: frame count, rate, time stamps and audio kept.
    Exit code 1 when the film ends before the frames its container promises."""
    from rich.progress import TimeRemainingColumn

    try:
        from chromatize.video import colorize_video
    except ImportError as e:
        fail(f"chromatize video needs PyAV and OpenCV: pip install 'chromatize[video]' ({e})")
    decoding = _decoding(boost, gain, reference, palette, strength)
    columns = (*Progress.get_default_columns()[:-1], MofNCompleteColumn(), _FpsColumn(),
               TimeRemainingColumn())
    # No bar when stderr is not a terminal (logs, pipes): it would only add blank lines.
    with Progress(*columns, console=err_console, transient=True,
                  disable=quiet or not err_console.is_terminal) as bar:
        task = bar.add_task(escape(f"colorizing {source.name}"), total=None)  # markup
        stats = colorize_video(
            source, output, model=model, decoding=decoding, temporal=temporal, size=size,
            overwrite=overwrite,
            progress=lambda done, total: bar.update(task, completed=done, total=total))
    if not quiet:
        say(f"wrote {stats.output}: {stats.frames} frames {stats.width}x{stats.height}, "
            f"{stats.fps:.1f} fps" + (f", {stats.cuts} scene cuts" if stats.cuts else "")
            + (f", {stats.audio_streams} audio stream(s) copied" if stats.audio_streams else ""))
    if stats.missing_frames:
        # The readable part is written (a cut film's start is still worth having); the
        # exit code says it is not the whole film, as a batch's does for failed photos.
        say(("warning:", "yellow"), f" {source}: the file says {stats.expected_frames} frames "
            f"but only {stats.frames} could be read (truncated?); {stats.output} is short",
            err=True)
        raise typer.Exit(1)


def _decoding(boost: float | None, gain: float | None, reference: list[str] | None,
              palette: str | None, strength: float | None,
              max_pixels: int = MAX_PIXELS) -> Any:
    """The run's :class:`~chromatize.decoding.Decoding`, checked (and its reference photos
    read) once, before any photo or frame: a bad value is one line."""
    from chromatize.decoding import Decoding
    from chromatize.priors import image_prior

    prior = image_prior(reference or None, palette, strength, max_pixels=max_pixels)
    return Decoding(boost=boost, gain=gain, prior=prior)


def _parse_point(text: str) -> tuple[float, float]:
    """``"X,Y"`` -> (x, y) in image pixels."""
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"--at {text!r}: expected X,Y in image pixels, e.g. --at 120,45"
                         ) from None
    return x, y


@command()
def suggest(
    photo: Path = typer.Argument(..., help="Black-and-white photo."),
    at: str = typer.Option(..., "--at", help="The pixel X,Y (from the top left corner)."),
    k: int = typer.Option(6, "-k", "--k", min=1, help="How many colours."),
    model: ModelOption = None,
    size: SizeOption = None,
    device: DeviceOption = "auto",
    as_json: bool = typer.Option(False, "--json", help="Print JSON: [{color, probability}]."),
) -> None:
    """The k most likely colours at a pixel, with their probabilities (classification
    models): a palette to pick marks from."""
    import json

    from chromatize.inference.pipeline import Colorizer

    x, y = _parse_point(at)
    colours = Colorizer.load(model, device=device).suggest(photo, x, y, k=k, size=size)
    if as_json:
        print(json.dumps([{"color": c, "probability": round(p, 4)} for c, p in colours]))
        return
    for c, p in colours:
        console.print(f"[on {c}]      [/] {c}  {p:6.1%}", highlight=False)


@command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on; the default "
                             "is this computer only. 0.0.0.0 opens it to the network."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
    model: str = typer.Option("default", "--model", "-m", help="Checkpoint path or a "
                              "shipped model: default, open, or hints (marks spread further)."),
    max_upload_mb: float = typer.Option(50, "--max-upload-mb", min=0.001,
                                        help="Largest photo accepted, in MB (413 above)."),
    max_pixels: int = typer.Option(SERVE_MAX_PIXELS, "--max-pixels", min=1, help="Refuse "
                                   "uploads larger than this many pixels, from their header "
                                   "before decoding (decompression bombs)."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Model calls run at "
                                       "once (default: one per two cores, at most 4)."),
) -> None:
    """Colorize photos and fix their colours in the browser: a page on http://HOST:PORT/."""
    import ipaddress

    try:
        import uvicorn

        from chromatize.server import create_app
    except ImportError as e:
        fail(f"chromatize serve needs the serve extra ({e.name} is missing): "
             "pip install 'chromatize[serve]'")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name
        loopback = False
    if not loopback:
        say(("warning:", "yellow"), f" listening on {host}: anyone who can reach this machine "
            "can use the page and its CPU; there is no login", err=True)
    try:
        web_app = create_app(model, max_upload_mb=max_upload_mb, workers=workers,
                             max_pixels=max_pixels)
    except ChromatizeError as e:
        fail(f"cannot load model: {e}")
    shown = f"[{host}]" if ":" in host else host
    say(f"chromatize: open http://{'127.0.0.1' if host in ('0.0.0.0', '::') else shown}"
        f":{port}/ in a browser (Ctrl+C stops)")
    # uvicorn handles Ctrl+C: it stops accepting, finishes running requests, then the
    # app's lifespan drops queued model calls.
    uvicorn.run(web_app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
