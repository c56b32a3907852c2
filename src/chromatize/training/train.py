"""The training loop: ``train(config) -> run folder``, on one CPU/GPU or under torchrun.

The trainer knows nothing of the task beyond the model contract. Models customise it
through optional hooks, so a new family needs no change here:

* ``model.configure_optimizers(lr: float, betas: tuple[float, float]) -> list[Optimizer]``:
  the optimizers to use; otherwise one Adam over the trainable parameters (the
  ``model.encoder`` ones in their own group at ``lr * encoder_lr_scale``).
* ``model.train_step(l, ab, loss_fn, optimizers) -> dict[str, float]``: one full update
  on a batch (``l`` ``(B, 1, c, c)`` in [0, 100], ``ab`` ``(B, 2, c, c)`` Lab units),
  e.g. a GAN owning the order of its G/D steps; the dict must hold ``"loss"``. Otherwise
  the default step: forward, ``loss_fn(out, ab)``, backward, step.
* ``model.cached_train_step(feats, ab, loss_fn, optimizers)``: the same, for a step from
  cached encoder maps while the encoder is frozen (``ab`` at the chroma stride). (Not yet supported under
  torchrun: there the default step runs through DistributedDataParallel.)

Run folder: ``config.yaml`` (resolved), ``log.csv``, ``tb/``, ``grids/step_XXXXXX.png``,
the resume state (:mod:`chromatize.training.state`), and ``model.safetensors`` +
``model.json`` (:func:`chromatize.checkpoint.save_checkpoint`).

Distributed: ``torchrun --nproc_per_node=K -m chromatize.cli train CONFIG`` (the
environment decides); DistributedDataParallel over gloo on CPU, nccl on GPU; each process
loads its share of every epoch; rank 0 logs, evaluates and writes checkpoints.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from chromatize.training import config as cfgmod
from chromatize.training import data as datamod
from chromatize.training import state as ts
from chromatize.checkpoint import load_checkpoint, save_checkpoint
from chromatize.device import DeviceError, pick_device
from chromatize.training import transfer
from chromatize.training.config import Config, ConfigError
from chromatize.training.losses import LOSSES
from chromatize.models import ColorizationModel, create_model
from chromatize.models.base import optimize
from chromatize.errors import ChromatizeError
from chromatize.io import folder_problem


class TrainError(ChromatizeError, ValueError):
    """Training cannot start: the message names the file or setting and the reason."""


def _lr_factor(cfg: cfgmod.TrainConfig, step: int, max_steps: int, time_done: float = 0.0) -> float:
    """Multiplier of the base lr at ``step``: linear warm-up, then constant or cosine.
    ``time_done``: the fraction of ``max_minutes`` spent, used by ``schedule_by_time``."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "cosine":
        t = (step - cfg.warmup_steps) / max(1, max_steps - cfg.warmup_steps)
        if cfg.schedule_by_time:
            t = max(t, time_done)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    return 1.0


class Trainer:
    """Everything is checked and built in ``__init__``, before any step; :meth:`fit` runs."""

    def __init__(self, cfg: Config, resume: str | Path | None = None) -> None:
        self.cfg = cfg
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        try:
            self.device = torch.device(pick_device(cfg.train.device,
                                                    int(os.environ.get("LOCAL_RANK", "0"))))
        except DeviceError as e:
            raise ConfigError(f"train.device: {e}") from None
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # crops have one fixed size
        if self.world > 1 and not dist.is_initialized():
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.run_dir = Path(resume) if resume is not None else Path(str(cfg.run_dir))
        state = self._check_run_dir(resume is not None)
        self.logging = self.rank == 0

        self.model = self._build_model(state is None)
        self._check_crop()
        try:
            self.loss_fn = LOSSES.create(cfg.loss.name, model=self.model, **cfg.loss.kwargs)
        except KeyError as e:
            raise ConfigError(f"loss.name: {e.args[0]}") from None
        except (TypeError, ValueError) as e:
            raise ConfigError(f"loss.kwargs: {e}") from None
        self.train_pool, self.train_data = self._subset(self._open("data.train", cfg.data.train))
        if cfg.data.val is not None and datamod.is_shards(cfg.data.val):
            raise ConfigError("data.val: must be a folder or a .txt list, not shards")
        self.val_data = None if cfg.data.val is None else self._open("data.val", cfg.data.val)
        if state is None and cfg.model.adabn:
            self._adapt_batchnorm()
        self.anchor = (transfer.L2SP(self.model.encoder_module()).to(self.device)
                       if cfg.model.l2sp else None)
        self.max_steps = self._max_steps()
        self.optimizers = self._optimizers()
        self.ema = (AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.train.ema),
                                  use_buffers=True) if cfg.train.ema else None)
        self.step, self.samples = 0, 0
        self.best_val_loss, self.saved_at = math.inf, time.perf_counter()
        if state is not None:
            self._restore(*state)
        if self.world > 1 and self.model.owns_updates:
            raise TrainError(f"model {cfg.model.name!r} has its own train_step, which "
                             "distributed training does not support yet")
        if cfg.train.keep_best and self.val_data is None:
            raise ConfigError("train.keep_best: needs data.val (the best model is chosen on it)")
        if cfg.data.device_cache and not isinstance(self.train_data, datamod.PhotoSet):
            raise ConfigError("data.device_cache: needs folders or lists, not shards")
        self.frozen: bool | None = None
        self.features = self._feature_cache()
        self.stop_requested = False
        self.metrics: dict[str, float] = {}

    # ------------------------------------------------------------------ set-up checks

    def _check_run_dir(self, resume: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        problem = folder_problem(self.run_dir)
        if problem is not None:
            raise ConfigError(f"run_dir: {self.run_dir} {problem}")
        if resume:
            try:
                tensors, meta = ts.load_state(self.run_dir)
            except ts.StateError as e:
                raise TrainError(str(e)) from None
            want = {"name": self.cfg.model.name, "kwargs": self.cfg.model.kwargs}
            if meta["model"] != want:
                raise TrainError(f"{self.run_dir}: holds model {meta['model']}, the config "
                                 f"asks for {want}")
            return tensors, meta
        if (self.run_dir / ts.STATE_JSON).exists() or (self.run_dir / "model.json").exists():
            raise TrainError(f"{self.run_dir}: already holds a run; continue it with --resume "
                             f"{self.run_dir} or pick another --run_dir=PATH")
        return None

    def _build_model(self, fresh: bool) -> ColorizationModel:
        m = self.cfg.model
        torch.manual_seed(self.cfg.train.seed)
        try:
            model = create_model(m.name, **m.kwargs)
        except KeyError as e:
            raise ConfigError(f"model.name: {e.args[0]}") from None
        except (TypeError, ValueError) as e:
            raise ConfigError(f"model.kwargs: {e}") from None
        if (m.freeze_encoder_steps or m.encoder_lr_scale != 1) and not model.has_encoder:
            raise ConfigError(f"model.freeze_encoder_steps/encoder_lr_scale: {m.name!r} has no encoder")
        if m.pretrained and not model.has_encoder:
            raise ConfigError(f"model.pretrained: {m.name!r} has no pretrained encoder")
        if fresh and m.init is not None:
            # A model may start from another one whose weights it holds all of, except
            # inputs it adds with a neutral start (a hint model from the automatic one).
            extra = tuple(model.added_inputs)
            try:
                src, _ = load_checkpoint(m.init, expect_model=None if extra else m.name)
            except ValueError as e:  # CheckpointError
                raise TrainError(f"model.init: {e}") from None
            try:
                missing, unexpected = model.load_state_dict(src.state_dict(), strict=False)
                missing = [k for k in missing if not k.startswith(extra)]
                detail = (f"missing {missing[:3]}, unexpected {unexpected[:3]}"
                          if missing or unexpected else "")
            except RuntimeError as e:
                # The first line is a generic header; the next one says what differs.
                detail = next((ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()), "?")
            if detail:
                raise TrainError(f"model.init: {m.init}: weights do not fit {m.name} with "
                                 f"kwargs {m.kwargs}: {detail}")
        elif fresh and m.pretrained:
            model.load_pretrained_encoder()
        if (m.adabn or m.l2sp) and not model.has_encoder:
            raise ConfigError(f"model.adabn/l2sp: {m.name!r} has no encoder")
        if m.l2sp and (model.owns_updates or type(model).cached_train_step
                       is not ColorizationModel.cached_train_step):
            raise ConfigError(f"model.l2sp: {m.name!r} runs its own update, which has no L2-SP term")
        if m.frozen_blocks and not model.has_encoder:
            raise ConfigError(f"model.frozen_blocks: {m.name!r} has no encoder blocks to freeze")
        # Each process draws its own dropout masks; DDP makes the weights equal.
        torch.manual_seed(self.cfg.train.seed + self.rank)
        model = model.to(self.device)
        if self.cfg.train.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def _check_crop(self) -> None:
        mult = self.model.size_multiple
        if self.cfg.data.crop % mult:
            raise ConfigError(f"data.crop: {self.cfg.model.name} needs a multiple of {mult}, "
                              f"got {self.cfg.data.crop}")

    def _open(self, key: str, source: str | list[str]) -> datamod.PhotoSet | str | list[str]:
        try:
            return datamod.open_source(source, self.cfg.data)
        except datamod.DataError as e:
            raise TrainError(f"{key}: {e}") from None

    def _subset(self, photos: datamod.PhotoSet | str | list[str],
                ) -> tuple[datamod.PhotoSet | str | list[str], datamod.PhotoSet | str | list[str]]:
        """``(pool, train)``: the photos in ``data.subset_seed``'s order, and the first
        ``data.limit`` of them (:func:`chromatize.training.data.nested_subset`)."""
        d = self.cfg.data
        if d.limit is None and d.subset_seed is None:
            return photos, photos
        if not isinstance(photos, datamod.PhotoSet):
            raise ConfigError("data.limit/subset_seed: need folders or lists, not shards")
        try:
            return datamod.nested_subset(photos, d.limit, d.subset_seed)
        except datamod.DataError as e:
            raise TrainError(f"data.train: {e}") from None

    @torch.no_grad()
    def _adapt_batchnorm(self) -> None:
        """AdaBN: the encoder's batch-norm statistics from ``model.adabn`` gray training
        crops (:func:`chromatize.training.transfer.adapt_batchnorm`)."""
        n, t = self.cfg.model.adabn, self.cfg.train
        loader = iter(datamod.train_loader(self.train_data, self.cfg.data, min(n, t.batch_size),
                                           t.seed + 1, self.rank, self.world))
        fmt = torch.channels_last if t.channels_last else torch.contiguous_format

        def batches() -> Any:
            for _ in range(math.ceil(n / min(n, t.batch_size))):
                yield next(loader)[0].to(self.device, memory_format=fmt)

        was_training = self.model.training
        self.model.eval()
        transfer.adapt_batchnorm(self.model.encoder_module(), batches(), self.model.encode)  # type: ignore[arg-type]
        self.model.train(was_training)

    def _feature_cache(self) -> Any:
        """The frozen encoder's cached features (``data.feature_cache``), built now if
        missing or stale; None when not configured or when the encoder never is frozen."""
        d, m = self.cfg.data, self.cfg.model
        if d.feature_cache is None or (self.step >= m.freeze_encoder_steps
                                       and not m.frozen_blocks):
            return None
        from chromatize.training import features

        splits = self.model.splits
        if m.frozen_blocks and m.frozen_blocks not in splits:
            raise ConfigError(f"model.frozen_blocks: with data.feature_cache one of "
                              f"{sorted(splits)}, got {m.frozen_blocks}")

        if not self.model.caches_features:
            raise ConfigError(f"data.feature_cache: {m.name!r} cannot train from cached "
                              "features (it needs encode/decode and no hint input)")
        if self.world > 1:
            raise ConfigError("data.feature_cache: not supported under torchrun yet")
        if not isinstance(self.train_data, datamod.PhotoSet):
            raise ConfigError("data.feature_cache: needs folders or lists, not shards")
        from rich.progress import Progress

        with Progress(disable=not self.logging) as bar:
            task = bar.add_task("encoding crops", total=len(self.train_data.paths))
            # The whole pool is cached in its order; a subset reads its prefix.
            cache = features.build(self.model, self.train_pool, d.feature_cache, d.crop,
                                   d.scale_jitter, d.flip, d.feature_views, self.cfg.train.seed,
                                   bf16=self.cfg.train.precision == "bf16",
                                   progress=lambda done, total: bar.update(task, completed=done),
                                   need=len(self.train_data.paths),
                                   # past the frozen phase only the prefix's maps are read
                                   reads=(m.frozen_blocks or None)
                                   if self.step >= m.freeze_encoder_steps else None)
        return cache

    def _max_steps(self) -> int:
        t = self.cfg.train
        if t.max_steps is not None:
            return t.max_steps
        if not isinstance(self.train_data, datamod.PhotoSet):
            raise ConfigError("train.epochs: unknown length of a shard stream; set train.max_steps")
        per_step = t.batch_size * self.world
        return max(1, math.ceil(t.epochs * len(self.train_data.paths) / per_step))  # type: ignore[operator]

    def _optimizers(self) -> list[torch.optim.Optimizer]:
        t, betas = self.cfg.train, (self.cfg.train.betas[0], self.cfg.train.betas[1])
        own = self.model.configure_optimizers(t.lr, betas)
        if own is not None:
            optimizers = list(own)
        else:
            encoder = self.model.encoder_module()
            enc_ids = {id(p) for p in encoder.parameters()} if encoder is not None else set()
            rest = [p for p in self.model.parameters() if id(p) not in enc_ids and p.requires_grad]
            groups: list[dict[str, Any]] = [{"params": rest, "lr": t.lr}]
            if encoder is not None:
                groups.append({"params": list(encoder.parameters()),
                               "lr": t.lr * self.cfg.model.encoder_lr_scale})
            optimizers = [torch.optim.Adam(groups, lr=t.lr, betas=betas)]
        for opt in optimizers:
            for group in opt.param_groups:
                group.setdefault("base_lr", group["lr"])
        return optimizers

    # ------------------------------------------------------------------ state

    def _modules(self) -> dict[str, nn.Module]:
        return ({"model": self.model} | ({"ema": self.ema} if self.ema is not None else {})
                | ({"l2sp": self.anchor} if self.anchor is not None else {}))

    def _state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """Everything needed to continue exactly. Collective: every rank must call it."""
        tensors, optimizers = ts.training_tensors(self._modules(), self.optimizers)
        tensors.update(ts.rng_tensors(self.world, self.device))
        meta = {"step": self.step, "samples_seen": self.samples, "world_size": self.world,
                "model": {"name": self.cfg.model.name, "kwargs": self.cfg.model.kwargs},
                "optimizers": optimizers, "host_rng": ts.host_rng_state(),
                "best_val_loss": None if math.isinf(self.best_val_loss) else self.best_val_loss,
                "config": cfgmod.to_dict(self.cfg)}
        return tensors, meta

    def _restore(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        try:
            ts.load_training_tensors(tensors, self._modules(), self.optimizers, meta["optimizers"])
        except ts.StateError as e:
            raise TrainError(f"{self.run_dir}: the resume state does not fit this run ({e})") from None
        self.step = meta["step"]
        self.samples = meta["samples_seen"]  # over all processes
        best = meta.get("best_val_loss")
        self.best_val_loss = math.inf if best is None else best
        if self.step >= self.max_steps:
            raise TrainError(f"{self.run_dir}: already at step {self.step} of {self.max_steps}; "
                             "raise --train.max_steps to train on")
        # With another number of processes the per-rank streams differ anyway.
        if meta["world_size"] == self.world:
            ts.set_rng(tensors, self.rank, self.device)
            ts.set_host_rng_state(meta["host_rng"])

    # ------------------------------------------------------------------ training

    def _frozen_modules(self, frozen: bool) -> list[nn.Module]:
        """What does not train now: the whole encoder while ``frozen``, else the
        ``model.frozen_blocks`` prefix (if any)."""
        encoder = self.model.encoder_module()
        if encoder is None:
            return []
        if frozen:
            return [encoder]
        k = self.cfg.model.frozen_blocks
        return self.model.encoder_prefix(k) if k else []

    def _set_frozen(self, frozen: bool) -> None:
        """Freeze or unfreeze ``model.encoder`` (all but its frozen prefix); what is frozen
        also stays in eval mode so its batch-norm statistics keep their pretrained values."""
        encoder = self.model.encoder_module()
        if encoder is not None:
            encoder.requires_grad_(True)
        for module in self._frozen_modules(frozen):
            module.requires_grad_(False)
        self.frozen = frozen
        # DDP fixes its set of synchronised parameters when built, so rebuild it.
        self.net: nn.Module = (DistributedDataParallel(self.model) if self.world > 1
                               else self.model)

    def _train_mode(self) -> None:
        self.model.train()
        for module in self._frozen_modules(bool(self.frozen)):
            module.eval()

    def _autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=torch.bfloat16,
                              enabled=self.cfg.train.precision == "bf16")

    def _cached_step(self, feats: list[torch.Tensor], ab: torch.Tensor) -> dict[str, float]:
        """One update from cached encoder maps: the decoder alone while the encoder is
        frozen, else the encoder after its frozen prefix too."""
        fmt = torch.channels_last if self.cfg.train.channels_last else torch.contiguous_format
        feats = [f.to(self.device, memory_format=fmt) for f in feats]
        ab = ab.to(self.device)
        with self._autocast():
            if self.frozen:  # a model may own its update (a critic's)
                own = self.model.cached_train_step(feats, ab, self.loss_fn, self.optimizers)
                if own is not None:
                    return own
            else:
                feats = self.model.encode_rest(feats, self.cfg.model.frozen_blocks)
            hint = self.model.cached_hint(ab)  # hint models read by the decoder
            out = self.model.decode(feats, hint) if hint is not None else self.model.decode(feats)
        return self._update(out, ab)

    def _step(self, l: torch.Tensor, ab: torch.Tensor) -> dict[str, float]:
        if self.cfg.train.channels_last:
            l = l.contiguous(memory_format=torch.channels_last)
        if self.model.owns_updates:
            with self._autocast():
                return self.model.train_step(l, ab, self.loss_fn, self.optimizers)  # type: ignore[return-value]
        with self._autocast():
            out = self.net(l)
        return self._update(out, ab)

    def _update(self, out: dict[str, torch.Tensor], ab: torch.Tensor) -> dict[str, float]:
        loss = self.loss_fn(out, ab)
        total = loss
        if self.anchor is not None:  # L2-SP; the logged loss stays the task's
            total = loss + 0.5 * self.cfg.model.l2sp * self.anchor.distance(self.model.encoder_module())
        optimize(total, self.optimizers)
        return {"loss": loss.item()}

    def _feature_batches(self) -> Any:
        from chromatize.training.features import FeatureBatches

        maps = None if self.frozen else self.model.splits[self.cfg.model.frozen_blocks]
        return FeatureBatches(self.features, self.cfg.train.batch_size, self.cfg.train.seed,
                              self.samples, maps)

    def _loader(self) -> Any:
        t = self.cfg.train
        if self.cfg.data.device_cache:
            d = self.cfg.data
            return datamod.DeviceCrops(self.train_data, d.crop, d.scale_jitter, d.flip,
                                       t.batch_size, t.seed, self.device, self.rank,
                                       self.world, self.samples // self.world)
        return datamod.train_loader(self.train_data, self.cfg.data, t.batch_size, t.seed,
                                    self.rank, self.world, self.samples // self.world)

    def _one_step(self, batches: Any, started: float, deadline: float | None,
                  ) -> tuple[Any, dict[str, float], int]:
        """One update: freeze or unfreeze the encoder as the schedule says, pick the batch
        stream (cached features or photos), set the learning rate, step. Returns the
        stream (kept across steps), the step's logs and its batch size."""
        t = self.cfg.train
        frozen = self.step < self.cfg.model.freeze_encoder_steps
        if frozen != self.frozen:
            self._set_frozen(frozen)
        self._train_mode()
        cached = self.features is not None and (frozen or self.cfg.model.frozen_blocks > 0)
        kind = ("cached", frozen) if cached else ("photos",)
        if batches is None or batches[0] != kind:
            batches = (kind, iter(self._feature_batches() if cached else self._loader()))
        elapsed = 0.0 if deadline is None else (time.perf_counter() - started) / (deadline - started)
        for opt in self.optimizers:
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * _lr_factor(t, self.step, self.max_steps, elapsed)
        if cached:
            feats, ab = next(batches[1])
            out, n = self._cached_step(feats, ab), ab.shape[0]
        else:
            l, ab = (x.to(self.device, non_blocking=True) for x in next(batches[1]))
            out, n = self._step(l, ab), l.shape[0]
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        self.step += 1
        self.samples += n * self.world
        return batches, out, n

    def fit(self) -> Path:
        """Train to ``max_steps``, or until SIGINT/SIGTERM; write checkpoints. Returns the
        run folder."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        log = None
        if self.logging:
            from chromatize.training.runlog import RunLog

            self.run_dir.mkdir(parents=True, exist_ok=True)
            cfgmod.save_config(self.cfg, self.run_dir / "config.yaml")
            log = RunLog(self.run_dir, resume_step=self.step if self.step else None)
        t = self.cfg.train
        self._install_signals()
        progress = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                            disable=not self.logging)
        try:
            with progress:
                task = progress.add_task("train", total=self.max_steps, completed=self.step, info="")
                batches: Any = None
                window_loss, window_n, t0 = 0.0, 0, time.perf_counter()
                deadline = (None if t.max_minutes is None
                            else time.perf_counter() + 60 * t.max_minutes)
                started = self.saved_at = time.perf_counter()
                while self.step < self.max_steps and not self.stop_requested:
                    batches, out, n = self._one_step(batches, started, deadline)
                    window_loss, window_n = window_loss + out["loss"], window_n + 1
                    if deadline is not None and time.perf_counter() > deadline:
                        self.stop_requested = True
                    self._sync_stop()
                    if log is not None and (self.step % t.log_every == 0 or self.step == self.max_steps):
                        speed = window_n * n * self.world / (time.perf_counter() - t0)
                        log.scalars(self.step, {"train_loss": window_loss / window_n, "images_per_s": speed,
                                                "lr": self.optimizers[0].param_groups[0]["lr"]})
                        progress.update(task, completed=self.step,
                                        info=f"loss {window_loss / window_n:.4f}  {speed:.1f} img/s")
                        window_loss, window_n, t0 = 0.0, 0, time.perf_counter()
                    self._check_and_save(log, self.step == self.max_steps or self.stop_requested)
        finally:
            self._restore_signals()
            if log is not None:
                log.close()
        return self.run_dir

    @torch.no_grad()
    def evaluate(self, log: Any = None) -> dict[str, float]:
        """Validation loss and ab RMSE (Lab units, per-pixel Euclidean error in the ab
        plane, prediction upsampled bilinearly to the crop); saves a grid when ``log``."""
        model = self.ema.module if self.ema is not None else self.model
        model.eval()
        if not hasattr(self, "_val"):
            self._val = datamod.center_crops(self.val_data, self.cfg.data.crop,  # type: ignore[arg-type]
                                             self.cfg.data.val_limit)
        l_all, ab_all = self._val
        loss_sum, sq_sum, preds = 0.0, 0.0, []
        bs = self.cfg.train.batch_size
        for i in range(0, len(l_all), bs):
            l, ab = l_all[i:i + bs].to(self.device), ab_all[i:i + bs].to(self.device)
            out = model(l)
            loss_sum += self.loss_fn(out, ab).item() * len(l)
            pred = torch.nn.functional.interpolate(out["ab"], size=ab.shape[-2:], mode="bilinear",
                                                   align_corners=False)
            sq_sum += (pred - ab).square().sum(1).mean((1, 2)).sum().item()
            if i < self.cfg.train.grid_images:
                preds.append(out["ab"].cpu())
        n = len(l_all)
        metrics = {"val_loss": loss_sum / n, "val_ab_rmse": math.sqrt(sq_sum / n)}
        if log is not None:
            log.scalars(self.step, metrics)
            k = self.cfg.train.grid_images
            if k:
                log.grid(self.step, l_all[:k], torch.cat(preds)[:k], ab_all[:k])
        return metrics

    def _check_and_save(self, log: Any, done: bool) -> None:
        """After a step: the val check every ``eval_every`` steps (with ``keep_best``, the
        model of the lowest val loss so far as ``best``), and the checkpoint every
        ``ckpt_every`` steps or ``ckpt_minutes`` of wall time, and at the end."""
        t = self.cfg.train
        if log is not None and self.val_data is not None and (done or self.step % t.eval_every == 0):
            self.metrics = self.evaluate(log)
            if t.keep_best and self.metrics["val_loss"] < self.best_val_loss:
                self.best_val_loss = self.metrics["val_loss"]
                self._save_model("best")
        due = t.ckpt_minutes is not None and time.perf_counter() - self.saved_at >= 60 * t.ckpt_minutes
        if self.world > 1:  # a save is collective: every rank must agree on it
            flag = torch.tensor([float(due)], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            due = bool(flag.item())
        if done or due or self.step % t.ckpt_every == 0:
            self.save()

    def save(self) -> None:
        """Write the resume state and the model checkpoint (rank 0; collective)."""
        tensors, meta = self._state()
        self.saved_at = time.perf_counter()
        if not self.logging:
            return
        ts.save_state(self.run_dir, tensors, meta)
        self._save_model("model")

    def _save_model(self, stem: str) -> None:
        """The model checkpoint ``RUN/<stem>.safetensors`` + ``.json`` (the EMA weights
        when kept)."""
        model = self.ema.module if self.ema is not None else self.model
        data = {"train": datamod.source_summary(self.train_data)}
        if self.val_data is not None:
            data["val"] = datamod.source_summary(self.val_data)
        save_checkpoint(self.run_dir / stem, model, self.cfg.model.name, self.cfg.model.kwargs,
                        config=cfgmod.to_dict(self.cfg), data=data, step=self.step,
                        working_size=self.cfg.model.working_size, metrics=self.metrics)

    # ------------------------------------------------------------------ stopping

    def _install_signals(self) -> None:
        self._old_handlers: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return  # only the main thread may handle signals

        def request_stop(signum: int, frame: Any) -> None:
            self.stop_requested = True
            # A second Ctrl-C stops at once.
            signal.signal(signal.SIGINT, signal.default_int_handler)

        self._old_handlers = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}

    def _restore_signals(self) -> None:
        for s, handler in self._old_handlers.items():
            signal.signal(s, handler)

    def _sync_stop(self) -> None:
        """All ranks stop at the same step if any of them was asked to."""
        if self.world > 1:
            flag = torch.tensor([float(self.stop_requested)], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            self.stop_requested = bool(flag.item())


def train(cfg: Config, resume: str | Path | None = None) -> Path:
    """Train as ``cfg`` says (continuing the run folder ``resume`` if given); returns the
    run folder, which holds ``model.safetensors`` + ``model.json``.

    Raises :class:`ConfigError` or :class:`TrainError` before any work when the config,
    data, run folder or resume state is unusable.
    """
    try:
        return Trainer(cfg, resume).fit()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
