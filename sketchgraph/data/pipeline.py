"""``prepare``: sketch files -> a prepared dataset directory (see ``storage`` for the layout).

Pipeline: sorted input files -> tasks (chunks of lines, or whole files) -> ``workers`` processes, each
parsing, selecting and preprocessing its task into a ``Shard`` -> results merged in input order ->
classes, splits -> arrays written to ``OUT.partial`` -> renamed to ``OUT``.

- Deterministic: the same inputs give the same bytes, whatever ``workers`` is (chunking is fixed,
  results are merged in task order, nothing time- or machine-dependent is stored).
- Resumable: each source file's shard is cached in ``OUT.partial/shards/`` as soon as its last chunk
  is done; a re-run (``resume=True``) skips files whose shard matches (path, size, mtime, options).
- Atomic: ``OUT`` appears only when complete (``meta.json`` is written last, everything is synced to disk, then
  the rename); an existing complete ``OUT`` is replaced only with ``overwrite=True`` (moved aside to a hidden
  ``.OUT.replaced-<pid>`` first, put back after a kill). Only folders prepare made are reused or deleted: a
  ``OUT.partial`` without prepare's marker file (``storage.PARTIAL_MARKER``) is refused, and ``OUT.old`` is a user's.
- Malformed records are skipped and listed with file:line in ``OUT/errors.jsonl`` (in input order: by source,
  then line or record); empty drawings are counted and dropped; a summary is printed at the end. What a folder
  walk left out (another prepared dataset or ``.partial`` work folder, an ``.npz`` not named, an empty file) and
  the input files that held no record are listed in the summary and in ``meta.json`` (``left_out``,
  ``files_without_records``).
- When nothing is left to store, the error gives the counts and the first errors with file:line (all of them in
  ``OUT.partial/errors.jsonl``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing as mp
import os
import time
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .. import __version__
from ..errors import SketchError
from ..formats.base import spaced_label
from ..graph import GraphSpec
from ..preprocess import Preprocessing
from ..signals import stop_signals_blocked
from ..wording import counted
from . import sources as _sources
from .reading import (
    KEYED_FORMATS,
    ReadOptions,
    drawing_ids,
    init_worker,
    repeats,
    run_task,
    run_task_global,
)
from .shard import MAX_KEY_ID_CHARS, Shard
from .sources import Source, Task, expand_inputs, scan_tasks
from .splits import Protocol, assign_protocol, order_splits, parse_protocol, read_split_keys
from .storage import FORMAT_VERSION, PARTIAL_MARKER, claim_partial, is_prepared, publish, recover, write_dataset

__all__ = ["prepare", "PreparedInfo"]

_SHARD_VERSION = 3  # 2: errors carry their position ("at"); gzip ndjson records are numbered by line; 3: no key_id
# over MAX_KEY_ID_CHARS (a cache of version 2 may hold one)
_NO_SPLIT = "all"


@dataclass
class PreparedInfo:
    """What ``prepare`` did.

    Attributes:
        path: the prepared dataset directory.
        num_sketches: sketches stored.
        classes: class names (sorted).
        splits: ``{split: count}``.
        counts: ``read``, ``malformed``, ``empty``, ``duplicate``, ``unreadable`` (files or parts of files, such as
            an ``.npz`` split, that could not be read at all: no record of theirs is counted), ``not_selected``,
            ``long_key_ids`` (sketches stored without their key_id, longer than ``MAX_KEY_ID_CHARS``; listed in
            ``errors.jsonl``), ``kept``, ``truncated`` (sketches cut by the point cap), ``dropped_points``.
        seconds: wall time; ``resumed_files``: source files taken from the resume cache.
        meta: the written ``meta.json``.
    """

    path: Path
    num_sketches: int
    classes: list[str]
    splits: dict[str, int]
    counts: dict[str, int]
    seconds: float
    resumed_files: int = 0
    meta: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def sketches_per_second(self) -> float:
        return self.counts.get("read", 0) / self.seconds if self.seconds > 0 else float("inf")


def _fingerprint(src: Source, options: ReadOptions, keys_digest: str | None) -> str:
    doc = {
        "v": _SHARD_VERSION, "path": src.path.as_posix(), "size": src.size, "mtime_ns": src.mtime_ns,
        "format": src.format, "chunk": _sources.CHUNK_BYTES, "preprocessing": options.preprocessing.to_dict(),
        "protocol": None if options.protocol is None else options.protocol.to_dict(), "seed": options.seed,
        "keys": keys_digest,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _keys_digest(keys: Mapping[str, str] | None) -> str | None:
    if keys is None:
        return None
    h = hashlib.sha256()
    for k in sorted(keys):
        h.update(f"{k}\t{keys[k]}\n".encode())
    return h.hexdigest()


def _run_tasks(tasks: Iterator[Task], options: ReadOptions, pool) -> Iterator[tuple[Task, Shard]]:
    """``(task, shard)`` in task order, in ``pool`` (a process pool) or here when it is ``None``."""
    if pool is None:
        for task in tasks:
            yield task, run_task(task, options)
        return
    pending: list[Task] = []

    def feed() -> Iterator[Task]:
        for task in tasks:
            pending.append(task)
            yield task

    for shard in pool.imap(run_task_global, feed(), chunksize=1):
        yield pending.pop(0), shard


def resume_note(out: str | Path, *, resume: bool = True) -> str:
    """What ``prepare`` keeps when interrupted: it caches each source file's shard in ``OUT.partial`` as soon as the
    file is read, and a rerun takes them from there (said after ``interrupted`` by ``sketchgraph prepare`` and the
    ``data_prep`` scripts). ``resume=False``: the run was given ``--no-resume``, and a rerun of the same command
    would read everything again."""
    out = Path(out)
    rerun = "rerun the same command" if resume else "rerun the same command without --no-resume"
    return f"the source files read so far are cached in {out.with_name(out.name + '.partial')}; {rerun} to resume"


def _pool(workers: int, options: ReadOptions) -> contextlib.AbstractContextManager:
    """A process pool of ``workers`` (fork: cheap, and modules are already imported), or a null context
    for ``workers <= 1``. Created before any thread of ours (progress bar, task feeder) starts.

    Ctrl-C reaches every process of the terminal's foreground group, the workers too: they ignore it and the main
    process, interrupted, ends the pool (each worker printed a traceback of its own); they take SIGTERM, which
    ``Pool.terminate`` sends, the default way (``init_worker``). Both are blocked while the workers are forked
    (``signals.stop_signals_blocked``): one that reaches a worker before its initializer runs is held back until
    then. A SIGTERM that came right after the fork was otherwise lost (the worker then waited for a task for ever,
    and ``Pool.terminate``, joining it, too: a pool that ends as soon as it starts hung ``prepare``)."""
    if workers <= 1:
        return contextlib.nullcontext()
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    with stop_signals_blocked():
        return ctx.Pool(workers, initializer=init_worker, initargs=(options,))


def _split_method(split_files: Any, protocol: Protocol | None, sources: list[Source]) -> str:
    """The split method: ``"keys"``, ``"protocol"``, ``"files"`` or ``"none"``. Without split files or a protocol,
    the splits come from the file names when every source's name carries one (``.npz`` sources carry their own),
    one split ``"all"`` when none does, and a mix is refused (``SketchError``) before anything is read: one stray
    untagged file would otherwise turn a train/valid/test dataset into one split that ``train`` cannot use."""
    if protocol is not None:
        if split_files is not None:
            raise ValueError("give either --split-files or --protocol (split_files or protocol), not both: split "
                             "files give each sketch its split, a protocol draws the splits")
        return "protocol"
    if split_files is None:
        untagged = [s for s in sources if s.tag is None and s.format != "npz"]
        if untagged and len(untagged) < len(sources):
            named = sum(s.tag is not None for s in sources)
            inside = len(sources) - len(untagged) - named  # .npz files: their splits are arrays inside them
            has = [f"{counted(named, 'input file')} {'has' if named == 1 else 'have'} a split at the end of the name "
                   "(<class>_train / _valid / _test)"] if named else []
            has += [f"{counted(inside, '.npz file')} {'holds its' if inside == 1 else 'hold their'} splits inside"
                    ] if inside else []
            raise SketchError(
                f"{' and '.join(has)}, and {len(untagged)} {'has' if len(untagged) == 1 else 'have'} "
                f"no split (e.g. {untagged[0].path}): the splits cannot come from the names, and everything in one "
                f"split {_NO_SPLIT!r} would leave no train split. Nothing was read: rename or move the untagged "
                "files (or name only the files to read), or split every class by a seeded sample "
                "(--protocol train=0.8,valid=0.1,test=0.1)")
        return "files" if sources and not untagged else "none"
    if split_files == "auto":
        untagged = [str(s.path) for s in sources if s.tag is None and s.format != "npz"]
        if untagged:
            raise SketchError(f"split_files='auto' needs file names ending in _train/_valid/_test; "
                              f"{len(untagged)} do not, e.g. {untagged[0]}")
        return "files"
    return "keys"


def _left_out_lines(left_out: list[dict[str, str]], limit: int = 5) -> list[str]:
    """Summary lines naming what the folder walks left out (``expand_inputs``), the first ``limit`` of them."""
    if not left_out:
        return []
    lines = [f"  left out of the inputs ({len(left_out):,}"
             + (", all in meta.json 'left_out'):" if len(left_out) > limit else "):")]
    lines += [f"    {entry['path']}: {entry['reason']}" for entry in left_out[:limit]]
    if len(left_out) > limit:
        lines.append(f"    ... and {len(left_out) - limit} more")
    return lines


def _held_no_record(paths: list[str], limit: int = 5) -> str:
    """``N input files held no record: a, b ...`` naming the first ``limit``."""
    return (f"{counted(len(paths), 'input file')} held no record: "
            f"{', '.join(paths[:limit])}{' ...' if len(paths) > limit else ''}")


def _first_errors(errors: list[dict[str, Any]], limit: int = 5) -> list[str]:
    """The first ``limit`` error messages (file:line: reason), and how many more there are."""
    lines = [f"    {e['message']}" for e in errors[:limit]]
    if len(errors) > limit:
        lines.append(f"    ... and {len(errors) - limit} more")
    return lines


def _sorted_errors(errors: list[dict[str, Any]], sources: list[Source]) -> list[dict[str, Any]]:
    """``errors`` in input order, as ``errors.jsonl`` lists them: by source, then position in it (line or record
    number, ``"at"``, which is dropped), the reports about one record in the order they were made."""
    index = {name: s.index for s in sources for name in (str(s.path), s.path.as_posix())}
    keyed = sorted(enumerate(errors), key=lambda ie: (index.get(ie[1]["source"], len(sources)),
                                                      ie[1].get("at") or 0, ie[0]))
    return [{k: v for k, v in e.items() if k != "at"} for _, e in keyed]


def _nothing_left(counts: dict[str, int], errors: list[dict[str, Any]], sources: list[Source],
                  without_records: list[str], left_out: list[dict[str, str]], listed: Path) -> SketchError:
    """The error when no sketch survives: what was read and dropped, and the first errors with file:line."""
    c = counts
    lines = [f"no sketches left to store: read {counted(c['read'], 'record')} from "
             f"{counted(len(sources), 'input file')}; malformed {c['malformed']:,}, empty {c['empty']:,}, "
             f"repeated key_ids {c['duplicate']:,}, not selected {c['not_selected']:,}, files or parts of files "
             f"unreadable {c['unreadable']:,}"]
    if errors:
        lines.append(f"  first errors (all {len(errors):,} in {listed}):")
        lines += _first_errors(errors)
    if without_records:
        lines.append(f"  {_held_no_record(without_records)}")
    if c["not_selected"] and not errors:
        lines.append("  every sketch read was left out by the split files or the protocol (see --split-files, "
                     "--protocol)")
    lines += _left_out_lines(left_out)
    return SketchError("\n".join(lines))


def barren_inputs(info: PreparedInfo) -> list[str]:
    """The input files that held records but gave the dataset no sketch: a class may be missing. Under split files
    or the names' splits, any such file (its records malformed, repeated, or in no split file); under a
    ``--protocol``, which draws a sample per class and may well take nothing from one of a class's files, only
    those whose records were all malformed or empty."""
    meta = info.meta
    if (meta.get("split_method") or {}).get("kind") == "protocol":
        return list(meta.get("files_without_usable_records", []))
    return [src["path"] for src in meta.get("sources", []) if src.get("records") and not src.get("kept")]


def _barren_why(barren: list[str], errors: list[dict[str, Any]], by_keys: bool) -> str:
    """Why the ``barren_inputs`` gave no sketch, as their errors tell it: every record a repeated key_id (a copy of
    another input), else unreadable or repeated records, or (``by_keys``) records in no split file."""
    kinds: dict[str, set[str]] = {}
    for e in errors:
        kinds.setdefault(e["source"], set()).add(e["kind"])
    if all(kinds.get(path) == {"duplicate"} for path in barren):
        return "each of their records repeated a key_id read before: copies of other inputs?"
    if by_keys:
        return "none of their records is in the split files, or none could be read or was new: a class left out?"
    return "none of their records could be read, or each repeated a key_id read before"


def _summary(info: PreparedInfo, errors: list[dict[str, Any]], out: Path) -> str:
    c = info.counts
    splits = " / ".join(f"{k} {v:,}" for k, v in info.splits.items())
    lines = [
        f"prepared {counted(info.num_sketches, 'sketch')}, {counted(len(info.classes), 'class')} ({splits}) -> {out}",
        f"  read {counted(c['read'], 'record')} in {info.seconds:.1f} s ({info.sketches_per_second:,.0f}/s); "
        f"malformed {c['malformed']:,}, empty dropped {c['empty']:,}, repeated key_ids dropped {c['duplicate']:,}, "
        f"not selected {c['not_selected']:,}, "
        f"truncated at the point cap {c['truncated']:,} ({c['dropped_points']:,} points)",
    ]
    method = info.meta.get("split_method", {})
    if method.get("kind") == "keys" and method["key_ids_found"] < method["key_ids"]:
        missing = method["key_ids"] - method["key_ids_found"]
        lines.append(f"  split files list {method['key_ids']:,} key_ids; {missing:,} of them are in no input "
                     "(or were malformed, empty or repeated)")
    if method.get("name_splits_ignored"):
        lines.append(f"  note: {counted(method['name_splits_ignored'], 'input file')} carry a split in their names "
                     "(_train / _valid / _test); --protocol drew the splits anew instead (leave it out to keep "
                     "them)")
    barren = barren_inputs(info)
    if barren:
        why = _barren_why(barren, errors, method.get("kind") == "keys")
        lines.append(f"  warning: {counted(len(barren), 'input file')} held records but gave no sketch ({why}): "
                     f"{', '.join(barren[:5])}{' ...' if len(barren) > 5 else ''}")
    if len(info.classes) < 2:
        lines.append(f"  warning: {counted(len(info.classes), 'class')} ({', '.join(info.classes)}): sketchgraph train "
                     "needs at least two to learn anything, and refuses this dataset")
    for name in method.get("empty_splits", []):
        lines.append(f"  warning: split {name!r} is empty: the protocol's share of each class rounds to 0 "
                     "(give counts, e.g. train=3,valid=1,test=1, or larger fractions)")
    for variant, name in info.meta.get("merged_labels", {}).items():
        shown = repr(variant) if unicodedata.is_normalized("NFC", variant) else f"{ascii(variant)} (decomposed)"
        lines.append(f"  class {shown} stored as {name!r} (the same name spelt differently)")
    if info.resumed_files:
        lines.append(f"  resumed: {counted(info.resumed_files, 'source file')} taken from the cache")
    lines += _left_out_lines(info.meta.get("left_out", []))
    empty = info.meta.get("files_without_records", [])
    if empty:
        lines.append(f"  warning: {_held_no_record(empty)}")
    if c.get("long_key_ids"):
        lines.append(f"  warning: {counted(c['long_key_ids'], 'sketch')} stored without its key_id, which was longer "
                     f"than {MAX_KEY_ID_CHARS} characters (listed in {out / 'errors.jsonl'})")
    lost = [e for e in errors if e["kind"] == "unreadable"]
    if lost:
        lines.append(f"  files or parts of files that could not be read at all (their records are not counted): "
                     f"{len(lost)}, in {out / 'errors.jsonl'}")
        lines += [f"    {e['message']}" for e in lost[:5]]
    bad = [e for e in errors if e["kind"] == "malformed"]
    if bad:
        lines.append(f"  malformed records (all {len(bad)} in {out / 'errors.jsonl'}):")
        lines += _first_errors(bad)
    return "\n".join(lines)


@contextlib.contextmanager
def _partial_kept_on_refusal(partial: Path) -> Iterator[None]:
    """A ``SketchError`` raised once ``partial`` is claimed (a ``--protocol`` asking more sketches than a class has,
    no sketch left to store) says that the files read so far stay cached there, and how the next run treats them."""
    try:
        yield
    except SketchError as exc:
        if not (partial / PARTIAL_MARKER).is_file():
            raise
        raise SketchError(f"{exc}\n(the files read so far are kept in {partial}: a re-run on the same files with the "
                          "same preprocessing, protocol, seed and split files reuses them instead of reading them "
                          "again; delete that folder, or pass --no-resume (resume=False in Python), to start over)"
                          ) from exc


def prepare(
    inputs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    preprocessing: Preprocessing = Preprocessing(),
    graph_spec: GraphSpec = GraphSpec(),
    split_files: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None = None,
    protocol: str | Mapping[str, int | float] | Protocol | None = None,
    seed: int = 0,
    workers: int = 2,
    resume: bool = True,
    overwrite: bool = False,
    format: str | None = None,
    progress: bool = True,
    fast: bool = True,
) -> PreparedInfo:
    """Read sketch files, preprocess them and write a prepared dataset to ``out_dir``.

    Args:
        inputs: files and/or folders (walked recursively, sorted, gzip-compressed ndjson and JSON included;
            ``.npz`` only when named; another prepared dataset or ``.partial`` work folder is not gone into; empty
            files are left out; what was left out is listed in the summary and ``meta["left_out"]``).
        out_dir: the dataset directory to create (built in ``out_dir + ".partial"``, renamed at the end).
        preprocessing: simplification / point cap applied to every sketch.
        graph_spec: relations recorded in ``meta.json`` (``PreparedDataset.graph_spec``): the masks
            ``make_loader(split)`` builds when it is given no ``relations``. ``sketchgraph train`` and ``evaluate``
            do not use them: they build the relations of the model (its preset's, recorded in the checkpoint).
        split_files: ``None``: splits from file names when every input has one (``<class>_train.ndjson``,
            npz splits), one split ``"all"`` when none has, an error (before reading) when some have and some
            have not; ``"auto"``: from file names (an error when one lacks it); a folder (or list) of split
            files: each sketch goes to the split listing its key_id.
        protocol: per-class seeded sample, ``"quickdraw414k"``, ``"train=650,valid=50,test=100"`` or a
            dict (see ``sketchgraph.data.splits``).
        seed: the protocol's seed.
        workers: processes (1 runs in this process); outputs do not depend on it.
        resume: reuse the per-file shards of an interrupted run (``out_dir.partial/shards``).
        overwrite: replace an existing complete ``out_dir``.
        format: force one input format (default: per file, sniffed).
        progress: show a progress bar and print the summary.
        fast: batched preprocessing (``False``: the per-sketch reference; same bytes, slower).

    Returns:
        ``PreparedInfo``. Raises ``FileExistsError`` when ``out_dir`` is complete and not ``overwrite``;
        ``SketchError`` when there is no sketch file, the file names' splits are mixed, or no sketch is left to
        store (the message gives the counts and the first errors with file:line).
    """
    t0 = time.perf_counter()
    preprocessing.check_cap()
    out = Path(out_dir)
    if out.name in ("", ".", ".."):
        out = out.resolve()  # "." or "..": name the folder, so DIR.partial sits beside it
    partial = out.with_name(out.name + ".partial")
    recover(out)  # a run killed while it replaced out: the old dataset comes back first (only prepare's own folders)
    if is_prepared(out) and not overwrite:
        raise FileExistsError(f"{out} already holds a prepared dataset; pass --overwrite (overwrite=True) to replace "
                              "it")
    if out.exists() and not is_prepared(out) and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not a prepared dataset; refusing to replace it")
    proto = parse_protocol(protocol)
    walked_out: list[tuple[Path, str]] = []
    sources = expand_inputs(inputs, format, exclude=[out, partial], left_out=walked_out)
    left_out = [{"path": p.as_posix(), "reason": reason} for p, reason in walked_out]
    if not sources:
        named = [str(inputs)] if isinstance(inputs, (str, os.PathLike)) else [str(i) for i in inputs]
        raise SketchError("\n".join([f"no sketch files in {', '.join(named)}", *_left_out_lines(left_out)]))
    method = _split_method(split_files, proto, sources)
    keys = read_split_keys(split_files) if method == "keys" else None
    options = ReadOptions(preprocessing=preprocessing, keys=keys, protocol=proto, seed=seed, fast=fast)
    claim_partial(partial, out, fresh=not resume)  # a .partial that prepare did not make is refused, never emptied
    with _partial_kept_on_refusal(partial):

        shards, infos, resumed = _read_sources(sources, options, partial / "shards", workers, progress)
        owner = np.concatenate([np.full(len(sh), i, np.int64) for i, sh in enumerate(shards)])  # (S,) source index
        everything = Shard.concat(shards)
        everything, owner = _drop_repeats(everything, owner, sources)
        merged = _merge_spellings(everything)
        split_of = _assign_splits(everything, method, proto, sources, owner)
        keep = split_of != ""
        final = everything if keep.all() else everything.select(keep)
        split_of, owner = split_of[keep].astype(str), owner[keep]
        errors = _sorted_errors(everything.errors, sources)
        without_records = [s.path.as_posix() for s in sources
                           if not infos[s.index]["stats"].get("read") and not infos[s.index]["stats"].get("unreadable")]
        # files whose records were all malformed or empty: nothing in them could be used, whatever the splits
        unusable = [s.path.as_posix() for s in sources if (st := infos[s.index]["stats"]).get("read")
                    and st.get("read", 0) <= st.get("malformed", 0) + st.get("empty", 0)]
        stats = everything.stats
        counts = {
            "read": int(stats["read"]), "malformed": int(stats["malformed"]), "empty": int(stats["empty"]),
            "duplicate": int(stats["duplicate"]), "unreadable": int(stats["unreadable"]),
            "not_selected": int(stats["read"] - stats["malformed"] - stats["empty"] - stats["duplicate"] - len(final)),
            "long_key_ids": int(stats["long_key_id"]),
        }
        if not len(final):
            listed = partial / "errors.jsonl"
            listed.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in errors), encoding="utf-8")
            raise _nothing_left(counts, errors, sources, without_records, left_out, listed)
        classes = sorted(set(final.labels.tolist()))
        split_names = order_splits(set(split_of.tolist()))
        labels = np.searchsorted(np.array(classes), final.labels).astype(np.int32)
        position = {name: i for i, name in enumerate(split_names)}
        split_idx = np.fromiter((position[n] for n in split_of.tolist()), np.uint8, len(split_of))

        d = final.data
        counts.update(kept=len(final), truncated=int((d.dropped > 0).sum()), dropped_points=int(d.dropped.sum()))
        kept = np.bincount(owner, minlength=len(sources))
        per_class = np.zeros((len(classes), len(split_names)), np.int64)
        np.add.at(per_class, (labels, split_idx), 1)
        split_method: dict[str, Any] = {"kind": method}
        if method == "protocol":
            split_method.update(protocol=proto.to_dict(), seed=seed)
            # a split the protocol asks for that came out empty (fractions of small classes round to 0)
            split_method["empty_splits"] = [n for n, size in proto.sizes.items() if size and n not in split_names]
            # names carrying a split (cat_test.ndjson) were not followed: the protocol drew every split
            if ignored := sum(s.tag is not None for s in sources):
                split_method["name_splits_ignored"] = ignored
        elif method == "keys":
            named = [split_files] if isinstance(split_files, (str, os.PathLike)) else list(split_files)
            found = len(set(final.key_ids.tolist()) & keys.keys())
            split_method.update(split_files=sorted(Path(p).as_posix() for p in named), key_ids=len(keys),
                                key_ids_found=found)
        meta = {
            "format_version": FORMAT_VERSION,
            "library_version": __version__,
            "classes": classes,
            "splits": dict(zip(split_names, map(int, per_class.sum(0)))),
            "num_sketches": len(final),
            "preprocessing": preprocessing.to_dict(),
            "graph_spec": graph_spec.to_dict(),
            "split_method": split_method,
            "counts": counts,
            "class_counts": {c: dict(zip(split_names, map(int, row))) for c, row in zip(classes, per_class)},
            "merged_labels": merged,
            "left_out": left_out,
            "files_without_records": without_records,
            "files_without_usable_records": unusable,
            "sources": [
                {"path": s.path.as_posix(), "sha256": infos[s.index]["sha256"], "bytes": infos[s.index]["bytes"],
                 "format": infos[s.index]["format"], "records": int(infos[s.index]["stats"].get("read", 0)),
                 "kept": int(kept[s.index])}
                for s in sources
            ],
        }
        meta = write_dataset(partial, d.coords, d.flags, d.lengths, labels, split_idx, final.key_ids, d.times, meta,
                             errors)
        publish(partial, out)

        result = PreparedInfo(out, len(final), classes, meta["splits"], counts, time.perf_counter() - t0,
                              resumed_files=resumed, meta=meta)
        if progress:
            print(_summary(result, errors, out), flush=True)
        return result


def _read_sources(sources: list[Source], options: ReadOptions, shard_dir: Path, workers: int, progress: bool
                  ) -> tuple[list[Shard], dict[int, dict[str, Any]], int]:
    """Every source's ``Shard``, from the resume cache in ``shard_dir`` or computed (and cached).
    Returns ``(shards in source order, cache info per source, number resumed)``."""
    shard_dir.mkdir(parents=True, exist_ok=True)
    keys_digest = _keys_digest(options.keys)
    stems = [shard_dir / f"{s.index:06d}" for s in sources]
    prints = [_fingerprint(s, options, keys_digest) for s in sources]
    infos = {s.index: info for s in sources
             if (info := Shard.load_info(stems[s.index])) is not None and info.get("fingerprint") == prints[s.index]}
    todo = [s for s in sources if s.index not in infos]
    checksums: dict[int, str] = {}
    current: list[Shard] = []
    done: dict[int, Shard] = {}
    with _pool(workers if todo else 0, options) as pool, tqdm(
        total=sum(s.size for s in todo), unit="B", unit_scale=True, desc="prepare", leave=False,
        disable=None if progress else True,  # None: no bar when stderr is not a terminal
    ) as bar:
        for task, shard in _run_tasks(scan_tasks(todo, checksums), options, pool):
            current.append(shard)
            bar.update((task.end - task.start) if task.start >= 0 else task.source.size)
            if task.last:
                src = task.source
                info = {"fingerprint": prints[src.index], "sha256": checksums[src.index], "bytes": src.size,
                        "format": src.format}
                done[src.index] = Shard.concat(current)
                done[src.index].save(stems[src.index], info)
                current = []
                infos[src.index] = Shard.load_info(stems[src.index])
    shards = [done[s.index] if s.index in done else Shard.load(stems[s.index]) for s in sources]
    return shards, infos, len(sources) - len(todo)


def _drop_repeats(shard: Shard, owner: np.ndarray, sources: list[Source]) -> tuple[Shard, np.ndarray]:
    """``shard`` and ``owner`` without the sketches whose drawing id (a Quick, Draw! key_id, see ``drawing_ids``
    and ``KEYED_FORMATS``) an earlier source or task already gave; each repeat is reported as a ``duplicate``
    error and counted. The first in input order is kept, whatever the number of workers."""
    keyed = np.array([source.format in KEYED_FORMATS for source in sources], dtype=bool)
    idx = np.flatnonzero(keyed[owner] & drawing_ids(shard.key_ids)) if len(shard) else np.zeros(0, np.int64)
    first, repeat = repeats(shard.key_ids[idx])
    if not repeat.any():
        return shard, owner

    def where(k: int) -> str:  # a line of an ndjson file, a record of a .bin file (they have no lines)
        src, n = sources[owner[k]], int(shard.order[k])
        return f"{src.path.as_posix()} record {n}" if src.format == "bin" else f"{src.path.as_posix()}:{n}"

    for j in np.flatnonzero(repeat).tolist():
        i, earlier = idx[j], idx[first[j]]
        source, line = sources[owner[i]].path.as_posix(), int(shard.order[i])
        shard.errors.append({
            "source": source, "line": line, "kind": "duplicate",
            "message": f"{where(i)}: key_id {shard.key_ids[i]} repeats {where(earlier)}; the first is kept",
            "at": line,
        })
    shard.stats["duplicate"] += int(repeat.sum())
    keep = np.ones(len(shard), dtype=bool)
    keep[idx[repeat]] = False
    return shard.select(keep), owner[keep]


def _merge_spellings(shard: Shard) -> dict[str, str]:
    """One class per name: labels that differ only in ``_`` for a space, in white space or in Unicode's form
    (``alarm_clock`` from a file name, ``alarm clock`` from a ``word`` field, ``alarm  clock``; ``cafe\u0301`` as
    macOS spells a file name and ``caf\u00e9``) become one class, stored under the name with single spaces in the
    composed form NFC (``alarm clock``, ``caf\u00e9``), whichever sources or drawings the run picks. Case is kept:
    ``A`` and ``a`` stay two classes (letters). Rewrites ``shard.labels`` in place; returns ``{other spelling:
    stored}``."""
    if not len(shard):
        return {}
    groups: dict[str, list[str]] = {}
    for name in np.unique(shard.labels).tolist():
        groups.setdefault(unicodedata.normalize("NFC", spaced_label(name)), []).append(name)
    merged = {name: key for key, names in groups.items() if len(names) > 1 for name in names if name != key}
    if merged:
        shard.labels = np.array([merged.get(n, n) for n in shard.labels.tolist()], dtype=str)
    return dict(sorted(merged.items()))


def _assign_splits(shard: Shard, method: str, protocol: Protocol | None, sources: list[Source], owner: np.ndarray
                   ) -> np.ndarray:
    """Split name per sketch (``""``: left out), ``(S,)`` object array."""
    if method == "protocol":
        classes = sorted(set(shard.labels.tolist()))
        codes = np.searchsorted(np.array(classes), shard.labels) if len(shard) else np.zeros(0, np.int64)
        return assign_protocol(protocol, codes, shard.priority, np.arange(len(shard)), classes)
    if method == "none":
        return np.full(len(shard), _NO_SPLIT, dtype=object)
    split_of = shard.tags.astype(object)
    if method == "files" and (missing := np.flatnonzero(split_of == "")).size:
        raise SketchError(f"{counted(missing.size, 'sketch')} {'has' if missing.size == 1 else 'have'} no split (e.g. "
                          f"from {sources[owner[missing[0]]].path})")
    return split_of
