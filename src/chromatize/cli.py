"""The ``chromatize`` command line: a thin layer over the Python API.

Each command parses its options, calls one library function and reports the result.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Colorize black-and-white photographs.")
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    """Print one clear error line and exit with ``code``."""
    # escape: messages quote user input such as "[r, g, b]"; soft_wrap keeps one line
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
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


@app.command()
def scribble(
    gray: Path = typer.Argument(..., help="Black-and-white photo."),
    marks: Path = typer.Option(..., "--marks", help="Scribble image (strokes on a copy of "
                               "the photo, or a transparent layer) or JSON list of points."),
    output: Path = typer.Option(..., "-o", "--output", help="Output image."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
) -> None:
    """Colour a photo from a few colour marks (Levin et al. 2004)."""
    from chromatize.classical import levin_colorize_marks
    from chromatize.classical.common import save_atomic
    from chromatize.io import PhotoError

    if output.exists() and not overwrite:
        fail(f"{output}: already exists (pass --overwrite to replace it)")
    try:
        save_atomic(levin_colorize_marks(gray, marks), output, overwrite=overwrite)
    except (PhotoError, ValueError) as e:  # MarksError is a ValueError
        fail(str(e))
    console.print(f"wrote {output}")


def _parse_rect_pair(text: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``"x0,y0,x1,y1:x0,y0,x1,y1"`` (target:reference) -> two 4-tuples."""
    try:
        target, reference = (tuple(int(v) for v in part.split(",")) for part in text.split(":"))
    except ValueError:
        target = reference = ()
    if len(target) != 4 or len(reference) != 4:
        fail(f"--rect {text!r}: expected x0,y0,x1,y1:x0,y0,x1,y1 (target:reference)")
    return target, reference


@app.command()
def transfer(
    gray: Path = typer.Argument(..., help="Photo to colour (a colour photo is recoloured)."),
    reference: Path = typer.Option(..., "--reference", help="Photo whose colours to take."),
    output: Path = typer.Option(..., "-o", "--output", help="Output image."),
    method: str = typer.Option("reinhard", "--method", help="reinhard or welsh."),
    rect: list[str] = typer.Option([], "--rect", help="welsh only, repeatable: matching "
                                   "rectangles x0,y0,x1,y1:x0,y0,x1,y1 (target:reference)."),
    samples: int = typer.Option(200, "--samples", help="welsh only: reference samples."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
) -> None:
    """Colour a photo from a reference photo (Reinhard et al. 2001, Welsh et al. 2002)."""
    from chromatize.classical import reinhard_transfer, welsh_transfer
    from chromatize.classical.common import save_atomic
    from chromatize.io import PhotoError

    if method not in ("reinhard", "welsh"):
        fail(f"--method must be reinhard or welsh, got {method!r}")
    if rect and method != "welsh":
        fail("--rect only applies to --method welsh")
    if output.exists() and not overwrite:
        fail(f"{output}: already exists (pass --overwrite to replace it)")
    rects = [_parse_rect_pair(r) for r in rect]
    try:
        if method == "welsh":
            image = welsh_transfer(gray, reference, samples=samples, rects=rects)
        else:
            image = reinhard_transfer(gray, reference)
        save_atomic(image, output, overwrite=overwrite)
    except PhotoError as e:
        fail(str(e))
    except ValueError as e:  # bad rectangles
        fail(f"{gray}: {e}")
    console.print(f"wrote {output}")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
