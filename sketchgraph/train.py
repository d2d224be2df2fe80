"""Train a model on a prepared dataset: ``sketchgraph train [CONFIG] --data DIR --out DIR``.

One ``TrainConfig`` (TOML / JSON / YAML file, then ``--set key=value`` overrides) drives a run:

    >>> result = train(load_train_config("configs/tiny.toml", ["data=data/synthetic", "epochs=3"]))

The output directory receives ``metrics.jsonl`` (one JSON line per epoch), ``best/`` (the checkpoint
with the highest validation top-1) and ``last/`` (the latest checkpoint plus its resume state, see
``sketchgraph.checkpoint``). ``--resume`` continues from ``last/`` exactly: shuffling, augmentation
and dropout are re-seeded at every epoch from ``(seed, epoch, rank)``, and the optimizer state,
schedule step and early-stop counter are restored, so a run killed after epoch k and resumed ends
with the same weights as one that never stopped (on CPU). A resume is refused when the dataset's content
(``PreparedDataset.fingerprint``) or any setting of the recipe differs from the run's; only the settings in
``RESUME_MAY_CHANGE`` (where and how it runs, when it stops) and, except under the cosine schedule, ``epochs`` may
change; the number of processes (``torchrun --nproc_per_node``, recorded as ``training.world_size``) may not, as it
sets the global batch and the steps per epoch the learning-rate schedule counts in. A resume of a run that wrote no
checkpoint (only its records, ``train_config.json``) starts over, under the same checks against the recorded
recipe. Every invocation's command is recorded (``training.commands`` in ``config.json``). An output directory
that already holds a run is refused unless ``--resume`` continues it or ``--overwrite`` deletes it and starts
over.

Under ``torchrun --nproc_per_node W`` the model is wrapped in DistributedDataParallel (gloo on CPU,
nccl on CUDA); each rank takes every W-th sketch of the same shuffled order (``batch_size`` per rank
and step, so the global batch is ``W * batch_size``), metrics are summed over ranks, and only rank 0
writes.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import datetime
import functools
import json
import math
import os
import platform
import random
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
import types
import typing
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .augment import AugmentConfig, SketchAugment
from .batch import Batch
from .checkpoint import TrainState, finite_or_null, is_checkpoint, load_train_state, recover_dir, save_checkpoint
from .checkpoint import foreign_temporaries as _foreign_temporaries
from .checkpoint import remove_stale_temporaries as _remove_stale_temporaries
from .device import usable_cpus, usable_device
from .distributed import DistContext, agree, all_reduce_sum, init_distributed, shard_indices
from .errors import CheckpointError
from .formats.base import sync_file
from .graph import GraphSpec
from .model.precision import warn_if_emulated_bf16
from .signals import interrupts_deferred, interrupts_ignored

__all__ = [
    "TrainConfig", "TrainResult", "Trainer", "train", "measure_throughput", "load_train_config", "config_from_dict",
    "apply_overrides", "learning_rate", "configure_parser", "config_from_args", "run_cli",
]

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("step", "cosine", "constant")


@dataclass
class TrainConfig:
    """Everything a training run depends on (stored in every checkpoint's ``config.json``).

    The defaults are the paper's MGT optimisation recipe (Adam 5e-5, the step schedule x0.7 every 10 epochs, batch
    192, 100 epochs, bf16 on CUDA), paired with the project's ``mgt`` preset; they are not tuned for it.
    ``configs/spg20.toml`` holds the tuned recipe of the ``mgt`` preset (AdamW 2e-3, cosine) and
    ``configs/paper.toml`` the paper's own model (``mgt-paper``) with its exact learning-rate protocol. Running
    ``sketchgraph train`` without a config file therefore trains ``mgt`` with the paper's learning rate. The defaults
    stay as they are so that runs and checkpoints recorded with them keep their meaning (a checkpoint's recorded
    config lacks nothing, but older code compared missing settings against these defaults).

    Attributes:
        data: prepared dataset directory.
        out: output directory (``metrics.jsonl``, ``best/``, ``last/``, and the run's records ``train_config.json``,
            ``train.log`` and ``summary.json``).
        preset: model preset for ``sketchgraph.model.build_model``.
        model: keyword overrides for the preset (e.g. ``{"dropout": 0.1}``): fields of the preset's config dataclass
            (``MGTConfig``, ``CNNConfig`` or ``BiGRUConfig``; not ``num_classes`` or ``preset``), typed and
            range-checked when the config is made.
        epochs: maximum number of epochs.
        batch_size: sketches per optimizer step and process.
        optimizer: ``"adam"`` or ``"adamw"``.
        lr: peak learning rate.
        weight_decay: on weight matrices only (not biases / norms / embeddings' 1-d params).
        schedule: ``"step"`` (``lr * step_gamma ** (epoch // step_every)``, the paper's x0.7 every
            10 epochs), ``"cosine"`` (to ``lr * min_lr_ratio`` at the last step) or ``"constant"``.
        step_every, step_gamma: the step schedule.
        step_milestones: when given, the step schedule multiplies the rate by ``step_gamma`` at each of
            these epochs (0-based, increasing) instead of every ``step_every`` epochs: the official scripts'
            ``lr_protocol``, e.g. MGT #17's ``[10, 20, ..., 80, 85, 90, 95]`` (``configs/paper.toml``).
        warmup_epochs: linear warm-up (per step) before any schedule.
        min_lr_ratio: cosine floor as a fraction of ``lr``.
        label_smoothing: cross-entropy label smoothing.
        grad_clip: clip the global gradient norm to this (0: off).
        augment: training-time augmentation (``sketchgraph.augment``).
        early_stop_patience: stop after this many epochs in a row whose validation top-1 is below the best so far
            (an equal score resets the count, as in the official code; 0: off).
        seed: everything random derives from it (0 <= seed < 2**64).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        bf16: bfloat16 autocast on CUDA.
        bf16_cpu: bfloat16 autocast on CPU too (off by default: worth it only where the CPU has bf16 matrix
            instructions, e.g. AVX512-BF16 or AMX, where it makes the wide ``mgt-paper`` train about 2x faster).
        num_workers: loader worker processes (0 is usually fastest on CPU: collation is vectorised and
            worker processes compete with the model for the cores).
        bucket: length bucketing of training batches: sort windows of ``bucket`` batches by sketch
            length so padding stays short (``sketchgraph.data.bucket_batches``; 1 = off, batches then pad
            to their longest sketch, near 100 points for a random batch of 64). 0 (default): ``AUTO_BUCKET`` for
            models without BatchNorm, 1 for BatchNorm models, whose batch statistics bucketing skews (batches of
            like-length, partly like-class sketches: the official architecture with the anchor recipe reached
            78.75% test top-1 with bucket 32, 90.00% without). Bucketing also roughly doubles throughput, so
            under a tight time budget it can still win for a BatchNorm model (docs/benchmarks.md, "BatchNorm and
            bucketing").
        max_time_minutes: stop before an epoch that would end past this budget (0: no budget).
        train_split, valid_split: split names in the prepared dataset.
        resume: continue from ``out/last`` when it holds a resume state: on the same dataset (content fingerprint)
            with the same recipe, only ``RESUME_MAY_CHANGE`` and (unless the schedule is cosine) ``epochs`` may differ.
            Without a resume state it starts over, after the same check against the recipe in ``train_config.json``
            when the run recorded one.
        overwrite: start over in an ``out`` that already holds a run (a non-empty ``metrics.jsonl``, ``best/`` or
            ``last/``), deleting it; without it (or ``resume``) ``train`` refuses to touch that run.
        progress: show tqdm progress bars (rank 0 only); ``None`` (default): only when stderr is a terminal, so logs
            redirected to a file hold no bar redraws.
    """

    data: str = ""
    out: str = "runs/train"
    preset: str = "mgt"
    model: dict[str, Any] = field(default_factory=dict)
    epochs: int = 100
    batch_size: int = 192
    optimizer: str = "adam"
    lr: float = 5e-5
    weight_decay: float = 0.0
    schedule: str = "step"
    step_every: int = 10
    step_gamma: float = 0.7
    step_milestones: tuple[int, ...] = ()
    warmup_epochs: float = 0.0
    min_lr_ratio: float = 0.0
    label_smoothing: float = 0.0
    grad_clip: float = 0.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    early_stop_patience: int = 10
    seed: int = 0
    device: str = "auto"
    bf16: bool = True
    bf16_cpu: bool = False
    num_workers: int = 0
    bucket: int = 0
    max_time_minutes: float = 0.0
    train_split: str = "train"
    valid_split: str = "valid"
    resume: bool = False
    overwrite: bool = False
    progress: bool | None = None

    def __post_init__(self) -> None:
        """Check every setting; ``ValueError`` names the setting and what is wrong with it. Every float setting must
        be finite (NaN passes no comparison, so ``warmup_epochs=nan`` would otherwise train at learning rate 0), the
        preset must exist, and ``model`` is checked against the preset's config dataclass (``_model_settings``)."""
        if isinstance(self.augment, dict):
            self.augment = _dataclass_from_dict(AugmentConfig, self.augment, "augment.")
        if not self.out.strip():
            raise ValueError("out is empty: name the run's folder (metrics.jsonl, best/, last/), e.g. --out runs/x; "
                             "--out . is the current folder")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        for name in _FLOAT_FIELDS:
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be a finite number, got {getattr(self, name)}")
        for name in ("epochs", "batch_size", "step_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("early_stop_patience", "seed", "warmup_epochs", "max_time_minutes", "num_workers", "bucket",
                     "weight_decay", "label_smoothing", "grad_clip", "min_lr_ratio"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.seed >= 2**64:
            raise ValueError(f"seed must be < 2**64 (torch's seeds are 64-bit), got {self.seed}")
        milestones = self.step_milestones
        if any(m < 1 for m in milestones) or any(b <= a for a, b in zip(milestones, milestones[1:])):
            raise ValueError(f"step_milestones must be increasing epochs >= 1, got {list(milestones)}")
        if not self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be < 1, got {self.label_smoothing}")
        if self.min_lr_ratio > 1:
            raise ValueError(f"min_lr_ratio must be <= 1 (the cosine floor is lr * min_lr_ratio), got "
                             f"{self.min_lr_ratio}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.step_gamma <= 0:
            raise ValueError(f"step_gamma must be > 0 (the step schedule multiplies lr by it), got {self.step_gamma}")
        if self.resume and self.overwrite:
            raise ValueError("resume (continue the run in out) and overwrite (start it over) exclude each other")
        self.model = _model_settings(self.preset, self.model)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_FLOAT_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.type in (float, "float"))


def _model_settings(preset: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (the ``model`` table: overrides of preset ``preset``'s config fields) checked and typed.

    Each key must be a field of the preset's config dataclass (``MGTConfig``, ``CNNConfig``, ``BiGRUConfig``) other
    than ``num_classes`` (the dataset's class count) and ``preset`` (the top-level setting); each value is typed as
    the top-level settings are (``_coerce``), and the preset's config is built with them so its range checks run
    now. Every ``ValueError`` names the setting as ``model.<field>``.
    """
    from .model.registry import ARCHS, PRESETS

    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {list(PRESETS)}, got {preset!r}")
    cfg_cls = ARCHS[PRESETS[preset].arch][0]
    reserved = {"num_classes": "it is the dataset's number of classes",
                "preset": "set the top-level preset (--preset) instead"}
    for key in values:
        if key in reserved:
            raise ValueError(f"model.{key} cannot be set: {reserved[key]}")
    names = [f.name for f in dataclasses.fields(cfg_cls) if f.name not in reserved]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"unknown setting(s) {['model.' + k for k in unknown]} for preset {preset!r}; known: "
                         f"{['model.' + n for n in names]} (a config file's [model] table is for its own preset: "
                         "--set model={} clears it)")
    hints = typing.get_type_hints(cfg_cls)
    typed = {k: _coerce(v, hints[k], f"model.{k}") for k, v in values.items()}
    try:
        cfg_cls(**{**PRESETS[preset].fields, **typed, "num_classes": 1, "preset": preset})
    except ValueError as exc:
        raise ValueError(str(exc).replace(f"{cfg_cls.__name__}.", "model.")) from None
    return typed


# ------------------------------------------------------------------------------------------ config
@dataclass(frozen=True)
class _Override:
    """A ``--set`` value: its text as typed and the TOML literal it parses as (the text when it does not)."""

    text: str
    parsed: Any


def _plain(value: Any) -> Any:
    """``value`` with every ``_Override`` inside replaced by its parsed literal."""
    if isinstance(value, _Override):
        return value.parsed
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check / convert one value to a dataclass field's type (ints become floats, not the reverse). A
    ``--set`` value goes to a text field as typed (``out=1e3`` is ``"1e3"``, not ``"1000.0"``)."""
    if isinstance(value, _Override):
        quoted = isinstance(value.parsed, str)
        value = value.text if hint in (str, bool) and not quoted else value.parsed
    origin = typing.get_origin(hint) or hint
    if origin is dict:  # TrainConfig.model: its values keep their --set text, _model_settings types them
        if not isinstance(value, dict):
            raise ValueError(f"{key} must be a table, got {value!r}")
        return dict(value)
    if origin in (typing.Union, types.UnionType):  # X | None (MGTConfig.head_dim): none / null, or an X
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if len(args) < len(typing.get_args(hint)):
                return None
        if len(args) == 1:
            return _coerce(value, args[0], key)
        raise ValueError(f"{key}: cannot use {value!r} for a field of type {hint}")
    value = _plain(value)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ValueError(f"{key} must be a table of settings, got {value!r}")
        return _dataclass_from_dict(hint, value, f"{key}.")
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if not isinstance(value, (list, tuple)):
            example = {str: '["stroke1", "temporal"]', float: "[0.5, 1.0]"}.get(item, "[5, 8]")
            raise ValueError(f"{key} must be a list, got {value!r} (--set '{key}={example}'; in a config file "
                             f"{key} = {example})")
        return tuple(_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value))
    if hint is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0", "on", "off"):
            return value.lower() in ("true", "yes", "1", "on")
        if not isinstance(value, bool):
            raise ValueError(f"{key} must be true or false, got {value!r}")
        return value
    if hint is float:
        try:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ValueError
            return float(value)
        except ValueError:
            raise ValueError(f"{key} must be a number, got {value!r}") from None
    if hint is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str)
                                                                    and value.lstrip("-").isdigit())):
            raise ValueError(f"{key} must be an integer, got {value!r}")
        return int(value)
    if hint is str:
        return str(value)
    raise ValueError(f"{key}: cannot use {value!r} for a field of type {hint}")


def _dataclass_from_dict(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"unknown setting(s) {[prefix + k for k in unknown]}; known: {[prefix + n for n in names]}")
    typed = {k: _coerce(v, hints[k], prefix + k) for k, v in values.items()}
    try:
        return cls(**typed)
    except ValueError as exc:  # "AugmentConfig.rotation must be ..." -> "augment.rotation must be ...", as model.*
        if not prefix:
            raise
        raise ValueError(str(exc).replace(f"{cls.__name__}.", prefix)) from None


def config_from_dict(values: dict[str, Any]) -> TrainConfig:
    """A ``TrainConfig`` from a (nested) dict; unknown keys and wrongly typed values raise ``ValueError``."""
    return _dataclass_from_dict(TrainConfig, values)


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Settings from a ``.toml``, ``.json`` or ``.yaml`` / ``.yml`` (needs pyyaml) file.

    A syntax error, text that is not UTF-8 or a file that does not hold a table of settings raises ``ValueError``
    starting with the file's path (``configs/x.toml: Invalid value (at line 2, column 6)``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such config file: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a config file (.toml, .json or .yaml)")
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json", ".yaml", ".yml"):
        raise ValueError(f"{path}: unknown config format {suffix!r}; use .toml, .json or .yaml")
    if suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ValueError(f"{path}: YAML configs need pyyaml (pip install pyyaml), or use TOML") from None
        errors: tuple[type[Exception], ...] = (yaml.YAMLError,)
    else:
        errors = (tomllib.TOMLDecodeError, json.JSONDecodeError)
    try:
        text = path.read_text(encoding="utf-8")
        if suffix == ".toml":
            values = tomllib.loads(text)
        elif suffix == ".json":
            values = json.loads(text)
        else:
            values = yaml.safe_load(text) or {}
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc})") from None
    except errors as exc:
        raise ValueError(f"{path}: {exc}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: a config file holds a table of settings (key = value), got a "
                         f"{type(values).__name__}")
    return values


def _parse_literal(text: str) -> _Override:
    """A ``--set`` value: a TOML literal (``3``, ``1e-4``, ``true``, ``"s"``, ``[1, 2]``) or a bare string."""
    try:
        return _Override(text, tomllib.loads(f"v = {text}")["v"])
    except tomllib.TOMLDecodeError:
        return _Override(text, text)


def apply_overrides(config: TrainConfig, overrides: Sequence[str]) -> TrainConfig:
    """Apply ``key=value`` overrides with dotted keys (``lr=1e-4``, ``augment.rotation=15``,
    ``model.dropout=0.1``); values are typed by the dataclass fields."""
    values = config.to_dict()
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"override {item!r} is not key=value")
        *parents, leaf = key.strip().split(".")
        node = values
        for i, part in enumerate(parents):
            if isinstance(node.get(part), _Override):  # an earlier override set the whole table (model={})
                node[part] = node[part].parsed
            if part not in node or not isinstance(node[part], dict):
                raise ValueError(f"unknown setting {'.'.join(parents[: i + 1])!r} in override {item!r}")
            node = node[part]
        node[leaf] = _parse_literal(text.strip())
    return config_from_dict(values)


def load_train_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Defaults, then the config file (if any), then ``key=value`` overrides. An error in the file's settings (an
    unknown key, a wrong type or range) raises ``ValueError`` starting with the file's path."""
    config = TrainConfig()
    if path:
        values = read_config_file(path)
        try:
            config = config_from_dict(values)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    return apply_overrides(config, overrides)


# ------------------------------------------------------------------------------------------ pieces
def learning_rate(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """The learning rate of optimizer step ``step`` (0-based), warm-up included."""
    warmup = config.warmup_epochs * steps_per_epoch
    if step < warmup:
        return config.lr * (step + 1) / warmup
    if config.schedule == "step":
        epoch = step // steps_per_epoch
        decays = bisect.bisect_right(config.step_milestones, epoch) if config.step_milestones \
            else epoch // config.step_every
        return config.lr * config.step_gamma ** decays
    if config.schedule == "cosine":
        total = config.epochs * steps_per_epoch
        progress = min(1.0, (step - warmup) / max(1.0, total - warmup))
        floor = config.lr * config.min_lr_ratio
        return floor + (config.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return config.lr


def _make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Adam / AdamW; weight decay only on parameters with 2+ dimensions."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    rest = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    cls = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=config.lr)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


AUTO_BUCKET = 32  # batches per length-sorted window when bucketing is automatic (TrainConfig.bucket = 0)
_STREAMS = {"order": 0, "augment": 1, "dropout": 2, "bucket": 3}


def epoch_seed(seed: int, epoch: int, stream: str, rank: int = 0) -> int:
    """The seed of random ``stream`` (``"order"``: shuffling, shared by all ranks; ``"augment"``;
    ``"dropout"``: the global torch / numpy / random generators) in ``epoch`` on ``rank``."""
    return int(np.random.SeedSequence([seed, epoch, _STREAMS[stream], rank]).generate_state(1)[0])


def _resolve_device(device: torch.device, ctx: DistContext) -> torch.device:
    """The device of this process: under torchrun, ``cuda`` (or ``auto`` on a GPU machine) becomes ``cuda:LOCAL_RANK``;
    an explicit ``cuda:N`` is refused there (``ValueError``), as every process would take that one GPU."""
    if device.type == "cuda" and ctx.enabled and device.index is not None:
        raise ValueError(
            f"device {str(device)!r} under torchrun ({ctx.world_size} processes): every process would use that one GPU "
            "(NCCL refuses it: duplicate GPU). Use --device cuda (or auto): each process takes GPU LOCAL_RANK; choose "
            "which GPUs with CUDA_VISIBLE_DEVICES (e.g. CUDA_VISIBLE_DEVICES=2,3 torchrun --nproc_per_node 2 ...)")
    if device.type == "cuda" and ctx.enabled:
        device = torch.device("cuda", ctx.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def _hardware(device: torch.device, ctx: DistContext) -> str:
    if device.type == "cuda":
        what = torch.cuda.get_device_name(device)
    else:
        what = f"CPU {platform.processor() or platform.machine()} ({os.cpu_count()} cores)"
    return f"{ctx.world_size} x {what}, torch {torch.__version__}"


TRAIN_CONFIG, TRAIN_LOG, SUMMARY = "train_config.json", "train.log", "summary.json"
RUN_RECORDS = (TRAIN_CONFIG, TRAIN_LOG, SUMMARY)  # written by every run into OUT, next to metrics.jsonl


def _earlier_run(out: Path) -> list[Path]:
    """What an earlier run left in ``out``: a non-empty ``metrics.jsonl``, ``best/``, ``last/``, the copies of
    them a kill inside a checkpoint swap leaves (``.last.old-<pid>``, which ``--resume`` would bring back), and the
    run's records (``RUN_RECORDS``: a run that stopped before its first epoch leaves only those)."""
    metrics = out / "metrics.jsonl"
    found = [metrics] if metrics.is_file() and metrics.stat().st_size else []
    for name in ("best", "last"):
        if (out / name).exists():
            found.append(out / name)
        found += sorted(out.glob(f".{name}.old-*"))
    found += [out / name for name in RUN_RECORDS if (out / name).is_file()]
    return found


def _checkpoints_of(out: Path) -> list[str]:
    """What of a run in ``out`` is more than its records (``_earlier_run`` but ``RUN_RECORDS``), as names
    (``best/``, ``metrics.jsonl``, ...): a run that has any of these trained, and must not start over in place."""
    return [p.name + "/" if p.is_dir() else p.name for p in _earlier_run(out) if p.name not in RUN_RECORDS]


def _first_command(invocations: Any) -> str | None:
    """The first recorded command of ``train_config.json``'s ``invocations`` (the one the run was started with)."""
    listed = invocations if isinstance(invocations, list) else []
    return next((c.get("command") for c in listed if isinstance(c, dict) and c.get("command")), None)


def _with_out(command: str | None, out: str) -> str | None:
    """``command`` (a recorded ``sketchgraph train`` command line) with its ``--out`` naming ``out`` instead, when
    it names another folder: the run's folder was copied or moved since, and the recorded command would write
    into (or, with ``--overwrite``, delete) the old one."""
    try:
        words = shlex.split(command or "")
    except ValueError:
        return command
    for i, word in enumerate(words):
        given = (words[i + 1] if word == "--out" and i + 1 < len(words) else
                 word.removeprefix("--out=") if word.startswith("--out=") else None)
        if given is None:
            continue
        if Path(given).expanduser().resolve() == Path(out).expanduser().resolve():
            return command
        words[i: i + 2 if word == "--out" else i + 1] = ["--out", str(out)]
        return shlex.join(words)
    return command


def _read_record(out: Path, name: str) -> dict[str, Any] | None:
    """``out/name`` (``train_config.json``, ``summary.json``) as a JSON object, or None when it is missing or
    unreadable."""
    try:
        record = json.loads((out / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _settings_diff(old: dict[str, Any], new: dict[str, Any], skip: Sequence[str]) -> list[str]:
    """``["key: old -> new", ...]`` (values as JSON) for every setting of ``new`` (a ``TrainConfig`` as JSON) that
    differs from the recorded ``old`` (a setting ``old`` lacks counts as its default), but ``skip``; the ``augment``
    and ``model`` tables key by key."""
    defaults = _as_json(TrainConfig().to_dict())
    old = {**defaults, **old, "augment": {**defaults["augment"], **(old.get("augment") or {})}}
    pairs = []
    for key, value in new.items():
        if key in skip:
            continue
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            pairs += [(f"{key}.{k}", before.get(k), value.get(k)) for k in sorted({*before, *value})]
        else:
            pairs.append((key, before, value))
    return [f"{k}: {json.dumps(a)} -> {json.dumps(b)}" for k, a, b in pairs if a != b]


def _check_out_is_not_data(out: Path, data: str) -> None:
    """``FileExistsError`` when ``out`` is a prepared dataset (``meta.json`` or its ``coords.npy``), or is or lies
    inside a checkpoint (``checkpoint.is_checkpoint``: another run's ``last/``, a shipped model's folder),
    ``ValueError`` when it is the ``data`` folder, inside it or holds it: a later ``prepare --overwrite`` of the
    dataset, or the checkpoint's next save, would delete the run with it, and the run's files would mix with the
    dataset's."""
    from .data.storage import is_prepared

    if is_prepared(out) or (out / "coords.npy").is_file():
        raise FileExistsError(f"--out {out} is a prepared dataset (it holds meta.json / coords.npy): name another "
                              "folder for the run; a later `sketchgraph prepare --overwrite` of it would delete the "
                              "run")
    mine = Path(os.path.abspath(out))
    inside = next((folder for folder in (mine, *mine.parents) if is_checkpoint(folder)), None)
    if inside is not None:  # a run's best/ or last/, or a shipped model: the next save of it deletes the run
        where = "is a checkpoint" if inside == mine else f"is inside the checkpoint {inside}"
        raise FileExistsError(f"--out {out} {where}: name a folder of its own for the run (e.g. --out runs/NAME); a "
                              "checkpoint is replaced whole when it is saved again, and a run inside it with it")
    if not data:
        return
    theirs = Path(os.path.abspath(data))
    where = ("is the dataset folder" if mine == theirs else "is inside the dataset folder" if theirs in mine.parents
             else "holds the dataset folder" if mine in theirs.parents else "")
    if where:
        raise ValueError(f"--out {out} {where} --data {data}: keep runs and prepared datasets apart (e.g. --out "
                         "runs/NAME), so neither `prepare --overwrite` nor `train --overwrite` touches the other")


def _stderr_is_tty() -> bool:
    """Whether stderr (where the progress bars go) is a terminal."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


@functools.lru_cache(maxsize=1)
def _git_state() -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the git checkout sketchgraph is imported from, or ``None`` (an installed copy, no
    git, or git failing). Asked once per process; ``dirty`` counts changes to tracked files only."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists() or shutil.which("git") is None:
        return None
    try:
        def git(*words: str) -> str:
            return subprocess.run(["git", "-C", str(root), *words], capture_output=True, text=True, timeout=10,
                                  check=True).stdout.strip()
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "-uno"))}
    except (OSError, subprocess.SubprocessError):
        return None


def _now() -> str:
    """The local time with its UTC offset, to the second (ISO 8601)."""
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _write_json_atomic(path: Path, obj: Any) -> None:
    """Write ``obj`` as JSON (non-finite floats as null) to ``path`` through a synced temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(finite_or_null(obj), indent=2, allow_nan=False) + "\n")
        sync_file(f)
    os.replace(tmp, path)


def _split_warnings(config: TrainConfig, classes: Sequence[str], train_labels: np.ndarray,
                    valid_labels: np.ndarray) -> list[str]:
    """Warnings about the splits a run trains and validates on: validation on the training split or on ``test``,
    and classes without a sketch in either split (a class with no training sketch cannot be learnt, and caps the
    valid top-1)."""
    warnings = []
    if config.valid_split == config.train_split:
        warnings.append(f"valid_split is the training split ({config.train_split!r}): best/ and early stopping are "
                        "chosen on sketches the model trains on; use a held-out split (--set valid_split=...)")
    elif config.valid_split == "test":
        warnings.append("valid_split is 'test': best/ and early stopping are chosen on the test split, so its scores "
                        "are no longer a fair estimate; validate on a split of its own (e.g. 'valid')")

    def missing(labels: np.ndarray) -> str:
        counts = np.bincount(labels, minlength=len(classes)) if len(labels) else np.zeros(len(classes), int)
        names = [c for c, n in zip(classes, counts) if n == 0]
        return ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")

    checks = [(config.train_split, train_labels, "the model cannot learn them, and the valid top-1 cannot reach 100%")]
    if config.valid_split != config.train_split:
        checks.append((config.valid_split, valid_labels, "validation does not measure them"))
    for split, labels, what in checks:
        names = missing(labels)
        if names:
            warnings.append(f"class(es) with no sketch in the {split!r} split: {names}; {what}")
    return warnings


def _check_out_folder(out: Path) -> None:
    """``NotADirectoryError`` when ``out`` or the nearest existing path above it is not a folder (instead of a bare
    ``[Errno 17] File exists`` once the first checkpoint is written)."""
    from .formats.base import nearest_existing

    path = nearest_existing(out)
    if not path.is_dir():
        where = "is a file" if path == out else f"is inside {path}, which is a file"
        raise NotADirectoryError(f"--out {out} {where}, not a folder: name a folder for the run "
                                 "(metrics.jsonl, best/, last/)")


# Settings a resume may change: where and how the run is carried out, or when it stops, never what an epoch
# computes, so the resumed run still ends as an uninterrupted run with the new values would (device aside: another
# device rounds differently). data: the folder may move (the dataset's content fingerprint is compared instead);
# max_time_minutes, early_stop_patience: when to stop. epochs may change too unless the schedule is cosine (the
# cosine's length is epochs). num_workers may not: each loader process draws its own augmentation, so a run is
# reproducible only for one num_workers (sketchgraph.data.loader). Nor may the number of processes (world_size,
# compared apart, as it is not a setting): it sets the global batch and the steps per epoch of the lr schedule.
RESUME_MAY_CHANGE = ("data", "out", "resume", "overwrite", "progress", "device", "max_time_minutes",
                     "early_stop_patience")


def _as_json(value: Any) -> Any:
    """``value`` as it reads back from a checkpoint's ``config.json`` (tuples become lists)."""
    return json.loads(json.dumps(finite_or_null(value)))


def _recipe_diff(old: dict[str, Any], new: TrainConfig, old_model: dict[str, Any] | None,
                 new_model: dict[str, Any], *, auto_bucket: int) -> list[str]:
    """``["key: old -> new", ...]`` (values as JSON) for every training setting in which ``new`` differs from the
    recorded training config ``old``, ``augment.*`` included, and every field in which the built model
    ``new_model`` differs from the recorded ``old_model`` (as ``model.<field>``; ``num_classes``, ``preset`` and
    ``backend`` aside). Skipped: ``RESUME_MAY_CHANGE``, and ``epochs`` unless ``new.schedule`` is cosine. A setting
    ``old`` lacks counts as its default; a model field ``old_model`` lacks is not compared. ``bucket`` is compared
    as used, 0 counting as ``auto_bucket`` (the same model resolves it the same way)."""
    defaults = _as_json(TrainConfig().to_dict())
    mine = _as_json(new.to_dict())
    old = {**defaults, **old, "augment": {**defaults["augment"], **(old.get("augment") or {})}}
    old["bucket"], mine["bucket"] = old["bucket"] or auto_bucket, mine["bucket"] or auto_bucket
    skip = {*RESUME_MAY_CHANGE, "model", "augment", *(() if new.schedule == "cosine" else ("epochs",))}
    pairs = [(k, old.get(k), v) for k, v in mine.items() if k not in skip]
    pairs += [(f"augment.{k}", old["augment"].get(k), v) for k, v in mine["augment"].items()]
    if old_model is not None:
        model = _as_json(new_model)
        pairs += [(f"model.{k}", old_model[k], v) for k, v in model.items()
                  if k not in ("num_classes", "preset", "backend") and k in old_model]
    return [f"{k}: {json.dumps(a)} -> {json.dumps(b)}" for k, a, b in pairs if a != b]


def _model_of_recipe(recipe: dict[str, Any], num_classes: int) -> dict[str, Any] | None:
    """The model (``model_config_dict``'s fields) that a recorded training config ``recipe`` builds with
    ``num_classes`` classes: its ``preset``'s fields with its ``model`` table over them; None when they make no model
    config (an unknown preset or field, a value the config refuses)."""
    from .model.registry import ARCHS, PRESETS

    name, table = recipe.get("preset", TrainConfig().preset), recipe.get("model") or {}
    if not isinstance(name, str) or name not in PRESETS or not isinstance(table, dict):
        return None
    preset = PRESETS[name]
    try:
        config = ARCHS[preset.arch][0](**{**preset.fields, **table, "num_classes": num_classes, "preset": name})
    except (TypeError, ValueError):
        return None
    return _as_json({"arch": preset.arch, **asdict(config)})


def _these_differ(diffs: Sequence[str]) -> str:
    """``this setting differs`` or ``these settings differ``, as ``diffs`` holds one or more."""
    return "this setting differs" if len(diffs) == 1 else "these settings differ"


def _resume_refusal(head: str, diffs: Sequence[str], why: str, first: str | None, world: int, now: int) -> str:
    """The message of a resume refused for another recipe: ``head`` (what cannot be resumed, the settings against
    which record), the ``diffs``, ``why`` a run keeps its recipe, how to go on (with ``first``, the command the run
    was started with, when known), what a resume may change, and, when the number of processes differs (``world``
    recorded, ``now``), what that number is."""
    free = ", ".join(RESUME_MAY_CHANGE)
    processes = "" if world == now else (
        f". world_size is the number of processes: the run trained with {world} "
        f"({'one process, no torchrun' if world == 1 else f'torchrun --nproc_per_node {world}'}) and resumes "
        "only so")
    return (f"{head} (old -> new): {'; '.join(diffs)}. {why}: resume with the same settings"
            f"{f' (it was started with: {first})' if first else ''}, or start a new run (another --out, or "
            f"--overwrite). A resume may change only {free}, and epochs unless the schedule is cosine{processes}")


def _top5_shown(metrics: dict[str, Any], num_classes: int) -> str:
    """`` top-5 0.9876`` for an epoch's log line; nothing for 5 classes or fewer, where it is 1 by definition (as
    ``evaluate``'s summary leaves out a k at or above the number of classes)."""
    return f" top-5 {metrics['valid_top5']:.4f}" if num_classes > 5 else ""


def _recorded_commands(training: dict[str, Any]) -> list[dict[str, Any]]:
    """The invocations a checkpoint's ``training`` record lists (``commands``), oldest first; a checkpoint written
    before they were listed gives its one ``command`` (``from_epoch`` unknown: None)."""
    commands = training.get("commands")
    if isinstance(commands, list):
        return [dict(c) for c in commands if isinstance(c, dict)]
    return [{"command": training["command"], "from_epoch": None}] if training.get("command") else []


def _recorded_world_size(training: dict[str, Any]) -> int:
    """The number of processes a checkpoint's run trained with (``training.world_size``). A checkpoint written before
    it was recorded gives the count its ``hardware`` record starts with (``"2 x CPU ..."``), else 1."""
    value = training.get("world_size")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    match = re.match(r"(\d+) x ", str(training.get("hardware") or ""))
    return int(match.group(1)) if match else 1


def _num_batches(n: int, batch_size: int, drop_last: bool) -> int:
    return n // batch_size if drop_last else -(-n // batch_size)


@dataclass
class TrainResult:
    """What ``train`` returns.

    Attributes:
        out: the output directory.
        epochs: epochs completed (over all resumed runs).
        best_epoch: the epoch of ``best/`` (0 when there was none).
        best_valid_top1: its validation top-1.
        history: the ``metrics.jsonl`` records.
        stop_reason: ``"completed"``, ``"early_stop"``, ``"time_budget"``, ``"diverged"`` (a non-finite training
            loss: that epoch is discarded, the CLI exits with status 1) or ``"already_done"`` (resumed
            a run that had reached ``epochs``).
        time_s: training time over all resumed runs.
        model: the final model (unwrapped, on the training device).
    """

    out: Path
    epochs: int
    best_epoch: int
    best_valid_top1: float
    history: list[dict[str, Any]]
    stop_reason: str
    time_s: float
    model: nn.Module


class Trainer:
    """One training run's state and steps (``train`` drives it epoch by epoch; ``measure_throughput`` times
    ``loader`` + ``train_step``)."""

    def __init__(self, config: TrainConfig, command: str | None) -> None:
        """Open the dataset, build the model (DDP-wrapped under torchrun) and the optimizer. A configuration error
        raised here leaves the process group (``DistContext.close``) before it propagates."""
        self.config = config
        self.command = command or ""
        # the command recorded in checkpoints as the one that trains this run: this invocation's, or, when a run
        # that wrote no checkpoint starts over under its recorded recipe, the command it was started with
        self.run_command = self.command
        self.earlier_summary: dict[str, Any] | None = None  # summary.json as this invocation found it
        # rank 0's [train] lines: kept until the run owns out (open_records), then appended to out/train.log
        self.log_path: Path | None = None
        self.pending_log: list[str] = []
        # out held only the records of an earlier invocation of this recipe that wrote no checkpoint (claim_out)
        self.restarting = False
        self.show_progress = config.progress if config.progress is not None else _stderr_is_tty()
        device = usable_device(config.device)
        self.ctx = init_distributed(device.type)
        try:
            self._build(device)
        except BaseException:
            self.ctx.close(sync=False)  # every rank raises the same error: no waiting for the others
            raise

    def _build(self, device: torch.device) -> None:
        """The rest of ``__init__``, once the process group is joined."""
        from .data import PreparedDataset
        from .model import build_model
        from .wording import counted

        config = self.config
        self.device = _resolve_device(device, self.ctx)
        self.bf16 = {"cpu": config.bf16_cpu, "cuda": config.bf16}.get(self.device.type, False)  # autocast
        if self.bf16:
            warn_if_emulated_bf16(self.device, f"bf16 autocast on {self.device.type}")
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.out = Path(config.out)
        self.data = PreparedDataset(config.data)
        # the content the run trains on, taken now: the folder may be prepared again while the run goes on
        self.fingerprint = self.data.fingerprint
        self.classes = list(self.data.classes)
        if len(self.classes) < 2:
            raise ValueError(f"{config.data} holds {counted(len(self.classes), 'class')} "
                             f"({', '.join(self.classes) or 'none'}): a classifier needs at least two to tell apart "
                             "(a model of one class answers it for every drawing); prepare more classes")
        self.train_split = self._open_split(config.train_split, "train_split")
        self.valid_split = self._open_split(config.valid_split, "valid_split")
        for warning in _split_warnings(config, self.classes, self.train_split.labels, self.valid_split.labels):
            self.log(f"warning: {warning}")
        if len(self.train_split) < self.ctx.world_size:
            raise ValueError(
                f"the {config.train_split!r} split of {config.data} holds "
                f"{counted(len(self.train_split), 'sketch')}, fewer than the {self.ctx.world_size} processes "
                "(torchrun --nproc_per_node): each process trains on sketches of its own; use at most "
                f"{len(self.train_split)} processes")

        _seed_everything(config.seed)  # identical initial weights on every rank
        self.net = build_model(config.preset, len(self.classes), **config.model).to(self.device)
        self.relations = tuple(self.net.relations)  # empty for the CNN / BiGRU baselines
        self.model: nn.Module = self.net
        if self.ctx.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.net, device_ids=ids)
        self.optimizer = _make_optimizer(config, self.net)
        self.transform = SketchAugment(config.augment) if config.augment.enabled else None
        aug = config.augment
        if (self.transform is not None and aug.affine_prob > 0 and (aug.scale or aug.translate)
                and getattr(getattr(self.net, "config", None), "coord_norm", "none") == "unit"):
            self.log("note: augment.scale and augment.translate change nothing for this model: it fits every "
                     "sketch into [-1, 1] (coord_norm='unit'), which undoes an isotropic scale and a shift")
        cpus = usable_cpus()
        if config.num_workers > cpus:
            self.log(f"note: num_workers {config.num_workers} is more than the {counted(cpus, 'CPU')} this process may "
                     "use: the loader processes share them, which is slower, not wrong (torch warns too); it is part "
                     "of the run's recipe (each loader process draws its own augmentation), so a resume keeps it: "
                     "to change it, start the run afresh")

        per_rank = len(self.train_split) // self.ctx.world_size
        self.drop_last = per_rank >= config.batch_size  # no tiny last batch (BatchNorm), unless all are tiny
        self.train_batches = _num_batches(per_rank, config.batch_size, self.drop_last)
        self.state = TrainState(seed=config.seed)
        self.history: list[dict[str, Any]] = []
        self.saved_epoch = 0  # the epoch last/ holds (state.epoch runs ahead of it while an epoch is being saved)
        # every invocation of this run, oldest first: {"command", "from_epoch"} (recorded in checkpoints)
        self.commands: list[dict[str, Any]] = []

    def _open_split(self, name: str, setting: str) -> Any:
        """Split ``name`` of the dataset; ``KeyError`` naming the splits it has, and how to choose or make them."""
        try:
            return self.data.split(name)
        except KeyError as exc:
            names = self.data.split_names
            hint = (f"; name one of them (--set {setting}=...)" if len(names) > 1 else
                    "; prepare it again with splits (sketchgraph prepare ... --protocol, see its --help), or name "
                    "the splits to use (--set train_split=... --set valid_split=...)")
            raise KeyError(f"{exc.args[0]}{hint}") from None

    # -------------------------------------------------------------- resume / files
    def claim_out(self) -> None:
        """Make ``out`` this run's: nothing to do when it holds no earlier run or when resuming; with ``overwrite``
        the earlier run's files are deleted (rank 0), else ``FileExistsError`` names them. An ``out`` that holds
        only the records (``RUN_RECORDS``) of an invocation that wrote no checkpoint (killed or failed in its first
        epoch) is an exception: this run starts over in it, with a note, when its recipe is the recorded one
        (``_records_only_diff``; ``open_records`` then appends to the records); with another recipe the error lists
        the differences. Rank 0's view of the folder decides on every rank, so all of them go on or stop together.

        ``NotADirectoryError`` when ``out``, or a folder above it, is a file; ``FileExistsError`` / ``ValueError`` when
        it is a prepared dataset, or the dataset's folder, inside it or holding it (``_check_out_is_not_data``).
        ``overwrite`` deletes only what ``train`` writes (``metrics.jsonl``, ``best/``, ``last/``, ``RUN_RECORDS``
        and the half-written copies of a killed run); it names whatever else it leaves in ``out`` (an ``eval/`` of
        the deleted model, notes), which may now be stale. Otherwise the half-written checkpoints of a process that
        is no longer running (``.best.tmp-<host>-<pid>``) are removed (``remove_stale_temporaries``).
        """
        _check_out_folder(self.out)
        _check_out_is_not_data(self.out, self.config.data)
        if self.config.resume:
            self.remove_stale_temporaries()
            return
        found = _earlier_run(self.out)
        if not agree(bool(found), self.ctx, self.device):
            self.remove_stale_temporaries()
            return
        if not self.config.overwrite:
            names = ", ".join(p.name + "/" if p.is_dir() else p.name for p in found)
            # only the records (no metrics, no checkpoint): an invocation killed or failed before its first epoch
            diffs = self._records_only_diff() if found and all(p.name in RUN_RECORDS for p in found) else None
            if agree(diffs == [], self.ctx, self.device):
                self.restarting = True
                self.start_over()
                self.log(f"no checkpoint was written by the earlier run in {self.out} ({names}); starting over")
                self.remove_stale_temporaries()
                return
            what = f" ({names})" if found else ""
            if diffs:  # --resume would refuse the changed settings too: it keeps the run's recipe
                world = (_read_record(self.out, TRAIN_CONFIG) or {}).get("world_size", 1)
                again = shlex.join([*_launcher(world if isinstance(world, int) else 1), "train", "--resume", "--out",
                                    str(self.out)])
                raise FileExistsError(
                    f"{self.out} already holds a training run{what}; it wrote no checkpoint, and its recipe in "
                    f"{TRAIN_CONFIG} differs from this one (recorded -> now): {'; '.join(diffs)}; start it over with "
                    f"its recipe ({again} alone, or this command without the changes), or pass --overwrite "
                    "(overwrite=true) to start over with this one")
            raise FileExistsError(f"{self.out} already holds a training run{what}; pass --resume "
                                  "(resume=true) to continue it or --overwrite (overwrite=true) to delete it and start "
                                  "over")
        if self.ctx.is_main:
            found += [p for name in ("best", "last") for p in sorted(self.out.glob(f".{name}.tmp-*"))]
            names = ", ".join(p.name + "/" if p.is_dir() else p.name for p in found)
            for path in found:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            self.log(f"overwrite: deleted the earlier run in {self.out} ({names})")
            kept = sorted(p.name + ("/" if p.is_dir() else "") for p in self.out.iterdir()
                          if p.name not in ("metrics.jsonl", "metrics.jsonl.tmp", *RUN_RECORDS,
                                            *(name + ".tmp" for name in RUN_RECORDS)))
            if kept:
                self.log(f"overwrite: left in {self.out} as they were (train did not write them): {', '.join(kept)}; "
                         "delete what belongs to the deleted run (e.g. an evaluation of its best/), it no longer "
                         "matches the new model")

    def start_over(self) -> None:
        """This run starts over in an ``out`` that holds the records of a run that wrote no checkpoint, under its
        recorded recipe (checked by the caller): its checkpoints record the command the run was started with, which
        reproduces it (this invocation's may be ``--resume --out DIR`` alone)."""
        record = _read_record(self.out, TRAIN_CONFIG) or {}
        self.run_command = _with_out(_first_command(record.get("invocations")), self.config.out) or self.command

    def _records_only_diff(self) -> list[str] | None:
        """For an ``out`` that holds only ``RUN_RECORDS``: how this run's recipe differs from the one recorded in
        ``train_config.json`` (``_settings_diff``; ``data`` compared by the dataset's content fingerprint, and the
        number of processes too); [] when it is the same recipe, None when none is recorded."""
        record = _read_record(self.out, TRAIN_CONFIG)
        if record is None or not isinstance(record.get("config"), dict):
            return None
        diffs = _settings_diff(record["config"], _as_json(self.config.to_dict()),
                               ("data", "out", "resume", "overwrite", "progress"))
        return diffs + self._dataset_and_world_diff(record, path_too=True)

    def _dataset_and_world_diff(self, record: dict[str, Any], *, path_too: bool) -> list[str]:
        """How this run differs from the one ``train_config.json`` (``record``) describes in its dataset (by the
        content fingerprint; when none is recorded, by the folder's absolute path if ``path_too``, else not at all,
        as a resume from a checkpoint without one) and its number of processes, as ``key: old -> new`` entries."""
        diffs = []
        dataset = record.get("dataset") if isinstance(record.get("dataset"), dict) else {}
        if dataset.get("fingerprint") is not None:
            if dataset["fingerprint"] != self.fingerprint:
                diffs.append(f"dataset: {json.dumps(dataset.get('path'))} -> {json.dumps(self.config.data)} (another "
                             "content)")
        elif path_too and dataset.get("path") != os.path.abspath(self.config.data):
            diffs.append(f"data: {json.dumps(dataset.get('path'))} -> {json.dumps(os.path.abspath(self.config.data))}")
        world = record.get("world_size", 1)
        if world != self.ctx.world_size:
            diffs.append(f"world_size: {json.dumps(world)} -> {self.ctx.world_size}")
        return diffs

    def remove_stale_temporaries(self) -> None:
        """Rank 0: remove the checkpoints a killed process was writing (``.best.tmp-<host>-<pid>``,
        ``.last.tmp-<host>-<pid>`` of a process of this machine no longer running, or of another machine once a day
        old; ``checkpoint.remove_stale_temporaries``) and say so; name the ones of another machine it keeps."""
        if self.ctx.is_main and self.out.is_dir():
            removed = _remove_stale_temporaries(self.out, ("best", "last"))
            if removed:
                self.log(f"removed {', '.join(p.name + '/' for p in removed)}: checkpoint writes cut short by a "
                         "process that is no longer running")
            kept = _foreign_temporaries(self.out, ("best", "last"))
            if kept:
                self.log(f"note: kept {', '.join(p.name + '/' for p in kept)}: checkpoint writes of a process on "
                         "another machine (the name after .tmp-), which may still be running; two runs must not "
                         f"share {self.out}. Such a folder is removed once it is a day old; delete it sooner if no "
                         "run writes it")

    def open_records(self, notes: Sequence[str] = ()) -> None:
        """Rank 0, once the run owns ``out``: write ``train_config.json`` (the resolved config, this invocation's
        command, argv, working folder, time, library version and git commit, world size; a resume appends its
        invocation to the earlier ones) and start appending the ``[train]`` lines to ``train.log``: a header line
        for this invocation, ``notes`` (the CLI's warnings about its settings), then the lines logged so far."""
        from . import __version__

        start = _now()
        path = self.out / TRAIN_CONFIG
        earlier = (_read_record(self.out, TRAIN_CONFIG) or {}) if self.config.resume or self.restarting else {}
        kept = earlier.get("invocations")
        invocations: list[Any] = list(kept) if isinstance(kept, list) else []
        invocations.append({"command": self.command or None, "argv": list(sys.argv), "cwd": os.getcwd(),
                            "start_time": start, "from_epoch": self.state.epoch, "world_size": self.ctx.world_size,
                            "hardware": _hardware(self.device, self.ctx)})
        _write_json_atomic(path, {
            "config": self.config.to_dict(), "library_version": __version__, "git": _git_state(),
            "world_size": self.ctx.world_size,
            "dataset": {"path": os.path.abspath(self.config.data), "fingerprint": self.fingerprint},
            "invocations": invocations,
        })
        what = f"resumed after epoch {self.state.epoch}" if self.state.epoch else "started"
        self.log_path = self.out / TRAIN_LOG
        lines = [f"{start} ==== {what}: {self.command or '(train() from Python)'}",
                 *(f"{start} [train] {note}" for note in notes), *self.pending_log]
        self.pending_log = []
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))

    def write_summary(self, stop_reason: str, from_epoch: int, started: float, error: str | None = None) -> None:
        """Rank 0: write ``summary.json`` (atomically): why the run stopped (``TrainResult.stop_reason``, or
        ``"interrupted"`` / ``"failed"``; ``"running"`` from the start of an invocation until it ends, written again
        after each saved epoch, so a process killed outright (kill -9, power loss) leaves that with the epochs it
        saved, not an earlier invocation's outcome), the epochs done
        (in all, and in this invocation), the best epoch and its valid top-1 (null when no epoch finished), the
        training time, this invocation's wall time and end time (null while ``running``).

        An invocation that had nothing to do (``"already_done"``: a resume of a run that had reached ``epochs``)
        records that as ``last_invocation`` and keeps the stop reason of the earlier ``summary.json`` of the same
        epoch (``completed``, ``early_stop``, ...), so the run's outcome is not lost; ``already_done`` is the stop
        reason only when there is none to keep (no earlier summary, or one of an interrupted or failed invocation)."""
        state = self.state
        last_invocation = None
        if stop_reason == "already_done":
            last_invocation = stop_reason
            earlier = self.earlier_summary or {}
            if (earlier.get("stop_reason") in ("completed", "early_stop", "time_budget", "diverged")
                    and earlier.get("epochs") == state.epoch):
                stop_reason = earlier["stop_reason"]
        summary = {
            "stop_reason": stop_reason, "epochs": self.saved_epoch, "max_epochs": self.config.epochs,
            "epochs_this_invocation": self.saved_epoch - from_epoch,
            "best_epoch": state.best_epoch or None,
            "best_valid_top1": state.best_metric if state.best_epoch else None,
            "time_s": round(state.time_s, 1), "wall_time_s": round(time.perf_counter() - started, 1),
            "end_time": None if stop_reason == "running" else _now(),
        }
        if last_invocation:
            summary["last_invocation"] = last_invocation
        if error:
            summary["error"] = error
        _write_json_atomic(self.out / SUMMARY, summary)

    def maybe_resume(self) -> None:
        last = self.out / "last"
        if not self.config.resume:
            return
        if recover_dir(last):  # every rank may try: one rename wins, the others find it done
            self.log(f"{last} was being replaced when the run stopped; the previous one is back")
        if not last.exists():
            trained = _checkpoints_of(self.out)
            if trained:  # a run that trained must go on from last/, never start over in place
                raise CheckpointError(
                    f"cannot resume the run in {self.out}: it has no last/ (the model, optimizer and schedule a "
                    f"resume continues from), but it trained ({', '.join(trained)}). Bring last/ back to continue "
                    "the run; or train afresh: --overwrite deletes this run first, another --out keeps it (its "
                    "best/ is a checkpoint as it is)")
            self._check_recorded_recipe()
            self.start_over()
            self.log(f"nothing to resume in {last}; starting from scratch")
            return
        from safetensors import SafetensorError
        from safetensors.torch import load_model

        from .checkpoint import load_config

        stored = load_config(last)
        training = stored.get("training") or {}
        self.commands = _recorded_commands(training)
        self._check_same_data(last, stored)
        self._check_same_recipe(last, stored)
        self.state = load_train_state(last)
        try:
            load_model(self.net, str(last / "model.safetensors"), device=str(self.device))
        except SafetensorError as exc:
            raise CheckpointError(f"{last / 'model.safetensors'} is not a valid safetensors file ({exc})") from None
        except OSError as exc:
            raise CheckpointError(f"cannot resume from {last}: {exc.strerror or exc}: "
                                  f"{last / 'model.safetensors'}") from None
        except RuntimeError as exc:
            raise CheckpointError(f"cannot resume from {last}: its model differs from this config's ({exc})") from None
        self.optimizer.load_state_dict(self.state.optimizer)
        metrics = self.out / "metrics.jsonl"
        if metrics.is_file():
            rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
            self.history = [r for r in rows if r["epoch"] <= self.state.epoch]
        self.log(f"resumed from {last} after epoch {self.state.epoch}")

    def _check_same_data(self, last: Path, config: dict[str, Any]) -> None:
        """``CheckpointError`` unless ``last`` (whose ``config.json`` is ``config``) was trained on this dataset:
        the same classes, splits and preprocessing, and the same content fingerprint
        (``PreparedDataset.fingerprint``: the same sketches in the same splits, wherever the folder is now).
        A checkpoint written before fingerprints were recorded is checked without it."""
        training = config.get("training") or {}
        meta = getattr(self.data, "meta", {}) or {}
        theirs = {"classes": config["classes"], "preprocessing": config.get("preprocessing"),
                  "splits": (training.get("dataset") or {}).get("splits")}
        mine = {"classes": self.classes, "preprocessing": meta.get("preprocessing"), "splits": meta.get("splits")}
        differ = [k for k in theirs if theirs[k] != mine[k]]
        if differ:
            raise CheckpointError(f"cannot resume from {last}: it was trained on another dataset (its "
                                  f"{', '.join(differ)} differ from {self.config.data}'s); use a new --out or the "
                                  "same --data")
        stored = (training.get("dataset") or {}).get("fingerprint")
        if stored is not None and stored != self.fingerprint:
            raise CheckpointError(
                f"cannot resume from {last}: it was trained on another dataset: {self.config.data} has the same "
                f"classes and split sizes but not the same content (fingerprint {self.fingerprint[:16]}..., the "
                f"run's {str(stored)[:16]}...), e.g. it was prepared again with another --seed or from other files, "
                "so its splits hold other sketches. Continuing would train on them, possibly on test sketches of "
                "this dataset; use the run's dataset, or a new --out")

    def _check_same_recipe(self, last: Path, config: dict[str, Any]) -> None:
        """``CheckpointError`` listing every setting (``key: old -> new``) in which this run's config differs from
        the one ``last`` was trained with (``config``: its ``config.json``), other than ``RESUME_MAY_CHANGE`` (and
        ``epochs``, except under the cosine schedule, whose length it is). The model is compared as built (its
        ``config.json`` ``model``, ``backend`` aside), so ``[model]`` tables that build the same model agree.
        Settings a checkpoint does not record (older versions) count as their defaults; a checkpoint without a
        training config is not checked."""
        training = config.get("training") or {}
        if not isinstance(training.get("config"), dict):
            return
        from .model import model_config_dict

        diffs = _recipe_diff(training["config"], self.config, config.get("model"), model_config_dict(self.net),
                             auto_bucket=self.auto_bucket)
        world = _recorded_world_size(training)
        if world != self.ctx.world_size:  # the global batch and the steps per epoch the lr schedule counts in
            diffs.append(f"world_size: {world} -> {self.ctx.world_size}")
        if not diffs:
            return
        first = next((c.get("command") for c in self.commands if c.get("command")), None)
        raise CheckpointError(_resume_refusal(
            f"cannot resume from {last}: {_these_differ(diffs)} from the run's", diffs,
            "A resumed run keeps the recipe it started with, so that it ends as an uninterrupted run would and its "
            "recorded commands reproduce it", first, world, self.ctx.world_size))

    def _check_recorded_recipe(self) -> None:
        """For a resume that finds no resume state in ``last/`` but the records of the run (``train_config.json``
        of an invocation that wrote no checkpoint; the run then starts over under them): ``CheckpointError``
        listing every setting (``key: old -> new``) in which this run's config differs from the recorded recipe,
        by a resume's rules (``_recipe_diff``, as ``_check_same_recipe``: only ``RESUME_MAY_CHANGE``, and
        ``epochs`` unless the schedule is cosine, may differ; the model is compared as the recorded ``preset`` and
        ``[model]`` table build it), and the dataset's content (fingerprint) and the number of processes too. An
        ``out`` without a readable recorded recipe is not checked."""
        record = _read_record(self.out, TRAIN_CONFIG)
        if record is None or not isinstance(record.get("config"), dict):
            return
        from .model import model_config_dict

        recipe = record["config"]
        built = _model_of_recipe(recipe, len(self.classes))
        diffs = _recipe_diff(recipe, self.config, built, model_config_dict(self.net), auto_bucket=self.auto_bucket)
        table, mine = _as_json(recipe.get("model") or {}), _as_json(self.config.model)
        if built is None and table != mine:  # a recorded table that builds no model: compared as written
            diffs.append(f"model: {json.dumps(table)} -> {json.dumps(mine)}")
        diffs += self._dataset_and_world_diff(record, path_too=False)  # the folder may move, as on any resume
        if not diffs:
            return
        first = _first_command(record.get("invocations"))
        world = record.get("world_size", 1)
        raise CheckpointError(_resume_refusal(
            f"cannot resume the run in {self.out}: it wrote no checkpoint, and {_these_differ(diffs)} from its "
            f"recipe in {TRAIN_CONFIG}", diffs,
            "A resume that starts over keeps the recorded recipe, so that the run's records describe one recipe "
            "and its recorded commands reproduce it", first, world if isinstance(world, int) else 1,
            self.ctx.world_size))

    def write_metrics(self) -> None:
        """Rewrite ``metrics.jsonl`` from ``history`` (atomically)."""
        self.out.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(finite_or_null(r), allow_nan=False) + "\n" for r in self.history)
        tmp = self.out / "metrics.jsonl.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            sync_file(f)  # on disk before the rename publishes it
        os.replace(tmp, self.out / "metrics.jsonl")

    def save(self, name: str, metrics: dict[str, Any], with_state: bool) -> None:
        """Write checkpoint ``out/name`` (with the resume state when ``with_state``)."""
        meta = getattr(self.data, "meta", {}) or {}
        # baselines attend over no relation; record the dataset's so loaders and predictors still build batches
        relations = self.relations or tuple((meta.get("graph_spec") or GraphSpec().to_dict())["relations"])
        save_checkpoint(
            self.out / name, self.net,
            classes=self.classes,
            preprocessing=meta.get("preprocessing"),
            graph_spec=GraphSpec(relations),
            preset=self.config.preset,
            training={
                "command": self.run_command,
                "cwd": os.getcwd(),
                "git": _git_state(),
                "config": self.config.to_dict(),
                "epochs": self.state.epoch,
                "time_s": round(self.state.time_s, 1),
                "hardware": _hardware(self.device, self.ctx),
                "world_size": self.ctx.world_size,
                "commands": self.commands,
                "dataset": {k: meta[k] for k in ("name", "source", "license", "splits") if k in meta}
                | {"path": os.path.abspath(self.config.data), "fingerprint": self.fingerprint},
            },
            metrics=metrics,
            train_state=dataclasses.replace(self.state, optimizer=self.optimizer.state_dict()) if with_state else None,
        )

    def log(self, message: str, *, echo: bool = True) -> None:
        """Rank 0: ``[train] message`` on stderr (unless not ``echo``), and in ``out/train.log`` (kept until
        ``open_records``)."""
        if not self.ctx.is_main:
            return
        if echo:
            print(f"[train] {message}", file=sys.stderr, flush=True)
        line = f"{_now()} [train] {message}"
        if self.log_path is None:
            self.pending_log.append(line)
            return
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    # -------------------------------------------------------------- epochs
    @property
    def bucket(self) -> int:
        """The length bucketing in use: ``config.bucket``, or when it is 0, ``AUTO_BUCKET`` unless the model has
        BatchNorm (then 1: random batches, as BatchNorm's statistics need)."""
        return self.config.bucket or self.auto_bucket

    @property
    def auto_bucket(self) -> int:
        """What ``bucket = 0`` means for this model: 1 with BatchNorm, else ``AUTO_BUCKET``."""
        batchnorm = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in self.net.modules())
        return 1 if batchnorm else AUTO_BUCKET

    def loader(self, split: Any, epoch: int, *, train: bool):
        """This rank's batches of ``split``: shuffled and augmented when ``train``, else in order."""
        from .data import bucket_batches, make_loader

        seed, rank = self.config.seed, self.ctx.rank
        indices = shard_indices(len(split), self.ctx, seed=epoch_seed(seed, epoch, "order") if train else None)
        common = dict(seed=epoch_seed(seed, epoch, "augment", rank), relations=self.relations,
                      transform=self.transform if train else None, num_workers=self.config.num_workers)
        if train and self.bucket > 1:
            batches = bucket_batches(indices, split.lengths(), self.config.batch_size, bucket=self.bucket,
                                     seed=epoch_seed(seed, epoch, "bucket", rank), drop_last=self.drop_last)
            return make_loader(split, 1, shuffle=False, batch_sampler=batches, **common)
        return make_loader(split, self.config.batch_size, shuffle=False, sampler=indices,
                           drop_last=train and self.drop_last, **common)

    def train_epoch(self, epoch: int) -> dict[str, float]:
        from tqdm.auto import tqdm

        cfg = self.config
        _seed_everything(epoch_seed(cfg.seed, epoch, "dropout", self.ctx.rank))
        self.model.train()
        sums = torch.zeros(3, dtype=torch.float64, device=self.device)  # loss * n, correct, n
        bar = tqdm(self.loader(self.train_split, epoch, train=True), total=self.train_batches, leave=False,
                   desc=f"epoch {epoch}/{cfg.epochs}", disable=not (self.show_progress and self.ctx.is_main),
                   dynamic_ncols=True)
        t0, lr = time.perf_counter(), learning_rate(cfg, self.state.step, self.train_batches)
        for i, batch in enumerate(bar):
            lr = learning_rate(cfg, self.state.step, self.train_batches)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            batch = batch.to(self.device)
            loss, logits = self.train_step(batch)
            n = batch.labels.shape[0]
            sums += torch.stack([loss.detach().double() * n, (logits.argmax(1) == batch.labels).sum().double(),
                                 torch.tensor(n, dtype=torch.float64, device=self.device)])
            if not bar.disable and (i % 10 == 0 or i == self.train_batches - 1):
                s = sums.tolist()
                bar.set_postfix(loss=f"{s[0] / s[2]:.4f}", acc=f"{s[1] / s[2]:.3f}", lr=f"{lr:.2e}")
        seconds = time.perf_counter() - t0
        loss_sum, correct, n = all_reduce_sum(sums, self.ctx, self.device)
        return {"train_loss": loss_sum / max(n, 1), "train_acc": correct / max(n, 1),
                "lr": lr, "train_time_s": seconds, "sketches_per_s": n / max(seconds, 1e-9)}

    def train_step(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on ``batch`` (already on the device) at the current learning rate:
        ``(loss (), logits (B, C))``."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(batch)
            loss = self.loss_fn(logits.float(), batch.labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.net.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.state.step += 1
        return loss, logits

    def sync_buffers(self) -> None:
        """Give every rank rank 0's buffers (BatchNorm's running statistics). DDP sends them only at the start of each
        training forward, so after the last step of an epoch each rank holds statistics updated by its own last
        batch; synced, every rank validates the model that rank 0 saves. A no-op in one process."""
        if self.ctx.enabled:
            import torch.distributed as dist

            for buffer in self.net.buffers():
                dist.broadcast(buffer, src=0)

    def validate(self, epoch: int) -> dict[str, float]:
        """Validation metrics of the model as rank 0 holds it (``sync_buffers`` first), summed over ranks."""
        from .evaluate import collect_logits, topk_correct

        self.sync_buffers()
        # every rank takes every W-th sketch; uneven counts are fine (no collective inside)
        loader = self.loader(self.valid_split, epoch, train=False)
        logits, labels = collect_logits(self.net, loader, self.device, bf16=self.bf16,
                                        progress=self.show_progress and self.ctx.is_main, desc="valid")
        hits = topk_correct(logits, labels, (1, 5)).tolist() if len(labels) else [0, 0]
        loss = nn.functional.cross_entropy(logits, labels, reduction="sum").item() if len(labels) else 0.0
        top1, top5, loss_sum, n = all_reduce_sum([*hits, loss, len(labels)], self.ctx, self.device)
        n = max(n, 1)
        return {"valid_loss": loss_sum / n, "valid_top1": top1 / n, "valid_top5": top5 / n}


def measure_throughput(config: TrainConfig, steps: int = 10, warmup: int = 2) -> dict[str, Any]:
    """Time ``steps`` training steps of ``config``'s run on this machine, data loading included: the epoch-1
    training loader (shuffle, bucketing, augmentation, collation) feeding ``Trainer.train_step``, after
    ``warmup`` untimed steps. Nothing is written.

    Returns:
        ``{"sketches_per_s", "mean_points", "mean_padded", "params", "num_classes", "batches"}``: ``mean_points`` /
        ``mean_padded`` are the mean real / padded sketch lengths of the timed batches, ``batches`` the
        timed ``Batch`` objects (to feed other implementations the same sketches).
    """
    run = Trainer(config, command=None)
    finished = False
    try:
        it = iter(run.loader(run.train_split, 1, train=True))
        for _ in range(warmup):
            if (batch := next(it, None)) is None:
                raise ValueError(f"the training split has too few batches for {warmup} warm-up + {steps} timed "
                                 "steps")
            run.train_step(batch.to(run.device))
        batches, n, t0 = [], 0, time.perf_counter()
        for _ in range(steps):
            batch = next(it, None)
            if batch is None:
                break
            batch = batch.to(run.device)
            run.train_step(batch)
            batches.append(batch)
            n += batch.size
        seconds = time.perf_counter() - t0
        finished = True
    finally:
        run.ctx.close(sync=finished)
    if not batches:
        raise ValueError(f"the training split has too few batches for {warmup} warm-up + {steps} timed steps")
    return {
        "sketches_per_s": n / seconds,
        "mean_points": float(np.mean([b.lengths.float().mean().item() for b in batches])),
        "mean_padded": float(np.mean([b.flags.shape[1] for b in batches])),
        "params": sum(p.numel() for p in run.net.parameters()),
        "num_classes": len(run.classes),
        "batches": batches,
    }


class TrainingInterrupted(KeyboardInterrupt):
    """``train`` was interrupted (Ctrl-C) after it took its output folder; the message says in which epoch, which
    epoch ``last/`` holds and the command that continues the run. The CLI prints it as one line (exit status 130)."""


def _interrupted_message(run: Trainer, epoch: int) -> str:
    """What ``TrainingInterrupted`` says: the epoch that was cut short, what ``last/`` holds, and how to go on."""
    config, saved = run.config, run.saved_epoch
    if not saved:
        again = f"{run.run_command} --overwrite" if run.run_command else "train again with overwrite=True"
        return f"interrupted in epoch {epoch}, before any epoch was saved; start over with: {again}"
    changed = _stop_settings_changed(run)
    if run.command:
        again = shlex.join([*_launcher(run.ctx.world_size), "train", "--resume", "--out", config.out,
                            *(word for key, value in changed for word in (
                                ["--epochs", str(value)] if key == "epochs" else ["--set", f"{key}={value}"]))])
    else:
        again = "train(dataclasses.replace(config, resume=True" + "".join(
            f", {key}={value!r}" for key, value in changed) + "))"
    if saved == epoch:  # it came while the epoch was being saved: the save was finished first
        return f"interrupted after epoch {epoch} was saved; continue with: {again}"
    return f"interrupted in epoch {epoch}; last/ holds epoch {saved}; continue with: {again}"


def _stop_settings_changed(run: Trainer) -> list[tuple[str, Any]]:
    """The settings of when the run stops (``epochs``, ``max_time_minutes``, ``early_stop_patience``) in which this
    invocation differs from what ``last/`` records (an interrupt before this invocation saved an epoch: ``last/`` is
    the earlier invocation's), as ``(key, value now)``; the "continue with" command must give them again, or a
    resume would take the recorded ones and the extension would be lost."""
    from .checkpoint import load_config

    try:
        recorded = (load_config(run.out / "last").get("training") or {}).get("config") or {}
    except (CheckpointError, OSError, ValueError):
        return []
    return [(key, getattr(run.config, key)) for key in ("epochs", "max_time_minutes", "early_stop_patience")
            if key in recorded and recorded[key] != getattr(run.config, key)]


def train(
    config: TrainConfig, *, command: str | None = None, on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
    notes: Sequence[str] = (),
) -> TrainResult:
    """Train ``config.preset`` on ``config.data``; see the module docstring for what is written.

    Besides ``metrics.jsonl``, ``best/`` and ``last/``, rank 0 writes the run's records into ``out`` once the run owns
    it: ``train_config.json`` at the start (``Trainer.open_records``), every ``[train]`` line appended to
    ``train.log``, and ``summary.json`` at the end (``Trainer.write_summary``), whatever ends the run: a stop reason
    of ``TrainResult``, ``"interrupted"`` (Ctrl-C: ``TrainingInterrupted`` is raised) or ``"failed"`` (an error).

    Args:
        config: the run's settings.
        command: the command line to record in checkpoints (the CLI passes it).
        on_epoch_end: called with each epoch's metrics after its checkpoints are written.
        notes: warnings about the settings to record at the top of this invocation's ``train.log`` lines (the CLI
            has printed them already).
    """
    from .wording import counted

    if not config.data:
        raise ValueError("no dataset: set data (--data DIR) to a prepared dataset directory")
    started = time.perf_counter()
    run = Trainer(config, command)
    finished = claimed = False
    stop_reason, error, from_epoch, epoch = "failed", None, 0, 0
    stopping = ExitStack()  # after an interrupt: further stop signals dropped until the records are written
    try:
        run.claim_out()  # before anything is written
        run.maybe_resume()
        state, ctx = run.state, run.ctx
        from_epoch, epoch = state.epoch, state.epoch + 1
        run.saved_epoch = state.epoch
        run.commands.append({"command": run.run_command, "from_epoch": state.epoch})
        if ctx.is_main:
            run.write_metrics()  # drops lines of epochs after the resumed state (or all, on a fresh start)
            run.open_records(notes)
            # until this invocation ends, summary.json says so: a kill -9 leaves "running", not an older outcome
            run.earlier_summary = _read_record(run.out, SUMMARY)
            run.write_summary("running", from_epoch, started)
        claimed = True
        budget_s = config.max_time_minutes * 60
        stop_reason = "completed"
        run.log(f"{config.preset}: {sum(p.numel() for p in run.net.parameters()):,} parameters, "
                f"{len(run.train_split):,} train / {counted(len(run.valid_split), 'valid sketch')}, "
                f"{counted(run.train_batches, 'step')}/epoch, device {run.device} x {ctx.world_size}, "
                + (f"length-bucketed batches (bucket {run.bucket})" if run.bucket > 1 else "random batches")
                + f"; out {config.out}, {config.epochs} epoch{'' if config.epochs == 1 else 's'}, "
                f"{config.optimizer} lr {config.lr:g} ({config.schedule}), batch size {config.batch_size}")
        if state.epoch >= config.epochs:
            stop_reason = "already_done"
        while state.epoch < config.epochs:
            epoch = state.epoch + 1
            # checked before each epoch, so a resumed run stops where the uninterrupted one would have
            if budget_s and run.history and agree(state.time_s + run.history[-1]["time_s"] > budget_s, ctx,
                                                   run.device):
                stop_reason = "time_budget"
                break
            if config.early_stop_patience and state.bad_epochs >= config.early_stop_patience:
                stop_reason = "early_stop"
                break
            t0 = time.perf_counter()
            metrics: dict[str, Any] = {"epoch": epoch, **run.train_epoch(epoch)}
            if not math.isfinite(metrics["train_loss"]):
                # nothing of this epoch is kept: the checkpoints of the last good epoch stay as they are
                stop_reason = "diverged"
                run.log(f"epoch {epoch}: the training loss is {metrics['train_loss']} (diverged); stopping. Try a "
                        "lower lr, a longer warm-up (warmup_epochs) or grad_clip")
                break
            metrics.update(run.validate(epoch))
            metrics["time_s"] = time.perf_counter() - t0
            # the epoch's state, metrics line, checkpoints and summary are all written or none: a Ctrl-C / SIGTERM
            # among them said "last/ holds epoch N" of a last/ not yet written, and the resume it gave was refused
            with interrupts_deferred():
                state.epoch, state.time_s = epoch, state.time_s + metrics["time_s"]
                improved = metrics["valid_top1"] > state.best_metric  # best/ keeps the first epoch of a tie
                if improved:
                    state.best_metric, state.best_epoch = metrics["valid_top1"], epoch
                # an equal score resets the patience count too, as the official code's early stopping does
                state.bad_epochs = 0 if metrics["valid_top1"] >= state.best_metric else state.bad_epochs + 1
                run.history.append(metrics)
                if ctx.is_main:
                    run.write_metrics()
                    summary = {k: metrics[k] for k in ("valid_top1", "valid_top5", "train_loss", "train_acc")}
                    if improved:
                        run.save("best", {"epoch": epoch, **summary}, with_state=False)
                    run.save("last", {"epoch": epoch, **summary}, with_state=True)
                run.saved_epoch = epoch
                if ctx.is_main:
                    run.write_summary("running", from_epoch, started)  # a process killed outright leaves its progress
                    run.log(f"epoch {epoch}: loss {metrics['train_loss']:.4f} acc {metrics['train_acc']:.3f} "
                            f"valid top-1 {metrics['valid_top1']:.4f}{_top5_shown(metrics, len(run.classes))} "
                            f"({metrics['time_s']:.1f}s{', best' if improved else ''})")
            if on_epoch_end is not None:
                on_epoch_end(metrics)
        if stop_reason != "completed" or state.epoch != from_epoch:
            run.log(f"end: {stop_reason} after epoch {state.epoch}"
                    + (f", best epoch {state.best_epoch} (valid top-1 {state.best_metric:.4f})"
                       if state.best_epoch else ""))
        result = TrainResult(
            out=run.out, epochs=state.epoch, best_epoch=state.best_epoch, best_valid_top1=state.best_metric,
            history=run.history, stop_reason=stop_reason, time_s=state.time_s, model=run.net,
        )
        finished = True
        return result
    except KeyboardInterrupt:
        if not claimed:
            raise
        stopping.enter_context(interrupts_ignored())  # timeout sends its signal twice: the second must not cut these
        stop_reason = "interrupted"
        message = _interrupted_message(run, epoch)
        run.log(message, echo=False)  # the CLI prints it as its last line
        raise TrainingInterrupted(message) from None
    except BaseException as exc:
        stop_reason, error = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if claimed and run.ctx.is_main:
            try:
                run.write_summary(stop_reason, from_epoch, started, error)
            except OSError as exc:  # the run's own outcome (or error) matters more than its summary
                print(f"[train] could not write {run.out / SUMMARY}: {exc}", file=sys.stderr)
        try:
            run.ctx.close(sync=finished)
        finally:
            stopping.close()


# ------------------------------------------------------------------------------------------ CLI
_DEFAULTS = TrainConfig()
PRECEDENCE = (
    "Each setting comes from the last of these that sets it: the defaults (the paper's MGT optimisation recipe: "
    f"Adam lr {_DEFAULTS.lr:g}, step schedule, batch size {_DEFAULTS.batch_size}, {_DEFAULTS.epochs} epochs, with "
    f"the project's {_DEFAULTS.preset!r} preset; configs/spg20.toml holds the tuned recipe for {_DEFAULTS.preset!r}), "
    "the config file, the --set overrides (in order), then the flags (--epochs, --lr, ...). A flag and a --set of "
    "the same key print a warning (the flag wins), as does a --preset that differs from the config file's while the "
    "file's [model] table still applies. `--resume --out DIR` without a config file takes the recipe and dataset "
    "recorded in DIR/last/config.json (DIR/train_config.json when the run wrote no checkpoint: it then starts over; "
    "with neither, --resume needs a config file); settings given with it must agree with the run's, except where "
    f"and how it runs and when it stops ({', '.join(RESUME_MAY_CHANGE)}; epochs unless the schedule is cosine)."
)
RUN_FILES_HELP = (
    "OUT receives metrics.jsonl, best/ and last/ (checkpoints), train_config.json (the resolved settings, command, "
    "versions), train.log (the [train] lines) and summary.json (why and when the run stopped, its best epoch). "
    "Ctrl-C stops with status 130 and says how to continue."
)


def _default_help(name: str, what: str) -> str:
    """``"WHAT (default X; a config file's value otherwise)"`` for a flag that sets ``TrainConfig.NAME``."""
    return f"{what} (default {getattr(_DEFAULTS, name)}; a config file's value otherwise)"


def settings_help() -> str:
    """Every ``--set`` key with its default (``TrainConfig``'s fields, ``augment.*`` of ``AugmentConfig``), for
    ``train --help``: the flags show only their own."""
    def shown(value: Any) -> str:
        if isinstance(value, (tuple, list)):
            return ",".join(map(str, value)) or "(none)"
        if value is None:
            return "(auto)"
        return json.dumps(value) if isinstance(value, bool) or value == "" else str(value)  # true, ""

    items = [f"{f.name}={shown(getattr(_DEFAULTS, f.name))}" for f in fields(TrainConfig)
             if f.name not in ("model", "augment")]
    items += [f"augment.{f.name}={shown(getattr(_DEFAULTS.augment, f.name))}" for f in fields(AugmentConfig)]
    return ("The --set keys and their defaults: " + ", ".join(items) + "; model.KEY: any field of the preset's "
            "model config (its default is the preset's). Each is described in docs/training.md and TrainConfig.")


def configure_parser(p: argparse.ArgumentParser) -> None:
    """The ``sketchgraph train`` options; the description states where settings come from (``PRECEDENCE``)."""
    p.description = f"Train a model on a prepared dataset. {PRECEDENCE}"
    p.epilog = f"{RUN_FILES_HELP} {settings_help()}"
    p.add_argument("config", nargs="?", default=None, help="TOML / JSON / YAML training config (optional)")
    p.add_argument("--data", help="prepared dataset directory (a config file's data otherwise)")
    p.add_argument("--out", help=_default_help("out", "output directory"))
    p.add_argument("--preset", help=_default_help("preset", "model preset (mgt, mgt-paper, gt-full, ..., cnn, bigru)"))
    p.add_argument("--epochs", type=int, help=_default_help("epochs", "maximum number of epochs"))
    p.add_argument("--lr", type=float, help=_default_help("lr", "peak learning rate"))
    p.add_argument("--batch-size", type=int, dest="batch_size",
                   help=_default_help("batch_size", "sketches per optimizer step and process"))
    p.add_argument("--device", help="auto, cpu, cuda, cuda:1, ... (default auto: CUDA when available)")
    p.add_argument("--seed", type=int, help=_default_help("seed", "seed of everything random, 0 <= SEED < 2**64"))
    p.add_argument("--resume", action="store_true", default=None,
                   help="continue from OUT/last if it exists; without a config file, with the recipe it records (or "
                        "OUT/train_config.json's, when the run wrote no checkpoint)")
    p.add_argument("--overwrite", action="store_true", default=None,
                   help="delete an earlier run in OUT (metrics.jsonl, best/, last/, train_config.json, train.log, "
                        "summary.json) and start over; without it (or --resume) such an OUT is refused")
    p.add_argument("--progress", action="store_true", dest="progress", default=None,
                   help="progress bars even when stderr is not a terminal (default: only on a terminal)")
    p.add_argument("--no-progress", action="store_false", dest="progress", default=None, help="no progress bars")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override any setting, dotted keys allowed (augment.rotation=15, model.dropout=0.1); a later "
                        "--set wins over an earlier one, a flag over both")


_FLAGS = ("data", "out", "preset", "epochs", "lr", "batch_size", "device", "seed", "resume", "overwrite", "progress")
_FOLDER_FLAGS = ("resume", "overwrite")  # what to do with OUT, not part of the run's recipe


def _launcher(world_size: int) -> list[str]:
    """The words that start a ``sketchgraph`` command run as ``world_size`` processes: ``sketchgraph`` for one,
    ``torchrun --standalone --nproc_per_node N -m sketchgraph`` under torchrun on one machine (``LOCAL_WORLD_SIZE``
    of torchrun's environment, else all of them), ``torchrun --nnodes M --nproc_per_node N -m sketchgraph`` on
    several (to which the user adds the rendezvous options of the cluster). A run of several processes has another
    global batch and other steps per epoch than one of a single process: its commands must say so to reproduce it."""
    if world_size <= 1:
        return ["sketchgraph"]
    try:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    except ValueError:
        local = world_size
    local = local if 1 <= local <= world_size and world_size % local == 0 else world_size
    nodes = world_size // local
    return ["torchrun", *(["--standalone"] if nodes == 1 else ["--nnodes", str(nodes)]), "--nproc_per_node",
            str(local), "-m", "sketchgraph"]


def _command_line(args: argparse.Namespace) -> str:
    """The canonical command that reproduces this run (recorded in checkpoints and model cards), started as this
    run's processes are (``_launcher``: ``torchrun ... -m sketchgraph train ...`` under torchrun)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        world = 1
    words = [*_launcher(world), "train"] + ([args.config] if args.config else [])
    for name in _FLAGS:
        value = getattr(args, name, None)
        if name in _FOLDER_FLAGS or value is None:
            continue
        if name == "progress":
            words += [] if value else ["--no-progress"]
        else:
            words += [f"--{name.replace('_', '-')}", str(value)]
    for item in args.overrides:
        words += ["--set", item]
    return shlex.join(words)


def _resumed_command(args: argparse.Namespace) -> str | None:
    """For ``--resume`` without a config file (the recipe comes from the run's records): the command recorded for the
    run (``last/config.json``'s ``training.command``, else the first of ``train_config.json``'s invocations) with this
    invocation's flags and ``--set`` items in place of its own: a whole command that trains the run straight as it
    now goes on (``--resume --out DIR --epochs 3`` alone was recorded as ``sketchgraph train --out DIR --epochs 3``,
    which trains the defaults on no data). None for another invocation, or when no command was recorded."""
    if not args.resume or args.config:
        return None
    from .checkpoint import load_config

    out = Path(_out_of_args(args))
    try:
        recorded = (load_config(out / "last").get("training") or {}).get("command")
    except (OSError, ValueError, CheckpointError):
        recorded = None
    if not recorded:
        recorded = _first_command((_read_record(out, TRAIN_CONFIG) or {}).get("invocations"))
    words = shlex.split(recorded) if isinstance(recorded, str) else []
    if "train" not in words:
        return None
    from .cli import build_parser

    argv = words[words.index("train"):]
    try:
        base = build_parser(argv).parse_args(argv)
    except SystemExit:  # a command of another version of the options
        return None
    for name in _FLAGS:
        if name not in _FOLDER_FLAGS and getattr(args, name, None) is not None:
            setattr(base, name, getattr(args, name))
    given = {item.partition("=")[0].strip() for item in args.overrides}
    for name in given.intersection(_FLAGS).difference(_FOLDER_FLAGS):
        if getattr(args, name, None) is None:  # --set epochs=2 (or out=, data=...) wins over the recorded flag
            setattr(base, name, None)
    base.overrides = [item for item in base.overrides if item.partition("=")[0].strip() not in given] + \
        list(args.overrides)
    return _command_line(base)


def _flag_text(name: str, value: Any) -> str:
    """How a flag reads on the command line: ``--epochs 1``, ``--resume``, ``--no-progress``."""
    if name == "progress":
        return "--progress" if value else "--no-progress"
    if name in _FOLDER_FLAGS:
        return f"--{name}"
    return f"--{name.replace('_', '-')} {value}"


def _flag_and_set_warnings(args: argparse.Namespace) -> list[str]:
    """``warning: --epochs 1 wins over --set epochs=5 ...`` for every flag given together with a ``--set`` of the
    same key (for ``--resume`` / ``--overwrite``, also of the opposite key, which the flag turns off)."""
    warnings = []
    for name in _FLAGS:
        value = getattr(args, name, None)
        if value is None:
            continue
        keys = {name} | ({"overwrite" if name == "resume" else "resume"} if name in _FOLDER_FLAGS else set())
        for item in args.overrides:
            if item.partition("=")[0].strip() in keys:
                warnings.append(f"warning: {_flag_text(name, value)} wins over --set {item} (a flag wins over --set, "
                                "which wins over the config file)")
    return warnings


def _preset_defaults(preset: str) -> dict[str, Any]:
    """The model fields of preset ``preset`` as it builds without a ``model`` table."""
    from .model.registry import ARCHS, PRESETS

    cfg_cls = ARCHS[PRESETS[preset].arch][0]
    defaults = {f.name: f.default for f in dataclasses.fields(cfg_cls) if f.default is not dataclasses.MISSING}
    defaults.update({f.name: f.default_factory() for f in dataclasses.fields(cfg_cls)  # type: ignore[misc]
                     if f.default_factory is not dataclasses.MISSING})
    return {**defaults, **PRESETS[preset].fields}


def _model_table_warning(path: str, file_values: dict[str, Any], overrides: Sequence[str],
                         config: TrainConfig) -> str | None:
    """A warning when ``config.preset`` is not the config file's preset while the file's ``[model]`` table (written
    for the file's preset) still sets fields of it: each such field with its value and the new preset's own, e.g.
    ``[model] from spg20.toml applied over mgt-paper: dropout 0.0 (preset 0.25)``. None when nothing is applied that
    way (same preset, no table, or ``--set model=...`` replaced it)."""
    file_preset = str(file_values.get("preset", _DEFAULTS.preset))
    table = file_values.get("model")
    keys = [item.partition("=")[0].strip() for item in overrides]
    if config.preset == file_preset or not isinstance(table, dict) or not table or "model" in keys:
        return None
    set_here = {k.split(".", 1)[1] for k in keys if k.startswith("model.")}
    applied = [k for k in table if k not in set_here and k in config.model]
    if not applied:
        return None
    defaults = _preset_defaults(config.preset)
    fields = ", ".join(f"{k} {json.dumps(_as_json(config.model[k]))} (preset {json.dumps(_as_json(defaults.get(k)))})"
                       for k in applied)
    return (f"warning: [model] from {path} (written for preset {file_preset}) applied over {config.preset}: {fields}; "
            "--set model={} drops the table")


def _out_of_args(args: argparse.Namespace) -> str:
    """The ``out`` a command line names: ``--out``, else the last ``--set out=...``, else the default."""
    out = args.out
    if out is None:
        for item in args.overrides:
            key, _, text = item.partition("=")
            if key.strip() == "out":
                out = _coerce(_parse_literal(text.strip()), str, "out")
    return out if out is not None else _DEFAULTS.out


def _recorded_recipe(out: str) -> tuple[TrainConfig, str, Path] | None:
    """For ``--resume`` without a config file: the recipe recorded in ``out/last/config.json`` (``training.config``),
    or, when the run wrote no ``last/`` (killed or failed before its first epoch ended), in ``out/train_config.json``
    (``config``: the resolved settings of its latest invocation), with ``out`` as given now, the run-control settings
    (``progress``, ``resume``, ``overwrite``) at their defaults and ``data`` the recorded folder (its absolute path,
    ``dataset.path``, when the recorded one is relative to another working folder); the command the run was started
    with; and the file it came from. None when there is no such record."""
    from .checkpoint import load_config

    last = Path(out) / "last"
    if (last / "config.json").is_file():
        source = last / "config.json"
        stored = load_config(last)
        training = stored.get("training") or {}
        values, dataset = training.get("config"), training.get("dataset")
        commands = _recorded_commands(training)
    else:
        source = Path(out) / TRAIN_CONFIG
        record = _read_record(Path(out), TRAIN_CONFIG)
        if record is None:
            return None
        values, dataset = record.get("config"), record.get("dataset")
        commands = [c for c in record.get("invocations") or [] if isinstance(c, dict)]
    if not isinstance(values, dict):
        return None
    values = {**values, "out": out, "progress": None, "resume": False, "overwrite": False}
    absolute = (dataset if isinstance(dataset, dict) else {}).get("path")
    if isinstance(absolute, str) and not Path(str(values.get("data", ""))).is_dir() and Path(absolute).is_dir():
        values["data"] = absolute
    try:
        config = config_from_dict(values)
    except ValueError as exc:
        raise ValueError(f"cannot take the recipe from {source}: {exc}; pass the run's config file and settings "
                         "instead") from None
    first = next((c.get("command") for c in commands if c.get("command")), None)
    return config, first or "(not recorded)", source


def _say(message: str) -> None:
    """Print ``[train] message`` on stderr (from the main process only, under torchrun)."""
    if _is_main_process():
        print(f"[train] {message}", file=sys.stderr, flush=True)


def config_from_args(args: argparse.Namespace, say: Callable[[str], None] = _say) -> TrainConfig:
    """The ``TrainConfig`` of a ``sketchgraph train`` command line (``PRECEDENCE``): the defaults, then the config
    file, then the ``--set`` overrides in order, then the flags; a later source wins. ``--resume`` without a config
    file starts from the recipe recorded in ``OUT/last/config.json`` (or ``OUT/train_config.json`` when the run wrote
    no checkpoint) instead of the defaults (``_recorded_recipe``; the resume's checks then refuse any other setting
    that differs from the run's, as usual); with no recorded recipe it is a ``ValueError``. ``--resume`` or
    ``--overwrite`` on the command line wins over the opposite setting in the file or ``--set``; both flags together
    are an error.

    ``say`` receives the notes for the user: a warning for each flag that beats a ``--set`` of the same key, one
    when ``--preset`` (or ``--set preset=``) replaces the file's preset while the file's ``[model]`` table still
    applies (``_model_table_warning``), and which recorded recipe a resume took."""
    if args.resume and args.overwrite:
        raise ValueError("--resume (continue the run in --out) and --overwrite (delete it and start over) exclude "
                         "each other; pass one")
    recorded = _recorded_recipe(_out_of_args(args)) if args.resume and not args.config else None
    if args.resume and not args.config and recorded is None:
        out = _out_of_args(args)
        raise ValueError(f"--resume without a config file takes the recipe recorded in {out} (last/config.json, or "
                         f"{TRAIN_CONFIG} when the run wrote no checkpoint), and {out} holds none: name the run's "
                         "folder with --out, or pass the config file and settings of the run to start")
    if recorded is None:
        config = load_train_config(args.config, args.overrides)
    else:
        config = apply_overrides(recorded[0], args.overrides)
    direct = {k: getattr(args, k) for k in _FLAGS if getattr(args, k, None) is not None}
    for flag, other in (("resume", "overwrite"), ("overwrite", "resume")):  # a flag given here wins over the file's
        if direct.get(flag):
            direct[other] = False
    config = dataclasses.replace(config, **direct)
    notes = _flag_and_set_warnings(args)
    if args.config:
        note = _model_table_warning(args.config, read_config_file(args.config), args.overrides, config)
        notes += [note] if note else []
    if recorded is not None:
        restarts = recorded[2].name != "config.json" and not _checkpoints_of(Path(config.out))
        taken = (f"recipe from {recorded[2]}, dataset {config.data} from --data" if "data" in direct or any(
            item.partition("=")[0].strip() == "data" for item in args.overrides)
            else f"recipe and dataset ({config.data}) from {recorded[2]}")
        notes.append(f"resume: {taken}; the run was started with: {recorded[1]}"
                     + ("; it wrote no checkpoint, so it starts over" if restarts else ""))
    for note in notes:
        say(note)
    return config


def run_cli(args: argparse.Namespace) -> int:
    """``sketchgraph train``: train ``config_from_args(args)``, print the result as one JSON line (``best_valid_top1``
    null when no epoch finished); exit status 1 when the run diverged. The notes about the settings go to stderr and
    into the run's ``train.log``."""
    notes: list[str] = []

    def say(message: str) -> None:
        _say(message)
        notes.append(message)

    result = train(config_from_args(args, say), command=_resumed_command(args) or _command_line(args), notes=notes)
    if _is_main_process():
        print(json.dumps({
            "out": str(result.out), "epochs": result.epochs, "best_epoch": result.best_epoch or None,
            "best_valid_top1": result.best_valid_top1 if result.best_epoch else None,
            "stop_reason": result.stop_reason,
            "time_s": round(result.time_s, 1),
        }))
    return 1 if result.stop_reason == "diverged" else 0


def _is_main_process() -> bool:
    """True in the process that should print (rank 0, or the only process)."""
    return int(os.environ.get("RANK", "0")) == 0
