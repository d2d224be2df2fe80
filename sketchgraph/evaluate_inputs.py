"""What ``sketchgraph evaluate`` reads from labelled sketch files: which files and records (folders walked as
``predict`` walks them, the ``--limit-per-file`` and ``--exclude-key-ids`` selection), in the files' order, and how
a record's label names a model class (``canonical_label``, ``--label-map``). ``evaluate_files`` classifies and
counts what this yields."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SketchError
from .formats.base import Place, canonical_label
from .sketch import Sketch
from .wording import counted

__all__ = [
    "file_inputs", "mixed_message", "ClassIndex", "parse_label_map", "Tag", "expand", "Selection", "ReadCounts",
    "records", "all_records", "read_key_ids", "name_splits", "split_note",
]


def file_inputs(dataset: Any, format: str | None = None) -> list[str] | None:
    """The sketch files and folders ``dataset`` names, or ``None`` when it is one prepared dataset (a
    ``PreparedDataset`` or a folder with the prepared ``meta.json``, see ``is_prepared``), which ``evaluate``
    reads as before.

    Raises:
        ValueError: a prepared dataset among other paths, or a ``format`` given with a prepared dataset.
    """
    from .data import PreparedDataset, is_prepared

    paths = [dataset] if isinstance(dataset, (str, os.PathLike, PreparedDataset)) else list(dataset)
    prepared = [str(getattr(p, "path", p)) for p in paths
                if isinstance(p, PreparedDataset) or is_prepared(Path(p).expanduser())]
    if prepared and len(paths) > 1:
        raise ValueError(mixed_message(prepared[0]))
    if prepared:
        if format is not None:
            raise ValueError(f"format {format!r} (--format) applies to sketch files; {prepared[0]} is a prepared "
                             "dataset, whose drawings are stored already")
        return None
    return [os.fspath(p) for p in paths]


def mixed_message(prepared: str) -> str:
    """Why a prepared dataset cannot be evaluated with other paths."""
    return (f"{prepared} is a prepared dataset, which is evaluated alone (its --split); the other arguments are "
            "sketch files or folders: evaluate them in another run (or prepare them into a dataset)")


# ---------------------------------------------------------------------------------------------- the classes
class ClassIndex:
    """A record's label -> the model's output index: an equal name first, else the one class of the same
    ``canonical_label`` (``alarm_clock`` / ``Alarm clock`` -> ``alarm clock``); ``None`` when the model has no such
    class (or two classes of that canonical name and neither is the label itself). ``label_map`` first renames
    labels (``{"clock": "alarm clock"}``, compared as ``canonical_label``) to a model class, for data whose words
    differ from the model's.

    Raises:
        ValueError: a ``label_map`` target that is not one of the classes (named with them).
    """

    def __init__(self, classes: Sequence[str], label_map: dict[str, str] | None = None):
        self.exact = {c: i for i, c in enumerate(classes)}
        loose: dict[str, list[int]] = {}
        for i, c in enumerate(classes):
            loose.setdefault(canonical_label(c), []).append(i)
        self.loose = {name: ids[0] for name, ids in loose.items() if len(ids) == 1}
        self.renamed: dict[str, int] = {}
        for source, target in (label_map or {}).items():
            found = self._match(target)
            if found is None:
                raise ValueError(f"label map {source!r} -> {target!r}: {target!r} is not one of the model's classes "
                                 f"({', '.join(classes[:20])}{', ...' if len(classes) > 20 else ''})")
            self.renamed[canonical_label(source)] = found

    def _match(self, label: str) -> int | None:
        found = self.exact.get(label)
        return found if found is not None else self.loose.get(canonical_label(label))

    def __call__(self, label: str | None) -> int | None:
        if label is None:
            return None
        renamed = self.renamed.get(canonical_label(label))
        return renamed if renamed is not None else self._match(label)


def parse_label_map(items: Iterable[str]) -> dict[str, str]:
    """``--label-map`` items -> ``{label: class}``: each is ``LABEL=CLASS`` (``"clock=alarm clock"``) or the path of
    a ``.json`` file holding such an object. ``ValueError`` for an item that is neither, or a label mapped twice
    to different classes."""
    found: dict[str, str] = {}
    for item in items:
        if item.lower().endswith(".json") and "=" not in item:
            try:
                pairs = json.loads(Path(item).expanduser().read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ValueError(f"label map {item}: cannot read it as JSON ({exc})") from None
            if not isinstance(pairs, dict) or not all(isinstance(v, str) for v in (*pairs, *pairs.values())):
                raise ValueError(f"label map {item}: expected a JSON object of label -> class names (strings)")
        else:
            source, sep, target = item.partition("=")
            if not sep or not source.strip() or not target.strip():
                raise ValueError(f"label map {item!r}: expected LABEL=CLASS (e.g. 'clock=alarm clock') or a .json "
                                 "file of them")
            pairs = {source.strip(): target.strip()}
        for source, target in pairs.items():
            if found.get(source, target) != target:
                raise ValueError(f"label map: {source!r} is mapped to both {found[source]!r} and {target!r}")
            found[source] = target
    return found


# ---------------------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Tag:
    """Where a record is: its file's number among the inputs, the file, its 0-based index among the file's
    records (the unreadable ones too, as ``sketchgraph predict`` numbers them; ``None`` for an error about the
    file or a part of it), its place for errors, and ``order``, its place in the file's order of records and
    errors."""

    file_no: int
    file: str
    index: int | None
    place: Place
    order: float


def expand(paths: Sequence[str]) -> Iterator[tuple[str, str | None]]:
    """``(file, None)`` for each named file and each sketch file of a named folder (as ``predict``'s
    ``expand_files``; a prepared dataset or a prepare's work folder inside a folder is not walked), and
    ``(path, reason)`` for what is skipped: such a folder, or a folder without any sketch file."""
    from .data.sources import prepared_folder
    from .formats import sketch_files
    from .predict import _no_sketch_files

    for path in paths:
        if not Path(path).expanduser().is_dir():
            yield path, None
            continue
        left_out: list[tuple[Path, str]] = []
        files = sketch_files(Path(path).expanduser(), gzipped=True, prune=prepared_folder, left_out=left_out)
        yield from ((str(folder), f"not read: {reason}") for folder, reason in left_out if folder.is_dir())
        yield from ((str(f), None) for f in files)
        if not files and not any(folder.is_dir() for folder, _ in left_out):
            yield path, _no_sketch_files()


def _npz_split(path: str, format: str | None, split: str | None) -> str | None:
    """``split`` when ``path`` is read as an ``.npz`` (whose records come in train/valid/test splits), else
    ``None``; a format that cannot be told is left to the reader to report."""
    from .formats import detect_format

    try:
        kind = format or detect_format(path)
    except (SketchError, OSError):
        return None
    return split if kind == "npz" else None


@dataclass(frozen=True)
class Selection:
    """Which records of each file are evaluated: the first ``limit`` (``None``: all) of those whose ``key_id`` is
    not in ``excluded`` (say, the training data's drawings, for a held-out measurement)."""

    limit: int | None = None
    excluded: frozenset[str] = frozenset()

    def skips(self, key_id: str | None) -> bool:
        return key_id is not None and key_id in self.excluded


@dataclass
class ReadCounts:
    """What the selection left out while reading: ``excluded`` records (their key id is excluded) and files
    ``cut`` by the limit (they held more records)."""

    excluded: int = 0
    cut: int = 0


def records(file_no: int, path: str, format: str | None, split: str | None, counts: ReadCounts,
            select: Selection = Selection()) -> Iterator[tuple[Tag, Sketch | SketchError]]:
    """Every record of one file that ``select`` takes, in the file's order: ``(tag, sketch)`` for a readable one,
    ``(tag, error)`` for one the reader could not read (the reader's ``FormatError``, naming file and line), and
    ``(tag, error)`` with ``tag.index`` ``None`` for an error about the file or a part of it (no record). A record
    whose key id is excluded is counted in ``counts.excluded`` (read or not); past ``select.limit`` records taken
    (readable or not), the rest of the file is not read and ``counts.cut`` counts the file. A tag's index is the
    record's place among all of the file's records, as ``sketchgraph predict`` numbers them."""
    from .formats import read_located

    position = taken = reported = 0
    pending: list[tuple[Tag, SketchError]] = []  # what the reader reported since the last record it yielded

    def full() -> bool:
        return select.limit is not None and taken >= select.limit

    def unreadable(exc: SketchError) -> None:
        nonlocal position, taken, reported
        if full():
            return  # beyond the records taken
        reported += 1
        if getattr(exc, "whole_file", False):
            pending.append((Tag(file_no, path, None, Place(path), position - 0.5), exc))
            return
        if select.skips(getattr(exc, "key_id", None)):
            counts.excluded += 1
        else:
            pending.append((Tag(file_no, path, position, Place(path), position), exc))
            taken += 1
        position += 1

    try:
        located = read_located(Path(path).expanduser(), format, split=_npz_split(path, format, split),
                               on_error=unreadable)
        for place, sketch in located:
            yield from pending
            pending.clear()
            if full():
                counts.cut += 1
                break
            if select.skips(sketch.key_id):
                counts.excluded += 1
            else:
                yield Tag(file_no, path, position, place, position), sketch
                taken += 1
            position += 1
        yield from pending
    except (SketchError, OSError) as exc:
        yield from pending
        message = str(exc) if position == 0 else f"stopped after record {position - 1}: {exc}"
        yield Tag(file_no, path, None, Place(path), position - 0.5), SketchError(message)
        return
    if position == 0 and not reported:
        yield Tag(file_no, path, None, Place(path), -0.5), SketchError("contains no sketches")


def all_records(paths: Sequence[str], format: str | None, split: str | None, counts: ReadCounts,
                select: Selection = Selection()) -> Iterator[tuple[Tag, Sketch | SketchError]]:
    """``records`` of every file ``expand`` finds, in order; what ``expand`` skips comes as a file error."""
    for file_no, (path, skipped) in enumerate(expand(paths)):
        if skipped is not None:
            yield Tag(file_no, path, None, Place(path), -0.5), SketchError(skipped)
        else:
            yield from records(file_no, path, format, split, counts, select)


def read_key_ids(paths: Sequence[str | os.PathLike]) -> frozenset[str]:
    """The key ids named by ``paths``: a ``.txt`` file holds one per line (blank lines and ``#`` comments
    skipped); any other path is sketch files or a folder of them (read as ``predict`` reads them), whose records'
    ``key_id`` are taken, a record that cannot be read left out. ``FileNotFoundError`` for a path that does not
    exist; ``ValueError`` when the paths name no key id at all (a list of the wrong files would exclude nothing)."""
    from .formats import read_sketches

    found: set[str] = set()
    for path in map(Path, paths):
        path = path.expanduser()
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path} (the key ids to exclude)")
        if path.suffix.lower() == ".txt":
            lines = path.read_text(encoding="utf-8").splitlines()
            found.update(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))
        else:
            found.update(sk.key_id for sk in read_sketches(path, on_error=lambda exc: None) if sk.key_id is not None)
    if not found:
        raise ValueError(f"no key id in {', '.join(map(str, paths))}: nothing to exclude (a .txt file lists one "
                         "per line; sketch files give their records' key_id)")
    return frozenset(found)


def name_splits(paths: Sequence[str]) -> dict[str, int]:
    """``{split: number of files}`` of the files whose names carry a split (``cat_test.ndjson``: ``test``)."""
    from .data.splits import order_splits, split_of_name

    found = Counter(split_of_name(path) for path, skipped in expand(paths) if skipped is None)
    found.pop(None, None)
    return {name: found[name] for name in order_splits(found)}


def split_note(splits: dict[str, int]) -> str:
    """The note for files whose names hold several splits (``cat_train.ndjson``, ``cat_test.ndjson``): all of them
    are evaluated, so the figures mix the splits."""
    listed = ", ".join(f"{name} {counted(n, 'file')}" for name, n in splits.items())
    return (f"note: the files' names hold several splits ({listed}), all of them evaluated: --split selects the "
            "split of .npz files only; name the files of one split (*_test.ndjson) to evaluate it alone")


