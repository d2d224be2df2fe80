"""Plumbing shared by the readers and writers: error reporting, record places, gzip, label inference, atomic
writes."""

from __future__ import annotations

import gzip
import os
import re
import stat
import tempfile
import time
import unicodedata
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, NamedTuple, Union

from .. import temporaries
from ..errors import EmptySketchError, FormatError

__all__ = [
    "EmptySketchError", "OnError", "PathLike", "Place", "report", "locate", "label_from_path", "canonical_label",
    "spaced_label", "atomic_write", "nearest_existing", "GZIP_MAGIC", "GZIP_ERRORS", "is_gzip", "open_bytes",
    "plain_name", "broken_link", "BROKEN_LINK",
]

PathLike = Union[str, "os.PathLike[str]"]

OnError = Callable[[FormatError], object] | None
"""``None`` raises the first ``FormatError``; a callable receives each one and reading goes on."""


def report(error: FormatError, on_error: OnError) -> None:
    """Raise ``error`` when ``on_error`` is ``None``, else hand it to the callback."""
    if on_error is None:
        raise error
    on_error(error)


def locate(error: FormatError, source: str, line: int | None = None, prefix: str = "") -> FormatError:
    """The same error (same class) with ``source``/``line`` filled in; ``prefix`` names the record
    when there is no line number (``"record 3: "``)."""
    if error.source is not None:
        return error
    return type(error)(prefix + str(error), source=source, line=line, whole_file=error.whole_file,
                       key_id=error.key_id, label=error.label)


class Place(NamedTuple):
    """Where a reader found a record, to name it in a later error as the reader names a bad record: its file
    ``source``, its 1-based ``line`` in a line-based text file, else ``prefix`` naming it (``"record 3: "``)."""

    source: str
    line: int | None = None
    prefix: str = ""

    def locate(self, error: FormatError) -> FormatError:
        """``error`` (say, a refusal after reading) placed here: ``face.ndjson:17: reason``."""
        return locate(error, self.source, self.line, self.prefix)


GZIP_MAGIC = b"\x1f\x8b"
GZIP_ERRORS: tuple[type[Exception], ...] = (gzip.BadGzipFile, EOFError, zlib.error)
"""What reading gzip-compressed data raises when the data is corrupt (``BadGzipFile``, ``zlib.error``) or
truncated (``EOFError``)."""


def is_gzip(path: PathLike) -> bool:
    """Whether the file's content is gzip-compressed (its first two bytes are gzip's magic ``1f 8b``)."""
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def open_bytes(path: PathLike) -> IO[bytes]:
    """The file opened for reading bytes, decompressed on the fly when its content is gzip (``is_gzip``), so
    ``x.ndjson.gz`` reads line by line as ``x.ndjson`` does, with the same line numbers. The magic is peeked at,
    not read, so a plain stream (``/dev/stdin``) loses nothing."""
    f = open(path, "rb")
    if f.peek(2)[:2] != GZIP_MAGIC:
        return f
    return _ClosingGzip(fileobj=f)  # decompresses what f reads, the peeked bytes included


class _ClosingGzip(gzip.GzipFile):
    """A ``GzipFile`` over an open file that closes that file too (``GzipFile`` leaves a ``fileobj`` open)."""

    def close(self) -> None:
        inner = self.fileobj
        try:
            super().close()
        finally:
            if inner is not None:
                inner.close()


def plain_name(path: PathLike) -> str:
    """The file name without a final ``.gz`` (``cat.ndjson.gz`` -> ``cat.ndjson``), in which a format's suffix and
    a class name are read."""
    name = Path(path).name
    return name[:-3] if name.lower().endswith(".gz") else name


_SPLIT_SUFFIX = re.compile(r"_(train|valid|test|raw)$")
_DOWNLOAD_PREFIX = re.compile(r"^(full_(simplified|raw|binary|numpy_bitmap)_|sketchrnn_)")


def label_from_path(path: PathLike, *, folder: bool = False, spg: bool = False) -> str:
    """The class name a file's name implies.

    ``airplane_train.ndjson`` -> ``"airplane"`` (``_train/_valid/_test/_raw`` stripped),
    ``The Eiffel Tower.ndjson`` -> ``"The Eiffel Tower"``, ``full_simplified_cat.ndjson`` -> ``"cat"``,
    ``full_raw_cat.ndjson.gz`` -> ``"cat"`` (a final ``.gz`` is not part of the name);
    with ``folder=True`` (one sketch per file, as TU-Berlin's SVGs) the parent folder's name:
    ``alarm clock/81.svg`` -> ``"alarm clock"``. With ``spg=True`` (SPG files, named after the Quick, Draw!
    word with ``_`` for a space) the word itself: ``alarm_clock_test.ndjson`` -> ``"alarm clock"``.
    """
    p = Path(path)
    if folder:
        return (p.parent.name or p.resolve().parent.name) or p.stem
    label = _SPLIT_SUFFIX.sub("", _DOWNLOAD_PREFIX.sub("", Path(plain_name(p)).stem))
    return label.replace("_", " ") if spg else label


def spaced_label(label: str) -> str:
    """A class name with ``_`` read as a space and runs of white space collapsed, case kept
    (``"alarm_clock"``, ``"alarm  clock"`` -> ``"alarm clock"``)."""
    return " ".join(label.replace("_", " ").split())


BROKEN_LINK = "a broken link to"
"""How ``broken_link``'s reasons begin (a walk's ``left_out`` entries are told by it)."""


def broken_link(path: str | os.PathLike) -> str | None:
    """Why ``path`` is a link that leads to no file (``a broken link to /gone/cat.ndjson: No such file or
    directory``), or ``None`` when it is no link or leads somewhere."""
    if not os.path.islink(path):
        return None
    try:
        os.stat(path)
    except OSError as exc:
        return f"{BROKEN_LINK} {os.readlink(path)}: {exc.strerror or exc}"
    return None


def canonical_label(label: str) -> str:
    """A class name in the form used to compare names from different sources: ``spaced_label``, case folded, in
    Unicode's composed form NFC (``"alarm_clock"``, ``"Alarm  clock"`` -> ``"alarm clock"``; ``"cafe\u0301"``, as
    macOS spells a file name, and ``"caf\u00e9"`` -> ``"caf\u00e9"``)."""
    return unicodedata.normalize("NFC", spaced_label(label).casefold())


_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _file_mode(target: Path) -> int:
    """Keep an existing file's permissions; new files get the usual ``0o666 & ~umask``."""
    try:
        return target.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_UMASK


def nearest_existing(path: PathLike) -> Path:
    """``path`` if it exists, else the closest folder above it that does (``.`` or ``/`` at the top): where an
    output path would be created, so a caller can refuse one under a file before any work is done."""
    path = Path(path)
    return next((candidate for candidate in (path, *path.parents) if candidate.exists()), path)


def sync_file(f: IO) -> None:
    """Flush the open file ``f`` to disk (``os.fsync``): before a rename publishes it, so a power loss cannot
    leave the new name on empty content."""
    f.flush()
    os.fsync(f.fileno())


def fsync_path(path: PathLike) -> None:
    """``sync_file`` for a file already closed, by its path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: PathLike) -> None:
    """Flush ``path``'s directory entries (files created or renamed in it) to disk; a no-op where a directory cannot be
    opened for that (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (PermissionError, IsADirectoryError):
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a directory
        pass
    finally:
        os.close(fd)


NAME_MAX_BYTES = 255  # a file name's longest, on most file systems


_SUFFIX_MAX_BYTES = len(".tmp-") + 64 + len("-") + 10  # temporaries.suffix(): a host of 64, a pid of 10 digits


def _temporary_prefix(target: Path) -> str:
    """``.<name>.`` with the name cut so that the whole temporary name, with the random part and the longest
    ``.tmp-<host>-<pid>``, fits in ``NAME_MAX_BYTES`` bytes as the file system stores it (UTF-8: a character of
    another script takes 3 bytes), never in the middle of a character. The cut does not depend on this host's
    name or this process's id: every process, on every machine, must find another's temporaries of ``target``."""
    raw = os.fsencode(target.name)
    room = NAME_MAX_BYTES - len(b"..") - 8 - _SUFFIX_MAX_BYTES
    if len(raw) > room:
        while room > 0 and raw[room] & 0xC0 == 0x80:  # a UTF-8 continuation byte: cut before its character
            room -= 1
        raw = raw[:room]
    return f".{os.fsdecode(raw)}."


_LISTED: dict[str, tuple[float, list[str]]] = {}  # folder -> (when listed, its hidden names): remove_abandoned
LISTING_FRESH_S = 2.0
"""``remove_abandoned`` lists a folder at most this often per process (seconds)."""


def _hidden_names(folder: Path) -> list[str]:
    """The names in ``folder`` that start with ``.``, as listed at most ``LISTING_FRESH_S`` ago by this process: a
    loop writing thousands of files into one folder lists it every few seconds, not once per file (which made
    such a loop quadratic: 4,000 files took 13 s instead of 0.4 s)."""
    key, now = os.path.abspath(folder), time.monotonic()
    seen = _LISTED.get(key)
    if seen is not None and now - seen[0] < LISTING_FRESH_S:
        return seen[1]
    try:
        names = [name for name in os.listdir(folder) if name.startswith(".")]
    except OSError:
        names = []
    if len(_LISTED) >= 256:  # a long-running process writing into many folders
        _LISTED.clear()
    _LISTED[key] = (now, names)
    return names


def remove_abandoned(target: Path) -> list[Path]:
    """Remove the temporary files of ``atomic_write(target)`` whose process was killed before it could finish or
    clean up (``temporaries.abandoned``): none a writer holds the lock on; this machine's of processes that no
    longer run; another machine's once a day old; the ``.<name>.<random>.tmp`` of earlier versions once a day old.
    Only names of exactly that form count. The folder's listing may be up to ``LISTING_FRESH_S`` old, so a
    temporary left after it is removed by a later write. Returns the removed files."""
    head = re.escape(_temporary_prefix(target)) + temporaries.RANDOM
    removed = []
    for name in sorted(_hidden_names(target.parent)):
        writer = temporaries.writer_of(name, head)
        if writer is None:
            continue
        tmp = target.parent / name
        try:
            if not stat.S_ISREG(tmp.lstat().st_mode):
                continue
        except OSError:  # gone meanwhile
            continue
        if temporaries.abandoned(tmp, writer, own=False):
            try:
                tmp.unlink()
            except OSError:  # gone meanwhile, or not ours to remove
                continue
            removed.append(tmp)
    return removed


@contextmanager
def atomic_write(path: PathLike, mode: str = "wb", **open_kwargs) -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success rename it over ``path``, on error remove it,
    so readers never see a half-written file.

    The temporary is hidden, named ``.<name>.<random>.tmp-<host>-<pid>``, and locked (``temporaries.hold``) until
    it is renamed. One that a process killed outright (``kill -9``) left behind is removed by the next write of the
    same ``path`` (``remove_abandoned``; within one process, by a write at most ``LISTING_FRESH_S`` later)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write supports mode 'w' or 'wb', got {mode!r}")
    target = Path(path)
    remove_abandoned(target)
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(target), suffix=temporaries.suffix(), dir=target.parent)
    held = temporaries.hold(tmp)  # the writer's lock stays on until the rename, after the file is closed
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
        os.chmod(tmp, _file_mode(target))
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    finally:
        temporaries.release(held)
