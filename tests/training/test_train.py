"""Training: config schema, the train command, exact resume, hooks, stopping, torchrun."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from chromatize.checkpoint import load_checkpoint
from chromatize.cli import app
from chromatize.training.config import ConfigError, load_config, parse_overrides
from chromatize.models import MODELS
from chromatize.models.unet import UNet
from chromatize.training.train import Trainer, train
from conftest import make_color_photo

TINY = """
model: {name: unet_tiny}
data: {train: TRAIN, val: TRAIN, crop: 32, workers: 0, val_limit: 4}
loss: {name: l1}
train: {max_steps: 4, batch_size: 4, lr: 1.0e-3, eval_every: 2, ckpt_every: 2,
        log_every: 1, grid_images: 2, seed: 1}
"""


@pytest.fixture
def tiny_yaml(tmp_path: Path, photo_tree: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.replace("TRAIN", str(photo_tree)))
    return path


def flat(text: str) -> str:
    """CLI output with Rich's line wrapping undone."""
    return " ".join(text.split())


def config(path: Path, run: Path, *overrides: str):
    return load_config(path, [f"--run_dir={run}", *overrides])


# ----------------------------------------------------------------------------- config


def test_overrides_are_yaml_scalars() -> None:
    assert parse_overrides(["--train.max_steps=2", "--train.ema=null", "--model.kwargs.base=8"]) == {
        "train": {"max_steps": 2, "ema": None}, "model": {"kwargs": {"base": 8}}}
    with pytest.raises(ConfigError, match="--section.key=VALUE"):
        parse_overrides(["--train.max_steps"])


def test_config_errors_name_the_key(tiny_yaml: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown config key 'train.max_step'"):
        config(tiny_yaml, tmp_path / "r", "--train.max_step=2")
    with pytest.raises(ConfigError, match="train.batch_size: expected int, got 'eight'"):
        config(tiny_yaml, tmp_path / "r", "--train.batch_size=eight")
    with pytest.raises(ConfigError, match="data.crop: must be positive"):
        config(tiny_yaml, tmp_path / "r", "--data.crop=0")
    cfg = config(tiny_yaml, tmp_path / "r", "--train.lr=1", "--model.kwargs.base=8")
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    assert cfg.model.kwargs == {"base": 8}


def test_shipped_configs_load() -> None:
    root = Path(__file__).parents[2] / "configs"
    l1, l2 = load_config(root / "thesis_l1.yaml"), load_config(root / "thesis_l2.yaml")
    assert (l1.model.name, l1.loss.name, l2.loss.name) == ("unet_thesis", "l1", "l2")
    assert (l1.data.crop, l1.train.batch_size, l1.train.lr) == (256, 8, 3e-4)
    default = load_config(root / "default.yaml")
    assert default.model.pretrained and default.model.working_size == 256


# ----------------------------------------------------------------------------- training


def test_cli_train_two_steps(tiny_yaml: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(tiny_yaml), "--train.max_steps=2",
                                      f"--run_dir={run}"])
    assert result.exit_code == 0, result.output
    for name in ("config.yaml", "log.csv", "state.safetensors", "state.json",
                 "grids/step_000002.png", "model.safetensors"):
        assert (run / name).is_file(), name
    assert any((run / "tb").iterdir())
    model, meta = load_checkpoint(run / "model", expect_model="unet_tiny")
    assert meta["step"] == 2 and meta["working_size"] == 256
    assert meta["data"]["train"] == {"source": str(tiny_yaml.parent / "photos"), "count": 6,
                                     "skipped_gray": 1, "skipped_unreadable": 1}
    assert meta["config"]["train"]["max_steps"] == 2
    with (run / "log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows if r["train_loss"]] == ["1", "2"]
    assert float(next(r for r in rows if r["val_loss"])["val_ab_rmse"]) > 0
    # Nothing is overwritten unless asked.
    again = CliRunner().invoke(app, ["train", str(tiny_yaml), f"--run_dir={run}"])
    assert again.exit_code == 2 and "already holds a run" in flat(again.output)


@pytest.mark.parametrize("model_args", [
    ["--train.ema=0.9"],  # U-Net with dropout: RNG, Adam and EMA state
    ["--model.name=effnet_lite0", "--model.kwargs.width=8", "--model.freeze_encoder_steps=3",
     "--model.encoder_lr_scale=0.5"],  # frozen encoder across the resume point
])
def test_resume_is_exact(tiny_yaml: Path, tmp_path: Path, model_args: list[str]) -> None:
    whole = train(config(tiny_yaml, tmp_path / "whole", *model_args))
    half = train(config(tiny_yaml, tmp_path / "half", "--train.max_steps=2", *model_args))
    assert load_checkpoint(half / "model")[1]["step"] == 2
    resumed = train(config(tiny_yaml, tmp_path / "x", *model_args), resume=half)
    a, b = load_file(whole / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    assert load_checkpoint(resumed / "model")[1]["step"] == 4
    with (resumed / "log.csv").open() as f:
        assert [r["step"] for r in csv.DictReader(f) if r["train_loss"]] == ["1", "2", "3", "4"]


def test_frozen_encoder_keeps_weights_and_statistics(tiny_yaml: Path, tmp_path: Path) -> None:
    cfg = config(tiny_yaml, tmp_path / "run", "--model.name=effnet_lite0",
                 "--model.kwargs.width=8", "--model.freeze_encoder_steps=2", "--train.max_steps=2")
    trainer = Trainer(cfg)
    before = {k: v.clone() for k, v in trainer.model.encoder.state_dict().items()}
    decoder = trainer.model.head.conv.weight.clone()
    trainer.fit()
    after = trainer.model.encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(decoder, trainer.model.head.conv.weight)


def test_sigterm_saves_and_stops(tiny_yaml: Path, tmp_path: Path, monkeypatch) -> None:
    trainer = Trainer(config(tiny_yaml, tmp_path / "run", "--train.max_steps=50",
                             "--train.ckpt_every=100"))
    step = trainer._step

    def step_then_signal(l: torch.Tensor, ab: torch.Tensor) -> dict[str, float]:
        out = step(l, ab)
        if trainer.step == 2:  # this is the third step
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    monkeypatch.setattr(trainer, "_step", step_then_signal)
    run = trainer.fit()
    assert load_checkpoint(run / "model")[1]["step"] == 3
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


class HookedUNet(UNet):
    """Owns its optimizer (SGD) and its update, as a GAN would (``owns_updates``)."""

    calls = 0
    owns_updates = True

    def configure_optimizers(self, lr: float, betas: tuple[float, float]) -> list[torch.optim.Optimizer]:
        return [torch.optim.SGD(self.parameters(), lr=lr)]

    def train_step(self, l, ab, loss_fn, optimizers) -> dict[str, float]:
        HookedUNet.calls += 1
        (opt,) = optimizers
        opt.zero_grad()
        loss = loss_fn(self(l), ab)
        loss.backward()
        opt.step()
        return {"loss": loss.item()}


if "test_hooked_unet" not in MODELS:
    MODELS.register("test_hooked_unet")(lambda **kw: HookedUNet(base=4, depth=3, **kw))


def test_model_hooks(tiny_yaml: Path, tmp_path: Path) -> None:
    trainer = Trainer(config(tiny_yaml, tmp_path / "run", "--model.name=test_hooked_unet",
                             "--train.max_steps=2"))
    assert isinstance(trainer.optimizers[0], torch.optim.SGD)
    trainer.fit()
    assert HookedUNet.calls == 2


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("args, message", [
    (["--train.batch_size=eight"], "train.batch_size: expected int"),
    (["--train.nope=1"], "unknown config key 'train.nope'"),
    (["--data.train=EMPTY"], "no usable colour photo"),
    (["--model.name=unet_tiny", "--model.init=CKPT", "--model.kwargs.base=8"], "weights do not fit"),
    (["--model.name=unet_small", "--model.init=CKPT"], "holds model 'unet_tiny', expected 'unet_small'"),
    (["--data.crop=36"], "data.crop: unet_tiny needs a multiple of 8"),
    (["--train.lr=.nan"], "train.lr: expected a finite number, got nan"),
    (["--train.lr=.inf"], "train.lr: expected a finite number, got inf"),
    (["--loss.name=nope"], "loss.name: unknown loss 'nope'; known:"),
    (["--data.crop=4992"], "data.crop 4992 is larger than the short side of 6 of 6 photos"),
    (["--run_dir=FILE"], "is a file, not a folder"),
    (["--run_dir=FILE/run"], "cannot be created: FILE is a file"),
    (["--data.device_cache=true", "--data.cache=false"], "data.device_cache: needs data.cache: true"),
    (["--data.device_cache=true", "--data.cache=true", "--data.train=shard-{000..001}.tar"],
     "data.device_cache: needs folders or lists, not shards"),
    (["--model.name=effnet_lite0_cls_adapters", "--model.init=CKPT"], "weights do not fit"),
])
def test_bad_input_is_one_clear_line(tiny_yaml: Path, tmp_path: Path, tiny_checkpoint: Path,
                                     args: list[str], message: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    args = [a.replace("EMPTY", str(empty)).replace("CKPT", str(tiny_checkpoint))
            .replace("FILE", str(a_file)) for a in args]
    message = message.replace("FILE", str(a_file))
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", str(tiny_yaml), f"--run_dir={run}", *args])
    assert result.exit_code == 2, result.output
    assert message in flat(result.output) and "Traceback" not in result.output
    assert not (run / "log.csv").exists()  # failed before any work


@pytest.mark.parametrize("extra, message", [
    ("train: {max_steps: 9}\n", "not valid YAML ('train' is given twice; keep one at line"),
    ("run_dir: " + "9" * 5000 + "\n", "not valid YAML (an integer of 5000 digits (at most 18)"),
    ("run_dir: " + "[" * 100_000 + "]" * 100_000 + "\n", "not valid YAML (nested too deep)"),
])
def test_configs_beyond_reason_are_one_line(tiny_yaml: Path, tmp_path: Path, extra: str,
                                            message: str) -> None:
    tiny_yaml.write_text(tiny_yaml.read_text() + extra)
    result = CliRunner().invoke(app, ["train", str(tiny_yaml), f"--run_dir={tmp_path / 'r'}"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert f"error: {tiny_yaml}: {message}" in flat(result.output)
    for override, words in (("--train.max_steps=" + "9" * 5000, "an integer of 5000 digits"),
                            ("--train.betas=" + "[" * 100_000, "nested too deep"),
                            ("--model.kwargs={a: 1, a: 2}", "'a' is given twice")):
        with pytest.raises(ConfigError, match=words):
            parse_overrides([override])


def test_resume_with_a_damaged_log_or_state_is_one_line(tiny_yaml: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", str(tiny_yaml), f"--run_dir={run}",
                               "--train.max_steps=1"]).exit_code == 0
    log, good = run / "log.csv", (run / "log.csv").read_bytes()
    log.write_bytes(bytes(range(256)) * 8)  # random bytes: not text
    result = runner.invoke(app, ["train", "--resume", str(run), "--train.max_steps=2"])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert f"{log}: not a training log (not UTF-8 text); move it away" in flat(result.output)
    assert log.read_bytes() == bytes(range(256)) * 8  # kept for the user to look at
    state, saved = run / "state.json", (run / "state.json").read_bytes()
    for text in ('{"step": ' + "9" * 5000 + "}", "[" * 100_000 + "]" * 100_000):
        state.write_text(text)
        result = runner.invoke(app, ["train", "--resume", str(run), "--train.max_steps=2"])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert f"{state}: unreadable resume state" in flat(result.output)
    state.write_bytes(saved)
    # A row a killed run cut short is dropped, not an error.
    log.write_bytes(good + b"2,0.5")
    result = runner.invoke(app, ["train", "--resume", str(run), "--train.max_steps=2"])
    assert result.exit_code == 0, result.output


def test_a_photo_as_config_is_one_line(tmp_path: Path) -> None:
    photo = tmp_path / "photo.jpg"
    make_color_photo().save(photo)
    before = photo.read_bytes()
    result = CliRunner().invoke(app, ["train", str(photo)])
    assert result.exit_code == 2, result.output
    assert f"{photo}: not a text file" in flat(result.output) and "Traceback" not in result.output
    assert photo.read_bytes() == before and not (Path("runs") / "photo").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_run_dir_is_one_line(tiny_yaml: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    result = CliRunner().invoke(app, ["train", str(tiny_yaml), f"--run_dir={locked / 'run'}"])
    assert result.exit_code == 2 and "not writable" in flat(result.output)


def test_resume_errors(tiny_yaml: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["train", "--resume", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "not a run folder" in flat(missing.output)
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", str(tiny_yaml), f"--run_dir={run}",
                               "--train.max_steps=1"]).exit_code == 0
    other = runner.invoke(app, ["train", "--resume", str(run), "--model.name=unet_small"])
    assert other.exit_code == 2 and "holds model" in flat(other.output)
    ema = runner.invoke(app, ["train", "--resume", str(run), "--train.ema=0.9",
                              "--train.max_steps=2"])
    assert ema.exit_code == 2 and "holds no 'ema' weights" in flat(ema.output)
    done = runner.invoke(app, ["train", "--resume", str(run)])
    assert done.exit_code == 2 and "already at step 1 of 1" in flat(done.output)
    more = runner.invoke(app, ["train", "--resume", str(run), "--train.max_steps=2"])
    assert more.exit_code == 0, more.output


# ----------------------------------------------------------------------------- torchrun

SCRIPT = """
import os, sys
from safetensors.torch import save_file
from chromatize.training.config import load_config
from chromatize.training.train import Trainer
cfg = load_config(sys.argv[1], sys.argv[2:])
trainer = Trainer(cfg)
trainer.fit()
# Parameters only: DDP syncs batch-norm buffers at the start of each forward, so after
# the last step they hold each rank's own statistics until the next one.
state = {k: v.detach().contiguous() for k, v in trainer.model.named_parameters()}
save_file(state, os.path.join(cfg.run_dir, f"rank{os.environ['RANK']}.safetensors"))
"""


def test_torchrun_two_processes(tiny_yaml: Path, tmp_path: Path) -> None:
    script = tmp_path / "ddp_train.py"
    script.write_text(textwrap.dedent(SCRIPT))
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"),
                                                        os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
           "--standalone", str(script), str(tiny_yaml), f"--run_dir={run}",
           "--train.max_steps=16", "--train.eval_every=16", "--train.ckpt_every=16",
           "--train.batch_size=2", "--train.lr=3.0e-3", "--model.kwargs.dropout=0.0"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    w0, w1 = load_file(run / "rank0.safetensors"), load_file(run / "rank1.safetensors")
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    meta = load_checkpoint(run / "model")[1]
    assert meta["step"] == 16
    with (run / "log.csv").open() as f:
        losses = [float(r["train_loss"]) for r in csv.DictReader(f) if r["train_loss"]]
    assert len(losses) == 16
    assert sum(losses[-4:]) < sum(losses[:4])


@pytest.mark.parametrize("name", ["state.safetensors", "state.json"])
def test_resume_from_a_state_file_cut_in_half_is_one_line(tiny_yaml: Path, tmp_path: Path,
                                                          name: str) -> None:
    runner = CliRunner()
    run = tmp_path / "run"
    assert runner.invoke(app, ["train", str(tiny_yaml), f"--run_dir={run}",
                               "--train.max_steps=1"]).exit_code == 0
    state = run / name
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    result = runner.invoke(app, ["train", "--resume", str(run), "--train.max_steps=2"])
    assert result.exit_code == 2, result.output
    assert f"{state}: unreadable resume state, damaged or cut short" in flat(result.output)
    assert "Traceback" not in result.output
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_cosine_by_time_follows_the_budget_that_ends_first() -> None:
    from chromatize.training.config import TrainConfig
    from chromatize.training.train import _lr_factor

    by_steps = TrainConfig(schedule="cosine", max_steps=1000)
    by_time = TrainConfig(schedule="cosine", max_steps=1000, max_minutes=1.0, schedule_by_time=True)
    assert _lr_factor(by_steps, 100, 1000, time_done=0.99) == pytest.approx(_lr_factor(by_steps, 100, 1000))
    # Half the time spent at 10% of the steps: the cosine is at its middle.
    assert _lr_factor(by_time, 100, 1000, time_done=0.5) == pytest.approx(0.5)
    assert _lr_factor(by_time, 100, 1000, time_done=1.0) == pytest.approx(0.0, abs=1e-9)
    # Steps ahead of time: the step count rules.
    assert _lr_factor(by_time, 900, 1000, time_done=0.1) == pytest.approx(_lr_factor(by_steps, 900, 1000))
