"""What ``sketchgraph evaluate`` reads from labelled sketch files: which files and records (folders walked as
``predict`` walks them, the ``--limit-per-file`` and ``--exclude-key-ids`` selection), in the files' order, and how
a record's label names a model class (``canonical_label``, ``--label-map``). ``evaluate_files`` classifies and
counts what this yields.

Each file is read once (under any spelling, named or walked; ``X.gz`` beside ``X`` is left out, as ``prepare`` does),
and a drawing once: a record whose key id (a Quick, Draw! drawing id, as ``prepare`` tells them) repeats an earlier
record's is counted in ``ReadCounts.repeated``, not evaluated. When file names carry splits (``cat_test.ndjson``),
only the files of the split asked are read (``choose_files``)."""

from __future__ import annotations

import glob
import json
import numbers
import os
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .errors import SketchError
from .formats.base import Place, canonical_label
from .formats.sniff import EVALUATE_REPORT
from .sketch import Sketch
from .wording import counted

T = TypeVar("T")

__all__ = [
    "file_inputs", "mixed_message", "check_paths", "ClassIndex", "parse_label_map", "group_labels", "Tag", "expand",
    "EVALUATE_REPORT", "Selection", "key_id_set", "ReadCounts", "records", "all_records", "sampled", "read_key_ids",
    "read_key_ids_by_source", "cli_file_options", "check_file_split", "FileChoice", "choose_files", "name_splits",
    "split_note",
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
    differ from the model's; ``used`` counts the records each mapping renamed (keyed by the label as the map spells
    it), so ``label_map_applied`` and ``unused_note`` can say which mappings did something.

    Raises:
        ValueError: a ``label_map`` target that is not one of the classes (named with them), or two labels of one
            ``canonical_label`` mapped to different classes (``moon`` -> sun, ``Moon`` -> cat).
    """

    def __init__(self, classes: Sequence[str], label_map: Mapping[str, str] | None = None):
        self.exact = {c: i for i, c in enumerate(classes)}
        loose: dict[str, list[int]] = {}
        for i, c in enumerate(classes):
            loose.setdefault(canonical_label(c), []).append(i)
        self.loose = {name: ids[0] for name, ids in loose.items() if len(ids) == 1}
        self.renamed: dict[str, int] = {}
        self.spelled: dict[str, str] = {}  # canonical label -> the map's first spelling of it
        self.used: Counter[str] = Counter()
        for source, target in (label_map or {}).items():
            found = self._match(target)
            if found is None:
                raise ValueError(f"label map {source!r} -> {target!r}: {target!r} is not one of the model's classes "
                                 f"({', '.join(classes[:20])}{', ...' if len(classes) > 20 else ''})")
            key = canonical_label(source)
            if self.renamed.get(key, found) != found:
                raise ValueError(f"label map: {self.spelled[key]!r} and {source!r} are one label (compared as "
                                 f"{key!r}) mapped to two classes, {classes[self.renamed[key]]!r} and "
                                 f"{classes[found]!r}")
            self.renamed[key] = found
            self.spelled.setdefault(key, source)

    def _match(self, label: str) -> int | None:
        found = self.exact.get(label)
        return found if found is not None else self.loose.get(canonical_label(label))

    def __call__(self, label: str | None) -> int | None:
        if label is None:
            return None
        key = canonical_label(label)
        renamed = self.renamed.get(key)
        if renamed is None:
            return self._match(label)
        self.used[self.spelled[key]] += 1
        return renamed

    def label_map_applied(self) -> dict[str, int]:
        """``{label as the map spells it: records it renamed}`` for every mapping, 0 for one never used."""
        return {source: self.used[source] for source in self.spelled.values()}

    def unused_note(self) -> str | None:
        """A warning naming the mappings that renamed no record (a mistyped label), or ``None``."""
        unused = [source for source, n in self.label_map_applied().items() if not n]
        if not unused:
            return None
        return (f"warning: --label-map: no record is labelled {', '.join(map(repr, unused))} (compared as "
                f"canonical_label): {'this mapping was' if len(unused) == 1 else 'these mappings were'} never used")


LABEL_MAP_SWALLOWS = "--label-map takes every word after it as a LABEL=CLASS pair, files too: put it after the files"


def parse_label_map(items: Iterable[str]) -> dict[str, str]:
    """``--label-map`` items -> ``{label: class}``: each is ``LABEL=CLASS`` (``"clock=alarm clock"``) or the path of
    a ``.json`` file holding such an object. ``ValueError`` for an item that is neither, or one label (compared as
    ``canonical_label``: ``moon``, ``Moon``) mapped to different classes."""
    found: dict[str, str] = {}
    first: dict[str, str] = {}  # canonical label -> its first spelling among the items
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
                named = not sep and Path(item).expanduser().exists()
                file = f"; it names a file: {LABEL_MAP_SWALLOWS}" if named else ""
                raise ValueError(f"label map {item!r}: expected LABEL=CLASS (e.g. 'clock=alarm clock') or a .json "
                                 f"file of them{file}")
            pairs = {source.strip(): target.strip()}
        for source, target in pairs.items():
            earlier = first.setdefault(canonical_label(source), source)
            if canonical_label(found.get(earlier, target)) != canonical_label(target):
                same = "" if earlier == source else f" ({earlier!r} and {source!r} are one label, compared as " \
                                                    f"{canonical_label(source)!r})"
                raise ValueError(f"label map: {source!r} is mapped to both {found[earlier]!r} and {target!r}{same}")
            found.setdefault(earlier, target)
    return found


def group_labels(counts: Mapping[str, int]) -> dict[str, int]:
    """``{label: count}`` with the spellings of one ``canonical_label`` (``Moon``, ``moon``) summed under the first
    met, most frequent first (ties in the order met): the report's ``unknown_labels``."""
    grouped: dict[str, int] = {}
    first: dict[str, str] = {}
    for label, n in counts.items():
        shown = first.setdefault(canonical_label(label), label)
        grouped[shown] = grouped.get(shown, 0) + n
    return dict(sorted(grouped.items(), key=lambda item: -item[1]))


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


"""Why a folder walk leaves out ``report.json`` where ``sketchgraph evaluate --out`` wrote it."""
LINK_LOOP = "a link to {target}, a folder holding one walked already: not followed (it would loop)"
"""Why a folder walk does not follow a link to a folder."""


def expand(paths: Sequence[str]) -> Iterator[tuple[str, str | None]]:
    """``(file, None)`` for each named file and each sketch file of a named folder (as ``predict``'s
    ``expand_files``, links to folders followed once), each file once whatever its spelling, and ``(path, reason)``
    for what is left out: a prepared dataset or a prepare's work folder inside a folder (``prepared_folder``), an
    ``.npz`` met in a walk (read only when named), the ``report.json`` of an evaluate run (``EVALUATE_REPORT``), a
    link that would loop, a link with a sketch file's name that leads to no file, ``X.gz`` when ``X`` is read too
    (``prepare``'s rule: the same drawings), or a folder without any sketch file."""
    from .data.sources import GZIP_COPY
    from .predict import _no_sketch_files

    found: list[tuple[str, str | None]] = []
    read: dict[Path, int] = {}  # resolved file -> its place in ``found``
    for path in paths:
        root = Path(path).expanduser()
        if not root.is_dir():
            entries = [(path, None)]
        else:
            files, left_out = _walk(root, [])
            entries = [(str(p), f"not read: {reason}") for p, reason in left_out]
            entries += [(str(f), None) for f in files]
            if not entries:
                entries = [(path, _no_sketch_files())]
        for name, reason in entries:
            if reason is None:
                resolved = Path(name).expanduser().resolve()
                if resolved in read:
                    continue  # named twice, or named and walked: read once
                read[resolved] = len(found)
            found.append((name, reason))
    for resolved, at in read.items():  # cat.ndjson.gz beside cat.ndjson: read one, not the drawings twice
        if resolved.suffix.lower() == ".gz" and resolved.with_suffix("") in read:
            found[at] = (found[at][0], f"not read: {GZIP_COPY.format(name=resolved.with_suffix('').name)}")
    yield from found


def _walk(root: Path, walked: list[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The sketch files under ``root`` (``sketch_files``: prepared datasets pruned, an evaluate run's ``report.json``
    left out) and those under its links to folders, each followed once (``walked``: the folders walked so far, a
    link into one is not followed, a link to a folder above one is listed as a loop, a link with a sketch file's
    name that leads to no file is left out saying so, as ``predict`` says it); ``(files, left out)``."""
    from .data.sources import prepared_folder
    from .formats import sketch_files
    from .formats.base import broken_link

    left_out: list[tuple[Path, str]] = []
    files = []
    for f in sketch_files(root, gzipped=True, prune=prepared_folder, left_out=left_out, broken_links=True):
        if (broken := broken_link(f)) is not None:
            left_out.append((f, broken))
        else:
            files.append(f)
    walked.append(root.resolve())
    for link in _folder_links(root, prepared_folder):
        target = link.resolve()
        if any(target == w or w in target.parents for w in walked):
            continue  # its files are among those of a folder walked
        if any(target in w.parents for w in walked):
            left_out.append((link, LINK_LOOP.format(target=target)))
            continue
        more, also = _walk(link, walked)
        files += more
        left_out += also
    return sorted(files), left_out


def _folder_links(root: Path, prune: Callable[[Path], str | None]) -> list[Path]:
    """The links to folders under ``root``, outside hidden folders and those ``prune`` names (``sketch_files``
    reads neither), sorted; a walk does not go into them."""
    if prune(root) is not None:
        return []
    links = []
    for folder, names, _ in os.walk(root):
        keep = []
        for name in sorted(names):
            sub = Path(folder) / name
            if name.startswith("."):
                continue
            if sub.is_symlink():
                links.append(sub)
            elif prune(sub) is None:
                keep.append(name)
        names[:] = keep
    return links


def check_paths(paths: Iterable[str | os.PathLike]) -> None:
    """``FileNotFoundError`` naming the first of ``paths`` that does not exist (the datasets to evaluate)."""
    for path in paths:
        if not Path(path).expanduser().exists():
            stdin = ", and does not read standard input: save it to a file" if os.fspath(path) == "-" else ""
            raise FileNotFoundError(f"no such file or folder: {os.fspath(path)} (evaluate takes a prepared dataset "
                                    f"folder, or sketch files and folders of them{stdin})")


def _kind(path: str | os.PathLike, format: str | None) -> str | None:
    """The format ``path`` is read as (``format``, else detected as ``prepare`` does); ``None`` when it cannot be
    told (the reader reports it)."""
    from .formats import detect_format

    if format not in (None, "ndjson"):
        return format
    try:
        return detect_format(Path(path).expanduser())
    except (SketchError, OSError):
        return None


def _drawing_key(key_id: str | None) -> str | None:
    """``key_id`` (stripped) when it names one drawing wherever it appears (a Quick, Draw! drawing id, as
    ``prepare`` tells them: ``drawing_ids``, one id at a time), else ``None`` (ids numbered per file are no
    drawing's)."""
    from .data.reading import MIN_ID_DIGITS

    if key_id is None:
        return None
    key = key_id.strip()
    return key if key.isdigit() and len(key) >= MIN_ID_DIGITS else None


def key_id_set(ids: Iterable[Any] | None) -> frozenset[str]:
    """``exclude_key_ids`` as a set of key id strings: integers (pandas reads 16-digit ids as int64) in decimal, as
    ``formats.ndjson.key_id_string`` writes a record's, white space stripped.

    Raises:
        TypeError: ``ids`` is one string or path (give a list of ids; ``read_key_ids`` reads a file), or holds a
            value that is no key id (a list, a fraction).
    """
    from .formats.ndjson import key_id_string

    if ids is None:
        return frozenset()
    if isinstance(ids, (str, bytes, os.PathLike)):
        raise TypeError(f"exclude_key_ids: expected a collection of key ids, got one {type(ids).__name__} "
                        f"({os.fspath(ids)!r:.60}); read_key_ids(path) reads the key ids of a file")
    found = set()
    for value in ids:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = int(value)
        try:
            key = key_id_string(value)
        except SketchError as exc:
            raise TypeError(f"exclude_key_ids: {exc}") from None
        if key is None or not key.strip():
            raise TypeError(f"exclude_key_ids: {value!r} is no key id")
        found.add(key.strip())
    return frozenset(found)


@dataclass(frozen=True)
class Selection:
    """Which records of each file are evaluated: of those whose ``key_id`` is not in ``excluded`` (say, the
    training data's drawings, for a held-out measurement), the first ``limit`` (``None``: all), or a uniform random
    ``sample`` of that many (the same for the same ``seed`` and file name, whatever else is evaluated with it).
    ``excluded`` is taken as ``key_id_set`` takes it (integer ids match), and a record's key id is compared
    stripped.

    Raises:
        ValueError: both ``limit`` and ``sample``.
    """

    limit: int | None = None
    excluded: frozenset[str] = frozenset()
    sample: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "excluded", key_id_set(self.excluded))
        if self.limit is not None and self.sample is not None:
            raise ValueError("limit_per_file and sample_per_file (--limit-per-file, --sample-per-file) take the "
                             "records of a file in two ways: give one of them")

    def skips(self, key_id: str | None) -> bool:
        return key_id is not None and key_id.strip() in self.excluded


@dataclass
class ReadCounts:
    """What the reading left out or met: ``excluded`` records (their key id is excluded), files ``cut`` by the
    limit (they held more records), ``repeated`` records (their key id, a drawing id, repeats an earlier record's:
    the first is evaluated), ``other_split_files`` (their names carry another split than the one asked,
    ``choose_files``) and ``npz_files``, the ``.npz`` files read (at the split asked)."""

    excluded: int = 0
    cut: int = 0
    repeated: int = 0
    other_split_files: int = 0
    npz_files: int = 0
    sampled: int = 0  # files with more records than ``Selection.sample``, of which a sample was evaluated


def records(file_no: int, path: str, format: str | None, split: str | None, counts: ReadCounts,
            select: Selection = Selection(), seen: set[str] | None = None, sample: random.Random | None = None
            ) -> Iterator[tuple[Tag, Sketch | SketchError]]:
    """Every record of one file that ``select`` takes, in the file's order: ``(tag, sketch)`` for a readable one,
    ``(tag, error)`` for one the reader could not read (the reader's ``FormatError``, naming file and line; one
    without a label, such as an invalid JSON line, gets the class the file's name gives when the file's readable
    records take it (SPG's ``cat_test.ndjson``, Google's ``.bin``: a record with no ``word``), so it counts as a
    miss of that class, not as unlabelled), and
    ``(tag, error)`` with ``tag.index`` ``None`` for an error about the file or a part of it (no record). A record
    whose key id is excluded is counted in ``counts.excluded`` (read or not); one whose drawing id (``_drawing_key``,
    of a format with its own key ids) is in ``seen`` is counted in ``counts.repeated`` (readable or not: a drawing
    counts once), else its id is added to ``seen``; past ``select.limit`` records taken (readable or not), the rest
    of the file is not read and ``counts.cut`` counts the file. A tag's index is the record's place among all of
    the file's records, as ``sketchgraph predict`` numbers them.

    ``sample``: the records are ``select.sample`` of those that are neither excluded nor repeated, drawn uniformly
    with this generator (``sampled``'s reservoir), in the file's order, with every error about the file. In a file
    of ndjson lines (not a ``.json`` document, a ``.bin``, ``.npz`` or ``.svg``) only the drawn lines are parsed:
    each line's key id is read as ``line_key_id`` reads it, which is the key id the parsed record (or its error)
    has, so the records taken and counted are those of reading every record."""
    from .formats.ndjson import STYLES, line_based

    kind = _kind(path, format)
    by_line = kind in (*STYLES, "ndjson") and line_based(path)  # not a JSON document, whatever its name
    if sample is None or by_line:
        return _records(file_no, path, kind, split, counts, select, seen, sample)
    assert select.sample is not None
    return iter(sampled(_records(file_no, path, kind, split, counts, select, seen, None), select.sample, sample,
                        counts))


def _records(file_no: int, path: str, kind: str | None, split: str | None, counts: ReadCounts, select: Selection,
             seen: set[str] | None, sample: random.Random | None) -> Iterator[tuple[Tag, Sketch | SketchError]]:
    """``records`` of a file of format ``kind`` (``_kind``); ``sample`` only for a file of ndjson lines."""
    from .data.reading import KEYED_FORMATS
    from .formats import label_from_path, read_located
    from .formats.ndjson import iter_ndjson, line_key_id

    counts.npz_files += kind == "npz"
    keyed = seen is not None and kind in KEYED_FORMATS
    seen = set() if seen is None else seen
    index_of: dict[int, int] = {}  # line number -> record index, of the lines a sample took

    def repeated(key_id: str | None) -> bool:
        """Whether the record of ``key_id`` is a drawing met before (else it is met now)."""
        key = _drawing_key(key_id) if keyed else None
        if key is not None:
            if key in seen:
                return True
            seen.add(key)
        return False

    def choose(lines: Iterator[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        """A sample of the lines of the records that are neither excluded nor repeated (``sampled``'s draw)."""
        assert sample is not None and select.sample is not None
        taken = sampled(((index, lineno, line) for index, (lineno, line) in enumerate(lines)
                         if not skipped(line_key_id(line))), select.sample, sample, counts, order=lambda t: t[0],
                        about_file=lambda t: False)
        index_of.update((lineno, index) for index, lineno, _ in taken)
        return [(lineno, line) for _, lineno, line in taken]

    def skipped(key_id: str | None) -> bool:
        """Whether a record is left out (counted): its key id is excluded, or its drawing was met before."""
        if select.skips(key_id):
            counts.excluded += 1
        elif repeated(key_id):
            counts.repeated += 1
        else:
            return False
        return True
    named = label_from_path(path, folder=kind == "svg", spg=kind == "spg")
    position = taken = reported = 0
    named_records = False  # whether a readable record took its class from the file's name
    pending: list[tuple[Tag, SketchError]] = []  # what the reader reported since the last record it yielded

    def flush() -> list[tuple[Tag, SketchError]]:
        """``pending``, emptied; the records without a label get the name's class when the file's records take it."""
        if named_records:
            for tag, exc in pending:
                if tag.index is not None and getattr(exc, "label", "") is None:
                    exc.label = named  # type: ignore[attr-defined]  # a FormatError's: the record's class
        flushed = pending.copy()
        pending.clear()
        return flushed

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
        if sample is not None:
            position = index_of[exc.line]  # type: ignore[attr-defined]  # a located FormatError's
        if sample is not None or not skipped(getattr(exc, "key_id", None)):
            pending.append((Tag(file_no, path, position, Place(path), position), exc))
            taken += 1
        position += 1

    try:
        if sample is not None:
            located = iter_ndjson(Path(path).expanduser(), None if kind == "ndjson" else kind, on_error=unreadable,
                                  choose=choose)
        else:
            located = read_located(Path(path).expanduser(), kind, split=split if kind == "npz" else None,
                                   on_error=unreadable)
        for place, sketch in located:
            named_records = named_records or sketch.label == named
            yield from flush()
            if full():
                counts.cut += 1
                break
            if sample is not None:
                position = index_of[place.line]  # type: ignore[index]  # a line's
            if sample is not None or not skipped(sketch.key_id):
                yield Tag(file_no, path, position, place, position), sketch
                taken += 1
            position += 1
        yield from flush()
    except (SketchError, OSError) as exc:
        yield from flush()
        message = str(exc) if position == 0 else f"stopped after record {position - 1}: {exc}"
        yield Tag(file_no, path, None, Place(path), position - 0.5), SketchError(message)
        return
    if position == 0 and not reported:
        yield Tag(file_no, path, None, Place(path), -0.5), SketchError("contains no sketches")


def all_records(paths: Sequence[str], format: str | None, split: str | None, counts: ReadCounts,
                select: Selection = Selection(), choice: FileChoice | None = None
                ) -> Iterator[tuple[Tag, Sketch | SketchError]]:
    """``records`` of every file ``choose_files`` takes (``split``: the files of that split when names carry
    splits, and the split of ``.npz`` files; ``None``: every file, every split), in order, each drawing once
    (``counts.repeated``); what ``expand`` left out comes as a file error, the files of other splits are counted in
    ``counts.other_split_files``. ``ValueError`` (at the first record) for a ``split`` no sketch file has."""
    choice = choice if choice is not None else choose_files(paths, split)  # the caller's walk, not a second
    counts.other_split_files += len(choice.left_out)
    seen: set[str] = set()
    for file_no, (path, skipped) in enumerate(choice.entries):
        if skipped is not None:
            yield Tag(file_no, path, None, Place(path), -0.5), SketchError(skipped)
        elif select.sample is None:
            yield from records(file_no, path, format, split, counts, select, seen)
        else:
            rng = random.Random(f"{select.seed}:{Path(path).name}")
            yield from records(file_no, path, format, split, counts, select, seen, sample=rng)


def _tag_order(item: Any) -> float:
    return item[0].order


def _about_file(item: Any) -> bool:
    return item[0].index is None


def sampled(items: Iterable[T], n: int, rng: random.Random, counts: ReadCounts, *,
            order: Callable[[T], Any] = _tag_order, about_file: Callable[[T], bool] = _about_file) -> list[T]:
    """A uniform random sample of ``n`` of the records of one file's ``items`` (reservoir sampling: ``n`` kept in
    memory, every item seen), with every item ``about_file`` (an error about the file, not a record), sorted back
    by ``order`` (the file's order); ``counts.sampled`` counts the file when it held more than ``n`` records.
    The defaults take ``(Tag, sketch or error)`` items, as ``records`` yields them."""
    kept: list[T] = []
    about: list[T] = []
    seen = 0
    for item in items:
        if about_file(item):
            about.append(item)
            continue
        seen += 1
        if len(kept) < n:
            kept.append(item)
        elif (j := rng.randrange(seen)) < n:
            kept[j] = item
    counts.sampled += seen > n
    return sorted(kept + about, key=order)


# ---------------------------------------------------------------------------------------------- key ids to exclude
_MADE_UP = {"npz": "split/index: test/0 in every .npz", "svg": "the file's name: 81.svg is 81 in every class folder"}
_KEY_ID_FILES = ("a list of key ids is a .txt file (one per line); else give sketch files whose records carry their "
                 "own key ids (.ndjson, .jsonl, .json, .bin, gzip-compressed or not), a folder of them or a quoted "
                 "glob pattern ('splits/*_train.ndjson')")


def read_key_ids(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> frozenset[str]:
    """The key ids named by ``paths`` (one path or several), as ``read_key_ids_by_source`` reads them."""
    return read_key_ids_by_source(paths)[0]


def read_key_ids_by_source(paths: str | os.PathLike | Sequence[str | os.PathLike]
                           ) -> tuple[frozenset[str], dict[str, int]]:
    """``(key ids, {path as given: how many distinct key ids it gave})`` for ``--exclude-key-ids``. Each path is a
    ``.txt`` file of one key id per line (blank lines and ``#`` comments skipped, white space stripped), or sketch
    files with their own key ids (ndjson / JSON / ``.bin``): a file, a folder of them (walked as ``expand`` walks
    it) or a glob pattern (``splits/*_train.ndjson``, matched here as the shell would), whose records' ``key_id``
    are taken, a record that cannot be read left out.

    Raises:
        FileNotFoundError: a path that does not exist, or a pattern that matches nothing.
        ValueError: a path that names no key id (a list of the wrong files would exclude nothing), an ``.npz`` or
            ``.svg`` file (their key ids are made up per file, so they name no drawing), or a file that is neither
            a ``.txt`` list nor sketch files (``ids.csv``); the message names ``--exclude-key-ids``.
    """
    given = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    found: set[str] = set()
    per_source: dict[str, int] = {}
    for item in given:
        ids: set[str] = set()
        for path in _matches(os.fspath(item)):
            ids |= _key_ids_in(path)
        if not ids:
            raise ValueError(f"--exclude-key-ids {os.fspath(item)}: no key id in it, nothing to exclude ("
                             f"{_KEY_ID_FILES})")
        per_source[os.fspath(item)] = len(ids)
        found |= ids
    return frozenset(found), per_source


def _matches(item: str) -> list[Path]:
    """The path ``item`` names, or the files its glob pattern matches (sorted)."""
    path = Path(item).expanduser()
    if path.exists():
        return [path]
    if glob.has_magic(item):
        matched = sorted(glob.glob(os.path.expanduser(item), recursive=True))
        if not matched:
            raise FileNotFoundError(f"--exclude-key-ids {item}: no file matches this pattern (the key ids to "
                                    "exclude)")
        return [Path(m) for m in matched]
    raise FileNotFoundError(f"no such file or folder: {path} (the key ids to exclude, --exclude-key-ids)")


def _key_ids_in(path: Path) -> set[str]:
    """The key ids of one ``.txt`` list, sketch file or folder of them (``read_key_ids_by_source``)."""
    from .data.reading import KEYED_FORMATS
    from .formats import read_sketches

    if path.is_dir():
        return set().union(*(_key_ids_in(Path(f)) for f, skipped in expand([str(path)]) if skipped is None))
    if path.suffix.lower() == ".txt":
        lines = path.read_text(encoding="utf-8").splitlines()
        return {line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")}
    kind = _kind(path, None)
    if kind in _MADE_UP:
        raise ValueError(f"--exclude-key-ids {path}: the key ids of {kind} records are made up per file "
                         f"({_MADE_UP[kind]}), so they name no drawing; {_KEY_ID_FILES}")
    if kind not in KEYED_FORMATS:
        raise ValueError(f"--exclude-key-ids {path}: not a list of key ids nor a sketch file; {_KEY_ID_FILES}")
    return {sk.key_id.strip() for sk in read_sketches(path, kind, on_error=lambda exc: None)
            if sk.key_id is not None and sk.key_id.strip()}


def cli_file_options(dataset: Any, format: str | None, split: str | None, all_splits: bool,
                     exclude_key_ids: Sequence[str] | None, label_map: Sequence[str] | None,
                     warn: Callable[[str], object], unused_on_files: Sequence[str] = (),
                     ) -> tuple[str | None, frozenset[str] | None, dict[str, str] | None]:
    """``sketchgraph evaluate``'s ``(split, exclude_key_ids, label_map)`` from ``--split`` (``None``: not given, so
    ``test``), ``--all-splits``, ``--exclude-key-ids`` and ``--label-map``. ``--split`` and ``--all-splits``
    exclude each other. For sketch files: the split checked (``None`` with ``--all-splits``), the datasets checked
    to exist before any key ids are read, ``excluding N key ids from PATH`` warned per source, and a note for each
    of ``unused_on_files`` (the options given that only a prepared dataset uses, e.g. ``--num-workers``). For a
    prepared dataset the id lists are not read (``evaluate`` refuses them), and ``--all-splits`` is refused here."""
    if split is not None and all_splits:
        raise ValueError(f"give --split {split} or --all-splits, not both: --all-splits evaluates every split of the "
                         "sketch files")
    files = file_inputs(dataset, format)
    labels = None if label_map is None else parse_label_map(label_map)
    if files is None:
        if all_splits:
            raise ValueError("--all-splits applies to sketch files; a prepared dataset is evaluated one --split at "
                             "a time")
        return "test" if split is None else split, None if exclude_key_ids is None else frozenset(), labels
    for option in unused_on_files:
        warn(f"note: {option} applies to a prepared dataset only; sketch files do not use it")
    split = None if all_splits else "test" if split is None else split
    check_file_split(split)
    excluded = None
    if exclude_key_ids is not None:
        check_paths(files)  # a mistyped dataset is said before a long list of ids is read
        excluded, per_source = read_key_ids_by_source(exclude_key_ids)
        for source, n in per_source.items():
            warn(f"excluding {counted(n, 'key id')} from {source}")
    return split, excluded, labels


# ---------------------------------------------------------------------------------------------- splits
def check_file_split(split: str | None) -> None:
    """``ValueError`` for a ``split`` that sketch files cannot have (their names carry ``train``, ``valid`` or
    ``test``, as an ``.npz`` holds them); ``None`` (every split) passes."""
    from .data.splits import SPLIT_ORDER

    if split is not None and split not in SPLIT_ORDER:
        raise ValueError(f"--split {split!r}: the splits of sketch files are {', '.join(SPLIT_ORDER)} (named "
                         "cat_test.ndjson, and those of an .npz); --all-splits evaluates every file")


@dataclass(frozen=True)
class FileChoice:
    """What ``choose_files`` takes: ``entries`` as ``expand`` gives them, less the files of other splits (their
    paths in ``left_out``); ``splits``, the ``name_splits`` of every file found; ``note``, the line to warn with
    (``split_note``), or ``None``."""

    entries: list[tuple[str, str | None]]
    splits: dict[str, int]
    left_out: list[str]
    note: str | None


def choose_files(paths: Sequence[str], split: str | None) -> FileChoice:
    """The files of ``paths`` (``expand``) to evaluate at ``split``: when their names carry splits and some carry
    ``split``, those and the files whose names carry none (``.npz`` files among them, read at ``split``), the others
    left out; else every file (when the names carry only other splits, the note says the figures are on those).
    ``split`` ``None``: every file (``--all-splits``). ``ValueError`` for a ``split`` sketch files cannot have."""
    from .data.splits import order_splits, split_of_name

    check_file_split(split)
    entries = list(expand(paths))
    named = {path: split_of_name(path) for path, skipped in entries if skipped is None}
    found = Counter(name for name in named.values() if name is not None)
    splits = {name: found[name] for name in order_splits(found)}
    left_out: list[str] = []
    if split is not None and split in splits:
        left_out = [path for path, name in named.items() if name not in (None, split)]
        dropped = set(left_out)
        entries = [(path, skipped) for path, skipped in entries if skipped is not None or path not in dropped]
    return FileChoice(entries, splits, left_out, split_note(splits, split))


def name_splits(paths: Sequence[str]) -> dict[str, int]:
    """``{split: number of files}`` of the files whose names carry a split (``cat_test.ndjson``: ``test``)."""
    return choose_files(paths, None).splits


def split_note(splits: dict[str, int], split: str | None = None) -> str | None:
    """The line saying how the files' name splits (``name_splits``) were evaluated at ``split`` (``choose_files``):
    several, all evaluated (``split`` ``None``); the others than ``split`` left out; or, when none carries
    ``split``, the split the figures are on. ``None`` when there is nothing to say."""
    def listed(names: Iterable[str]) -> str:
        return ", ".join(f"{name} {counted(splits[name], 'file')}" for name in names)

    if split is None:
        if len(splits) < 2:
            return None
        return (f"note: the files' names hold several splits ({listed(splits)}), all of them evaluated "
                "(--all-splits): the figures mix them")
    others = [name for name in splits if name != split]
    if not others:
        return None
    if split in splits:
        n = sum(splits[name] for name in others)
        return (f"note: evaluating the {split} split (--split {split}): left out {counted(n, 'file')} whose names "
                f"carry another ({listed(others)}); --all-splits evaluates every file")
    return (f"warning: no file's name carries the {split} split (--split {split}): the figures are on the files "
            f"named for {listed(others)}")
