"""The worker side of ``prepare``: one ``Task`` -> one ``Shard``.

Chunks of ndjson lines go through ``parse_line`` (as ``read_ndjson``, line by
line, so a task can start mid-file); whole files (``.bin``, ``.npz``, ``.svg``, ``.json``) through
``read_sketches``. So malformed and empty records are exactly what the readers say they are.
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
from ..formats import EmptySketchError, read_sketches
from ..formats.base import locate
from ..formats.ndjson import parse_line
from ..preprocess import Preprocessing, unusable_sketches
from ..sketch import Sketch
from .flat import FlatSketches, flatten, preprocess_flat, preprocess_reference
from .shard import Shard
from .sources import Task
from .splits import Protocol, bottom_k, priorities

__all__ = ["ReadOptions", "run_task", "init_worker", "run_task_global"]


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


def _chunk_lines(task: Task) -> list[tuple[int, bytes]]:
    """``(line number, raw line)`` of the non-blank lines in bytes ``[task.start, task.end)``."""
    with open(task.source.path, "rb") as f:
        f.seek(task.start)
        blob = f.read(task.end - task.start)
    if task.start == 0 and blob.startswith(b"\xef\xbb\xbf"):
        blob = blob[3:]
    return [(n, raw) for n, raw in enumerate(blob.split(b"\n"), task.first_line) if raw and not raw.isspace()]


def _parse_lines(lines: list[tuple[int, bytes]], task: Task, errors: list[FormatError]
                 ) -> Iterator[tuple[int, Sketch]]:
    """``(line, sketch)`` through ``parse_line``, reporting as ``read_ndjson`` does."""
    src = task.source
    source = str(src.path)
    for lineno, raw in lines:
        try:
            yield lineno, parse_line(raw, style=src.format, label=src.label)
        except FormatError as exc:
            errors.append(locate(exc, source, lineno))


def _file_records(task: Task, errors: list[FormatError]) -> Iterator[tuple[int, Sketch]]:
    """``(record number, sketch)`` for a whole file through ``read_sketches``; records it reported as
    malformed or empty count too, so the numbers are the file's."""
    src = task.source
    skipped = 0  # records reported: an unreadable part of the file is no record

    def on_error(exc: FormatError) -> None:
        nonlocal skipped
        errors.append(exc)
        skipped += not exc.whole_file

    for n, sketch in enumerate(read_sketches(src.path, src.format, label=src.label, on_error=on_error), 1):
        yield n + skipped, sketch


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


def _error_record(err: FormatError) -> dict[str, Any]:
    kind = "empty" if isinstance(err, EmptySketchError) else "duplicate" if isinstance(err, DuplicateKeyError) \
        else "unreadable" if err.whole_file else "malformed"
    return {"source": err.source, "line": err.line, "kind": kind, "message": str(err)}


def _first_keys(rec: _Records, task: Task, usable: np.ndarray, errors: list[FormatError]) -> np.ndarray:
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
        errors.append(DuplicateKeyError(f"key_id {rec.key_ids[i]} repeats line {rec.order[earlier]}; the first is "
                                        "kept", source=str(task.source.path), line=int(rec.order[i])))
    usable = usable.copy()
    usable[idx[repeat]] = False
    return usable


@dataclass
class _Records:
    """The well-formed records of a task, in file order: per-record fields plus the flat points."""

    order: np.ndarray
    labels: np.ndarray
    key_ids: np.ndarray
    tags: np.ndarray
    recognized: np.ndarray
    flat: FlatSketches | None  # fast: flat arrays for batched preprocessing
    sketches: list[Sketch] | None  # reference: sketches preprocessed one by one


def _records(task: Task, options: ReadOptions, errors: list[FormatError]) -> _Records:
    src = task.source
    pairs = list(_parse_lines(_chunk_lines(task), task, errors) if task.start >= 0 else _file_records(task, errors))
    sketches = [sk for _, sk in pairs]
    return _Records(
        order=np.array([n for n, _ in pairs], dtype=np.int64),
        labels=np.array([sk.label or src.label for sk in sketches], dtype=str),
        key_ids=np.array([sk.key_id or "" for sk in sketches], dtype=str),
        tags=np.array([sk.meta.get("split") or src.tag or "" for sk in sketches], dtype=str),
        recognized=np.array([-1 if sk.recognized is None else int(sk.recognized) for sk in sketches], dtype=np.int8),
        flat=flatten(sketches) if options.fast else None,
        sketches=None if options.fast else sketches,
    )


def _usable(rec: _Records, options: ReadOptions, task: Task, errors: list[FormatError]) -> np.ndarray:
    """``(R,)`` bool: False for records the simplification would refuse (non-finite coordinates, degenerate
    ink), each reported in ``errors`` with its line. Checked before selection, so a protocol never picks
    a record it then has to drop."""
    usable = np.ones(len(rec.order), dtype=bool)
    if not options.preprocessing.simplify or not len(rec.order):
        return usable
    flat = rec.flat if rec.flat is not None else flatten(rec.sketches)
    for i, reason in unusable_sketches(flat.points, flat.stroke_lengths, flat.sketch_strokes).items():
        usable[i] = False
        errors.append(FormatError(reason, source=str(task.source.path), line=int(rec.order[i])))
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
    """Read, select and preprocess the records of one task."""
    errors: list[FormatError] = []
    rec = _records(task, options, errors)
    n_parts = sum(e.whole_file for e in errors)  # a file or part of one that could not be read: no record count
    read = len(rec.order) + len(errors) - n_parts
    usable = _first_keys(rec, task, _usable(rec, options, task, errors), errors)
    keep, tags, prio = _select(rec, options, task, usable)
    if rec.flat is not None:
        data = preprocess_flat(rec.flat.take(np.flatnonzero(keep)), options.preprocessing)
    else:
        data = preprocess_reference([sk for sk, k in zip(rec.sketches, keep.tolist()) if k], options.preprocessing)
    n_empty = sum(isinstance(e, EmptySketchError) for e in errors)
    n_repeat = sum(isinstance(e, DuplicateKeyError) for e in errors)
    stats = Counter(read=read, malformed=len(errors) - n_empty - n_repeat - n_parts, empty=n_empty,
                    duplicate=n_repeat, unreadable=n_parts, not_selected=int((usable & ~keep).sum()))
    return Shard(data, rec.labels[keep], rec.key_ids[keep], tags[keep], rec.recognized[keep], rec.order[keep],
                 prio[keep], stats=stats, errors=[_error_record(e) for e in errors])


_OPTIONS: ReadOptions | None = None


def init_worker(options: ReadOptions) -> None:
    """Pool initializer: the options every task of this run shares (sent once per worker)."""
    global _OPTIONS
    _OPTIONS = options


def run_task_global(task: Task) -> Shard:
    """``run_task`` with the options given to ``init_worker``."""
    assert _OPTIONS is not None, "init_worker was not called"
    return run_task(task, _OPTIONS)
