"""Input files of ``prepare``: discovery, format, and the work units they are cut into.

Line-based files (``.ndjson`` / ``.jsonl``) are cut into chunks of about ``CHUNK_BYTES`` at line
boundaries, so one big file is spread over all workers; every other file is one task. Chunk
boundaries depend only on the file (never on the number of workers), and one streaming pass per
file computes its SHA-256 and the first line number of every chunk.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ..formats import FORMATS, detect_format, is_gzip, label_from_path, sketch_files
from ..formats.base import broken_link
from .splits import split_of_name
from .storage import is_prepared

__all__ = ["CHUNK_BYTES", "EMPTY_FILE", "Source", "Task", "expand_inputs", "prepared_folder", "scan_tasks"]

CHUNK_BYTES = 4 << 20
"""Target size of one chunk of lines (a constant, so outputs never depend on the worker count)."""

_LINE_SUFFIXES = (".ndjson", ".jsonl")
_BLOCK = 8 << 20


@dataclass(frozen=True)
class Source:
    """One input file.

    Attributes:
        index: position in the sorted input list (the order of the output).
        path: the file.
        format: the concrete format (``simplified``, ``raw``, ``spg``, ``bin``, ``npz``, ``svg``).
        label: the class its name implies (SVG: the parent folder; records with a ``word`` override it).
        tag: the split its name implies (``<class>_train.ndjson`` -> ``"train"``), or ``None``.
        size, mtime_ns: for the resume fingerprint.
    """

    index: int
    path: Path
    format: str
    label: str
    tag: str | None
    size: int
    mtime_ns: int

    @cached_property
    def chunked(self) -> bool:
        """Whether the file is read in byte ranges of lines by parallel tasks: a plain ndjson file is; a gzip one
        (whatever its name) is read whole, as it is decompressed, and so is one holding a JSON document
        (``line_based``: a pretty-printed list of records named ``.ndjson``), as every reader reads it."""
        from ..formats.ndjson import line_based

        return (self.path.suffix.lower() in _LINE_SUFFIXES and self.format in ("simplified", "raw", "spg")
                and not is_gzip(self.path) and line_based(self.path))


@dataclass(frozen=True)
class Task:
    """A unit of work: lines ``[start, end)`` (bytes) of a line-based source starting at line
    ``first_line``, or the whole file (``start = end = -1``). ``last`` marks a file's final task."""

    source: Source
    start: int = -1
    end: int = -1
    first_line: int = 1
    last: bool = True


EMPTY_FILE = "an empty file (0 bytes)"
"""Why ``expand_inputs`` left a file out: it holds nothing, whatever its format (none is read, so every format
says the same)."""
_OWN_OUTPUT = "the output of this run"
GZIP_COPY = "a gzip copy of {name}, which is read instead (both hold the same drawings, e.g. after gunzip -k)"


def prepared_folder(folder: Path) -> str | None:
    """Why a folder walk of ``prepare`` does not go into ``folder``, or ``None``: a prepared dataset (its
    ``meta.json`` and ``errors.jsonl`` would be read as sketch records, and its lack of ``_train``/``_test`` names
    would turn the splits into one), the ``DIR.partial`` work folder of a ``prepare`` (its cached shards), or the
    arrays of a dataset without its ``meta.json``."""
    if is_prepared(folder):
        return "a prepared dataset (its meta.json and errors.jsonl are no sketch files)"
    if folder.name.endswith(".partial"):
        return "the work folder of a prepare (DIR.partial: cached shards)"
    if (folder / "coords.npy").is_file() and (folder / "offsets.npy").is_file():
        return "the arrays of a prepared dataset"
    return None


def expand_inputs(inputs: Iterable[str | os.PathLike[str]] | str | os.PathLike[str], format: str | None = None,
                  *, exclude: Iterable[str | os.PathLike[str]] = (),
                  left_out: list[tuple[Path, str]] | None = None) -> list[Source]:
    """Files named by ``inputs`` (files, or folders walked recursively for sketch files, gzip-compressed ndjson and
    JSON included), sorted and de-duplicated (one file named twice, under any spelling, is read once), with their
    format (``format`` or sniffed) and name-derived label and split.

    A folder walk (``sketch_files``) does not go into an ``exclude`` folder (``prepare``'s own output, silently),
    nor into another prepared dataset or ``.partial`` work folder (``prepared_folder``), and reads ``.npz`` files
    only when they are named. An empty file (0 bytes), named or walked, is no source, nor is ``X.gz`` when ``X`` is
    one too (the uncompressed copy is read; drawings without key ids would otherwise be stored twice). Each folder
    and file so left out but the run's own output goes to ``left_out`` as ``(path, reason)``, for the summary."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    skip = [Path(e).resolve() for e in exclude]

    def prune(folder: Path) -> str | None:
        return _OWN_OUTPUT if folder.resolve() in skip else prepared_folder(folder)

    files: dict[Path, Path] = {}  # resolved -> as named
    dropped: dict[Path, tuple[Path, str]] = {}  # resolved -> (as named, reason)
    for item in inputs:
        p = Path(item)
        walk_out: list[tuple[Path, str]] = []
        if p.is_dir():
            walked = sketch_files(p, gzipped=True, prune=prune, left_out=walk_out,  # prune keeps out ``exclude``
                                  broken_links=True)
        elif p.is_file():
            walked = [p]
        else:
            raise FileNotFoundError(f"no such file or directory: {p}")
        for f in walked:
            if (broken := broken_link(f)) is not None:  # a file of the walk that is not there: a class missing?
                walk_out.append((f, broken))
            elif f.stat().st_size == 0:
                walk_out.append((f, EMPTY_FILE))
            else:
                files.setdefault(f.resolve(), f)
        for f, reason in walk_out:
            if reason != _OWN_OUTPUT:
                dropped.setdefault(f.resolve(), (f, reason))
    for resolved, named in list(files.items()):  # cat.ndjson.gz beside cat.ndjson: read one, not the drawings twice
        if resolved.suffix.lower() == ".gz" and resolved.with_suffix("") in files:
            del files[resolved]
            dropped.setdefault(resolved, (named, GZIP_COPY.format(name=resolved.with_suffix("").name)))
    if left_out is not None:
        left_out.extend(sorted(dropped.values(), key=lambda entry: entry[0].as_posix()))
    out = []
    for i, p in enumerate(sorted(files.values(), key=lambda q: q.as_posix())):
        fmt = detect_format(p) if format is None else _ndjson_style(p) if format == "ndjson" else format
        st = p.stat()
        label = label_from_path(p, folder=fmt == "svg", spg=fmt == "spg")
        out.append(Source(i, p, fmt, label, split_of_name(p), st.st_size, st.st_mtime_ns))
    return out


def _boundaries(path: Path, size: int, chunk_bytes: int) -> list[int]:
    """Chunk starts: 0 and the first line start at or after every multiple of ``chunk_bytes``."""
    starts = [0]
    with open(path, "rb") as f:
        for target in range(chunk_bytes, size, chunk_bytes):
            if target <= starts[-1]:
                continue
            f.seek(target - 1)
            f.readline()  # the line holding byte target-1 ends here, so the next line starts >= target
            pos = f.tell()
            if pos < size and pos > starts[-1]:
                starts.append(pos)
    return starts


def _ndjson_style(path: Path) -> str:
    """The format of ``path`` read as ``--format ndjson`` forces: the ndjson style its content shows (``simplified``,
    ``raw``, ``spg``: so that it is still read in parallel chunks), else ``ndjson`` (read whole, as ndjson, whatever
    else it is: an SVG then fails line by line, as ``sketchgraph predict --format ndjson`` reads it)."""
    from ..errors import FormatError
    from ..formats.ndjson import STYLES

    try:
        detected = detect_format(path)
    except FormatError:
        return "ndjson"
    return detected if detected in STYLES else "ndjson"


def scan_tasks(sources: Iterable[Source], checksums: dict[int, str], chunk_bytes: int | None = None
               ) -> Iterator[Task]:
    """Tasks for ``sources`` in order, lazily; fills ``checksums[source.index]`` (SHA-256 hex) before a
    file's last task is yielded. Line numbers of chunks come from the same single pass.
    ``chunk_bytes`` defaults to ``CHUNK_BYTES``."""
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    for src in sources:
        sha = hashlib.sha256()
        if not src.chunked:
            with open(src.path, "rb") as f:
                while block := f.read(_BLOCK):
                    sha.update(block)
            checksums[src.index] = sha.hexdigest()
            yield Task(src)
            continue
        starts = _boundaries(src.path, src.size, chunk_bytes) if src.size else [0]
        ends = starts[1:] + [src.size]
        line = 1
        with open(src.path, "rb") as f:
            for k, (a, b) in enumerate(zip(starts, ends)):
                first_line, left = line, b - a
                while left:
                    block = f.read(min(_BLOCK, left))
                    if not block:
                        break
                    sha.update(block)
                    line += block.count(b"\n")
                    left -= len(block)
                last = k == len(starts) - 1
                if last:
                    checksums[src.index] = sha.hexdigest()
                yield Task(src, a, b, first_line, last)
