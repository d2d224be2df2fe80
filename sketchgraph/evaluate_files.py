"""Evaluate a checkpoint on labelled sketch files, read as ``sketchgraph predict`` reads them (no prepare step).

    >>> report = evaluate_files("spg20", ["airplane.ndjson", "alarm clock.ndjson"], out="eval")
    >>> report["top1"], report["top1_counting_unclassified_as_wrong"], report["unknown_labels"]

``sketchgraph evaluate CHECKPOINT FILE|FOLDER ...`` comes here (``evaluate.evaluate`` dispatches: one prepared
dataset folder is evaluated as before, anything else is read as sketch files). Each record's true class is its own
label (Quick, Draw!'s ``word``, else the class its file name gives), matched to the model's classes as
``canonical_label`` (``alarm_clock`` is ``alarm clock``). The predictions are ``SketchClassifier``'s, with the
checkpoint's inference preprocessing, so they equal ``predict``'s; the metrics are ``classification_metrics``'s
(``metrics_from_ranks`` of the few numbers ``Tally`` keeps per record, so memory does not grow with records x
classes), so the report has the keys of a prepared dataset's.

Every record is accounted for: ``records`` = ``num_samples`` (classified, of the model's classes) +
``unclassified["of_model_classes"]`` + the ``unknown_labels`` counts + ``unlabelled``. ``unclassified`` (records
that could not be read, or that the preprocessing refuses) also counts those of unknown or no label.
``top1_counting_unclassified_as_wrong`` counts the unclassified records of the model's classes as misses.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

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
    metrics_from_ranks,
    plot_confusion,
    write_confusions_csv,
)
from .evaluate_inputs import (
    ClassIndex,
    ReadCounts,
    Selection,
    Tag,
    all_records,
    check_paths,
    choose_files,
    file_inputs,
    group_labels,
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
MAX_ERRORS = 10  # errors kept in the report per kind
MAX_SHOWN = 10  # ``skipped ...`` messages sent to ``warn`` per reason; the others are counted
CSV_HEADER = ("file", "index", "key_id", "label", "predicted", "score", "correct", "error")
_PROB_FLOOR = 2.0 ** -149  # float32's smallest positive number: a probability the softmax rounded to 0


# ---------------------------------------------------------------------------------------------- the tally
def reason_of(error: str, file: str) -> str:
    """What went wrong, without where: ``error`` less its ``file`` and line / record prefix
    (``a.ndjson:5: ``, ``a.bin: record 3 (byte 120): ``, ``a.npz: test[4]: ``), numbers as ``#``, so that
    ``drawing too long to simplify: 3605884 px ...`` and ``...: 41200 px ...`` are one reason."""
    text = error[len(file):] if error.startswith(file) else error
    text = _PLACE.sub("", text, count=1).strip()
    return _NUMBER.sub("#", text) or "?"


_PLACE = re.compile(r"^(?::\d+:|: record \d+(?: \(byte \d+\))?:|: \w+\[\d+\]:|:)")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


@dataclass
class Messages:
    """The ``skipped ...`` lines: the first ``MAX_SHOWN`` of each reason go to ``warn``, the others are only
    counted, and ``close`` says how many of each were not shown."""

    warn: Callable[[str], object]
    counts: Counter = field(default_factory=Counter)

    def say(self, reason: str, message: str) -> None:
        """``message`` to ``warn`` unless ``MAX_SHOWN`` of ``reason`` were shown already."""
        self.counts[reason] += 1
        if self.counts[reason] <= MAX_SHOWN:
            self.warn(message)

    def close(self) -> None:
        """One ``... and N more like this: reason`` line per reason that had more than ``MAX_SHOWN``."""
        for reason, n in self.counts.items():
            if n > MAX_SHOWN:
                self.warn(f"... and {n - MAX_SHOWN:,} more like this: {reason}")


@dataclass
class Tally:
    """What became of every record. Of each classified record of the model's classes it keeps four numbers, what
    the metrics need (its class, the predicted class, the true class's 0-based rank, ``-log p(true)``): about 20
    bytes a record, whatever the number of classes. Of the others it keeps counts (per class, label and reason)
    and the first errors. Each record's ``predictions.csv`` row goes to ``rows`` (a ``csv.writer``) as it comes,
    in the files' order, when ``rows`` is given."""

    classes: list[str]
    warn: Callable[[str], object]
    label_map: dict[str, str] | None = None
    rows: Any = None
    index: ClassIndex = field(init=False)
    messages: Messages = field(init=False)
    y_true: array = field(default_factory=lambda: array("i"))
    y_pred: array = field(default_factory=lambda: array("i"))
    true_rank: array = field(default_factory=lambda: array("i"))
    nll: array = field(default_factory=lambda: array("d"))
    records: int = 0
    unclassified: int = 0
    unclassified_of: Counter = field(default_factory=Counter)  # model class index -> its unclassified records
    reasons: Counter = field(default_factory=Counter)  # reason_of -> unclassified records
    errors: list[str] = field(default_factory=list)
    unread_files: int = 0
    unread_errors: list[str] = field(default_factory=list)
    unknown: Counter = field(default_factory=Counter)
    unlabelled: int = 0

    def __post_init__(self) -> None:
        self.index = ClassIndex(self.classes, self.label_map)
        self.messages = Messages(self.warn)

    @property
    def unclassified_known(self) -> int:
        """The unclassified records of the model's classes."""
        return sum(self.unclassified_of.values())

    def _label(self, label: str | None) -> int | None:
        """Count a record by its label; its class index when the model knows it."""
        self.records += 1
        found = self.index(label)
        if label is None:
            self.unlabelled += 1
        elif found is None:
            self.unknown[label] += 1
        return found

    def _row(self, row: list[Any]) -> None:
        if self.rows is not None:
            self.rows.writerow(["" if value is None else value for value in row])

    def failed(self, file: str, index: int, identity: tuple[str | None, str | None], error: str) -> None:
        """A record that could not be read or classified (``error`` names its file and line)."""
        true = self._label(identity[1])
        self.unclassified += 1
        if true is not None:
            self.unclassified_of[true] += 1
        reason = reason_of(error, file)
        self.reasons[reason] += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(error)
        self.messages.say(reason, f"skipped {file} [{index}]: {error}")
        self._row([file, index, identity[0], identity[1], None, None, None if true is None else 0, error])

    def unread(self, file: str, error: str) -> None:
        """A file, or a part of one, that could not be read: no record to count."""
        self.unread_files += 1
        if len(self.unread_errors) < MAX_ERRORS:
            self.unread_errors.append(error if error.startswith(file) else f"{file}: {error}")
        shown = re.sub(rf"^{re.escape(file)}:(?:(\d+):)? ", lambda m: f"line {m[1]}: " if m[1] else "", error)
        self.messages.say(f"file: {reason_of(error, file)}", f"skipped {file}: {shown}")
        self._row([file, None, None, None, None, None, None, error])

    def classified(self, file: str, index: int, sketch: Sketch, preds: list[Prediction]) -> None:
        """A classified record: ``preds`` holds every class, best first (``predict``'s ranking)."""
        true = self._label(sketch.label)
        best = preds[0]
        if true is not None:
            rank = next(i for i, p in enumerate(preds) if p.index == true)
            # -log_softmax(log p)[true], as cross_entropy of the log-probabilities gives it
            total = math.fsum(max(p.score, _PROB_FLOOR) for p in preds)
            self.y_true.append(true)
            self.y_pred.append(best.index)
            self.true_rank.append(rank)
            self.nll.append(math.log(total) - math.log(max(preds[rank].score, _PROB_FLOOR)))
        correct = None if true is None else int(best.index == true)
        self._row([file, index, sketch.key_id, sketch.label, best.label, f"{best.score:.6g}", correct, None])


# ---------------------------------------------------------------------------------------------- the classifier
def _classifier(checkpoint: str | os.PathLike | tuple[nn.Module, dict], *, device: str, backend: str,
                batch_size: int) -> tuple[SketchClassifier, dict, str, str | None]:
    """``(classifier, config, checkpoint name, weights digest)``: a ``SketchClassifier`` as
    ``from_pretrained`` builds it (the checkpoint's ``preprocessing`` updated by its ``inference_preprocessing``),
    also for an in-memory ``(model, config)``."""
    from .checkpoint import load_config, weights_digest
    from .predict import SketchClassifier

    if not isinstance(checkpoint, tuple):
        path = _checkpoint_dir(checkpoint)
        clf = SketchClassifier.from_pretrained(path, device=device, backend=backend, batch_size=batch_size)
        return clf, load_config(path), str(path), weights_digest(path)
    model, config = checkpoint
    clf = SketchClassifier.from_model(model, config, device, backend, batch_size=batch_size, name=IN_MEMORY)
    return clf, config, IN_MEMORY, None


def _check_inputs(paths: Sequence[str], out: Path | None) -> None:
    """Before the model loads: ``out`` can take ``FILE_OUT_FILES``, and every path exists and is no stream."""
    from .predict import require_paths

    if out is not None:
        _check_out(out, paths)
        if (out / "predictions.csv").is_dir():
            raise IsADirectoryError(f"--out {out}: {out / 'predictions.csv'} is a folder, so predictions.csv cannot "
                                    "be written there; name another --out folder")
    if not paths:
        raise ValueError("no sketch files or folders to evaluate")
    check_paths(paths)
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
    sample_per_file: int | None = None,
    seed: int = 0,
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
            per record: ``file, index, key_id, label, predicted, score, correct, error``, streamed to a temporary
            file as the records come) there. Once the metrics are known, the ``FILE_OUT_FILES`` an earlier run left
            there are removed (``clear_out``) and the files written, ``report.json`` last; a run that fails
            before that leaves ``out`` as it was.
        progress: a progress bar on stderr when it is a terminal.
        top_k: the ``k`` of the ``top{k}`` accuracies (top-1 is always among them).
        warn: gets the ``skipped ...`` messages (a record or a file that could not be read or classified), the
            first ``MAX_SHOWN`` of each reason (``reason_of``) and then one ``... and N more like this: reason``,
            and notes; default: printed on stderr after ``sketchgraph evaluate: ``, as ``predict`` does.
        limit_per_file: evaluate only the first ``limit_per_file`` records of each file (the unreadable ones
            count), say to sample Google's per-class files of 100,000+ drawings; ``None``: all of them.
        exclude_key_ids: leave out the records of these key ids (``read_key_ids`` reads them from files), say the
            training data's, so that what is measured is held out; they are counted in ``excluded`` and do not
            count towards ``limit_per_file``.
        label_map: ``{label: model class}``: records labelled ``label`` (compared as ``canonical_label``) count as
            that class, for data whose words differ from the model's (``parse_label_map`` reads ``--label-map``).
        sample_per_file: evaluate a uniform random sample of this many records of each file (every record is
            read; the excluded and repeated ones are not in the draw), instead of the first ``limit_per_file``;
            ``seed`` fixes it (the same sample of a file for the same seed and file name).

    Returns:
        the report: the keys of ``classification_metrics`` over the classified records of the model's classes
        (``num_samples`` = M; the logits behind them are the ``(M, C)`` log-probabilities), plus
        ``top1_counting_unclassified_as_wrong``, ``per_class_strict`` (per model class the files hold:
        ``{"records", "classified", "correct", "top1"}``, the strict top-1 per class), ``classes_not_in_files`` (the
        model's classes of no record), ``records``, ``unclassified`` (``{"count", "of_model_classes", "errors",
        "reasons"}``: the first ``MAX_ERRORS`` errors, ``{reason_of: count}`` most frequent first),
        ``unknown_labels`` (``{label: count}``), ``unlabelled``,
        ``unread_files`` (``{"count", "errors"}``), ``file_name_splits``, ``checkpoint``, ``weights_sha256``,
        ``source`` (``{"files", "format", "npz_split", "limit_per_file", "files_cut_by_limit", "excluded_key_ids"
        (how many were given), "excluded_records"}``), ``backend``,
        ``classes``, ``preprocessing`` (``{"checkpoint", "inference"}``), ``top_k`` (and ``dataset_classes``, the
        classes of the records, when they are a subset, ``files`` when ``out`` is given). ``classes_without_samples``
        names the classes of which no record could be classified (left out of the per-class figures).

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
    if sample_per_file is not None:
        _check_positive("sample_per_file", sample_per_file)
    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    given = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [os.fspath(p) for p in paths]
    out = Path(out) if out is not None else None
    _check_inputs(given, out)
    warn = warn or stderr_report("sketchgraph evaluate")
    select = Selection(limit_per_file, exclude_key_ids or frozenset(),  # key_id_set: a bare str/path is refused
                       sample_per_file, seed)
    splits = choose_files(given, split)
    if splits.note:
        warn(splits.note)
    clf, config, ckpt_name, digest = _classifier(checkpoint, device=device, backend=backend, batch_size=batch_size)
    tally = Tally(list(clf.classes), warn, label_map)
    counts = ReadCounts()
    with _predictions_file(out) as rows:
        tally.rows = rows
        _classify(clf, all_records(given, format, split, counts, select, splits), tally, progress)
        if (unused := tally.index.unused_note()) is not None:
            warn(unused)
        report = {
            "checkpoint": ckpt_name, "weights_sha256": digest,
            "label_map": dict(label_map or {}), "label_map_applied": tally.index.label_map_applied(),
            "source": {"files": given, "format": format, "split": split,
                       "other_split_files": counts.other_split_files,
                       "npz_split": split if counts.npz_files else None, "limit_per_file": limit_per_file,
                       "sample_per_file": sample_per_file, "seed": seed if sample_per_file else None,
                       "files_sampled": counts.sampled,
                       "files_cut_by_limit": counts.cut, "excluded_key_ids": len(select.excluded),
                       "excluded_key_ids_sha256": _ids_digest(select.excluded),
                       "excluded_records": counts.excluded, "repeated_records": counts.repeated},
            "backend": backend, "classes": tally.classes,
            "preprocessing": {"checkpoint": _checkpoint_preprocessing(config, ckpt_name),
                              "inference": clf.preprocessing.to_dict()},
            "top_k": list(ks), **_metrics(tally, ks, counts), "file_name_splits": splits.splits,
        }
        if out is not None:
            _write(report, tally, out)  # predictions.csv is renamed into place when this block ends
    if out is not None:
        with atomic_write(out / "report.json", "w", encoding="utf-8") as f:  # last: it vouches for the others
            f.write(json.dumps(report, indent=2) + "\n")
    return report


def _ids_digest(ids: frozenset[str]) -> str | None:
    """SHA-256 of the excluded key ids (sorted, one per line), so a figure can be traced to its exclusion list;
    ``None`` when none are excluded."""
    import hashlib

    return hashlib.sha256("".join(f"{i}\n" for i in sorted(ids)).encode()).hexdigest() if ids else None


def _checkpoint_preprocessing(config: dict, ckpt_name: str) -> dict[str, Any] | None:
    """The checkpoint's training preprocessing with defaults filled in (``None`` when it records none)."""
    from .errors import CheckpointError

    if config.get("preprocessing") is None:
        return None
    where = f"{Path(ckpt_name) / 'config.json'}" if ckpt_name != IN_MEMORY else "the checkpoint's config"
    return _effective_preprocessing(config["preprocessing"], where, CheckpointError)


def _classify(clf: SketchClassifier, located: Iterable[tuple[Tag, Sketch | SketchError]], tally: Tally,
              progress: bool) -> None:
    """Classify every record (``classify_each`` with every class ranked) into ``tally``, in the files' order (the
    order ``classify_each`` keeps, so ``predictions.csv``'s rows are written in it): a record the reader could not
    read comes as its error and fails with it, an error about a file (``tag.index`` ``None``) is counted as an
    unread file. Messages are written above the progress bar (``tqdm.external_write_mode``), and the count of
    those not shown comes after the bar."""
    from tqdm.auto import tqdm

    warn = tally.messages.warn
    with tqdm(desc="evaluate", unit=" sketches", disable=None if progress else True, leave=False) as bar:
        def above_bar(message: str) -> None:
            with tqdm.external_write_mode(file=sys.stderr):
                warn(message)

        tally.messages.warn = above_bar
        try:
            for tag, x, preds, error in clf.classify_each(located, top_k=clf.num_classes):
                if tag.index is None:
                    tally.unread(tag.file, error or str(x))
                    continue
                if isinstance(x, SketchError):
                    identity = (getattr(x, "key_id", None), getattr(x, "label", None))
                    tally.failed(tag.file, tag.index, identity, str(x))
                elif error is not None:
                    tally.failed(tag.file, tag.index, (x.key_id, x.label), str(tag.place.locate(FormatError(error))))
                else:
                    tally.classified(tag.file, tag.index, x, preds)
                bar.update(1)
        finally:
            tally.messages.warn = warn
    tally.messages.close()


def _metrics(tally: Tally, ks: Sequence[int], counts: ReadCounts) -> dict[str, Any]:
    """``metrics_from_ranks`` of the counted records (the report ``classification_metrics`` gives) and the counts
    of the others; ``SketchError`` when no record of the model's classes was classified. The per-class figures
    are over the model's classes the files hold (``dataset_classes``), those of which no record could be
    classified in ``classes_without_samples``; ``classes_not_in_files`` names the classes of no record at all."""
    y_true, y_pred = np.array(tally.y_true, dtype=np.int64), np.array(tally.y_pred, dtype=np.int64)
    rank = np.array(tally.true_rank, dtype=np.int64)
    if not len(y_true):
        raise SketchError(_nothing_to_count(tally, counts))
    C = len(tally.classes)
    held = sorted({*np.unique(y_true).tolist(), *tally.unclassified_of})
    present = held if len(held) < C else None
    loss = math.fsum(tally.nll) / len(y_true)
    metrics = metrics_from_ranks(y_true, y_pred, rank, loss, tally.classes, ks=ks, present=present)
    strict = per_class_strict(tally, y_true, y_pred, held)
    of_model, held_set = tally.unclassified_known, set(held)
    counts = {
        "top1_counting_unclassified_as_wrong": int(np.count_nonzero(rank == 0)) / (len(y_true) + of_model),
        "per_class_strict": strict,
        "classes_not_in_files": [c for i, c in enumerate(tally.classes) if i not in held_set],
        "records": tally.records,
        "unclassified": {"count": tally.unclassified, "of_model_classes": of_model, "errors": tally.errors,
                         "reasons": dict(tally.reasons.most_common())},
        "unknown_labels": group_labels(tally.unknown),
        "unlabelled": tally.unlabelled,
        "unread_files": {"count": tally.unread_files, "errors": tally.unread_errors},
    }
    if present is not None:
        counts["dataset_classes"] = [tally.classes[i] for i in present]
    return {**metrics, **counts}


def per_class_strict(tally: Tally, y_true: np.ndarray, y_pred: np.ndarray, held: Sequence[int],
                     ) -> dict[str, dict[str, Any]]:
    """Per model class the files hold: ``{"records", "classified", "correct", "top1"}``, ``records`` counting its
    unclassified records too and ``top1`` = correct / records, the strict top-1 broken down per class."""
    C = len(tally.classes)
    classified = np.bincount(y_true, minlength=C)
    correct = np.bincount(y_true[y_true == y_pred], minlength=C)
    strict = {}
    for i in held:
        records = int(classified[i]) + tally.unclassified_of[i]
        strict[tally.classes[i]] = {"records": records, "classified": int(classified[i]),
                                    "correct": int(correct[i]), "top1": int(correct[i]) / records}
    return strict


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
            "one its file name gives (airplane.ndjson, alarm_clock_test.ndjson; an SVG's folder: airplane/1.svg), "
            "compared as canonical_label")


def clear_out(out: Path) -> None:
    """Remove the ``FILE_OUT_FILES`` an earlier run left in ``out`` (these names are evaluate's), so that a run
    that stops half-way leaves no earlier ``report.json`` beside newer files: the prepared-dataset mode calls it
    too, so no ``predictions.csv`` of another run stays beside its report."""
    for name in FILE_OUT_FILES:
        if (out / name).is_file() or (out / name).is_symlink():  # a folder of that name is refused before a run
            (out / name).unlink()


def _write(report: dict[str, Any], tally: Tally, out: Path) -> None:
    """Into ``out``, once the metrics are known: remove what an earlier run left (``clear_out``), then write
    ``confusion.png`` and ``confusions.csv`` (each atomically); ``report["files"]`` names them, ``predictions.csv``
    (being written) and ``report.json`` (written last, by the caller)."""
    clear_out(out)
    report["files"] = {"json": str(out / "report.json"), "confusion_png": str(out / "confusion.png"),
                       "confusions_csv": str(out / "confusions.csv"), "predictions_csv": str(out / "predictions.csv")}
    matrix = np.array(report["confusion_matrix"])
    plot_confusion(matrix, tally.classes, out / "confusion.png",
                   title=f"{_checkpoint_title(report['checkpoint'])} on files: top-1 {report['top1']:.2%}")
    write_confusions_csv(matrix, tally.classes, out / "confusions.csv")


@contextmanager
def _predictions_file(out: Path | None) -> Iterator[Any]:
    """``write_predictions_csv`` into ``out`` (created here, with the folders above it; those created are removed
    again when the run fails and leaves them empty), or ``None`` without ``out``."""
    if out is None:
        yield None
        return
    created = [folder for folder in (out, *out.parents) if not folder.exists()]  # deepest first
    out.mkdir(parents=True, exist_ok=True)
    try:
        with write_predictions_csv(out / "predictions.csv") as writer:
            yield writer
    except BaseException:
        for folder in created:
            if any(folder.iterdir()):
                break
            folder.rmdir()
        raise


@contextmanager
def write_predictions_csv(path: Path) -> Iterator[Any]:
    """A ``csv.writer`` for ``predictions.csv``, its ``CSV_HEADER`` written: one row per record, in file order;
    ``correct`` is 1 or 0 for a record of the model's classes (0 for one that could not be classified) and empty
    otherwise; ``error`` says why a record, or a file (``index`` empty), could not be read or classified. The rows
    go to a temporary file beside ``path`` as they come, renamed to ``path`` when the block ends without an error
    (removed otherwise)."""
    with atomic_write(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        yield writer


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
        lines.extend(_unclassified_lines(unclassified))
    lines.extend(_class_lines(report))
    if report["unknown_labels"]:
        shown = ", ".join(f"{label} ({count:,})" for label, count in list(report["unknown_labels"].items())[:10])
        more = ", ..." if len(report["unknown_labels"]) > 10 else ""
        lines.append(f"{counted(sum(report['unknown_labels'].values()), 'sketch')} of classes the model does not "
                     f"know, not counted: {shown}{more}")
    if report["unlabelled"]:
        lines.append(f"{counted(report['unlabelled'], 'sketch')} without a label, not counted")
    note = split_note(report.get("file_name_splits", {}), report["source"].get("split"))
    if note:
        lines.append(note)
    if report["source"].get("repeated_records"):
        lines.append(f"{counted(report['source']['repeated_records'], 'drawing')} repeated an earlier record's key "
                     "id: each counted once, at its first record")
    limit, cut = report["source"].get("limit_per_file"), report["source"].get("files_cut_by_limit", 0)
    if cut:
        lines.append(f"read the first {limit:,} records of each file: {counted(cut, 'file')} held more "
                     "(--limit-per-file)")
    if report["source"].get("files_sampled"):
        lines.append(f"a random sample of {report['source']['sample_per_file']:,} records of each file (seed "
                     f"{report['source']['seed']}): {counted(report['source']['files_sampled'], 'file')} held more "
                     "(--sample-per-file)")
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


REASONS_SHOWN = 5  # reasons the summary lists, most frequent first


def _unclassified_lines(unclassified: dict[str, Any]) -> list[str]:
    """How many records could not be read or classified, and why: the most frequent reasons, with their counts."""
    reasons = list(unclassified.get("reasons", {}).items())
    lines = [f"{counted(unclassified['count'], 'sketch')} could not be read or classified (up to {MAX_SHOWN} of "
             "each reason named on stderr; each reason counted in the report's 'unclassified'):"]
    lines.extend(f"  {reason}: {count:,}" for reason, count in reasons[:REASONS_SHOWN])
    if len(reasons) > REASONS_SHOWN:
        rest = sum(count for _, count in reasons[REASONS_SHOWN:])
        lines.append(f"  {counted(len(reasons) - REASONS_SHOWN, 'other reason')}: {rest:,}")
    return lines


def _class_lines(report: dict[str, Any]) -> list[str]:
    """The model's classes the files hold no record of, and those of which no record could be classified."""
    lines = []
    missing, C = report.get("classes_not_in_files", []), len(report["classes"])
    if missing:
        lines.append(f"the files hold {C - len(missing):,} of the model's {counted(C, 'class')}; none of: "
                     f"{', '.join(missing)}")
    strict = report.get("per_class_strict", {})
    for name in report.get("classes_without_samples", []):
        lines.append(f"{name}: none of its {counted(strict[name]['records'], 'sketch')} could be classified "
                     "(left out of the per-class figures; counted as wrong in the strict top-1, see "
                     "'per_class_strict')")
    return lines
