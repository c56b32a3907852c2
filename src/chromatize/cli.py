"""The ``chromatize`` command line: a thin layer over the Python API.

Each command parses its options, calls one library function and reports the result.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import MofNCompleteColumn, Progress, ProgressColumn, Task
from rich.text import Text

from chromatize.batch import BatchSummary, colorize_files
from chromatize.io import MAX_PIXELS

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Colorize black-and-white photographs.")
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    """Print one clear error line and exit with ``code``."""
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def info(model: str = typer.Argument(..., help="Checkpoint path or shipped model name.")) -> None:
    """Print what a checkpoint contains: model, kwargs, training config, data, metrics."""
    import json

    from chromatize.checkpoint import CheckpointError
    from chromatize.pipeline import describe_model

    try:
        desc = describe_model(model)
    except CheckpointError as e:
        fail(str(e))
    console.print_json(json.dumps(desc, default=str))


class OutputFormat(str, Enum):
    png = "png"
    jpg = "jpg"
    webp = "webp"
    tif = "tif"


class _RateColumn(ProgressColumn):
    """Images per second, from Rich's own moving speed estimate."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed or 0:.2f} img/s", style="progress.data.speed")


def _print_summary(summary: BatchSummary, quiet: bool) -> None:
    """Each failure on its own line; skips listed per reason (counted when many)."""
    for path, reason in summary.failed:
        err_console.print(f"[red]failed:[/red] {path}: {reason}", highlight=False,
                          soft_wrap=True)
    if quiet:
        return
    by_reason: dict[str, list[Path]] = {}
    for path, reason in summary.skipped:
        by_reason.setdefault(reason, []).append(path)
    for reason, paths in by_reason.items():
        if len(paths) > 10:
            console.print(f"[yellow]skipped:[/yellow] {len(paths)} photos: {reason}",
                          soft_wrap=True)
            continue
        for path in paths:
            console.print(f"[yellow]skipped:[/yellow] {path}: {reason}", highlight=False,
                          soft_wrap=True)
    console.print(f"done {len(summary.done)}, skipped {len(summary.skipped)}, "
                  f"failed {len(summary.failed)}", highlight=False)


@app.command()
def colorize(
    inputs: list[str] = typer.Argument(..., help="Photos, folders (searched recursively) "
                                       "or glob patterns such as 'scans/**/*.tif'."),
    out_dir: Path | None = typer.Option(None, "-o", "--out-dir", help="Output folder; "
                                        "default: beside each input as <stem>_colorized.<ext>."),
    model: str | None = typer.Option(None, "--model", "-m", help="Checkpoint path or the "
                                     "name of a shipped model (default: 'default')."),
    fmt: OutputFormat | None = typer.Option(None, "--format", "-f", help="Output format; "
                                            "default: the input's (PNG if it cannot be written)."),
    size: int | None = typer.Option(None, "--size", min=16, help="Working resolution "
                                    "(long side in pixels); default: the model's."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda, mps or auto."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    recolor: bool = typer.Option(False, "--recolor", help="Also colorize photos that are "
                                 "already in colour (from their luminance)."),
    max_pixels: int = typer.Option(MAX_PIXELS, "--max-pixels", min=1, help="Refuse photos "
                                   "larger than this many pixels (decompression bombs)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only failures."),
) -> None:
    """Colorize black-and-white photos. Exit code 0 only if no photo failed."""
    from chromatize.checkpoint import CheckpointError
    from chromatize.pipeline import Colorizer

    try:
        colorizer = Colorizer.load(model, device=device)
    except (CheckpointError, ValueError) as e:
        fail(f"cannot load model: {e}")
    columns = (*Progress.get_default_columns(), MofNCompleteColumn(), _RateColumn())
    with Progress(*columns, console=err_console, disable=quiet, transient=True) as bar:
        task = bar.add_task("colorizing", total=None)
        summary = colorize_files(
            inputs, colorizer, out_dir=out_dir, fmt=fmt.value if fmt else None,
            overwrite=overwrite, recolor=recolor, size=size, max_pixels=max_pixels,
            progress=lambda finished, total: bar.update(task, completed=finished, total=total))
    if summary.total == 0:
        fail("no photos found in " + " ".join(inputs))
    _print_summary(summary, quiet)
    if summary.failed:
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
