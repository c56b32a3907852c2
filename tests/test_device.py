"""Device policy (chromatize.device): names checked, and the CPU chosen without torch
where no GPU can be present."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import chromatize
from chromatize.device import DeviceError, _may_have_gpu, device_type, pick_device


def test_names_are_checked():
    assert pick_device("cpu") == "cpu"
    assert device_type("cuda:1") == "cuda" and device_type("cpu") == "cpu"
    for bad in ("tpu", "", "gpu0", 3):
        with pytest.raises(DeviceError, match="device must be"):
            pick_device(bad)  # type: ignore[arg-type]


def test_an_unavailable_device_is_one_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(DeviceError, match="CUDA is not available"):
        pick_device("cuda:0")
    assert pick_device("auto") in ("cpu", "mps")


def test_auto_picks_the_cpu_without_torch_where_no_gpu_can_be():
    if _may_have_gpu():
        pytest.skip("this machine may have a GPU: auto asks torch")
    src = str(Path(chromatize.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    code = ("import sys; from chromatize.device import pick_device; "
            "print(pick_device('auto'), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.split() == ["cpu", "False"], out.stderr
