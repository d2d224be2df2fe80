"""The worker side of ``prepare``: one ``Task`` -> one ``Shard``.

Chunks of ndjson lines go through ``parse_line`` (as ``read_ndjson``, line by
line, so a task can start mid-file); whole files (``.bin``, ``.npz``, ``.svg``, ``.json``, gzip-compressed
ndjson) through ``read_located``. So malformed and empty records are exactly what the readers say they are, and
a record refused later (degenerate ink, a repeated key_id) is named as its reader names records: ``cat.ndjson:17``,
``cat.bin: record 3 (byte 120)``, ``doc.json: record 2``. Every error of a task carries its position in the
source (its line, else its record number), so a shard's errors are in file order.
Selection (split by key_id, protocol pre-sampling) happens *before* preprocessing, and the kept
sketches of the task are preprocessed together on flat arrays (``preprocess_flat``). With
``fast=False`` they are preprocessed one by one (``preprocess_reference``): the same bytes, slower.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import FormatError
from ..formats import EmptySketchError, Place, read_located
from ..formats.base import locate
from ..formats.ndjson import not_text, parse_line
from ..preprocess import Preprocessing, unusable_sketches
from ..signals import worker_takes_stop_signals
from ..sketch import Sketch
from .flat import FlatSketches, flatten, preprocess_flat, preprocess_reference
from .shard import MAX_KEY_ID_CHARS, Shard
from .sources import Task
from .splits import Protocol, bottom_k, priorities

__all__ = ["ReadOptions", "run_task", "init_worker", "run_task_global"]

Reported = tuple[float, FormatError]
"""An error of a task and its position in the source: the line, else the record number (an error about the rest
of a file, such as compressed data that breaks off, sits half-way past the last record read before it)."""


@dataclass(frozen=True)
class ReadOptions:
    """What every worker needs besides its task.

    Attributes:
        preprocessing: applied to every kept sketch.
        keys: ``{key_id: split}`` when splits come from split files (others are left out).
        protocol: the per-class sample; each task keeps only its own ``k`` best candidates per class.
        seed: protocol seed.
        fast: batched preprocessing (``False``: the per-sketch reference, identical and slower).
    """

    preprocessing: Preprocessing = Preprocessing()
    keys: Mapping[str, str] | None = None
    protocol: Protocol | None = None
    seed: int = 0
    fast: bool = True


def _chunk_lines(task: Task, errors: list[Reported]) -> list[tuple[int, bytes]]:
    """``(line number, raw line)`` of the non-blank lines in bytes ``[task.start, task.end)``. A file of no UTF-8
    text (UTF-16/32, whose lines cut at ``\n`` bytes would be half read, an image, binary data: ``not_text``) gives
    none, and its first task reports it once, as ``read_ndjson`` does."""
    with open(task.source.path, "rb") as f:
        refusal = not_text(f.read(4096), str(task.source.path))
        if refusal is not None:
            if task.start == 0:
                errors.append((0.5, refusal))
            return []
        f.seek(task.start)
        blob = f.read(task.end - task.start)
    if task.start == 0 and blob.startswith(b"\xef\xbb\xbf"):
        blob = blob[3:]
    return [(n, raw) for n, raw in enumerate(blob.split(b"\n"), task.first_line) if raw and not raw.isspace()]


def _parse_lines(lines: list[tuple[int, bytes]], task: Task, errors: list[Reported]
                 ) -> Iterator[tuple[int, Place | None, Sketch]]:
    """``(line, None, sketch)`` through ``parse_line``, reporting as ``read_ndjson`` does."""
    src = task.source
    source = str(src.path)
    for lineno, raw in lines:
        try:
            yield lineno, None, parse_line(raw, style=src.format, label=src.label)
        except FormatError as exc:
            errors.append((lineno, locate(exc, source, lineno)))


def _file_records(task: Task, errors: list[Reported]) -> Iterator[tuple[int, Place | None, Sketch]]:
    """``(position, place, sketch)`` for a whole file through ``read_located``: the position is the record's line
    in line-based text (gzip-compressed ndjson: the decompressed line, as the reader numbers its errors), else its
    record number, records the reader reported as malformed or empty counted too, so the numbers are the file's. A
    file the reader refuses outright is one ``whole_file`` error."""
    src = task.source
    count = 0  # records so far, the reported ones too: an unreadable part of the file is no record
    last = 0.0  # the position of the last record or error

    def on_error(exc: FormatError) -> None:
        nonlocal count, last
        if not exc.whole_file:
            count += 1
        last = exc.line if exc.line is not None else last + 0.5 if exc.whole_file else count
        errors.append((last, exc))

    try:
        located = read_located(src.path, src.format, label=src.label, on_error=on_error)
    except FormatError as exc:  # refused before any record (gzip under a --format that is not read compressed)
        refusal = locate(exc, str(src.path))
        refusal.whole_file = True  # about the file: no record of it is counted
        on_error(refusal)
        return
    for place, sketch in located:
        count += 1
        last = place.line if place.line is not None else count
        yield int(last), place, sketch


KEYED_FORMATS = frozenset({"simplified", "raw", "spg", "bin"})
"""Formats whose ``key_id`` is the record's own, so a repeat can be the same drawing. Other readers make key
ids up (``train/0`` in every ``.npz``, an SVG's file stem)."""

MIN_ID_DIGITS = 12


def drawing_ids(key_ids: np.ndarray) -> np.ndarray:
    """``(S,)`` bool: which key ids name one drawing wherever they appear: numbers of ``MIN_ID_DIGITS``+ digits,
    as Quick, Draw!'s 16-digit drawing ids (which SPG keeps). Short ids (``"0"``, ``"17"``) are often numbered
    per file, so a repeat of one is not taken for a copy."""
    key_ids = np.asarray(key_ids, dtype=str)
    if not key_ids.size:
        return np.zeros(0, dtype=bool)
    return np.char.isdigit(key_ids) & (np.char.str_len(key_ids) >= MIN_ID_DIGITS)


def repeats(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first, repeat)`` for ``(n,)`` keys: the index of each key's first occurrence, and which entries
    repeat an earlier one."""
    if not len(keys):
        return np.zeros(0, np.int64), np.zeros(0, bool)
    _, first_of, inverse = np.unique(keys, return_index=True, return_inverse=True)
    first = first_of[inverse.reshape(-1)]
    return first, first != np.arange(len(keys))


class DuplicateKeyError(FormatError):
    """A record repeats the ``key_id`` of one read before it; the first is kept."""


def _error_record(position: float, err: FormatError) -> dict[str, Any]:
    """The ``errors.jsonl`` entry of ``err``, with ``"at"``: its position in the source, to sort by (``prepare``
    drops it before writing)."""
    kind = "empty" if isinstance(err, EmptySketchError) else "duplicate" if isinstance(err, DuplicateKeyError) \
        else "unreadable" if err.whole_file else "malformed"
    return {"source": err.source, "line": err.line, "kind": kind, "message": str(err), "at": position}


def _place(rec: _Records, task: Task, i: int) -> Place:
    """Where record ``i`` was read: its reader's ``Place``, or for a chunk of lines, its line."""
    return rec.places[i] if rec.places is not None else Place(str(task.source.path), int(rec.order[i]))


def _named(place: Place) -> str:
    """A record's place in a message about another record of the file: ``line 17``, ``record 3 (byte 120)``."""
    return f"line {place.line}" if place.line is not None else place.prefix.rstrip(": ") or "the file's record"


def _first_keys(rec: _Records, task: Task, usable: np.ndarray, errors: list[Reported]) -> np.ndarray:
    """``usable`` without the records that repeat an earlier record's drawing id (``drawing_ids``) in this task,
    each reported, so a protocol samples distinct drawings. Repeats across tasks are dropped when the shards
    are merged."""
    if task.source.format not in KEYED_FORMATS:
        return usable
    idx = np.flatnonzero(usable & drawing_ids(rec.key_ids))
    first, repeat = repeats(rec.key_ids[idx])
    if not repeat.any():
        return usable
    for j in np.flatnonzero(repeat).tolist():
        i, earlier = idx[j], idx[first[j]]
        error = DuplicateKeyError(f"key_id {rec.key_ids[i]} repeats {_named(_place(rec, task, earlier))}; the first "
                                  "is kept")
        errors.append((int(rec.order[i]), _place(rec, task, i).locate(error)))
    usable = usable.copy()
    usable[idx[repeat]] = False
    return usable


@dataclass
class _Records:
    """The well-formed records of a task, in file order: per-record fields plus the flat points."""

    order: np.ndarray
    places: list[Place] | None  # a whole file's: where its reader found each record; None for a chunk of lines
    labels: np.ndarray
    key_ids: np.ndarray
    tags: np.ndarray
    recognized: np.ndarray
    flat: FlatSketches | None  # fast: flat arrays for batched preprocessing
    sketches: list[Sketch] | None  # reference: sketches preprocessed one by one


def _split_tag(sketch: Sketch, format: str, file_tag: str | None) -> str:
    """The split a record's file gives it (``""``: none): for an ``.npz`` record, the member it was read from (its
    reader's ``meta["split"]``); for any other, the file name's (``cat_train.ndjson`` -> ``"train"``). A record's
    own ``"split"`` field (ndjson, JSON) is plain metadata, kept in ``meta`` and never used: ``write_ndjson``
    writes an ``.npz`` sketch's ``split`` back out, and a test drawing converted into ``cat_train.ndjson`` is
    in train, as its file says."""
    if format == "npz":
        return str(sketch.meta.get("split") or file_tag or "")
    return file_tag or ""


def _records(task: Task, options: ReadOptions, errors: list[Reported]) -> _Records:
    src = task.source
    chunk = task.start >= 0
    found = list(_parse_lines(_chunk_lines(task, errors), task, errors) if chunk else _file_records(task, errors))
    sketches = [sk for _, _, sk in found]
    return _Records(
        order=np.array([n for n, _, _ in found], dtype=np.int64),
        places=None if chunk else [place for _, place, _ in found],
        labels=np.array([sk.label or src.label for sk in sketches], dtype=str),
        # cut to one character over the stored limit: a fixed-width array is as wide as its longest key, so a single
        # 50,000-character key_id would otherwise cost every record of the chunk 200 KB (Shard.drop_long_key_ids
        # then reports and drops the long ones)
        key_ids=np.array([(sk.key_id or "")[: MAX_KEY_ID_CHARS + 1] for sk in sketches], dtype=str),
        tags=np.array([_split_tag(sk, src.format, src.tag) for sk in sketches], dtype=str),
        recognized=np.array([-1 if sk.recognized is None else int(sk.recognized) for sk in sketches], dtype=np.int8),
        flat=flatten(sketches) if options.fast else None,
        sketches=None if options.fast else sketches,
    )


def _usable(rec: _Records, options: ReadOptions, task: Task, errors: list[Reported]) -> np.ndarray:
    """``(R,)`` bool: False for records the simplification would refuse (non-finite coordinates, degenerate
    ink), each reported in ``errors`` with its line. Checked before selection, so a protocol never picks
    a record it then has to drop."""
    usable = np.ones(len(rec.order), dtype=bool)
    if not options.preprocessing.simplify or not len(rec.order):
        return usable
    flat = rec.flat if rec.flat is not None else flatten(rec.sketches)
    for i, reason in unusable_sketches(flat.points, flat.stroke_lengths, flat.sketch_strokes).items():
        usable[i] = False
        errors.append((int(rec.order[i]), _place(rec, task, i).locate(FormatError(reason))))
    return usable


def _select(rec: _Records, options: ReadOptions, task: Task, usable: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(keep mask, tags, priorities)``: split-file membership and the task's protocol candidates, among
    the ``usable`` records."""
    keep = usable.copy()
    tags = rec.tags
    prio = np.zeros(len(rec.order), dtype=np.uint64)
    if options.keys is not None:
        tags = np.array([options.keys.get(k, "") if k else "" for k in rec.key_ids.tolist()], dtype=str)
        keep &= tags != ""
    if options.protocol is not None:
        if options.protocol.recognized_only:
            keep &= rec.recognized != 0
        name = task.source.path.name
        keys = [k or f"{name}:{n}" for k, n in zip(rec.key_ids.tolist(), rec.order.tolist())]
        prio = priorities(options.seed, rec.labels.tolist(), keys)
        cand = np.flatnonzero(keep)
        _, codes = np.unique(rec.labels[cand], return_inverse=True)
        best, _ = bottom_k(codes.reshape(-1), prio[cand], rec.order[cand], options.protocol.k)
        keep[:] = False
        keep[cand[best]] = True
    return keep, tags, prio


def run_task(task: Task, options: ReadOptions) -> Shard:
    """Read, select and preprocess the records of one task. Its errors are in file order (``Reported``). Key ids
    over ``MAX_KEY_ID_CHARS`` are dropped (``Shard.drop_long_key_ids``) here, in the worker, so the shard it sends is
    narrow."""
    errors: list[Reported] = []
    rec = _records(task, options, errors)
    n_parts = sum(e.whole_file for _, e in errors)  # a file or part of one that could not be read: no record count
    read = len(rec.order) + len(errors) - n_parts
    usable = _first_keys(rec, task, _usable(rec, options, task, errors), errors)
    keep, tags, prio = _select(rec, options, task, usable)
    if rec.flat is not None:
        data = preprocess_flat(rec.flat.take(np.flatnonzero(keep)), options.preprocessing)
    else:
        data = preprocess_reference([sk for sk, k in zip(rec.sketches, keep.tolist()) if k], options.preprocessing)
    n_empty = sum(isinstance(e, EmptySketchError) for _, e in errors)
    n_repeat = sum(isinstance(e, DuplicateKeyError) for _, e in errors)
    errors.sort(key=lambda reported: reported[0])  # stable: the reader's, then the refusals, merged by position
    stats = Counter(read=read, malformed=len(errors) - n_empty - n_repeat - n_parts, empty=n_empty,
                    duplicate=n_repeat, unreadable=n_parts, not_selected=int((usable & ~keep).sum()))
    shard = Shard(data, rec.labels[keep], rec.key_ids[keep], tags[keep], rec.recognized[keep], rec.order[keep],
                  prio[keep], stats=stats, errors=[_error_record(at, e) for at, e in errors])
    shard.drop_long_key_ids(task.source.path.as_posix())
    return shard


_OPTIONS: ReadOptions | None = None


def init_worker(options: ReadOptions) -> None:
    """Pool initializer: the options every task of this run shares (sent once per worker). The worker ignores
    Ctrl-C, takes SIGTERM the default way and unblocks both (``signals.worker_takes_stop_signals``;
    ``pipeline._pool`` forks with them blocked)."""
    global _OPTIONS
    _OPTIONS = options
    worker_takes_stop_signals()


def run_task_global(task: Task) -> Shard:
    """``run_task`` with the options given to ``init_worker``."""
    assert _OPTIONS is not None, "init_worker was not called"
    return run_task(task, _OPTIONS)
