import json

import pytest
import torch
from safetensors.torch import save_file

from chromatize.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from chromatize.models import create_model


def test_round_trip_same_output(tmp_path):
    torch.manual_seed(0)
    model = create_model("unet_tiny").eval()
    meta = save_checkpoint(tmp_path / "m", model, "unet_tiny", {}, step=7, config={"lr": 3e-4})
    info = json.loads(meta.read_text())
    assert info["model"] == {"name": "unet_tiny", "kwargs": {}} and info["step"] == 7
    assert "chromatize_version" in info and "git_revision" in info
    loaded, info2 = load_checkpoint(tmp_path / "m.safetensors")
    l = torch.rand(1, 1, 32, 32) * 100
    assert torch.equal(model(l)["ab"], loaded(l)["ab"])
    assert info2["config"] == {"lr": 3e-4}


def test_missing_and_mismatched(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent")
    save_checkpoint(tmp_path / "m", create_model("unet_tiny"), "unet_tiny", {})
    with pytest.raises(CheckpointError, match="expected"):
        load_checkpoint(tmp_path / "m", expect_model="unet_small")
    # Weights of another architecture under this name.
    save_file({"x": torch.zeros(1)}, str(tmp_path / "m.safetensors"))
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(tmp_path / "m")
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(tmp_path / "m")
