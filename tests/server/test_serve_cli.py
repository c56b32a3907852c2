"""``chromatize serve``: options, the warning for non-loopback hosts, imports kept out of
the CLI's start-up, and a clean stop on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serve_helpers import free_port
from typer.testing import CliRunner

import chromatize.server
from chromatize.cli import app

runner = CliRunner()
SRC = Path(__file__).parents[2] / "src"


@pytest.fixture
def started(monkeypatch):
    """Replaces the app and uvicorn.run: records what `serve` would have run."""
    import uvicorn

    calls: dict = {}
    monkeypatch.setattr(chromatize.server, "create_app",
                        lambda model, **kw: calls.update(model=model, **kw) or "APP")
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.update(app=app, **kw))
    return calls


def test_defaults_bind_to_this_computer_only(started):
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 0, result.output
    assert started["app"] == "APP" and started["model"] == "default"
    assert (started["host"], started["port"], started["max_upload_mb"]) == ("127.0.0.1", 8000, 50)
    assert "warning" not in result.output
    assert "http://127.0.0.1:8000/" in result.output


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "myhost.example"])
def test_other_hosts_print_a_warning(started, host):
    result = runner.invoke(app, ["serve", "--host", host, "--port", "9001",
                                 "--max-upload-mb", "5", "--model", "some.ckpt"])
    assert result.exit_code == 0, result.output
    assert "warning: listening on " + host in " ".join(result.output.split())
    assert (started["host"], started["port"], started["max_upload_mb"], started["model"]) == (
        host, 9001, 5, "some.ckpt")


def test_a_missing_model_is_one_line(tmp_path):
    result = runner.invoke(app, ["serve", "--model", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "cannot load model" in result.output and "Traceback" not in result.output


def test_the_cli_does_not_import_the_server_stack():
    code = ("import sys, chromatize.cli; "
            "print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(SRC)}, check=True).stdout
    assert out.strip() == "[]"


def test_ctrl_c_stops_the_server_cleanly(tiny_checkpoint):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "chromatize.cli", "serve", "--port", str(port),
         "--model", str(tiny_checkpoint)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)})
    try:
        deadline = time.monotonic() + 300  # a loaded machine imports torch slowly
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
                break
            except httpx.HTTPError:
                assert server.poll() is None, server.stderr.read()
                assert time.monotonic() < deadline, "the server did not start in 300 s"
                time.sleep(0.2)
        assert health.json()["model"] == "tiny"
        server.send_signal(signal.SIGINT)
        code = server.wait(timeout=120)
    finally:
        if server.poll() is None:
            server.kill()
    stderr = server.stderr.read()
    assert code == 0, stderr
    assert "Traceback" not in stderr
