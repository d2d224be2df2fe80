"""Evaluate a checkpoint on a prepared dataset split: top-k accuracy, per-class scores, confusions.

    >>> report = evaluate("runs/spg20/best", "data/spg20-prepared", split="test", out="runs/spg20/eval")
    >>> report["top1"], report["hardest_confusions"][0]

``sketchgraph evaluate CHECKPOINT DATASET --split test --out DIR`` (CHECKPOINT: a directory or a shipped
name, ``spg20``) writes ``report.json`` and ``confusion.png`` (row-normalised confusion matrix, class names on
both axes) into ``DIR``. ``report.json`` names the exact weights (``weights_sha256``) and data
(``dataset_fingerprint``) it was measured on, so a stale report next to a retrained model shows as such.

The dataset must have been prepared the way the checkpoint's training data was (its ``preprocessing`` in
``config.json``: simplification, tolerance, point cap): numbers on data prepared otherwise do not measure the
model, so ``evaluate`` refuses them (``PreprocessingMismatchError``, naming each differing field) unless
``allow_preprocessing_mismatch`` (``--allow-preprocessing-mismatch``) is given, which ``report.json`` records.
The metric helpers (``collect_logits``, ``topk_correct``, ``classification_metrics``) are also what
training uses for its validation numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .batch import Batch
from .device import usable_device
from .errors import CheckpointError
from .formats.base import atomic_write, canonical_label, nearest_existing
from .model import set_backend

__all__ = [
    "evaluate", "collect_logits", "topk_correct", "classification_metrics", "hardest_confusions",
    "plot_confusion", "preprocessing_differences", "check_preprocessing", "PreprocessingMismatchError",
]

TOPK = (1, 5, 10)
IN_MEMORY = "<in memory>"  # the report's checkpoint name for a (model, config) pair


@torch.inference_mode()
def collect_logits(
    model: nn.Module, batches: Iterable[Batch], device: torch.device | str, *, bf16: bool = False,
    progress: bool = False, desc: str = "eval",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``model`` (in eval mode) over ``batches``, under bfloat16 autocast when ``bf16``.

    Returns:
        ``(logits (M, C) float32, labels (M,) int64)`` on the CPU, in batch order.
    """
    from tqdm.auto import tqdm

    device = torch.device(device)
    was_training = model.training
    model.eval()
    logits, labels = [], []
    try:
        for batch in tqdm(batches, desc=desc, disable=not progress, leave=False):
            batch = batch.to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                out = model(batch)
            logits.append(out.float().cpu())
            labels.append(batch.labels.cpu())
    finally:
        model.train(was_training)
    if not logits:
        return torch.zeros(0, 0), torch.zeros(0, dtype=torch.long)
    return torch.cat(logits), torch.cat(labels)


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = TOPK) -> torch.Tensor:
    """How many rows have their label among the ``k`` highest logits, per ``k`` (``k`` capped at C).

    Args:
        logits: ``(M, C)``.
        labels: ``(M,)`` class indices.

    Returns:
        ``(len(ks),)`` int64 counts.
    """
    if logits.shape[0] == 0:
        return torch.zeros(len(ks), dtype=torch.long)
    top = _ranked(logits, ks)  # (M, kmax), best first
    kmax = top.shape[1]
    hit = top == labels[:, None]  # (M, kmax); at most one True per row
    cum = hit.cumsum(1)  # (M, kmax): label within the first j+1
    return torch.stack([cum[:, min(k, kmax) - 1].sum() for k in ks])


def _ranked(logits: torch.Tensor, ks: Sequence[int]) -> torch.Tensor:
    """``(M, min(max(ks), C))`` class indices, best first: the one ranking behind the top-k counts and the
    confusion matrix (``topk`` breaks ties between equal scores by its own rule, which can differ with ``k`` and from
    ``argmax``'s, so both take it from this one call)."""
    return logits.topk(min(max(ks), logits.shape[1]), dim=1).indices


def hardest_confusions(matrix: np.ndarray, classes: Sequence[str], n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` largest off-diagonal cells of a confusion matrix (rows = true, columns = predicted).

    Each entry: ``{"true", "predicted", "count", "rate"}`` with ``rate`` = count / support of the true class.
    """
    off = matrix.astype(np.int64).copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(-off, axis=None, kind="stable")[:n]
    support = matrix.sum(1)
    out = []
    for t, p in zip(*np.unravel_index(flat, off.shape)):
        if off[t, p] == 0:
            break
        out.append({
            "true": classes[t], "predicted": classes[p], "count": int(off[t, p]),
            "rate": float(off[t, p] / support[t]),
        })
    return out


def classification_metrics(
    logits: torch.Tensor, labels: torch.Tensor, classes: Sequence[str], *, ks: Sequence[int] = TOPK,
    n_confusions: int = 10, present: Sequence[int] | None = None,
) -> dict[str, Any]:
    """All the numbers of a report from logits ``(M, C)`` and labels ``(M,)``. ``present``: the class indices
    the data can hold (a dataset of some of the model's classes); the per-class figures and the report's
    averages are over those (default: all ``C``) that have at least one sample here, while predictions may
    still name any class. A class without samples (absent from this split) has no recall to report: it is
    left out of them, and named in ``classes_without_samples``, rather than counted as 0% right.

    Returns:
        ``{"num_samples", "loss", "top1", "top5", "top10", "per_class_accuracy", "classification_report",
        "classes_without_samples", "confusion_matrix", "hardest_confusions"}``; ``top{k}`` uses ``min(k, C)``,
        per-class accuracy is the recall of each class, and the report is scikit-learn's
        ``classification_report`` as a dict.
    """
    from sklearn.metrics import classification_report, confusion_matrix

    M, C = len(labels), len(classes)
    counts = topk_correct(logits, labels, ks)
    y_true, y_pred = labels.numpy(), _ranked(logits, ks)[:, 0].numpy()  # the top-1 that topk_correct counts
    ids = list(range(C))
    matrix = confusion_matrix(y_true, y_pred, labels=ids)
    support = matrix.sum(1)
    per_class = np.divide(np.diag(matrix), support, out=np.zeros(C), where=support > 0)
    loss = torch.nn.functional.cross_entropy(logits, labels).item() if M else float("nan")
    candidates = list(present) if present is not None else ids
    shown = [i for i in candidates if support[i] > 0] if M else candidates
    return {
        "num_samples": M,
        "loss": loss,
        **{f"top{k}": counts[i].item() / max(M, 1) for i, k in enumerate(ks)},
        "per_class_accuracy": {classes[i]: float(per_class[i]) for i in shown},
        "classification_report": classification_report(
            y_true, y_pred, labels=shown, target_names=[classes[i] for i in shown], output_dict=True,
            zero_division=0,
        ),
        "classes_without_samples": [classes[i] for i in candidates if M and support[i] == 0],
        "confusion_matrix": matrix.tolist(),
        "hardest_confusions": hardest_confusions(matrix, classes, n_confusions),
    }


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], path: str | os.PathLike, title: str = "") -> Path:
    """Save the row-normalised confusion matrix as a PNG with class names on both axes (a class with no sample
    in the data is marked "(no samples)" on its row, not shown as 0% right). Leaves matplotlib's global state
    (backend, pyplot figures) alone."""
    from matplotlib.figure import Figure

    matrix = np.asarray(matrix, dtype=np.float64)
    support = matrix.sum(1)
    rates = matrix / np.maximum(support[:, None], 1)
    C = len(classes)
    side = min(4 + 0.32 * C, 40)
    fig = Figure(figsize=(side, side), dpi=100)
    ax = fig.subplots()
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(C)
    fontsize = max(3, min(9, 400 // max(C, 1)))
    ax.set_xticks(ticks, labels=classes, rotation=90, fontsize=fontsize)
    ax.set_yticks(ticks, labels=[f"{c} (no samples)" if n == 0 else c for c, n in zip(classes, support)],
                  fontsize=fontsize)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if C <= 30:
        for t, p in zip(*np.nonzero(matrix)):
            ax.text(p, t, int(matrix[t, p]), ha="center", va="center", fontsize=fontsize - 1,
                    color="white" if rates[t, p] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    ax.set_title(title or "confusion matrix (rows normalised)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png")
    return path


def _class_map(dataset_classes: list[str], model_classes: list[str]) -> torch.Tensor:
    """``(C_data,)`` long: each dataset class's index among the model's outputs. Equal names match first; the
    rest match as ``canonical_label`` (``Zigzag`` / ``zigzag``, ``alarm_clock`` / ``alarm clock``, in any order)
    when that is unambiguous. The dataset may hold a subset of the model's classes (a user's own drawings of a
    few of them); ``CheckpointError`` naming the classes the model does not know otherwise."""
    exact = {c: i for i, c in enumerate(model_classes)}
    named = set(dataset_classes)
    free = [i for i, c in enumerate(model_classes) if c not in named]
    loose: dict[str, list[int]] = {}
    for i in free:
        loose.setdefault(canonical_label(model_classes[i]), []).append(i)
    index, unknown = [], []
    for c in dataset_classes:
        if c in exact:
            index.append(exact[c])
        elif len(loose.get(canonical_label(c), ())) == 1:
            index.append(loose.pop(canonical_label(c))[0])
        else:
            unknown.append(c)
    if unknown or len(set(index)) != len(index):
        raise CheckpointError(
            f"the dataset's classes {sorted(unknown) if unknown else '(some twice)'} are not among the "
            f"checkpoint's {len(model_classes)} classes (names are compared as canonical_label); evaluate on a "
            "dataset of the classes the model was trained for")
    return torch.tensor(index, dtype=torch.long)


class PreprocessingMismatchError(CheckpointError):
    """The dataset was prepared otherwise than the checkpoint's training data. ``differences`` maps each differing
    field to ``{"dataset": value, "checkpoint": value}`` (see ``preprocessing_differences``)."""

    def __init__(self, message: str, differences: dict[str, dict[str, Any]]):
        super().__init__(message)
        self.differences = differences


# fields that change nothing when the drawing is not simplified (``preprocess`` then only normalises and truncates)
_SIMPLIFY_ONLY = ("epsilon", "cap")


def _effective_preprocessing(stored: Any, where: str, error: type[Exception]) -> dict[str, Any]:
    """A stored ``preprocessing`` object with every field it leaves out at ``Preprocessing``'s default (an older
    ``meta.json`` / ``config.json``), plus any field this version does not know, as stored. ``error`` (naming
    ``where``) when it is not an object or a value is invalid."""
    from .preprocess import Preprocessing

    if stored is None:
        stored = {}
    if not isinstance(stored, dict):
        raise error(f"{where}: 'preprocessing' must be a JSON object, got {type(stored).__name__}")
    try:
        known = Preprocessing.from_dict(stored).to_dict()
    except (TypeError, ValueError) as exc:
        raise error(f"{where}: 'preprocessing' is invalid: {exc}") from None
    return {**stored, **known}


def preprocessing_differences(dataset: dict[str, Any] | None, checkpoint: dict[str, Any] | None,
                              ) -> dict[str, dict[str, Any]]:
    """The fields in which two stored ``preprocessing`` objects differ in effect: ``{field: {"dataset": value,
    "checkpoint": value}}``, empty when they prepare a drawing alike.

    Compared semantically: a field one side leaves out is ``Preprocessing``'s default (``meta.json`` from before the
    field existed); numbers compare by value (``100`` = ``100.0``); ``epsilon`` and ``cap`` count only when both sides
    simplify (without simplification they change nothing; a ``simplify`` difference is reported on its own); a field
    this version does not know counts only when both sides record it.
    """
    from .preprocess import Preprocessing

    ds = _effective_preprocessing(dataset, "dataset", ValueError)
    ck = _effective_preprocessing(checkpoint, "checkpoint", ValueError)
    known = [f.name for f in fields(Preprocessing)]
    both_simplify = ds["simplify"] and ck["simplify"]
    names = known + sorted((ds.keys() & ck.keys()) - set(known))
    return {
        name: {"dataset": ds[name], "checkpoint": ck[name]}
        for name in names
        if ds[name] != ck[name] and (both_simplify or name not in _SIMPLIFY_ONLY)
    }


def _prepare_options(pre: dict[str, Any]) -> str:
    """The ``sketchgraph prepare`` options that store drawings as ``pre`` says."""
    if not pre.get("simplify", True):
        return f"--no-simplify --max-points {pre['max_points']}"
    return f"--epsilon {pre['epsilon']} --cap {pre['cap']} --max-points {pre['max_points']}"


def check_preprocessing(data: Any, config: dict, ckpt_name: str, *, allow: bool = False,
                        ) -> dict[str, dict[str, Any]]:
    """Compare the dataset's ``meta.json`` ``preprocessing`` with the checkpoint's training ``preprocessing``
    (``config.json``; not its ``inference_preprocessing``, which is what ``predict`` applies to new drawings).

    Returns:
        the differences (``preprocessing_differences``); empty when they match or the checkpoint records no
        preprocessing (a config built in memory).

    Raises:
        PreprocessingMismatchError: they differ and ``allow`` is false; the message names each field, the dataset's
            value and the checkpoint's, and how to go on.
        SketchError / CheckpointError: a stored ``preprocessing`` that is not valid, naming its file.
    """
    return _compare_preprocessing(data, config, ckpt_name, allow)[2]


def _compare_preprocessing(data: Any, config: dict, ckpt_name: str, allow: bool,
                           ) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """``check_preprocessing``, also returning what it compared: the dataset's and the checkpoint's preprocessing
    with defaults filled in (the checkpoint's None when it records none), then the differences."""
    from .errors import SketchError

    data_path = getattr(data, "path", None)
    meta_where = f"{data_path / 'meta.json'}" if data_path is not None else "the dataset's meta.json"
    config_where = f"{Path(ckpt_name) / 'config.json'}" if ckpt_name != IN_MEMORY else "the checkpoint's config"
    dataset_pre = _effective_preprocessing(data.meta.get("preprocessing"), meta_where, SketchError)
    if config.get("preprocessing") is None:
        return dataset_pre, None, {}
    checkpoint_pre = _effective_preprocessing(config["preprocessing"], config_where, CheckpointError)
    diff = preprocessing_differences(dataset_pre, checkpoint_pre)
    if diff and not allow:
        fields_text = "; ".join(f"{k}: {v['dataset']!r} in the dataset, {v['checkpoint']!r} in the checkpoint"
                                for k, v in diff.items())
        raise PreprocessingMismatchError(
            f"the dataset {data_path} was prepared differently from the data the "
            f"checkpoint {ckpt_name} was trained on ('preprocessing' in {meta_where} vs {config_where}): "
            f"{fields_text}. Its numbers would not measure the model: prepare the dataset again with the "
            f"checkpoint's options (sketchgraph prepare ... {_prepare_options(checkpoint_pre)}), or pass "
            "--allow-preprocessing-mismatch (allow_preprocessing_mismatch=True in Python) to evaluate it anyway",
            diff)
    return dataset_pre, checkpoint_pre, diff


def _check_out(out: Path) -> None:
    """Refuse, before any data is loaded or any sketch is run, an ``out`` that cannot receive ``report.json`` and
    ``confusion.png``: an existing file, a folder under a file, a folder this user cannot write, or one whose
    ``report.json`` / ``confusion.png`` is a folder. Nothing is created here."""
    if out.exists():
        if not out.is_dir():
            raise FileExistsError(f"--out {out} is an existing file, not a folder: evaluate writes report.json and "
                                  "confusion.png into a folder; name a new or existing folder")
        for name in ("report.json", "confusion.png"):
            if (out / name).is_dir():
                raise IsADirectoryError(f"--out {out}: {out / name} is a folder, so {name} cannot be written there; "
                                        "name another --out folder")
        if not os.access(out, os.W_OK | os.X_OK):
            raise PermissionError(f"--out {out}: this user may not write into that folder; name another --out")
        return
    above = nearest_existing(out)
    if not above.is_dir():
        raise NotADirectoryError(f"--out {out} cannot be created: {above} is a file, not a folder")
    if not os.access(above, os.W_OK | os.X_OK):
        raise PermissionError(f"--out {out} cannot be created: this user may not write into {above}")


def _checkpoint_dir(checkpoint: str | os.PathLike) -> Path:
    """``resolve_checkpoint``, and for a folder without ``config.json`` that holds checkpoints (a training run's
    ``best/`` and ``last/``) a ``CheckpointError`` that names them, instead of "config.json does not exist"."""
    from .predict import resolve_checkpoint

    path = resolve_checkpoint(checkpoint)
    if path.is_dir() and not (path / "config.json").is_file():
        inside = sorted((p.name for p in path.iterdir() if (p / "config.json").is_file()),
                        key=lambda n: ({"best": 0, "last": 1}.get(n, 2), n))
        if inside:
            what = {"best": "the epoch of best validation accuracy", "last": "the latest epoch"}
            options = " or ".join(f"{path / n}" + (f" ({what[n]})" if n in what else "") for n in inside)
            raise CheckpointError(f"{path} is not a checkpoint (no config.json) but holds {len(inside)} "
                                  f"checkpoint{'s' if len(inside) > 1 else ''}: evaluate {options}")
    return path


def _checkpoint_title(ckpt_name: str) -> str:
    """How the confusion-matrix title names a checkpoint: its folder and the one above (``run1/best``), since a
    training run's checkpoints are all called ``best`` / ``last``."""
    if ckpt_name == IN_MEMORY:
        return ckpt_name
    path = Path(ckpt_name).resolve()
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def evaluate(
    checkpoint: str | os.PathLike | tuple[nn.Module, dict],
    dataset: Any,
    split: str = "test",
    *,
    batch_size: int = 256,
    backend: str = "dense",
    device: str = "cpu",
    out: str | os.PathLike | None = None,
    num_workers: int = 0,
    progress: bool = True,
    allow_preprocessing_mismatch: bool = False,
) -> dict[str, Any]:
    """Evaluate a checkpoint on one split of a prepared dataset.

    Args:
        checkpoint: a checkpoint directory (any preset or baseline), a shipped checkpoint's name (``"spg20"``, see
            ``sketchgraph.predict.resolve_checkpoint``), or ``(model, config)`` as returned by ``load_checkpoint``.
            A training run's folder (holding ``best/`` and ``last/``) is refused, naming them.
        dataset: a ``PreparedDataset`` or its directory.
        split: split name (``"test"``, ``"valid"``, ``"train"``).
        batch_size: sketches per forward pass.
        backend: attention implementation, ``"dense"`` or ``"dgl"``.
        device: torch device for the model.
        out: if given, write ``report.json`` and ``confusion.png`` there (checked before anything is loaded).
        num_workers: loader worker processes.
        progress: show a progress bar.
        allow_preprocessing_mismatch: evaluate even when the dataset was prepared otherwise than the checkpoint's
            training data (see ``check_preprocessing``); the report then records the differences.

    Returns:
        the report: the keys of ``classification_metrics`` plus ``checkpoint``, ``weights_sha256`` (``None`` for an
        in-memory model), ``dataset``, ``dataset_fingerprint`` (``PreparedDataset.fingerprint``), ``split``,
        ``classes``, ``backend``, ``preprocessing`` (``{"dataset", "checkpoint"}``, each with defaults filled in),
        ``preprocessing_mismatch`` (``{field: {"dataset", "checkpoint"}}``, empty when they match),
        ``allow_preprocessing_mismatch`` (and ``files`` when ``out`` is given).

    Raises:
        PreprocessingMismatchError: the preprocessing differs and ``allow_preprocessing_mismatch`` is false.
        CheckpointError: a missing or broken checkpoint, or dataset classes the model does not know.
        OSError: an ``out`` that cannot be written (before anything is evaluated).
    """
    from .checkpoint import load_checkpoint, weights_digest
    from .data import PreparedDataset, make_loader

    device = usable_device(device)
    if out is not None:
        out = Path(out)
        _check_out(out)
    if isinstance(checkpoint, tuple):
        model, config = checkpoint
        ckpt_name, digest = IN_MEMORY, None
    else:
        path = _checkpoint_dir(checkpoint)
        model, config = load_checkpoint(path, device=device)
        ckpt_name, digest = str(path), weights_digest(path)
    model = model.to(device)
    set_backend(model, backend)
    data = dataset if isinstance(dataset, PreparedDataset) else PreparedDataset(dataset)
    classes = list(config["classes"])
    to_model = _class_map(data.classes, classes)  # dataset label -> model output index
    dataset_pre, checkpoint_pre, mismatch = _compare_preprocessing(data, config, ckpt_name,
                                                                   allow_preprocessing_mismatch)
    relations = tuple(config.get("graph_spec", {}).get("relations", ()))
    loader = make_loader(data.split(split), batch_size, shuffle=False, seed=0, relations=relations,
                         num_workers=num_workers)
    logits, labels = collect_logits(model, loader, device, progress=progress, desc=f"evaluate {split}")
    labels = to_model[labels]
    # a subset of the model's classes: per-class figures and averages over the dataset's classes
    present = sorted(to_model.tolist()) if len(data.classes) < len(classes) else None
    report = {
        "checkpoint": ckpt_name, "weights_sha256": digest,
        "dataset": str(getattr(data, "path", dataset)), "dataset_fingerprint": data.fingerprint,
        "split": split, "backend": backend, "classes": classes,
        "preprocessing": {"dataset": dataset_pre, "checkpoint": checkpoint_pre},
        "preprocessing_mismatch": mismatch,
        "allow_preprocessing_mismatch": bool(allow_preprocessing_mismatch),
        **classification_metrics(logits, labels, classes, present=present),
    }
    if present is not None:
        report["dataset_classes"] = [classes[i] for i in present]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        report["files"] = {"json": str(out / "report.json"), "confusion_png": str(out / "confusion.png")}
        plot_confusion(np.array(report["confusion_matrix"]), classes, out / "confusion.png",
                       title=f"{_checkpoint_title(ckpt_name)} on {split}: top-1 {report['top1']:.2%}")
        with atomic_write(out / "report.json", "w", encoding="utf-8") as f:
            f.write(json.dumps(report, indent=2) + "\n")
    return report


def _mismatch_text(mismatch: dict[str, dict[str, Any]]) -> str:
    return "; ".join(f"{k} {v['dataset']!r} (dataset) vs {v['checkpoint']!r} (checkpoint)" for k, v in mismatch.items())


def _summary(report: dict[str, Any]) -> str:
    from .wording import counted

    lines = [
        f"{report['split']}: {counted(report['num_samples'], 'sketch')}, top-1 {report['top1']:.2%}, "
        f"top-5 {report['top5']:.2%}, top-10 {report['top10']:.2%}",
        "hardest confusions (true -> predicted):",
    ]
    for c in report["hardest_confusions"]:
        lines.append(f"  {c['true']} -> {c['predicted']}: {c['count']} ({c['rate']:.1%})")
    if report.get("classes_without_samples"):
        lines.append(f"no samples of {', '.join(report['classes_without_samples'])} in this split: left out of the "
                     "per-class figures and averages")
    if report.get("preprocessing_mismatch"):
        lines.append("evaluated despite a preprocessing mismatch (--allow-preprocessing-mismatch): "
                     + _mismatch_text(report["preprocessing_mismatch"]))
    if "files" in report:
        lines.append(f"wrote {report['files']['json']} and {report['files']['confusion_png']}")
    return "\n".join(lines)


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="checkpoint directory (e.g. runs/spg20/best) or shipped name (spg20)")
    p.add_argument("dataset", help="prepared dataset directory")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--out", default=None, help="write report.json and confusion.png here")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--backend", choices=("dense", "dgl"), default="dense", help="attention implementation")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, auto (CUDA when available)")
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--allow-preprocessing-mismatch", action="store_true",
                   help="evaluate even when the dataset was prepared with other options (simplify, epsilon, cap, "
                        "max-points) than the checkpoint's training data; report.json records the differences")


def run_cli(args: argparse.Namespace) -> int:
    report = evaluate(
        args.checkpoint, args.dataset, args.split, batch_size=args.batch_size, backend=args.backend,
        device=args.device, out=args.out, num_workers=args.num_workers, progress=not args.json,
        allow_preprocessing_mismatch=args.allow_preprocessing_mismatch,
    )
    if report["preprocessing_mismatch"]:
        print("sketchgraph evaluate: warning: the dataset was prepared differently from the checkpoint's training "
              f"data: {_mismatch_text(report['preprocessing_mismatch'])}", file=sys.stderr)
    print(json.dumps(report, indent=2) if args.json else _summary(report))
    return 0
