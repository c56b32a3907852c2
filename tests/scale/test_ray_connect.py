"""``--engine ray --address`` of a cluster that is not there: one line after a bounded
wait, not Ray's endless retries. Each case runs the CLI in its own process, since a
connection attempt that never ends is left behind in a thread."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import gray_photo

pytest.importorskip("ray", reason="--engine ray needs Ray (pip install 'chromatize[scale]')")

SRC = Path(__file__).parents[2] / "src"


def colorize_on(tmp_path: Path, address: str, *extra: str) -> subprocess.CompletedProcess:
    gray_photo().save(tmp_path / "a.png")
    return subprocess.run(
        [sys.executable, "-m", "chromatize.cli", "colorize", str(tmp_path / "a.png"),
         "-o", str(tmp_path / "out"), "--engine", "ray", "--address", address, *extra],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(SRC)})


def test_nothing_listening_is_one_line_at_once(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = colorize_on(tmp_path, f"127.0.0.1:{port}")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"error: cannot connect to the Ray cluster at 127.0.0.1:{port}: Connection refused "
        "(is `ray start --head` running there?)"]


def test_a_cluster_that_never_answers_is_given_up(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()  # accepts connections and never says a word
        address = f"127.0.0.1:{s.getsockname()[1]}"
        result = colorize_on(tmp_path, address, "--connect-timeout", "3")
    assert result.returncode == 2, result.stderr
    # Ray's own C++ log lines may come before ours; ours is the one error line.
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: cannot connect to the Ray cluster at {address}: no answer "
                      "within 3 s (--connect-timeout)"]
    assert "Traceback" not in result.stderr


def test_connect_timeout_needs_the_ray_engine(tmp_path):
    from typer.testing import CliRunner

    from chromatize.cli import app

    gray_photo().save(tmp_path / "a.png")
    result = CliRunner().invoke(app, ["colorize", str(tmp_path / "a.png"),
                                      "--connect-timeout", "5"])
    assert result.exit_code == 2 and "apply to --engine ray" in result.output
