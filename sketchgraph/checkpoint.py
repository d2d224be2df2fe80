"""Checkpoints: a directory that loads without executing code.

Layout of ``<dir>/``:

- ``model.safetensors`` — the weights (safetensors; loading never unpickles);
- ``config.json`` — ``{format_version, library_version, model, preset, classes, preprocessing,
  graph_spec, training: {command, config, epochs, time_s, hardware, ...}, metrics}`` where ``model``
  is ``sketchgraph.model.model_config_dict(model)``, enough to rebuild the network;
- ``README.md`` — an optional model card;
- ``state.safetensors`` + ``state.json`` — optional resume state (``TrainState``): the optimizer
  state flattened into named tensors plus JSON scalars (epoch, step, best metric, early-stop
  counter, elapsed time). No pickle anywhere.

Directories are written atomically (into a temporary sibling, then renamed). A ``.pt`` weights file
(from elsewhere) is accepted only through ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import pickle
import re
import shutil
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import temporaries
from .errors import CheckpointError
from .formats.base import fsync_dir, fsync_path
from .temporaries import STALE_AFTER_S

__all__ = [
    "FORMAT_VERSION", "SUPPORTED_FORMAT_VERSIONS", "TrainState", "save_checkpoint", "load_checkpoint",
    "load_config", "load_train_state", "model_card", "unwrap_model", "weights_digest", "remove_stale_temporaries",
    "foreign_temporaries", "is_checkpoint",
]

FORMAT_VERSION = 1
SUPPORTED_FORMAT_VERSIONS = (1,)
WEIGHTS, WEIGHTS_PT, CONFIG, CARD = "model.safetensors", "model.pt", "config.json", "README.md"
STATE_TENSORS, STATE_JSON = "state.safetensors", "state.json"
_OPT_PREFIX = "optimizer.state."


@dataclass
class TrainState:
    """What ``train`` needs to continue a run exactly where it stopped (saved after each epoch).

    Attributes:
        epoch: epochs completed.
        step: optimizer steps taken (drives the learning-rate schedule).
        best_metric: best validation top-1 so far (-1 before the first evaluation).
        best_epoch: the epoch that reached it (0 when none).
        bad_epochs: evaluations since the last improvement (early stopping counter).
        time_s: training time spent so far, summed over resumed runs.
        seed: the run's seed (random streams are re-derived from ``(seed, epoch, rank)``).
        optimizer: ``optimizer.state_dict()``.
    """

    epoch: int = 0
    step: int = 0
    best_metric: float = -1.0
    best_epoch: int = 0
    bad_epochs: int = 0
    time_s: float = 0.0
    seed: int = 0
    optimizer: dict = field(default_factory=dict)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module inside DistributedDataParallel / ``torch.compile`` wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            return model
        model = inner


def recover_dir(target: Path) -> bool:
    """Put back ``target`` (a checkpoint with a resume state, ``last/``) when a process was killed inside
    ``atomic_dir`` between moving the old ``target`` aside and renaming the new one in. Of the
    ``.<name>.old-<host>-<pid>`` folders (``.<name>.old-<pid>`` of earlier versions) only complete ones count
    (config, weights and resume state all there: a folder whose removal was cut short is not), and the one of the
    latest epoch comes back. Returns whether one did."""
    if target.exists():
        return False
    best: tuple[int, Path] | None = None
    for old in target.parent.glob(f".{target.name}.old-*"):
        if not all((old / name).is_file() for name in (CONFIG, WEIGHTS, STATE_TENSORS, STATE_JSON)):
            continue
        try:
            epoch = int(json.loads((old / STATE_JSON).read_text())["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if best is None or epoch > best[0]:
            best = (epoch, old)
    if best is None:
        return False
    try:
        os.replace(best[1], target)
    except FileNotFoundError:  # another process (a DDP rank) put it back first
        return False
    return True


def _temporary_name(target: Path, kind: str) -> Path:
    """``.<name>.<kind>-<host>-<pid>`` next to ``target``: whose process wrote it, and on which machine (a process
    id alone says nothing about a process of another machine sharing the folder, or of another container)."""
    return target.parent / f".{target.name}.{kind}-{temporaries.host()}-{os.getpid()}"


def remove_stale_temporaries(folder: Path, names: Sequence[str], *,
                             stale_after_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the temporary folders in ``folder`` (for each of ``names``) that ``atomic_dir`` was writing when its
    process was killed. A folder ``.<name>.tmp-<host>-<pid>`` of this machine goes when its process no longer
    runs, or is this process (no write of it is under way when this is called); one of another machine (another
    host name: a machine sharing the folder, another container) only once it is older than ``stale_after_s``
    (seconds since its last change), since whether its process runs cannot be told from here
    (``temporaries.abandoned``). A folder named by earlier versions, ``.<name>.tmp-<pid>``, counts as this
    machine's. A folder of a running process, or one whose name does not end in a process id, is left alone.
    Returns the removed folders, sorted."""
    removed = []
    for tmp, writer in _temporary_folders(folder, names):
        if writer[1] is not None and temporaries.abandoned(tmp, writer, own=True, stale_after_s=stale_after_s):
            shutil.rmtree(tmp, ignore_errors=True)
            removed.append(tmp)
    return sorted(removed)


def _temporary_folders(folder: Path, names: Sequence[str]) -> list[tuple[Path, tuple[str | None, int | None]]]:
    """The temporary folders ``atomic_dir`` writes for each of ``names`` in ``folder`` (named exactly
    ``.<name>.tmp-<host>-<pid>`` or ``.<name>.tmp-<pid>``), each with its writer (``temporaries.writer_of``)."""
    found = []
    for name in names:
        for tmp in sorted(folder.glob(f"{glob.escape('.' + name)}.tmp-*")):
            writer = temporaries.writer_of(tmp.name, re.escape(f".{name}"))
            if writer is not None and tmp.is_dir() and not tmp.is_symlink():
                found.append((tmp, writer))
    return found


def foreign_temporaries(folder: Path, names: Sequence[str]) -> list[Path]:
    """The temporary folders in ``folder`` (for each of ``names``) that a process of another machine writes, or
    wrote when it was killed (``remove_stale_temporaries`` keeps them until they are ``STALE_AFTER_S`` old)."""
    here = temporaries.host()
    return [tmp for tmp, (their_host, _) in _temporary_folders(folder, names) if their_host not in (None, here)]


def _as_created(path: Path, like: Path) -> None:
    """Give ``path`` the permission bits of ``like``, a file of the same folder created by a plain ``open`` (so
    ``0o666`` less the umask, or what the folder's default ACL gives): safetensors creates its files ``0o600``, so a
    checkpoint written by one user could not be read by another (a shared group, a serving account). The umask is
    not read by setting it, which would change it for a moment for every thread of the process."""
    os.chmod(path, stat.S_IMODE(os.stat(like).st_mode) & 0o777)


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a fresh temporary directory that replaces ``target`` when the block succeeds (the old ``target``
    stays whole until the new one is in place; ``recover_dir`` puts it back after a kill in between). The files
    written in it, and the folders, are synced to disk around the renames, so a power loss cannot publish a
    ``target`` whose files are empty."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp, old = _temporary_name(target, "tmp"), _temporary_name(target, "old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    held = temporaries.hold(tmp)  # the writer's lock on the folder, until it is renamed
    try:
        try:
            yield tmp
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for path in tmp.iterdir():
            if path.is_file():
                fsync_path(path)
        fsync_dir(tmp)
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
    finally:
        temporaries.release(held)
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def _as_dict(obj: Any) -> Any:
    """``Preprocessing`` / ``GraphSpec`` / dataclass / dict -> a JSON-ready dict."""
    if obj is None or isinstance(obj, dict):
        return obj
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return asdict(obj)


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """``optimizer.state_dict()`` -> (named tensors, JSON-ready rest)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, per_param in state.get("state", {}).items():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{_OPT_PREFIX}{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": state.get("param_groups", []), "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith(_OPT_PREFIX):
            pid, key = name[len(_OPT_PREFIX):].split(".", 1)
            state.setdefault(int(pid), {})[key] = value
    for pid, per_param in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(per_param)
    # JSON turned tuples (Adam's betas) into lists; "params" is the only list torch expects
    groups = [{k: v if k == "params" or not isinstance(v, list) else tuple(v) for k, v in g.items()}
              for g in meta.get("param_groups", [])]
    return {"state": state, "param_groups": groups}


def finite_or_null(obj: Any) -> Any:
    """``obj`` with every non-finite float (a NaN loss) replaced by ``None``, so it is valid JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_null(v) for v in obj]
    return obj


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(finite_or_null(obj), indent=2, allow_nan=False) + "\n")


def save_checkpoint(
    directory: str | os.PathLike,
    model: nn.Module,
    *,
    classes: Sequence[str],
    preprocessing: Any,
    graph_spec: Any,
    preset: str | None = None,
    training: dict | None = None,
    metrics: dict | None = None,
    train_state: TrainState | None = None,
    card: bool = True,
) -> Path:
    """Write a checkpoint directory atomically and return its path.

    Args:
        directory: the checkpoint directory (replaced if it exists).
        model: the network (DDP / compiled wrappers are unwrapped); its config comes from
            ``sketchgraph.model.model_config_dict``.
        classes: class names, index = logit column.
        preprocessing: ``Preprocessing`` (or its dict) the inputs went through.
        graph_spec: ``GraphSpec`` (or its dict) of the training data.
        preset: the preset name the model was built from.
        training: ``{command, config, epochs, time_s, hardware, ...}``.
        metrics: e.g. ``{"valid_top1": ...}``.
        train_state: resume state, written as ``state.safetensors`` + ``state.json``.
        card: also write a ``README.md`` model card.
    """
    from safetensors.torch import save_file, save_model

    from . import __version__
    from .model import model_config_dict

    net = unwrap_model(model)
    config = {
        "format_version": FORMAT_VERSION,
        "library_version": __version__,
        "model": model_config_dict(net),
        "preset": preset,
        "classes": list(classes),
        "preprocessing": _as_dict(preprocessing),
        "graph_spec": _as_dict(graph_spec),
        "training": training or {},
        "metrics": metrics or {},
    }
    target = Path(directory)
    with atomic_dir(target) as tmp:
        _write_json(tmp / CONFIG, config)  # first: the weights take its mode (_as_created)
        save_model(net, str(tmp / WEIGHTS))
        _as_created(tmp / WEIGHTS, like=tmp / CONFIG)
        if card:
            (tmp / CARD).write_text(model_card(config, target.name))
        if train_state is not None:
            tensors, opt_meta = _flatten_optimizer(train_state.optimizer)
            save_file(tensors, str(tmp / STATE_TENSORS))
            _as_created(tmp / STATE_TENSORS, like=tmp / CONFIG)
            scalars = {f.name: getattr(train_state, f.name) for f in fields(TrainState) if f.name != "optimizer"}
            _write_json(tmp / STATE_JSON, {"format_version": FORMAT_VERSION, **scalars, "optimizer": opt_meta})
    return target


def _config_path(path: Path) -> Path:
    return (path if path.is_dir() else path.parent) / CONFIG


def load_config(path: str | os.PathLike) -> dict:
    """Read and check a checkpoint's ``config.json`` (``path``: the directory or its weights file).

    Raises ``CheckpointError`` when it is missing, not JSON, or of an unsupported format version.
    """
    cfg_path = _config_path(Path(path))
    if not cfg_path.is_file():
        inside = sorted(str(c.parent) for c in cfg_path.parent.glob(f"*/{CONFIG}")) if cfg_path.parent.is_dir() else []
        hint = f" (the checkpoints in it: {', '.join(inside)}; a training run's folder holds best/ and last/)" if (
            inside) else ""
        raise CheckpointError(f"no checkpoint at {path}: {cfg_path} does not exist{hint}")
    try:
        config = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{cfg_path} is not valid JSON: {exc}") from None
    version = config.get("format_version") if isinstance(config, dict) else None
    if type(version) is not int or version not in SUPPORTED_FORMAT_VERSIONS:
        from . import __version__

        raise CheckpointError(
            f"{cfg_path}: checkpoint format_version {version!r} is incompatible with sketchgraph "
            f"{__version__}, which reads format versions {list(SUPPORTED_FORMAT_VERSIONS)}"
        )
    for key in ("model", "classes"):
        if key not in config:
            raise CheckpointError(f"{cfg_path}: missing required key {key!r}")
    classes = config["classes"]
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise CheckpointError(f"{cfg_path}: 'classes' must be a non-empty list of class names")
    if len(set(classes)) != len(classes):
        raise CheckpointError(f"{cfg_path}: 'classes' names a class twice")
    for key in ("model", "graph_spec", "preprocessing", "inference_preprocessing"):
        if key in config and not isinstance(config[key], dict):
            raise CheckpointError(f"{cfg_path}: {key!r} must be a JSON object, got {type(config[key]).__name__}")
    return config


def is_checkpoint(path: str | os.PathLike) -> bool:
    """Whether the folder ``path`` is a sketchgraph checkpoint: it holds the weights (``model.safetensors`` or
    ``model.pt``) and a ``config.json`` that is a checkpoint's (a JSON object with ``format_version`` and
    ``classes``; another project's files of the same names are not one). Nothing else belongs in one: a training
    run's next save replaces it whole."""
    folder = Path(path)
    if not any((folder / name).is_file() for name in (WEIGHTS, WEIGHTS_PT)):
        return False
    try:
        with open(folder / CONFIG, "rb") as f:
            config = json.loads(f.read(1 << 20))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "format_version" in config and "classes" in config


def _weights_path(path: Path) -> Path:
    if not path.is_dir():
        return path
    for name in (WEIGHTS, WEIGHTS_PT):
        if (path / name).is_file():
            return path / name
    raise CheckpointError(f"no weights in {path}: expected {WEIGHTS} (or {WEIGHTS_PT})")


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, or of a ``.pt`` file through ``weights_only=True``; never unpickles."""
    if path.suffix == ".pt":
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
            raise CheckpointError(
                f"{path} could not be loaded with torch.load(weights_only=True): {exc}. "
                "Refusing to unpickle arbitrary objects; convert the weights to safetensors."
            ) from None
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise CheckpointError(f"{path} does not hold a flat state dict of tensors")
        return state
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path} is not a valid safetensors file ({exc}); refusing to load it "
            "(sketchgraph checkpoints never unpickle)"
        ) from None


def weights_digest(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a checkpoint directory's weights file: identifies the exact weights results were
    measured on."""
    return hashlib.sha256(_weights_path(Path(path)).read_bytes()).hexdigest()


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model of a checkpoint and load its weights.

    Args:
        path: the checkpoint directory, or its weights file (``.safetensors``, or ``.pt`` loaded
            only with ``torch.load(weights_only=True)``) next to a ``config.json``.
        device: where the model goes.

    Returns:
        ``(model, config)``: the model in eval mode, and the parsed ``config.json``.

    Raises:
        CheckpointError: missing files, unsupported format version, weights that are not valid
            safetensors (e.g. a pickle: nothing in it is executed), weights that do not fit, or weights that
            hold NaN or infinity.
    """
    from .model import model_from_config

    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    config = load_config(path)
    weights = _read_weights(_weights_path(path))
    try:
        model = model_from_config(config["model"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{_config_path(path)}: 'model' does not describe a model ({exc})") from None
    num_classes = getattr(getattr(model, "config", None), "num_classes", len(config["classes"]))
    if num_classes != len(config["classes"]):
        raise CheckpointError(f"{_config_path(path)}: the model has {num_classes} outputs but 'classes' names "
                              f"{len(config['classes'])}")
    # safetensors stores one name per shared (tied) tensor: a missing name is fine when its storage was loaded
    own = model.state_dict()
    loaded = {own[k].data_ptr() for k in weights if k in own}
    mismatch = f"weights in {path} do not match the model in its config.json"
    wrong_type = [k for k, v in weights.items() if k in own and own[k].dtype != v.dtype and (
        own[k].is_floating_point() != v.is_floating_point())]
    if wrong_type:
        k = wrong_type[0]
        raise CheckpointError(f"{mismatch}: {k} is {weights[k].dtype}, the model's is {own[k].dtype}")
    broken = next((k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()), None)
    if broken is not None:
        raise CheckpointError(f"weights in {path} are damaged: {broken} holds NaN or infinity")
    try:
        missing, unexpected = model.load_state_dict(weights, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise CheckpointError(f"{mismatch}: {str(exc)[:500]}") from None
    missing = [k for k in missing if own[k].data_ptr() not in loaded]
    if missing or unexpected:
        raise CheckpointError(f"{mismatch}: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
    return model.to(device).eval(), config


def load_train_state(path: str | os.PathLike) -> TrainState:
    """The resume state saved next to a checkpoint (``state.safetensors`` + ``state.json``)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    meta_path, tensor_path = path / STATE_JSON, path / STATE_TENSORS
    if not meta_path.is_file() or not tensor_path.is_file():
        raise CheckpointError(f"no resume state in {path} (expected {STATE_JSON} and {STATE_TENSORS})")
    try:
        meta = json.loads(meta_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{meta_path} is not valid JSON: {exc}") from None
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if type(version) is not int or version not in SUPPORTED_FORMAT_VERSIONS:
        raise CheckpointError(f"{meta_path}: incompatible state format_version {version!r}")
    try:
        tensors = load_file(str(tensor_path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{tensor_path} is not a valid safetensors file ({exc})") from None
    scalars = {f.name: meta[f.name] for f in fields(TrainState) if f.name in meta and f.name != "optimizer"}
    try:
        return TrainState(**scalars, optimizer=_unflatten_optimizer(tensors, meta.get("optimizer", {})))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CheckpointError(f"resume state in {path} is inconsistent ({type(exc).__name__}: {exc})") from None


def model_card(config: dict, name: str = "model") -> str:
    """A Markdown model card from a checkpoint config."""
    tr = config.get("training") or {}
    data = tr.get("dataset") or {}
    metrics = config.get("metrics") or {}
    classes = config.get("classes", [])
    lines = [
        f"# sketchgraph checkpoint `{name}`",
        "",
        f"- model: `{config.get('preset') or config['model'].get('name', 'custom')}` "
        f"(sketchgraph {config.get('library_version')}, format {config.get('format_version')})",
        f"- classes ({len(classes)}): {', '.join(classes[:30])}{' ...' if len(classes) > 30 else ''}",
        f"- graph relations: {', '.join((config.get('graph_spec') or {}).get('relations', []))}",
        f"- preprocessing: `{json.dumps(config.get('preprocessing'))}`",
    ]
    if data:
        lines += ["", "## Data", ""] + [f"- {k}: {v}" for k, v in data.items()]
    if metrics:
        lines += ["", "## Metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in metrics.items()]
    if tr:
        lines += ["", "## Training", ""]
        commands = tr.get("commands") or []
        if len(commands) > 1:  # a resumed run: every invocation, with the epoch it continued from
            lines.append("Run in several invocations (each resumed the one before):")
            lines.append("")
            for c in commands:
                start = {None: "first recorded", 0: "from the start"}.get(c.get("from_epoch"),
                                                                         f"after epoch {c.get('from_epoch')}")
                lines += [f"- {start}:", "", "  ```", f"  {c.get('command')}", "  ```", ""]
        elif tr.get("command"):
            lines += ["```", str(tr["command"]), "```", ""]
        for key in ("epochs", "time_s", "hardware"):
            if key in tr:
                lines.append(f"- {key}: {tr[key]}")
    return "\n".join(lines) + "\n"
