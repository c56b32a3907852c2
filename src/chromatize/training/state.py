"""The resume state of a run: ``RUN/state.safetensors`` (tensors) + ``RUN/state.json`` (the rest).

Both are rewritten atomically at each checkpoint. Tensors: model and EMA weights,
optimizer tensors (Adam moments and step counts), torch RNG states of every process.
JSON: step, samples seen, optimizer param groups and scalars, numpy and Python RNG states,
the model's name and kwargs, the resolved config. Nothing is pickled. The step is stored
in both files, so a crash between the two writes is detected instead of mixing states.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from chromatize.io import atomic_write_bytes, atomic_write_file
from chromatize.errors import ChromatizeError

STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"


class StateError(ChromatizeError, ValueError):
    """A run folder has no usable resume state."""


def optimizer_state(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``opt.state_dict()`` into tensors (keyed ``prefix.PARAM.NAME``) and JSON."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for name, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{prefix}.{pid}.{name}"] = v
            else:
                scalars[f"{pid}.{name}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer_state(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                         meta: dict[str, Any], prefix: str) -> None:
    """Inverse of :func:`optimizer_state`."""
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith(prefix + "."):
            pid, name = key[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(pid), {})[name] = v
    for key, v in meta["scalars"].items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def host_rng_state() -> dict[str, Any]:
    """numpy's and Python's global RNG states as JSON."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"numpy": [name, keys.tolist(), pos, has_gauss, gauss], "python": random.getstate()}


def set_host_rng_state(state: dict[str, Any]) -> None:
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def training_tensors(modules: dict[str, nn.Module], optimizers: list[torch.optim.Optimizer],
                     ) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """State dicts of ``modules`` (keyed ``NAME.KEY``) and of the optimizers (tensors
    keyed ``optimI.*``, the rest as JSON-ready dicts)."""
    tensors = {f"{name}.{k}": v for name, m in modules.items() for k, v in m.state_dict().items()}
    metas = []
    for i, opt in enumerate(optimizers):
        t, meta = optimizer_state(opt, f"optim{i}")
        tensors.update(t)
        metas.append(meta)
    return tensors, metas


def load_training_tensors(tensors: dict[str, torch.Tensor], modules: dict[str, nn.Module],
                          optimizers: list[torch.optim.Optimizer], metas: list[dict[str, Any]]) -> None:
    """Inverse of :func:`training_tensors`; :class:`StateError` when they do not fit."""
    try:
        for name, m in modules.items():
            part = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}
            if not part:
                raise StateError(f"the state holds no {name!r} weights")
            m.load_state_dict(part)
        if len(metas) != len(optimizers):
            raise StateError(f"{len(metas)} optimizers saved, {len(optimizers)} in use")
        for i, (opt, meta) in enumerate(zip(optimizers, metas)):
            load_optimizer_state(opt, tensors, meta, f"optim{i}")
    except (RuntimeError, ValueError, KeyError) as e:
        raise StateError(str(e).splitlines()[0] if str(e) else repr(e)) from None


def rng_tensors(world: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Torch RNG states of every process, ``rng.KIND.RANK``. Collective when ``world > 1``."""
    own = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        own["cuda"] = torch.cuda.get_rng_state(device).cpu()
    states: list[Any] = [own]
    if world > 1:
        states = [None] * world
        dist.all_gather_object(states, own)
    return {f"rng.{kind}.{rank}": t for rank, s in enumerate(states) for kind, t in s.items()}


def set_rng(tensors: dict[str, torch.Tensor], rank: int, device: torch.device) -> None:
    """Restore this process's torch RNG states saved by :func:`rng_tensors`."""
    if f"rng.torch.{rank}" in tensors:
        torch.set_rng_state(tensors[f"rng.torch.{rank}"])
    if device.type == "cuda" and f"rng.cuda.{rank}" in tensors:
        torch.cuda.set_rng_state(tensors[f"rng.cuda.{rank}"], device)


def save_state(run_dir: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write both state files atomically; ``meta`` must hold ``step``."""
    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write_file(run_dir / STATE_TENSORS, lambda tmp: save_file(
        cpu, str(tmp), metadata={"step": str(meta["step"])}))
    atomic_write_bytes(run_dir / STATE_JSON, json.dumps(meta, indent=1).encode())


def load_state(run_dir: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a run's state; :class:`StateError` names what is missing or inconsistent."""
    if not run_dir.is_dir():
        raise StateError(f"{run_dir}: no such run folder")
    paths = run_dir / STATE_TENSORS, run_dir / STATE_JSON
    for p in paths:
        if not p.is_file():
            raise StateError(f"{p}: missing, so {run_dir} cannot be resumed")
    try:
        meta = json.loads(paths[1].read_text())
    except (OSError, ValueError, RecursionError) as e:  # bad text, JSON or 5,000 digits
        raise StateError(f"{paths[1]}: unreadable resume state, damaged or cut short "
                         f"({e})") from None
    try:
        with safe_open(str(paths[0]), framework="pt") as f:
            step = (f.metadata() or {}).get("step")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (OSError, ValueError, SafetensorError) as e:  # empty, cut short, not safetensors
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise StateError(f"{paths[0]}: unreadable resume state, damaged or cut short "
                         f"({reason})") from None
    if not isinstance(meta, dict) or str(meta.get("step")) != step:
        raise StateError(f"{run_dir}: {STATE_JSON} and {STATE_TENSORS} are from different steps")
    return tensors, meta


def resumable_steps(run_dir: Path, net: nn.Module, opt: torch.optim.Optimizer,
                    sched: torch.optim.lr_scheduler.LRScheduler, steps: int, save_every: int,
                    step_loss: Callable[[int], torch.Tensor], stop: int | None = None,
                    label: str = "loss") -> int:
    """The small trainers' loop (the repair networks'): resume from ``run_dir``'s state
    when there is one, then one optimiser step per ``step_loss(step)`` (the loss of
    batch ``step``, a function of the step alone) up to ``steps`` (or ``stop``), the
    state saved every ``save_every`` steps and at the end. Returns the step reached."""
    step = 0
    try:
        tensors, meta = load_state(run_dir)
        load_training_tensors(tensors, {"net": net}, [opt], meta["optimizers"])
        sched.load_state_dict(meta["sched"])
        step = meta["step"]
        print(f"resumed at step {step}", flush=True)
    except StateError:
        run_dir.mkdir(parents=True, exist_ok=True)
    start, seen = time.time(), 0.0
    while step < min(steps, stop or steps):
        loss = step_loss(step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        seen = 0.98 * seen + 0.02 * loss.item() if seen else loss.item()
        if step % save_every == 0 or step in (steps, stop):
            tensors, metas = training_tensors({"net": net}, [opt])
            save_state(run_dir, tensors, {"step": step, "optimizers": metas,
                                          "sched": sched.state_dict()})
            print(f"step {step} {label} {seen:.6f} {time.time() - start:.0f}s", flush=True)
    return step
