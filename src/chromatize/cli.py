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


@app.command()
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
    from rich.progress import Progress
    from rich.table import Table

    from chromatize.evaluate import evaluate as run_evaluation
    from chromatize.metrics import SUMMARY_METRICS

    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        with Progress(console=err_console, transient=True) as bar:
            task = bar.add_task("evaluating", total=None)
            result = run_evaluation(model, data_dir, out, size=size, limit=limit, seed=seed,
                                    device=device, overwrite=overwrite,
                                    progress=lambda i, n: bar.update(task, completed=i, total=n))
    except ValueError as e:  # CheckpointError, EvaluationError or an unknown --device
        fail(str(e))
    table = Table(title=f"{result['evaluated']} photos (mean / median); skipped: "
                  + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in result["skipped"].items()))
    table.add_column("metric")
    for method in result["metrics"]:
        table.add_column(method, justify="right")
    for key, (label, higher) in SUMMARY_METRICS.items():
        table.add_row(f"{label} {'↑' if higher else '↓'}",
                      *(f"{v[key]['mean']:.3f} / {v[key]['median']:.3f}"
                        for v in result["metrics"].values()))
    console.print(table)
    console.print(f"report: {out / 'report.html'}")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
