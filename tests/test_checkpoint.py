import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from chromatize.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from chromatize.cli import app
from chromatize.models import create_model
from conftest import make_color_photo


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


# ----------------------------------------------------------------------------- damaged files


def _damage(weights, how: str) -> None:
    data = weights.read_bytes()
    damaged = {"half": data[: len(data) // 2], "empty": b"",
               "random": bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8))}
    weights.write_bytes(damaged[how])


@pytest.mark.parametrize("how", ["half", "empty", "random"])
def test_damaged_weights_beside_a_valid_json_are_one_line(tiny_checkpoint, tmp_path, how):
    weights = tiny_checkpoint.with_suffix(".safetensors")
    _damage(weights, how)
    before = weights.read_bytes()
    with pytest.raises(CheckpointError, match=rf"^{weights}: damaged or not a safetensors file"):
        load_checkpoint(tiny_checkpoint)
    photos = tmp_path / "photos"
    photos.mkdir()
    make_color_photo().save(photos / "p.png")
    runner = CliRunner()
    for args in (["colorize", str(photos / "p.png"), "-o", str(tmp_path / "out"),
                  "--model", str(tiny_checkpoint)],
                 ["info", str(tiny_checkpoint)],
                 ["evaluate", str(photos), "--model", str(tiny_checkpoint),
                  "-o", str(tmp_path / "report")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "damaged or not a safetensors file" in lines[0], lines
        assert "Traceback" not in result.output
    assert weights.read_bytes() == before  # the input is never changed
    assert not (tmp_path / "out").exists() and not (tmp_path / "report").exists()


@pytest.mark.parametrize("size", ["256", -5, 0, 1.5, True, None])
def test_bad_working_size_in_the_json_is_named(tiny_checkpoint, size):
    meta = tiny_checkpoint.with_suffix(".json")
    info = json.loads(meta.read_text())
    info["working_size"] = size
    meta.write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match=rf"^{meta}: working_size must be a positive"):
        load_checkpoint(tiny_checkpoint)
