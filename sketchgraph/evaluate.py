"""Evaluate a checkpoint on a prepared dataset split: top-k accuracy, per-class scores, confusions.

    >>> report = evaluate("runs/spg20/best", "data/spg20-prepared", split="test", out="runs/spg20/eval")
    >>> report["top1"], report["hardest_confusions"][0]

``sketchgraph evaluate CHECKPOINT DATASET --split test --out DIR`` (CHECKPOINT: a directory or a shipped
name, ``spg20``) writes ``report.json``, ``confusion.png`` (row-normalised confusion matrix, class names on
both axes; above ``SEPARATE_ERRORS_ABOVE`` classes the errors get their own colour scale) and ``confusions.csv``
(every confusion: true, predicted, count, rate; most frequent first) into ``DIR``. ``report.json`` names the
exact weights (``weights_sha256``) and data (``dataset_fingerprint``) it was measured on, so a stale report next to
a retrained model shows as such.

The dataset must have been prepared the way the checkpoint's training data was (its ``preprocessing`` in
``config.json``: simplification, tolerance, point cap): numbers on data prepared otherwise do not measure the
model, so ``evaluate`` refuses them (``PreprocessingMismatchError``, naming each differing field) unless
``allow_preprocessing_mismatch`` (``--allow-preprocessing-mismatch``) is given, which ``report.json`` records.
The metric helpers (``collect_logits``, ``topk_correct``, ``classification_metrics``) are also what
training uses for its validation numbers.

Labelled sketch files need no prepare step: ``sketchgraph evaluate spg20 airplane.ndjson more/`` (anything but one
prepared dataset folder) reads them as ``sketchgraph predict`` does and classifies them as ``predict`` does;
``sketchgraph.evaluate_files`` holds that mode, and its report also counts the records it could not classify or
match to the model's classes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .batch import Batch
from .device import usable_device
from .errors import CheckpointError
from .formats.base import atomic_write, canonical_label, nearest_existing
from .model import set_backend
from .options import int_option
from .wording import counted

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "evaluate", "collect_logits", "topk_correct", "classification_metrics", "metrics_from_ranks",
    "hardest_confusions", "confusion_pairs",
    "plot_confusion", "confusion_figure", "confusion_layout", "ConfusionLayout", "write_confusions_csv",
    "preprocessing_differences", "check_preprocessing", "PreprocessingMismatchError",
]

TOPK = (1, 5, 10)
OUT_FILES = ("report.json", "confusion.png", "confusions.csv")  # what ``evaluate(out=...)`` writes
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
        # disable=None: no bar when stderr is not a terminal
        for batch in tqdm(batches, desc=desc, disable=None if progress else True, leave=False):
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


def confusion_pairs(matrix: np.ndarray, classes: Sequence[str]) -> list[dict[str, Any]]:
    """Every non-zero off-diagonal cell of a confusion matrix (rows = true, columns = predicted), most frequent
    first (ties in row-major order). Each entry: ``{"true", "predicted", "count", "rate"}`` with ``rate`` = count /
    support of the true class."""
    off = np.asarray(matrix).astype(np.int64).copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(-off, axis=None, kind="stable")
    flat = flat[: int(np.count_nonzero(off))]  # the non-zero cells sort first
    support = np.asarray(matrix).sum(1)
    return [
        {"true": classes[t], "predicted": classes[p], "count": int(off[t, p]), "rate": float(off[t, p] / support[t])}
        for t, p in zip(*np.unravel_index(flat, off.shape))
    ]


def hardest_confusions(matrix: np.ndarray, classes: Sequence[str], n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` largest off-diagonal cells of a confusion matrix (rows = true, columns = predicted): the first
    ``n`` of ``confusion_pairs``.

    Each entry: ``{"true", "predicted", "count", "rate"}`` with ``rate`` = count / support of the true class.
    """
    return confusion_pairs(matrix, classes)[:n]


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
        "classes_without_samples", "confusion_matrix", "hardest_confusions"}`` (one ``top{k}`` per ``k`` in ``ks``;
        the default ``ks`` give ``top1``, ``top5``, ``top10``); ``top{k}`` uses ``min(k, C)``, so it is 1.0 for
        ``k >= C``,
        per-class accuracy is the recall of each class, and the report is scikit-learn's
        ``classification_report`` as a dict. ``metrics_from_ranks`` computes them from the logits' top-1, the
        rank of each label and the loss.
    """
    ranked = _ranked(logits, ks)  # (M, kmax): the one ranking behind the top-k counts and the top-1
    hit = ranked == labels[:, None]  # at most one True per row
    # the label's place among the kmax best, kmax when it is not among them (rank >= kmax counts for no k asked)
    rank = torch.where(hit.any(1), hit.int().argmax(1), torch.full_like(labels, ranked.shape[1]))
    loss = torch.nn.functional.cross_entropy(logits, labels).item() if len(labels) else float("nan")
    return metrics_from_ranks(labels.numpy(), ranked[:, 0].numpy() if len(labels) else labels.numpy(),
                              rank.numpy(), loss, classes, ks=ks, n_confusions=n_confusions, present=present)


def metrics_from_ranks(
    y_true: np.ndarray, y_pred: np.ndarray, true_rank: np.ndarray, loss: float, classes: Sequence[str], *,
    ks: Sequence[int] = TOPK, n_confusions: int = 10, present: Sequence[int] | None = None,
) -> dict[str, Any]:
    """``classification_metrics``'s report from what it keeps of each sample: ``y_true`` ``(M,)`` its class,
    ``y_pred`` ``(M,)`` the top-1 class, ``true_rank`` ``(M,)`` the true class's 0-based place in the ranking (a
    sample counts for ``top{k}`` when it is below ``min(k, C)``; a rank past ``max(ks)`` may be given as any number
    ``>= min(max(ks), C)``), and ``loss``, the mean cross-entropy. ``present`` as for ``classification_metrics``.
    Evaluating sketch files keeps these four per record instead of an ``(M, C)`` matrix."""
    from sklearn.metrics import classification_report, confusion_matrix

    M, C = len(y_true), len(classes)
    true_rank = np.asarray(true_rank)
    hits = [int(np.count_nonzero(true_rank < min(k, C))) for k in ks]
    ids = list(range(C))
    matrix = confusion_matrix(y_true, y_pred, labels=ids)
    support = matrix.sum(1)
    per_class = np.divide(np.diag(matrix), support, out=np.zeros(C), where=support > 0)
    candidates = list(present) if present is not None else ids
    shown = [i for i in candidates if support[i] > 0] if M else candidates
    return {
        "num_samples": M,
        "loss": loss,
        **{f"top{k}": hits[i] / max(M, 1) for i, k in enumerate(ks)},
        "per_class_accuracy": {classes[i]: float(per_class[i]) for i in shown},
        "classification_report": classification_report(
            y_true, y_pred, labels=shown, target_names=[classes[i] for i in shown], output_dict=True,
            zero_division=0,
        ),
        "classes_without_samples": [classes[i] for i in candidates if M and support[i] == 0],
        "confusion_matrix": matrix.tolist(),
        "hardest_confusions": hardest_confusions(matrix, classes, n_confusions),
    }


# ------------------------------------------------------------------------------- confusion figure and CSV
MAX_FIGURE_INCHES = 50.0  # 5000 px at 100 dpi: 345 classes get ~10 pt cells, 6 pt names
SEPARATE_ERRORS_ABOVE = 50  # classes: beyond this the errors get their own colour scale
_TICK_POINTS = (5.0, 9.0)  # class-name size range, pt (9: the 20-class figure's)
_COUNT_MIN_POINTS = 5.0  # smaller counts are not drawn


@dataclass(frozen=True)
class ConfusionLayout:
    """Sizes of the confusion-matrix figure for ``C`` classes (see ``confusion_layout``).

    Attributes:
        side: figure width and height, inches (100 dpi).
        cell: points per class along an axis (``side * 72 / C``), before the margins are taken off.
        ticks: class-name font size, pt.
        counts: font size of the counts in the cells, pt; ``None`` when cells are too small to hold them.
        labels: axis-label and colour-bar-label size, pt.
        title: title size, pt.
        separate_errors: off-diagonal cells get their own colour scale (more than ``SEPARATE_ERRORS_ABOVE`` classes).
    """

    side: float
    cell: float
    ticks: float
    counts: float | None
    labels: float
    title: float
    separate_errors: bool


def confusion_layout(n_classes: int) -> ConfusionLayout:
    """Figure and font sizes for a confusion matrix of ``n_classes``: the figure grows with the classes (up to
    ``MAX_FIGURE_INCHES``), class names are sized from the cell (60% of it, within ``_TICK_POINTS``), counts are
    drawn while they fit (40% of the cell, at least ``_COUNT_MIN_POINTS``), and the title and axis labels grow with
    the figure."""
    C = max(n_classes, 1)
    side = min(4 + 0.32 * C, MAX_FIGURE_INCHES)
    cell = side * 72 / C
    ticks = round(min(max(0.6 * cell, _TICK_POINTS[0]), _TICK_POINTS[1]), 1)
    count = round(min(ticks - 1, 0.4 * cell), 1)
    labels = round(min(max(0.8 * side, 10.0), 28.0), 1)
    return ConfusionLayout(side=side, cell=cell, ticks=ticks, counts=count if count >= _COUNT_MIN_POINTS else None,
                           labels=labels, title=round(1.2 * labels, 1),
                           separate_errors=n_classes > SEPARATE_ERRORS_ABOVE)


def confusion_figure(matrix: np.ndarray, classes: Sequence[str], title: str = "") -> Figure:
    """The row-normalised confusion matrix as a matplotlib ``Figure`` (not a pyplot one), sized by
    ``confusion_layout``. Up to ``SEPARATE_ERRORS_ABOVE`` classes one blue 0..1 scale; above, the diagonal keeps
    it and the off-diagonal cells get a red square-root scale up to the largest error rate, so a 3% confusion
    among hundreds of classes is not drawn white. A class with no sample is marked "(no samples)" on its row."""
    from matplotlib.colors import PowerNorm
    from matplotlib.figure import Figure

    matrix = _counts(matrix, classes)
    support = matrix.sum(1)
    rates = matrix / np.maximum(support[:, None], 1)
    C = len(classes)
    lay = confusion_layout(C)
    fig = Figure(figsize=(lay.side, lay.side), dpi=100)
    ax = fig.subplots()
    diagonal = np.eye(C, dtype=bool)
    shade = rates.copy()  # (C, C) 0..1: how dark each cell is drawn, for the count's colour
    if lay.separate_errors:
        top_error = float(rates[~diagonal].max()) if C > 1 else 0.0
        norm = PowerNorm(0.5, vmin=0, vmax=max(top_error, 1e-9))
        right = ax.imshow(np.ma.masked_where(~diagonal, rates), cmap="Blues", vmin=0, vmax=1)
        wrong = ax.imshow(np.ma.masked_where(diagonal | (rates == 0), rates), cmap="Reds", norm=norm)
        shade[~diagonal] = norm(rates[~diagonal]).filled(0)
        # each bar takes its room from the matrix's side, so the first one made ends up outermost, and its pad must
        # hold the tick labels and label of the one made next (~4 label heights, as a fraction of the figure)
        room = 4 * lay.labels / 72 / lay.side
        bar = fig.colorbar(wrong, ax=ax, fraction=0.03, pad=room)
        bar.set_label("off-diagonal: fraction of the true class predicted as the column (square-root scale)",
                      fontsize=lay.labels)
        bar.ax.tick_params(labelsize=lay.labels * 0.8)
        bar = fig.colorbar(right, ax=ax, fraction=0.03, pad=0.02)
        bar.set_label("diagonal: fraction of the true class right", fontsize=lay.labels)
    else:
        right = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        bar = fig.colorbar(right, ax=ax, fraction=0.046, pad=0.04)
        bar.set_label("fraction of true class", fontsize=lay.labels)
    bar.ax.tick_params(labelsize=lay.labels * 0.8)
    ticks = np.arange(C)
    ax.set_xticks(ticks, labels=classes, rotation=90, fontsize=lay.ticks)
    ax.set_yticks(ticks, labels=[f"{c} (no samples)" if n == 0 else c for c, n in zip(classes, support)],
                  fontsize=lay.ticks)
    ax.set_xlabel("predicted", fontsize=lay.labels)
    ax.set_ylabel("true", fontsize=lay.labels)
    if lay.counts is not None:
        for t, p in zip(*np.nonzero(matrix)):
            ax.text(p, t, int(matrix[t, p]), ha="center", va="center", fontsize=lay.counts,
                    color="white" if shade[t, p] > 0.5 else "black")
    ax.set_title(title or "confusion matrix (rows normalised)", fontsize=lay.title)
    fig.tight_layout()
    return fig


def _counts(matrix: Any, classes: Sequence[str]) -> np.ndarray:
    """``matrix`` as float64 ``(C, C)`` counts for ``C = len(classes)``; ``ValueError`` for another shape (a subset
    of the classes drew a mislabelled figure) or values that are no counts (rates drew every cell as 0; NaN)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    C = len(classes)
    if matrix.shape != (C, C):
        raise ValueError(f"a confusion matrix of {counted(C, 'class')} is ({C}, {C}), got shape {matrix.shape}: "
                         "pass one class name per row and column")
    if not (np.isfinite(matrix).all() and (matrix >= 0).all() and (matrix == np.round(matrix)).all()):
        raise ValueError("a confusion matrix holds counts (whole numbers >= 0; rows are normalised when drawn), not "
                         "rates, negative numbers or NaN")
    return matrix


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], path: str | os.PathLike | None = None,
                   title: str = "") -> Figure:
    """``confusion_figure``, saved at ``path`` when given (``viz.save_figure``: PNG, or the format the suffix names;
    written atomically; a path that cannot take a figure is refused before drawing), as ``sketchgraph.viz``'s
    functions do. Returns the figure. Leaves matplotlib's global state (backend, pyplot figures) alone."""
    from .viz import figure_target, save_figure

    target = figure_target(path) if path is not None else None  # before drawing
    fig = confusion_figure(matrix, classes, title)
    if target is not None:
        save_figure(fig, target)
    return fig


def write_confusions_csv(matrix: np.ndarray, classes: Sequence[str], path: str | os.PathLike) -> Path:
    """Write every confusion (``confusion_pairs``: each non-zero off-diagonal cell, most frequent first) as a CSV
    with the header ``true,predicted,count,rate`` (``rate``: count / samples of the true class, 6 significant
    digits): what one reads of a matrix too large to look at."""
    import csv
    import io

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["true", "predicted", "count", "rate"])
    for pair in confusion_pairs(matrix, classes):
        writer.writerow([pair["true"], pair["predicted"], pair["count"], f"{pair['rate']:.6g}"])
    path = Path(path)
    with atomic_write(path, "w", encoding="utf-8", newline="") as f:
        f.write(text.getvalue())
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
        shown = sorted(unknown)[:10]
        listed = (f"{counted(len(unknown), 'class')} of the dataset's {len(dataset_classes)} ({', '.join(shown)}"
                  f"{f' and {len(unknown) - 10} more' if len(unknown) > 10 else ''}) "
                  f"{'is' if len(unknown) == 1 else 'are'}"
                  if unknown else "some of the dataset's classes (named twice) are")
        raise CheckpointError(
            f"{listed} not among the checkpoint's {len(model_classes)} classes (names are compared as "
            "canonical_label). A prepared dataset is evaluated whole: prepare a dataset of the model's classes only "
            "(name their files to sketchgraph prepare), or evaluate the sketch files themselves (sketchgraph "
            "evaluate CHECKPOINT FILES... counts the records of other classes apart, as unknown_labels)")
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


def _check_out(out: Path, inputs: Sequence[str | os.PathLike] = ()) -> None:
    """Refuse, before any data is loaded or any sketch is run, an ``out`` that cannot receive ``OUT_FILES``: an
    existing file, a folder under a file, a folder this user cannot write, or one where one of ``OUT_FILES`` is a
    folder; and one whose files the report must not mix with (``train`` refuses such an ``--out`` too): a prepared
    dataset (``prepare --overwrite`` replaces it whole), a checkpoint (a run's next save replaces ``best/`` and
    ``last/`` whole) or one of the folders ``inputs`` being evaluated. Nothing is created here."""
    if out.exists():
        if not out.is_dir():
            raise FileExistsError(f"--out {out} is an existing file, not a folder: evaluate writes report.json, "
                                  "confusion.png and confusions.csv into a folder; name a new or existing folder")
        _check_out_is_its_own(out, inputs)
        for name in OUT_FILES:
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


def _check_out_is_its_own(out: Path, inputs: Sequence[str | os.PathLike]) -> None:
    """``FileExistsError`` when the existing folder ``out`` is a prepared dataset, a checkpoint or one of the folders
    ``inputs`` (see ``_check_out``)."""
    from .checkpoint import is_checkpoint
    from .data import is_prepared

    elsewhere = f"name a folder of its own, e.g. {out.parent / (out.name + '-eval')}"
    if is_prepared(out):
        raise FileExistsError(f"--out {out} is a prepared dataset: the evaluation's files do not belong among its "
                              f"arrays (a later prepare --overwrite of it deletes them); {elsewhere}")
    if is_checkpoint(out):
        raise FileExistsError(f"--out {out} is a checkpoint: the evaluation's files do not belong in it (a run's next "
                              f"save replaces the folder whole, and the report with it); {elsewhere}")
    here = out.resolve()
    if any(Path(p).expanduser().is_dir() and Path(p).expanduser().resolve() == here for p in inputs):
        raise FileExistsError(f"--out {out} is a folder being evaluated: the evaluation's files would lie among its "
                              f"sketch files; {elsewhere}")


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
    top_k: Sequence[int] = TOPK,
    format: str | None = None,
    limit_per_file: int | None = None,
    exclude_key_ids: Iterable[str] | None = None,
    label_map: dict[str, str] | None = None,
    sample_per_file: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Evaluate a checkpoint on one split of a prepared dataset, or on labelled sketch files.

    ``dataset`` that is one prepared dataset (a ``PreparedDataset``, or a folder holding the prepared
    ``meta.json``) is evaluated here. Anything else (a sketch file, a folder of them, or a list of such paths) is
    read as ``sketchgraph predict`` reads it and evaluated by ``sketchgraph.evaluate_files.evaluate_files`` (its
    docstring says what its report adds): ``split`` then selects the split of ``.npz`` files, ``format`` reads every
    file as that format, and ``num_workers`` and ``allow_preprocessing_mismatch`` are not used (the checkpoint's
    own inference preprocessing is applied). A prepared dataset among other paths is refused (``ValueError``).

    Args:
        checkpoint: a checkpoint directory (any preset or baseline), a shipped checkpoint's name (``"spg20"``, see
            ``sketchgraph.predict.resolve_checkpoint``), or ``(model, config)`` as returned by ``load_checkpoint``.
            A training run's folder (holding ``best/`` and ``last/``) is refused, naming them.
        dataset: a ``PreparedDataset`` or its directory.
        split: split name (``"test"``, ``"valid"``, ``"train"``).
        batch_size: sketches per forward pass.
        backend: attention implementation, ``"dense"`` or ``"dgl"``.
        device: torch device for the model.
        out: if given, write ``report.json``, ``confusion.png`` and ``confusions.csv`` (every confusion, see
            ``write_confusions_csv``) there (checked before anything is loaded).
        num_workers: loader worker processes.
        progress: show a progress bar.
        allow_preprocessing_mismatch: evaluate even when the dataset was prepared otherwise than the checkpoint's
            training data (see ``check_preprocessing``); the report then records the differences.
        top_k: the ``k`` of the ``top{k}`` accuracies (top-1 is always among them). A ``k`` at or above the
            model's number of classes is kept, and is 1.0 by definition (every class is among the top k).
        format: for sketch files only: read every file as this format (default: each file's own).
        limit_per_file: for sketch files only: evaluate the first ``limit_per_file`` records of each file.
        sample_per_file: for sketch files only: evaluate a random sample of this many records of each file
            (``seed`` fixes it).
        exclude_key_ids: for sketch files only: leave out the records of these key ids (the training data's).
        label_map: for sketch files only: ``{label: model class}`` for data whose words differ from the model's.

    Returns:
        the report: the keys of ``classification_metrics`` plus ``checkpoint``, ``weights_sha256`` (``None`` for an
        in-memory model), ``dataset``, ``dataset_fingerprint`` (``PreparedDataset.fingerprint``), ``split``,
        ``classes``, ``backend``, ``preprocessing`` (``{"dataset", "checkpoint"}``, each with defaults filled in),
        ``preprocessing_mismatch`` (``{field: {"dataset", "checkpoint"}}``, empty when they match),
        ``allow_preprocessing_mismatch``, ``top_k`` (the ``k`` reported) (and ``files`` when ``out`` is given).

    Raises:
        PreprocessingMismatchError: the preprocessing differs and ``allow_preprocessing_mismatch`` is false.
        CheckpointError: a missing or broken checkpoint, or dataset classes the model does not know.
        OSError: an ``out`` that cannot be written (before anything is evaluated).
        ValueError: a ``batch_size`` or a ``top_k`` that is not a positive integer.
    """
    from .checkpoint import load_checkpoint, weights_digest
    from .data import PreparedDataset, make_loader
    from .evaluate_files import evaluate_files
    from .evaluate_inputs import file_inputs

    files = file_inputs(dataset, format)
    if files is not None:
        return evaluate_files(checkpoint, files, split=split, format=format, batch_size=batch_size, backend=backend,
                              device=device, out=out, progress=progress, top_k=top_k,
                              limit_per_file=limit_per_file, exclude_key_ids=exclude_key_ids, label_map=label_map,
                              sample_per_file=sample_per_file, seed=seed)
    if limit_per_file is not None or sample_per_file is not None or exclude_key_ids is not None or label_map:
        raise ValueError("limit_per_file, sample_per_file, exclude_key_ids and label_map (--limit-per-file, "
                         "--sample-per-file, --exclude-key-ids, --label-map) apply to sketch files; a prepared "
                         "dataset is evaluated whole (its --split)")
    if isinstance(dataset, (list, tuple)):  # [prepared]: one prepared dataset, as the command line gives it
        (dataset,) = dataset
    ks = _top_ks(top_k)
    _check_positive("batch_size", batch_size)
    device = usable_device(device)
    if out is not None:
        out = Path(out)
        _check_out(out)  # the dataset's own folder is a prepared dataset: refused as one
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
        "top_k": list(ks),
        **classification_metrics(logits, labels, classes, ks=ks, present=present),
    }
    if present is not None:
        report["dataset_classes"] = [classes[i] for i in present]
    if out is not None:
        from .evaluate_files import clear_out

        out.mkdir(parents=True, exist_ok=True)
        clear_out(out)  # an earlier run's files, predictions.csv of a run on sketch files included
        report["files"] = {"json": str(out / "report.json"), "confusion_png": str(out / "confusion.png"),
                           "confusions_csv": str(out / "confusions.csv")}
        matrix = np.array(report["confusion_matrix"])
        plot_confusion(matrix, classes, out / "confusion.png",
                       title=f"{_checkpoint_title(ckpt_name)} on {split}: top-1 {report['top1']:.2%}")
        write_confusions_csv(matrix, classes, out / "confusions.csv")
        with atomic_write(out / "report.json", "w", encoding="utf-8") as f:
            f.write(json.dumps(report, indent=2) + "\n")
    return report


def _check_positive(name: str, value: Any) -> None:
    """``ValueError`` naming ``name`` unless ``value`` is an integer >= 1 (``bool`` is not one)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _top_ks(top_k: Sequence[int]) -> tuple[int, ...]:
    """The ``k`` to report: ``top_k`` with 1 added, sorted, each once; ``ValueError`` for a ``k`` that is not a
    positive integer or an empty ``top_k``."""
    if isinstance(top_k, (str, bytes)) or not isinstance(top_k, Sequence) or not top_k:
        raise ValueError(f"top_k must be a non-empty sequence of positive integers, got {top_k!r}")
    for k in top_k:
        _check_positive("each top_k", k)
    return tuple(sorted({1, *(int(k) for k in top_k)}))


def _mismatch_text(mismatch: dict[str, dict[str, Any]]) -> str:
    return "; ".join(f"{k} {v['dataset']!r} (dataset) vs {v['checkpoint']!r} (checkpoint)" for k, v in mismatch.items())


PER_CLASS_SHOWN = 20  # the summary lists every class up to this many, else the worst this many


def _topk_text(report: dict[str, Any]) -> str:
    """``top-1 97.85%, top-5 99.90%``; a ``k`` at or above the model's class count is not a measurement (every
    class is among the top k), so it is named once at the end instead of printed as 100%."""
    C = len(report["classes"])
    ks = report.get("top_k", list(TOPK))
    text = ", ".join(f"top-{k} {report[f'top{k}']:.2%}" for k in ks if k < C or k == 1)
    trivial = [f"top-{k}" for k in ks if k >= C and k != 1]
    if trivial:
        text += f" ({', '.join(trivial)} left out: k >= the model's {counted(C, 'class')}, 100% by definition)"
    return text


def _per_class_lines(report: dict[str, Any]) -> list[str]:
    """The per-class accuracy table, worst first (then by name): every class up to ``PER_CLASS_SHOWN`` classes,
    else the worst ``PER_CLASS_SHOWN`` and a note that the rest are in the JSON report. Each row: name, accuracy
    (recall), right / samples."""
    accuracy = report["per_class_accuracy"]
    if not accuracy:
        return []
    matrix = np.asarray(report["confusion_matrix"])
    index = {c: i for i, c in enumerate(report["classes"])}
    rows = sorted(accuracy.items(), key=lambda item: (item[1], item[0]))
    shown = rows if len(rows) <= PER_CLASS_SHOWN else rows[:PER_CLASS_SHOWN]
    head = ("per-class accuracy (worst first):" if len(shown) == len(rows) else
            f"per-class accuracy, the worst {len(shown)} of {counted(len(rows), 'class')} (all of them: --json or "
            "report.json):")
    width = max(len(name) for name, _ in shown)
    lines = [head]
    for name, acc in shown:
        i = index[name]
        lines.append(f"  {name:<{width}}  {acc:7.2%}  {int(matrix[i, i])}/{int(matrix[i].sum())}")
    return lines


def _summary(report: dict[str, Any]) -> str:
    """The text ``sketchgraph evaluate`` prints: the top-k accuracies, the per-class table, the hardest confusions,
    the notes and the files written."""
    if "source" in report:  # sketch files (evaluate_files)
        from .evaluate_files import summary_head

        head = summary_head(report, _topk_text(report))
    else:
        head = [f"{report['split']}: {counted(report['num_samples'], 'sketch')}, {_topk_text(report)}"]
    lines = [*head, *_per_class_lines(report), "hardest confusions (true -> predicted):"]
    for c in report["hardest_confusions"]:
        lines.append(f"  {c['true']} -> {c['predicted']}: {c['count']} ({c['rate']:.1%})")
    if not report["hardest_confusions"]:
        lines.append("  none: every sketch counted was classified right")
    if report.get("classes_without_samples") and "source" not in report:  # files: summary_head names them
        lines.append(f"no samples of {', '.join(report['classes_without_samples'])} in this split: left out of the "
                     "per-class figures and averages")
    if report.get("preprocessing_mismatch"):
        lines.append("evaluated despite a preprocessing mismatch (--allow-preprocessing-mismatch): "
                     + _mismatch_text(report["preprocessing_mismatch"]))
    if "files" in report:
        names = list(report["files"].values())
        lines.append(f"wrote {', '.join(names[:-1])} and {names[-1]}")
    return "\n".join(lines)


def _top_k_option(text: str) -> tuple[int, ...]:
    """The argparse type of ``--top-k``: comma-separated positive integers (``1,3``), else a usage error."""
    parts = [part.strip() for part in text.split(",")]
    try:
        ks = [int(part) for part in parts]
    except ValueError:
        ks = []
    if not ks or min(ks) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers such as 1,5,10, got {text!r}")
    return _top_ks(ks)


def configure_parser(p: argparse.ArgumentParser) -> None:
    """The options of ``sketchgraph evaluate``; each states its default."""
    from .formats import FORMATS

    p.add_argument("checkpoint", help="checkpoint directory (e.g. runs/spg20/best) or shipped name (spg20)")
    p.add_argument("dataset", nargs="+", metavar="DATASET", action=_DatasetAction,
                   help="a prepared dataset directory, or labelled sketch files and folders of them, read as "
                        "sketchgraph predict reads them (.ndjson, .jsonl, .json, gzipped .ndjson.gz, .svg, .bin, "
                        ".npz; a folder is walked for all but .npz files, which are read only when named; each "
                        "record's class is its Quick, Draw! word, else its file name's)")
    p.add_argument("--split", default=None,
                   help="split to evaluate: of a prepared dataset; for sketch files (train, valid, test), the files "
                        "whose names carry it when names carry splits (cat_test.ndjson; the others are left out, "
                        "said on stderr) and the split read from .npz files (default: test; not with --all-splits)")
    p.add_argument("--all-splits", action="store_true",
                   help="sketch files only: evaluate every file whatever split its name carries, and every split of "
                        ".npz files (default: only the --split)")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="sketch files only: read every file as this format (default: from each file's name and "
                        "content)")
    p.add_argument("--limit-per-file", type=int_option(1), default=None, metavar="N",
                   help="sketch files only: evaluate the first N records of each file, say to sample Google's "
                        "per-class files of 100,000+ drawings (default: all)")
    p.add_argument("--sample-per-file", type=int_option(1), default=None, metavar="N",
                   help="sketch files only: evaluate a uniform random sample of N records of each file instead of "
                        "the first N (only the sampled lines of an ndjson file are parsed; --seed fixes the sample) "
                        "(default: all)")
    p.add_argument("--seed", type=int_option(0), default=0,
                   help="the seed of --sample-per-file (default: %(default)s)")
    p.add_argument("--exclude-key-ids", action="append", default=None, metavar="PATH",
                   help="sketch files only: leave out the drawings whose key_id is in PATH, say the training data's, "
                        "to measure on held-out drawings: a .txt file (one key id per line), or sketch files with "
                        "their own key ids (.ndjson, .json, .bin; not .npz or .svg, whose ids are made up per file): "
                        "a file, a folder or a quoted glob pattern ('splits/*_train.ndjson'); one PATH per flag, "
                        "repeat it for more (default: none)")
    p.error_hint = _usage_hint
    p.add_argument("--label-map", action="extend", nargs="+", default=None, metavar="LABEL=CLASS",
                   help="sketch files only: count the records labelled LABEL as the model's class CLASS, for data "
                        "whose words differ from the model's ('clock=alarm clock'; or a .json file of such pairs); "
                        "give it after the datasets, or repeat it (default: none)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write report.json, confusion.png and confusions.csv (every confusion: true, predicted, "
                        "count, rate) into DIR, and for sketch files predictions.csv (one row per record); these "
                        "files, left in DIR by an earlier run, are removed first, and report.json is written last, "
                        "so it always belongs with the files beside it (default: write nothing, only print)")
    p.add_argument("--json", action="store_true",
                   help="print the full report as JSON (default: a text summary). For sketch files the first top-1 "
                        "printed leaves out the records that could not be read or classified; "
                        "top1_counting_unclassified_as_wrong, printed next when it differs, counts them as misses: "
                        "the strict figure to quote")
    p.add_argument("--top-k", type=_top_k_option, default=TOPK, metavar="K[,K...]",
                   help=f"top-k accuracies to report (default: {','.join(map(str, TOPK))}; top-1 is always "
                        "reported). The summary leaves out a k at or above the model's number of classes (100%% by "
                        "definition); the JSON keeps it")
    p.add_argument("--batch-size", type=int_option(1), default=256,
                   help="sketches per forward pass (default: %(default)s)")
    p.add_argument("--backend", choices=("dense", "dgl"), default="dense",
                   help="attention implementation (default: %(default)s)")
    p.add_argument("--device", default="cpu",
                   help="torch device: cpu (default, as for predict), cuda, cuda:1, auto (CUDA when available)")
    p.add_argument("--num-workers", type=int_option(0), default=0,
                   help="data-loader worker processes (default: %(default)s, load in this process); a prepared "
                        "dataset only")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (default: a bar on stderr when it is a terminal, none with --json)")
    p.add_argument("--allow-preprocessing-mismatch", action="store_true",
                   help="evaluate even when the dataset was prepared with other options (simplify, epsilon, cap, "
                        "max-points) than the checkpoint's training data; report.json records the differences "
                        "(default: refuse; sketch files are always preprocessed as the checkpoint says)")


EXCLUDE_ONE_PATH = ("--exclude-key-ids takes one PATH per flag: quote a glob so that the shell leaves it as it is "
                    "(--exclude-key-ids 'splits/*_train.ndjson'), or repeat the flag")


def _usage_hint(message: str, argv: list[str]) -> str:
    """A usage error explained (``error_hint`` of ``evaluate``'s parser): DATASET missing when ``--label-map`` was
    given (``--label-map "clock=alarm clock" clock.ndjson`` takes the file for a second pair); words left over when
    ``--exclude-key-ids`` was given (an unquoted glob, which the shell expanded into many files)."""
    from .evaluate_inputs import LABEL_MAP_SWALLOWS

    if re.search(r"required: (.*, )?DATASET\b", message) and "--label-map" in argv:  # "checkpoint, DATASET" too
        return f"{message} ({LABEL_MAP_SWALLOWS})"
    if message.startswith("unrecognized arguments:") and "--exclude-key-ids" in argv:
        return f"{message} ({EXCLUDE_ONE_PATH})"
    return message


def _names_checkpoint(path: str) -> bool:
    """Whether the command-line word ``path`` names a checkpoint: a checkpoint folder or a file in one (its weights,
    as ``resolve_checkpoint`` takes them), or a shipped name (``spg20``) that is no file or folder here."""
    from .checkpoint import is_checkpoint
    from .predict import shipped_checkpoints

    named = Path(path).expanduser()
    if not named.exists():
        return path in shipped_checkpoints()
    return is_checkpoint(named) or (named.is_file() and is_checkpoint(named.parent))


def _checkpoint_among_datasets(checkpoint: str, datasets: Sequence[str], exclude_given: bool) -> str | None:
    """The usage error of a command line whose checkpoint landed among the DATASETs (``None`` when it did not):
    ``checkpoint`` names a file or folder that is no checkpoint while a DATASET names one. That comes of a
    swapped order, or of an unquoted glob after ``--exclude-key-ids``, which the shell expanded: the flag took the
    first file, the checkpoint slot the second."""
    here = Path(checkpoint).expanduser()
    if not here.exists() or _names_checkpoint(checkpoint):
        return None
    found = next((d for d in datasets if _names_checkpoint(d)), None)
    if found is None:
        return None
    kind = "folder" if here.is_dir() else "file"
    cause = (f"; {EXCLUDE_ONE_PATH}" if exclude_given else
             f": the checkpoint comes first (sketchgraph evaluate {found} DATASET...)")
    return f"{checkpoint} (a {kind}, not a checkpoint) was taken as the checkpoint and {found} as a dataset{cause}"


def _expanded_exclusion(excluded: Sequence[str], datasets: Sequence[str]) -> str | None:
    """The usage error of an unquoted glob after ``--exclude-key-ids`` between the checkpoint and the DATASETs
    (``evaluate spg20 --exclude-key-ids S/*_train.ndjson test/``): the flag took the first file, and the others,
    the training files whose ids were to be left out, stood among the datasets and were evaluated. Told by a
    DATASET file in the same folder as an excluded file, whose name carries the same split; ``None`` otherwise."""
    from .data.splits import split_of_name

    for path in excluded:
        held_out = Path(path).expanduser()
        split = split_of_name(held_out) if held_out.is_file() else None
        if split is None:
            continue
        for dataset in datasets:
            other = Path(dataset).expanduser()
            if other.is_file() and other.parent == held_out.parent and split_of_name(other) == split:
                return (f"{dataset} is among the datasets, yet it sits beside --exclude-key-ids {path} and its name "
                        f"carries the same split ({split}): a glob the shell expanded? {EXCLUDE_ONE_PATH}")
    return None


class _DatasetAction(argparse.Action):
    """Stores the ``DATASET`` paths; a prepared dataset among other paths is a usage error (exit status 2)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        from .data import is_prepared
        from .evaluate_inputs import mixed_message

        prepared = [v for v in values if is_prepared(Path(v).expanduser())]
        if prepared and len(values) > 1:
            raise argparse.ArgumentError(self, mixed_message(prepared[0]))
        setattr(namespace, self.dest, values)


def run_cli(args: argparse.Namespace) -> int:
    """Run ``sketchgraph evaluate``: print the summary (or the JSON report); a preprocessing mismatch that was
    allowed is warned about on stderr. Sketch files (not one prepared dataset) are evaluated by
    ``evaluate_files``, which names each record it could not read or classify on stderr."""
    from .device import no_kernel_cache

    with no_kernel_cache():  # a long run of model calls of ever new shapes (``sketchgraph.device``)
        return _run_cli(args)


def _run_cli(args: argparse.Namespace) -> int:
    from .evaluate_inputs import cli_file_options
    from .predict import stderr_report

    misplaced = (_checkpoint_among_datasets(args.checkpoint, args.dataset, bool(args.exclude_key_ids))
                 or _expanded_exclusion(args.exclude_key_ids or [], args.dataset))
    if misplaced:
        print(f"sketchgraph evaluate: error: {misplaced}", file=sys.stderr)
        return 2
    dataset = args.dataset[0] if len(args.dataset) == 1 else args.dataset
    unused = [flag for flag, given in (("--num-workers", args.num_workers > 0),
                                       ("--allow-preprocessing-mismatch", args.allow_preprocessing_mismatch)) if given]
    split, exclude_key_ids, label_map = cli_file_options(
        dataset, args.format, args.split, args.all_splits, args.exclude_key_ids, args.label_map,
        stderr_report("sketchgraph evaluate"), unused_on_files=unused)
    report = evaluate(
        args.checkpoint, dataset, split, batch_size=args.batch_size, backend=args.backend,
        device=args.device, out=args.out, num_workers=args.num_workers, progress=not (args.json or args.no_progress),
        allow_preprocessing_mismatch=args.allow_preprocessing_mismatch, top_k=args.top_k, format=args.format,
        limit_per_file=args.limit_per_file, exclude_key_ids=exclude_key_ids, label_map=label_map,
        sample_per_file=args.sample_per_file, seed=args.seed,
    )
    if report.get("preprocessing_mismatch"):
        print("sketchgraph evaluate: warning: the dataset was prepared differently from the checkpoint's training "
              f"data: {_mismatch_text(report['preprocessing_mismatch'])}", file=sys.stderr)
    print(json.dumps(report, indent=2) if args.json else _summary(report))
    return 0
