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


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
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

    from chromatize.config import ConfigError, load_config, read_yaml
    from chromatize.train import TrainError
    from chromatize.train import train as run_training

    # Typer hands unknown options to the optional CONFIG argument when it is omitted.
    tokens = ([config] if config is not None else []) + list(ctx.args)
    overrides = [t for t in tokens if t.startswith("--")]
    paths = [t for t in tokens if not t.startswith("--")]
    if len(paths) > 1:
        fail(f"expected one config file, got {' '.join(paths)} (overrides need --key=VALUE)")
    if not paths and resume is None:
        fail("give a CONFIG file, or --resume RUN_DIR")
    # Under torchrun every process scans the data; only rank 0 reports it.
    quiet = os.environ.get("RANK", "0") != "0"
    logging.basicConfig(level=logging.ERROR if quiet else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=err_console, show_path=False)])
    try:
        base = None
        if resume is not None:
            if not (resume / "config.yaml").is_file():
                fail(f"{resume}: not a run folder (no config.yaml)")
            base = read_yaml(resume / "config.yaml")
        cfg = load_config(paths[0] if paths else None, overrides, base=base)
        run_dir = run_training(cfg, resume=resume)
    except (ConfigError, TrainError) as e:
        fail(str(e))
    console.print(f"model written to {run_dir / 'model.json'}")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
