"""Evaluate a checkpoint on labelled sketch files, read as ``sketchgraph predict`` reads them (no prepare step).

    >>> report = evaluate_files("spg20", ["airplane.ndjson", "alarm clock.ndjson"], out="eval")
    >>> report["top1"], report["top1_counting_unclassified_as_wrong"], report["unknown_labels"]

``sketchgraph evaluate CHECKPOINT FILE|FOLDER ...`` comes here (``evaluate.evaluate`` dispatches: one prepared
dataset folder is evaluated as before, anything else is read as sketch files). Each record's true class is its own
label (Quick, Draw!'s ``word``, else the class its file name gives), matched to the model's classes as
``canonical_label`` (``alarm_clock`` is ``alarm clock``). The predictions are ``SketchClassifier``'s, with the
checkpoint's inference preprocessing, so they equal ``predict``'s; the metrics are ``classification_metrics``'s,
so the report has the keys of a prepared dataset's.

Every record is accounted for: ``records`` = ``num_samples`` (classified, of the model's classes) +
``unclassified["of_model_classes"]`` + the ``unknown_labels`` counts + ``unlabelled``. ``unclassified`` (records
that could not be read, or that the preprocessing refuses) also counts those of unknown or no label.
``top1_counting_unclassified_as_wrong`` counts the unclassified records of the model's classes as misses.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .errors import FormatError, SketchError
from .evaluate import (
    IN_MEMORY,
    OUT_FILES,
    TOPK,
    _check_out,
    _check_positive,
    _checkpoint_dir,
    _checkpoint_title,
    _effective_preprocessing,
    _top_ks,
    classification_metrics,
    plot_confusion,
    topk_correct,
    write_confusions_csv,
)
from .evaluate_inputs import (
    ClassIndex,
    ReadCounts,
    Selection,
    Tag,
    all_records,
    file_inputs,
    name_splits,
    parse_label_map,
    read_key_ids,
    split_note,
)
from .formats.base import atomic_write
from .wording import counted

if TYPE_CHECKING:
    from torch import nn

    from .predict import Prediction, SketchClassifier
    from .sketch import Sketch

__all__ = ["evaluate_files", "file_inputs", "read_key_ids", "parse_label_map", "FILE_OUT_FILES", "MAX_ERRORS"]
# file_inputs, read_key_ids and parse_label_map live in evaluate_inputs (what is read); re-exported here

FILE_OUT_FILES = (*OUT_FILES, "predictions.csv")  # what ``evaluate_files(out=...)`` writes
MAX_ERRORS = 10  # errors kept in the report per kind (all of them go to ``warn``)
CSV_HEADER = ("file", "index", "key_id", "label", "predicted", "score", "correct", "error")
_PROB_FLOOR = 2.0 ** -149  # float32's smallest positive number: a probability the softmax rounded to 0


# ---------------------------------------------------------------------------------------------- the tally
@dataclass
class Tally:
    """What became of every record: the probability rows of the classified records of the model's classes, the
    counts of the others, the first errors, and one ``predictions.csv`` row per record (and per unread file).

    Attributes:
        rows: ``(order, row)`` with ``order`` = ``(file number, position)``, so rows sort into file order.
        probs: per counted record, its ``(C,)`` float64 probabilities; ``labels`` its class index.
    """

    classes: list[str]
    warn: Callable[[str], object]
    label_map: dict[str, str] | None = None
    index: ClassIndex = field(init=False)
    probs: list[np.ndarray] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    records: int = 0
    unclassified: int = 0
    unclassified_known: int = 0
    errors: list[str] = field(default_factory=list)
    unread_files: int = 0
    unread_errors: list[str] = field(default_factory=list)
    unknown: Counter = field(default_factory=Counter)
    unlabelled: int = 0
    rows: list[tuple[tuple[int, float], list[Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.index = ClassIndex(self.classes, self.label_map)

    def _label(self, label: str | None) -> int | None:
        """Count a record by its label; its class index when the model knows it."""
        self.records += 1
        found = self.index(label)
        if label is None:
            self.unlabelled += 1
        elif found is None:
            self.unknown[label] += 1
        return found

    def failed(self, order: tuple[int, float], file: str, index: int, identity: tuple[str | None, str | None],
               error: str) -> None:
        """A record that could not be read or classified (``error`` names its file and line)."""
        known = self._label(identity[1]) is not None
        self.unclassified += 1
        self.unclassified_known += known
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(error)
        self.warn(f"skipped {file} [{index}]: {error}")
        self.rows.append((order, [file, index, identity[0], identity[1], None, None, 0 if known else None, error]))

    def unread(self, order: tuple[int, float], file: str, error: str) -> None:
        """A file, or a part of one, that could not be read: no record to count."""
        self.unread_files += 1
        if len(self.unread_errors) < MAX_ERRORS:
            self.unread_errors.append(error if error.startswith(file) else f"{file}: {error}")
        shown = re.sub(rf"^{re.escape(file)}:(?:(\d+):)? ", lambda m: f"line {m[1]}: " if m[1] else "", error)
        self.warn(f"skipped {file}: {shown}")
        self.rows.append((order, [file, None, None, None, None, None, None, error]))

    def classified(self, order: tuple[int, float], file: str, index: int, sketch: Sketch,
                   preds: list[Prediction]) -> None:
        """A classified record: ``preds`` holds every class, best first."""
        true = self._label(sketch.label)
        best = preds[0]
        if true is not None:
            row = np.zeros(len(self.classes))
            row[[p.index for p in preds]] = [p.score for p in preds]
            self.probs.append(row)
            self.labels.append(true)
        correct = None if true is None else int(best.index == true)
        self.rows.append((order, [file, index, sketch.key_id, sketch.label, best.label, f"{best.score:.6g}", correct,
                                  None]))

    def log_probs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log-probabilities (M, C) float64, labels (M,) int64)`` of the counted records. float64 keeps the
        order of the float32 probabilities (distinct ones stay distinct), so the ranking is predict's."""
        if not self.probs:
            return torch.zeros(0, len(self.classes), dtype=torch.float64), torch.zeros(0, dtype=torch.long)
        probs = torch.from_numpy(np.stack(self.probs))
        return probs.clamp_min(_PROB_FLOOR).log(), torch.tensor(self.labels, dtype=torch.long)


# ---------------------------------------------------------------------------------------------- the classifier
def _classifier(checkpoint: str | os.PathLike | tuple[nn.Module, dict], *, device: str, backend: str,
                batch_size: int) -> tuple[SketchClassifier, dict, str, str | None]:
    """``(classifier, config, checkpoint name, weights digest)``: a ``SketchClassifier`` as
    ``from_pretrained`` builds it (the checkpoint's ``preprocessing`` updated by its ``inference_preprocessing``),
    also for an in-memory ``(model, config)``."""
    from .checkpoint import load_config, weights_digest
    from .graph import GraphSpec
    from .model import set_backend
    from .predict import SketchClassifier
    from .preprocess import Preprocessing

    if not isinstance(checkpoint, tuple):
        path = _checkpoint_dir(checkpoint)
        clf = SketchClassifier.from_pretrained(path, device=device, backend=backend, batch_size=batch_size)
        return clf, load_config(path), str(path), weights_digest(path)
    model, config = checkpoint
    set_backend(model, backend)
    preprocessing = Preprocessing.from_dict({**(config.get("preprocessing") or {}),
                                             **(config.get("inference_preprocessing") or {})})
    spec = GraphSpec.from_dict(config["graph_spec"]) if "graph_spec" in config else GraphSpec()
    clf = SketchClassifier(model, config["classes"], preprocessing=preprocessing, graph_spec=spec, device=device,
                           batch_size=batch_size, name=IN_MEMORY)
    return clf, config, IN_MEMORY, None


def _check_inputs(paths: Sequence[str], out: Path | None) -> None:
    """Before the model loads: ``out`` can take ``FILE_OUT_FILES``, and every path exists and is no stream."""
    from .predict import require_paths

    if out is not None:
        _check_out(out)
        if (out / "predictions.csv").is_dir():
            raise IsADirectoryError(f"--out {out}: {out / 'predictions.csv'} is a folder, so predictions.csv cannot "
                                    "be written there; name another --out folder")
    if not paths:
        raise ValueError("no sketch files or folders to evaluate")
    for path in paths:
        if not Path(path).expanduser().exists():
            raise FileNotFoundError(f"no such file or folder: {path} (evaluate takes a prepared dataset folder, or "
                                    "sketch files and folders of them)")
    require_paths([Path(p).expanduser() for p in paths])


# ---------------------------------------------------------------------------------------------- evaluate
def evaluate_files(
    checkpoint: str | os.PathLike | tuple[nn.Module, dict],
    paths: Sequence[str | os.PathLike] | str | os.PathLike,
    *,
    split: str | None = "test",
    format: str | None = None,
    batch_size: int = 256,
    backend: str = "dense",
    device: str = "cpu",
    out: str | os.PathLike | None = None,
    progress: bool = True,
    top_k: Sequence[int] = TOPK,
    warn: Callable[[str], object] | None = None,
    limit_per_file: int | None = None,
    exclude_key_ids: Iterable[str] | None = None,
    label_map: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Evaluate a checkpoint on labelled sketch files (or folders of them), as ``sketchgraph predict`` reads them.

    Args:
        checkpoint: as for ``evaluate``: a checkpoint directory, a shipped name (``"spg20"``) or ``(model, config)``.
        paths: sketch files and folders (a folder: its sketch files, recursively, as ``predict`` walks it).
        split: the split read from ``.npz`` files (sketch-rnn's per-class ``train``/``valid``/``test``; ``None``:
            all); other files are read whole.
        format: read every file as this format (``sketchgraph.formats.FORMATS``); default: each file's own.
        batch_size: sketches per model call.
        backend: attention implementation, ``"dense"`` or ``"dgl"``.
        device: torch device for the model.
        out: if given, write ``report.json``, ``confusion.png``, ``confusions.csv`` and ``predictions.csv`` (one row
            per record: ``file, index, key_id, label, predicted, score, correct, error``) there.
        progress: a progress bar on stderr when it is a terminal.
        top_k: the ``k`` of the ``top{k}`` accuracies (top-1 is always among them).
        warn: gets each ``skipped ...`` message (a record or a file that could not be read or classified) and
            notes; default: printed on stderr after ``sketchgraph evaluate: ``, as ``predict`` does.
        limit_per_file: evaluate only the first ``limit_per_file`` records of each file (the unreadable ones
            count), say to sample Google's per-class files of 100,000+ drawings; ``None``: all of them.
        exclude_key_ids: leave out the records of these key ids (``read_key_ids`` reads them from files), say the
            training data's, so that what is measured is held out; they are counted in ``excluded`` and do not
            count towards ``limit_per_file``.
        label_map: ``{label: model class}``: records labelled ``label`` (compared as ``canonical_label``) count as
            that class, for data whose words differ from the model's (``parse_label_map`` reads ``--label-map``).

    Returns:
        the report: the keys of ``classification_metrics`` over the classified records of the model's classes
        (``num_samples`` = M; the logits behind them are the ``(M, C)`` log-probabilities), plus
        ``top1_counting_unclassified_as_wrong``, ``records``, ``unclassified`` (``{"count", "of_model_classes",
        "errors"}``, the first ``MAX_ERRORS``), ``unknown_labels`` (``{label: count}``), ``unlabelled``,
        ``unread_files`` (``{"count", "errors"}``), ``file_name_splits``, ``checkpoint``, ``weights_sha256``,
        ``source`` (``{"files", "format", "npz_split", "limit_per_file", "files_cut_by_limit", "excluded_key_ids"
        (how many were given), "excluded_records"}``), ``backend``,
        ``classes``, ``preprocessing`` (``{"checkpoint", "inference"}``), ``top_k`` (and ``dataset_classes`` for a
        subset of the classes, ``files`` when ``out`` is given).

    Raises:
        SketchError: no record is of one of the model's classes (the message names the labels found), or none of
            those could be classified.
        FileNotFoundError: a path that does not exist (before the model loads).
        CheckpointError: a missing or broken checkpoint.
        OSError: an ``out`` that cannot be written (before anything is read).
        ValueError: a ``batch_size`` or ``top_k`` that is not a positive integer, an unknown ``format``.
    """
    from .formats import FORMATS
    from .predict import stderr_report

    ks = _top_ks(top_k)
    _check_positive("batch_size", batch_size)
    if limit_per_file is not None:
        _check_positive("limit_per_file", limit_per_file)
    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    given = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [os.fspath(p) for p in paths]
    out = Path(out) if out is not None else None
    _check_inputs(given, out)
    warn = warn or stderr_report("sketchgraph evaluate")
    splits = name_splits(given)
    if len(splits) > 1:
        warn(split_note(splits))
    clf, config, ckpt_name, digest = _classifier(checkpoint, device=device, backend=backend, batch_size=batch_size)
    tally = Tally(list(clf.classes), warn, label_map)
    select = Selection(limit_per_file, frozenset(exclude_key_ids or ()))
    counts = ReadCounts()
    _classify(clf, all_records(given, format, split, counts, select), tally, progress)
    report = {
        "checkpoint": ckpt_name, "weights_sha256": digest,
        "label_map": dict(label_map or {}),
        "source": {"files": given, "format": format, "npz_split": split, "limit_per_file": limit_per_file,
                   "files_cut_by_limit": counts.cut, "excluded_key_ids": len(select.excluded),
                   "excluded_records": counts.excluded},
        "backend": backend, "classes": tally.classes,
        "preprocessing": {"checkpoint": _checkpoint_preprocessing(config, ckpt_name),
                          "inference": clf.preprocessing.to_dict()},
        "top_k": list(ks), **_metrics(tally, ks, counts), "file_name_splits": splits,
    }
    if out is not None:
        _write(report, tally, out)
    return report


def _checkpoint_preprocessing(config: dict, ckpt_name: str) -> dict[str, Any] | None:
    """The checkpoint's training preprocessing with defaults filled in (``None`` when it records none)."""
    from .errors import CheckpointError

    if config.get("preprocessing") is None:
        return None
    where = f"{Path(ckpt_name) / 'config.json'}" if ckpt_name != IN_MEMORY else "the checkpoint's config"
    return _effective_preprocessing(config["preprocessing"], where, CheckpointError)


def _classify(clf: SketchClassifier, located: Iterable[tuple[Tag, Sketch | SketchError]], tally: Tally,
              progress: bool) -> None:
    """Classify every record (``classify_each`` with every class ranked) into ``tally``, in the files' order: a
    record the reader could not read comes as its error and fails with it, an error about a file (``tag.index``
    ``None``) is counted as an unread file."""
    from tqdm.auto import tqdm

    with tqdm(desc="evaluate", unit=" sketches", disable=None if progress else True, leave=False) as bar:
        for tag, x, preds, error in clf.classify_each(located, top_k=clf.num_classes):
            order = (tag.file_no, tag.order)
            if tag.index is None:
                tally.unread(order, tag.file, error or str(x))
                continue
            if isinstance(x, SketchError):
                identity = (getattr(x, "key_id", None), getattr(x, "label", None))
                tally.failed(order, tag.file, tag.index, identity, str(x))
            elif error is not None:
                tally.failed(order, tag.file, tag.index, (x.key_id, x.label),
                             str(tag.place.locate(FormatError(error))))
            else:
                tally.classified(order, tag.file, tag.index, x, preds)
            bar.update(1)


def _metrics(tally: Tally, ks: Sequence[int], counts: ReadCounts) -> dict[str, Any]:
    """``classification_metrics`` of the counted records and the counts of the others; ``SketchError`` when no
    record of the model's classes was classified."""
    logits, labels = tally.log_probs()
    if not len(labels):
        raise SketchError(_nothing_to_count(tally, counts))
    seen = sorted(set(tally.labels))
    present = seen if len(seen) < len(tally.classes) else None
    metrics = classification_metrics(logits, labels, tally.classes, ks=ks, present=present)
    hits = int(topk_correct(logits, labels, (1,))[0])
    counts = {
        "top1_counting_unclassified_as_wrong": hits / (len(labels) + tally.unclassified_known),
        "records": tally.records,
        "unclassified": {"count": tally.unclassified, "of_model_classes": tally.unclassified_known,
                         "errors": tally.errors},
        "unknown_labels": dict(tally.unknown.most_common()),
        "unlabelled": tally.unlabelled,
        "unread_files": {"count": tally.unread_files, "errors": tally.unread_errors},
    }
    if present is not None:
        counts["dataset_classes"] = [tally.classes[i] for i in present]
    return {**metrics, **counts}


def _nothing_to_count(tally: Tally, counts: ReadCounts) -> str:
    """Why there is nothing to evaluate: the labels found (the most frequent few) and the model's classes."""
    classes = ", ".join(tally.classes[:20]) + (f", ... ({len(tally.classes)} in all)" if len(tally.classes) > 20
                                               else "")
    if tally.unclassified_known:
        return (f"none of the {counted(tally.unclassified_known, 'record')} of the model's classes could be "
                f"classified (first: {tally.errors[0] if tally.errors else '?'})")
    if counts.excluded and not (tally.records or tally.unread_files):
        return (f"every record read was left out: the {counted(counts.excluded, 'record')} read all have an "
                "excluded key id (--exclude-key-ids)")
    found = [f"{label!r} ({n:,})" for label, n in tally.unknown.most_common(5)]
    if len(tally.unknown) > 5:
        found.append(f"... ({len(tally.unknown):,} labels in all)")
    if tally.unlabelled:
        found.append(f"{counted(tally.unlabelled, 'record')} without a label")
    what = (f"no record is of one of the model's classes: the labels found are {', '.join(found)}" if found else
            f"no sketch could be read from the files given ({counted(tally.unread_files, 'file')} unread)")
    return (f"{what}; the checkpoint's classes: {classes}. A record's class is its Quick, Draw! 'word', else the "
            "one its file name gives (airplane.ndjson, alarm_clock_test.ndjson), compared as canonical_label")


def _write(report: dict[str, Any], tally: Tally, out: Path) -> None:
    """``report.json``, ``confusion.png``, ``confusions.csv`` and ``predictions.csv`` into ``out`` (each written
    atomically); ``report["files"]`` names them."""
    out.mkdir(parents=True, exist_ok=True)
    report["files"] = {"json": str(out / "report.json"), "confusion_png": str(out / "confusion.png"),
                       "confusions_csv": str(out / "confusions.csv"), "predictions_csv": str(out / "predictions.csv")}
    matrix = np.array(report["confusion_matrix"])
    plot_confusion(matrix, tally.classes, out / "confusion.png",
                   title=f"{_checkpoint_title(report['checkpoint'])} on files: top-1 {report['top1']:.2%}")
    write_confusions_csv(matrix, tally.classes, out / "confusions.csv")
    write_predictions_csv(tally, out / "predictions.csv")
    with atomic_write(out / "report.json", "w", encoding="utf-8") as f:
        f.write(json.dumps(report, indent=2) + "\n")


def write_predictions_csv(tally: Tally, path: Path) -> Path:
    """One row per record, in file order, ``CSV_HEADER``: ``correct`` is 1 or 0 for a record of the model's
    classes (0 for one that could not be classified) and empty otherwise; ``error`` says why a record, or a file
    (``index`` empty), could not be read or classified. Written atomically."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for _, row in sorted(tally.rows, key=lambda item: item[0]):
        writer.writerow(["" if value is None else value for value in row])
    with atomic_write(path, "w", encoding="utf-8", newline="") as f:
        f.write(text.getvalue())
    return path


# ---------------------------------------------------------------------------------------------- summary
def summary_head(report: dict[str, Any], topk_text: str) -> list[str]:
    """The first lines of the text summary for sketch files: the accuracies, the strict top-1 when it differs,
    and the records not counted."""
    n = report["num_samples"]
    lines = [f"files: {counted(n, 'sketch')} of the model's classes, {topk_text}"]
    unclassified = report["unclassified"]
    strict = report["top1_counting_unclassified_as_wrong"]
    if strict != report["top1"]:
        total = n + unclassified["of_model_classes"]
        lines.append(f"top-1 {strict:.2%} counting the {counted(unclassified['of_model_classes'], 'sketch')} of the "
                     f"model's classes that could not be classified as wrong ({round(strict * total):,} of {total:,})")
    if unclassified["count"]:
        lines.append(f"{counted(unclassified['count'], 'sketch')} could not be read or classified (each named on "
                     "stderr; the first in the report's 'unclassified')")
    if report["unknown_labels"]:
        shown = ", ".join(f"{label} ({count:,})" for label, count in list(report["unknown_labels"].items())[:10])
        more = ", ..." if len(report["unknown_labels"]) > 10 else ""
        lines.append(f"{counted(sum(report['unknown_labels'].values()), 'sketch')} of classes the model does not "
                     f"know, not counted: {shown}{more}")
    if report["unlabelled"]:
        lines.append(f"{counted(report['unlabelled'], 'sketch')} without a label, not counted")
    if len(report.get("file_name_splits", {})) > 1:
        lines.append(split_note(report["file_name_splits"]))
    limit, cut = report["source"].get("limit_per_file"), report["source"].get("files_cut_by_limit", 0)
    if cut:
        lines.append(f"read the first {limit:,} records of each file: {counted(cut, 'file')} held more "
                     "(--limit-per-file)")
    if report.get("label_map"):
        shown = ", ".join(f"{a} -> {b}" for a, b in list(report["label_map"].items())[:10])
        lines.append(f"labels renamed (--label-map): {shown}{', ...' if len(report['label_map']) > 10 else ''}")
    if report["source"].get("excluded_key_ids"):
        lines.append(f"left out {counted(report['source']['excluded_records'], 'record')} of the "
                     f"{report['source']['excluded_key_ids']:,} excluded key ids (--exclude-key-ids)")
    unread = report["unread_files"]["count"]
    if unread:
        what = "1 file or part of a file" if unread == 1 else f"{unread:,} files or parts of files"
        lines.append(f"{what} could not be read (named on stderr): the sketches in {'it' if unread == 1 else 'them'} "
                     "are not counted")
    return lines

