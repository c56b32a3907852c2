"""Training configuration: typed dataclasses as the schema, YAML files, dotted overrides.

A config file mirrors :class:`Config`::

    model: {name: unet_thesis, kwargs: {}}
    data:  {train: ../shared/data/photos/train, val: ../shared/data/photos/val, crop: 256}
    loss:  {name: l1}
    train: {max_steps: 100000, batch_size: 8, lr: 3.0e-4}

Command-line overrides address any field with a dotted key, ``--train.max_steps=2``;
values are parsed as YAML scalars (``2`` is an int, ``null`` is None, ``[0.5, 0.9]`` a
list). Unknown keys and values of the wrong type are :class:`ConfigError` naming the key.

Relative paths (``data.train``, ``data.val``, ``model.init``, ``run_dir``) are resolved
against the current working directory, not the config file's folder, so the shipped
``configs/*.yaml`` work when run from the repository root.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chromatize.errors import ChromatizeError


class ConfigError(ChromatizeError, ValueError):
    """A config file or override is unreadable, names an unknown key or has a wrong type."""


@dataclass
class ModelConfig:
    """Which network to train. ``kwargs`` go to the registered factory."""

    name: str = "unet_thesis"
    kwargs: dict[str, Any] = field(default_factory=dict)
    pretrained: bool = False  # call model.load_pretrained_encoder() before training
    freeze_encoder_steps: int = 0  # keep model.encoder frozen (and in eval mode) this long
    encoder_lr_scale: float = 1.0  # the encoder's lr factor once it trains
    # leading encoder blocks (and the stem) that stay frozen even after that; with a
    # feature cache their output is read from it (one of 3, 5, 11, 16 for Lite0)
    frozen_blocks: int = 0
    init: str | None = None  # start from the weights of this chromatize checkpoint
    working_size: int = 256  # inference resolution recorded in the checkpoint
    # AdaBN (Li et al. 2016): before a fresh run, re-estimate the encoder's batch-norm
    # statistics on this many gray training crops, without gradients (0 = off)
    adabn: int = 0
    # L2-SP (Li et al. 2018): weight alpha of (alpha / 2) * ||w - w_start||^2 over the
    # encoder weights that train, pulling them towards their values at the run's start
    l2sp: float = 0.0


@dataclass
class DataConfig:
    """Where photos come from and how they are cut into training crops.

    ``train``/``val``: a folder (searched recursively), a ``.txt`` file of paths (one per
    line), or WebDataset shards (``.tar``, brace patterns such as ``shard-{000..099}.tar``);
    ``train`` may also be a list of such sources (folders and lists, or shards), used
    together.

    ``feature_cache``: a folder (keep it outside the repository) where the frozen
    encoder's features of ``feature_views`` random crops per photo are stored once; the
    frozen phase then trains the decoder from it (:mod:`chromatize.training.features`).

    ``limit`` / ``subset_seed``: train on the first ``limit`` usable photos of ``train``
    (folders and lists) after a shuffle seeded by ``subset_seed`` (None: sorted order).
    Subsets of one seed are nested, for data-scaling curves; with a feature cache, every
    photo is cached in that order and a run reads the prefix of its own photos, so all
    subsets share one cache.
    """

    train: str | list[str] = ""
    val: str | None = None
    crop: int = 256  # training crops are crop x crop
    scale_jitter: float = 0.0  # short side resized to crop * U(1, 1 + scale_jitter)
    flip: bool = True
    workers: int = 2  # DataLoader worker processes (0 = load in the main process)
    cache: bool = False  # keep decoded, pre-resized photos in RAM
    device_cache: bool = False  # keep them on the training device and crop there (GPUs)
    min_chroma: float = 4.0  # mean chroma (Lab units) below which a photo counts as gray
    val_limit: int = 64  # validation photos used (the first ones, sorted)
    feature_cache: str | None = None  # folder of cached encoder features (frozen phase)
    feature_views: int = 2  # cached random crops per photo
    limit: int | None = None  # train on this many photos (a nested subset, see above)
    subset_seed: int | None = None  # shuffles the photos before ``limit`` takes its share


@dataclass
class LossConfig:
    """A loss from :data:`chromatize.training.losses.LOSSES` and its keyword arguments."""

    name: str = "l1"
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainConfig:
    """Optimisation, logging and checkpoint cadence. Set ``max_steps`` or ``epochs``.

    ``precision: bf16`` runs forward passes under bfloat16 autocast (weights, optimiser
    and loss stay float32): about 2x faster on CPUs with AVX512-BF16 or AMX, and on GPUs.
    ``channels_last`` stores activations NHWC, which oneDNN's CPU convolutions prefer.
    """

    max_steps: int | None = None
    epochs: float | None = None  # converted to steps from the training set's size
    batch_size: int = 8  # per process
    lr: float = 3e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    schedule: str = "constant"  # constant | cosine
    warmup_steps: int = 0
    ema: float | None = None  # EMA decay of the weights (e.g. 0.999); None = off
    eval_every: int = 500
    ckpt_every: int = 500
    ckpt_minutes: float | None = None  # also checkpoint after this much wall time
    keep_best: bool = False  # also keep the model of the lowest val loss as RUN/best
    log_every: int = 10
    grid_images: int = 8
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "fp32"  # fp32 | bf16
    # stop (and save) after this much training wall time in this process, e.g. for
    # ablations at equal time; a resumed run gets the budget again
    max_minutes: float | None = None
    # with max_minutes and the cosine schedule: the cosine runs over whichever of
    # max_steps and max_minutes ends first, so a run cut by time still ends at lr ~ 0
    # (the lr then depends on wall time: a resume is no longer bit-exact)
    schedule_by_time: bool = False
    channels_last: bool = False


@dataclass
class Config:
    """One training experiment. ``run_dir`` defaults to ``runs/<config file name>``."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run_dir: str | None = None


def _check_type(value: Any, tp: Any, key: str) -> Any:
    """Return ``value`` checked against annotation ``tp`` (ints widen to floats)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _check_type(value, arg, key)
            except ConfigError:
                pass
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if tp is type(None):
        if value is None:
            return None
    elif tp is Any:
        return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{key}: expected a finite number, got {value!r}")
            return float(value)
    elif tp in (int, str, bool):
        if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
            return value
    elif origin is list:
        if isinstance(value, (list, tuple)):
            (item,) = typing.get_args(tp)
            return [_check_type(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return dict(value)
    else:  # pragma: no cover - a schema field of a type this checker does not know
        raise TypeError(f"{key}: unsupported schema type {tp}")
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def from_dict(cls: type, data: Any, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from nested dicts, checking every key and type."""
    where = prefix.rstrip(".") or "config"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key '{prefix}{unknown[0]}'; "
                          f"known in {where}: {', '.join(sorted(names))}")
    values = {}
    for name, value in data.items():
        tp, key = hints[name], prefix + name
        values[name] = (from_dict(tp, value, key + ".") if dataclasses.is_dataclass(tp)
                        else _check_type(value, tp, key))
    return cls(**values)


def to_dict(cfg: Config) -> dict[str, Any]:
    """Plain nested dict of ``cfg`` (YAML- and JSON-safe)."""
    return dataclasses.asdict(cfg)


#: Longest integer a config may hold: any count or size beyond 18 digits is a typo, and
#: Python refuses to parse integers above 4,300 digits (a ValueError, not a YAML error).
MAX_DIGITS = 18


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, but a key given twice in one mapping (a section written twice:
    YAML keeps the last, silently) and integers of more than :data:`MAX_DIGITS` digits
    are errors."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in getattr(node, "value", []):
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, typing.Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice; keep one", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.Node) -> int:
        digits = sum(c.isdigit() for c in str(node.value))
        if digits > MAX_DIGITS:
            raise yaml.constructor.ConstructorError(
                None, None, f"an integer of {digits} digits (at most {MAX_DIGITS})",
                node.start_mark)
        return super().construct_yaml_int(node)


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _StrictLoader.construct_yaml_int)
_StrictLoader.add_constructor("tag:yaml.org,2002:map", _StrictLoader.construct_yaml_map)


def _load_yaml(text: str, where: str) -> Any:
    """YAML text -> Python objects by :class:`_StrictLoader`; :class:`ConfigError`
    naming ``where`` (a file or an override) for anything it cannot read."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{where}: not valid YAML ({e.problem}{at})") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML ({' '.join(str(e).split())})") from None
    except RecursionError:
        raise ConfigError(f"{where}: not valid YAML (nested too deep)") from None


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """``["--train.max_steps=2", "--loss.name=l2"]`` -> nested dict of YAML-parsed values."""
    tree: dict[str, Any] = {}
    for arg in args:
        key, sep, raw = arg.removeprefix("--").partition("=")
        if not arg.startswith("--") or not sep or not key:
            raise ConfigError(f"override {arg!r} must look like --section.key=VALUE")
        value = _load_yaml(raw, f"override {arg[:60]!r}") if raw else ""
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {arg!r} conflicts with an earlier override")
        node[leaf] = value
    return tree


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in update.items():
        # kwargs dicts merge too, so --model.kwargs.width=32 keeps the other kwargs.
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML file; :class:`ConfigError` if missing or malformed."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"{p}: cannot read config ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file (a config is a YAML file such as "
                          "configs/default.yaml)") from None
    data = _load_yaml(text, str(p))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: a config must be a mapping of sections")
    return data


def load_config(path: str | Path | None, overrides: Sequence[str] = (),
                base: dict[str, Any] | None = None) -> Config:
    """Config from ``base`` (a resolved dict), then the YAML at ``path``, then ``overrides``.

    ``run_dir`` defaults to ``runs/<file name without suffix>``.
    """
    data = dict(base or {})
    if path is not None:
        data = _merge(data, read_yaml(path))
    data = _merge(data, parse_overrides(list(overrides)))
    cfg: Config = from_dict(Config, data)
    if cfg.run_dir is None and path is not None:
        cfg.run_dir = str(Path("runs") / Path(path).stem)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Value checks the types alone cannot express."""
    t, d = cfg.train, cfg.data
    positive = {"data.crop": d.crop, "train.batch_size": t.batch_size, "train.lr": t.lr,
                "train.eval_every": t.eval_every, "train.ckpt_every": t.ckpt_every,
                "train.log_every": t.log_every, "model.working_size": cfg.model.working_size}
    for key, v in positive.items():
        if v <= 0:
            raise ConfigError(f"{key}: must be positive, got {v}")
    nonnegative = {"data.scale_jitter": d.scale_jitter, "data.workers": d.workers,
                   "data.val_limit": d.val_limit, "train.warmup_steps": t.warmup_steps,
                   "model.freeze_encoder_steps": cfg.model.freeze_encoder_steps,
                   "train.grid_images": t.grid_images}
    if d.feature_views <= 0:
        raise ConfigError(f"data.feature_views: must be positive, got {d.feature_views}")
    if d.limit is not None and d.limit <= 0:
        raise ConfigError(f"data.limit: must be positive, got {d.limit}")
    if cfg.model.adabn < 0 or cfg.model.l2sp < 0:
        raise ConfigError(f"model.adabn / model.l2sp: must not be negative, got "
                          f"{cfg.model.adabn} / {cfg.model.l2sp}")
    for key, v in nonnegative.items():
        if v < 0:
            raise ConfigError(f"{key}: must not be negative, got {v}")
    if not d.train:
        raise ConfigError("data.train: no training data given")
    if d.device_cache and not d.cache:
        raise ConfigError("data.device_cache: needs data.cache: true (photos kept decoded)")
    if (t.max_steps is None) == (t.epochs is None):
        raise ConfigError("train: set exactly one of max_steps and epochs")
    if (t.max_steps is not None and t.max_steps <= 0) or (t.epochs is not None and t.epochs <= 0):
        raise ConfigError("train.max_steps / train.epochs: must be positive")
    if t.precision not in ("fp32", "bf16"):
        raise ConfigError(f"train.precision: 'fp32' or 'bf16', got {t.precision!r}")
    if t.schedule not in ("constant", "cosine"):
        raise ConfigError(f"train.schedule: 'constant' or 'cosine', got {t.schedule!r}")
    if len(t.betas) != 2:
        raise ConfigError(f"train.betas: two numbers, got {t.betas}")
    if t.ckpt_minutes is not None and not t.ckpt_minutes > 0:
        raise ConfigError(f"train.ckpt_minutes: must be positive, got {t.ckpt_minutes}")
    if t.max_minutes is not None and not t.max_minutes > 0:
        raise ConfigError(f"train.max_minutes: must be positive, got {t.max_minutes}")
    if t.ema is not None and not 0 < t.ema < 1:
        raise ConfigError(f"train.ema: a decay in (0, 1), got {t.ema}")
    if cfg.run_dir is None:
        raise ConfigError("run_dir: not set (give a config file or --run_dir=PATH)")


def run_config(path: str | Path | None, overrides: Sequence[str] = (),
               resume: str | Path | None = None) -> Config:
    """The config of a training run: with ``resume``, the run folder's own
    ``config.yaml``, then the YAML at ``path`` (if given) and ``overrides`` on top;
    without, as :func:`load_config`. Raises :class:`ConfigError`."""
    if resume is None:
        if path is None:
            raise ConfigError("give a CONFIG file, or --resume RUN_DIR")
        return load_config(path, overrides)
    saved = Path(resume) / "config.yaml"
    if not saved.is_file():
        raise ConfigError(f"{resume}: not a run folder (no config.yaml)")
    return load_config(path, overrides, base=read_yaml(saved))


def save_config(cfg: Config, path: Path) -> None:
    """Write the resolved config as YAML, atomically."""
    from chromatize.io import atomic_write_bytes

    atomic_write_bytes(path, yaml.safe_dump(to_dict(cfg), sort_keys=False).encode())


def recipe_main(argv: list[str] | None, doc: str, config_type: type, default_run: str,
                train: typing.Callable[[Any, Path, dict[str, Any]], Path | None]) -> None:
    """The command line of the small recipe trainers (the repair networks'): ``CONFIG
    [--run FOLDER] [--steps N] [--photos LIST]``; the YAML, with those overrides, becomes
    ``config_type`` and is trained (or resumed) in the run folder. A bad config, photo
    list or run state ends in one line and exit status 1."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--run", default=default_run)
    parser.add_argument("--steps", type=int)
    parser.add_argument("--photos", help="another place for the config's photos")
    args = parser.parse_args(argv)
    try:
        raw = read_yaml(args.config)
        for key in ("steps", "photos"):
            if getattr(args, key) is not None:
                raw[key] = getattr(args, key)
        print(f"wrote {train(from_dict(config_type, raw), Path(args.run), raw)}")
    except ChromatizeError as e:  # a bad config, photo list or run folder: one line
        raise SystemExit(f"error: {e}") from None
