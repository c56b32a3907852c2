"""The ``chromatize`` command line: a thin layer over the Python API.

Each command parses its options, calls one library function and reports the result.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Colorize black-and-white photographs.")
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    """Print one clear error line and exit with ``code``."""
    err_console.print(f"[red]error:[/red] {message}", highlight=False)
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


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
