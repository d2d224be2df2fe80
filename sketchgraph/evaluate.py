"""Evaluate a checkpoint on a prepared dataset split: top-k accuracy, per-class scores, confusions.

    >>> report = evaluate("runs/spg20/best", "data/spg20-prepared", split="test", out="runs/spg20/eval")
    >>> report["top1"], report["hardest_confusions"][0]

``sketchgraph evaluate CHECKPOINT DATASET --split test --out DIR`` (CHECKPOINT: a directory or a shipped
name, ``spg20``) writes ``report.json`` and ``confusion.png`` (row-normalised confusion matrix, class names on
both axes) into ``DIR``.
The metric helpers (``collect_logits``, ``topk_correct``, ``classification_metrics``) are also what
training uses for its validation numbers.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .batch import Batch
from .device import usable_device
from .formats.base import atomic_write, canonical_label
from .model import set_backend

__all__ = [
    "evaluate", "collect_logits", "topk_correct", "classification_metrics", "hardest_confusions",
    "plot_confusion",
]

TOPK = (1, 5, 10)


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
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices  # (M, kmax), best first
    hit = top == labels[:, None]  # (M, kmax); at most one True per row
    cum = hit.cumsum(1)  # (M, kmax): label within the first j+1
    return torch.stack([cum[:, min(k, kmax) - 1].sum() for k in ks])


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
    y_true, y_pred = labels.numpy(), logits.argmax(1).numpy()
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
    from .errors import CheckpointError

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
) -> dict[str, Any]:
    """Evaluate a checkpoint on one split of a prepared dataset.

    Args:
        checkpoint: a checkpoint directory (any preset or baseline), a shipped checkpoint's name (``"spg20"``, see
            ``sketchgraph.predict.resolve_checkpoint``), or ``(model, config)`` as returned by ``load_checkpoint``.
        dataset: a ``PreparedDataset`` or its directory.
        split: split name (``"test"``, ``"valid"``, ``"train"``).
        batch_size: sketches per forward pass.
        backend: attention implementation, ``"dense"`` or ``"dgl"``.
        device: torch device for the model.
        out: if given, write ``report.json`` and ``confusion.png`` there.
        num_workers: loader worker processes.
        progress: show a progress bar.

    Returns:
        the report: the keys of ``classification_metrics`` plus ``checkpoint``, ``dataset``, ``split``,
        ``classes``, ``backend`` (and ``files`` when ``out`` is given).
    """
    from .checkpoint import load_checkpoint
    from .data import PreparedDataset, make_loader
    from .predict import resolve_checkpoint

    device = usable_device(device)
    if isinstance(checkpoint, tuple):
        model, config = checkpoint
        ckpt_name = "<in memory>"
    else:
        path = resolve_checkpoint(checkpoint)
        model, config = load_checkpoint(path, device=device)
        ckpt_name = str(path)
    model = model.to(device)
    set_backend(model, backend)
    data = dataset if isinstance(dataset, PreparedDataset) else PreparedDataset(dataset)
    classes = list(config["classes"])
    to_model = _class_map(data.classes, classes)  # dataset label -> model output index
    relations = tuple(config.get("graph_spec", {}).get("relations", ()))
    loader = make_loader(data.split(split), batch_size, shuffle=False, seed=0, relations=relations,
                         num_workers=num_workers)
    logits, labels = collect_logits(model, loader, device, progress=progress, desc=f"evaluate {split}")
    labels = to_model[labels]
    # a subset of the model's classes: per-class figures and averages over the dataset's classes
    present = sorted(to_model.tolist()) if len(data.classes) < len(classes) else None
    report = {
        "checkpoint": ckpt_name, "dataset": str(getattr(data, "path", dataset)), "split": split,
        "backend": backend, "classes": classes,
        **classification_metrics(logits, labels, classes, present=present),
    }
    if present is not None:
        report["dataset_classes"] = [classes[i] for i in present]
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        report["files"] = {"json": str(out / "report.json"), "confusion_png": str(out / "confusion.png")}
        plot_confusion(np.array(report["confusion_matrix"]), classes, out / "confusion.png",
                       title=f"{Path(ckpt_name).name} on {split}: top-1 {report['top1']:.2%}")
        with atomic_write(out / "report.json", "w", encoding="utf-8") as f:
            f.write(json.dumps(report, indent=2) + "\n")
    return report


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


def run_cli(args: argparse.Namespace) -> int:
    report = evaluate(
        args.checkpoint, args.dataset, args.split, batch_size=args.batch_size, backend=args.backend,
        device=args.device, out=args.out, num_workers=args.num_workers, progress=not args.json,
    )
    print(json.dumps(report, indent=2) if args.json else _summary(report))
    return 0
