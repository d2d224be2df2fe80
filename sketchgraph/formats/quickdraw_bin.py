"""Quick, Draw! binary ``.bin`` (the quickdraw-dataset README's layout), little-endian records::

    key_id       uint64
    countrycode  2 bytes (ASCII)
    recognized   uint8
    timestamp    uint32 (unix seconds)
    n_strokes    uint16
    per stroke:  n_points uint16, x uint8[n_points], y uint8[n_points]

Coordinates are the simplified 0..255 integers, so only such sketches can be written.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import FormatError, SketchError
from ..sketch import Sketch
from .base import EmptySketchError, OnError, PathLike, Place, atomic_write, label_from_path, report

__all__ = ["MAX_EMPTY_RUN", "SNIFF_BYTES", "read_bin", "iter_bin", "write_bin", "looks_like_bin",
           "records_follow"]

_HEADER = struct.Struct("<Q2sBIH")  # key_id, countrycode, recognized, timestamp, n_strokes
_COUNT = struct.Struct("<H")


class _Truncated(Exception):
    pass


def _read_exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise _Truncated
    return data


def _read_record(f: BinaryIO, label: str | None) -> Sketch:
    key_id, country, recognized, timestamp, n_strokes = _HEADER.unpack(_read_exact(f, _HEADER.size))
    strokes = []
    for _ in range(n_strokes):
        (n,) = _COUNT.unpack(_read_exact(f, 2))
        if n:
            xy = np.frombuffer(_read_exact(f, 2 * n), dtype=np.uint8).reshape(2, n)  # (2, n): xs, ys
            strokes.append(xy.T.astype(np.float32))  # (n, 2)
    meta: dict[str, Any] = {"countrycode": country.rstrip(b"\0").decode("ascii", "replace"), "timestamp": timestamp}
    return Sketch(strokes, label=label, key_id=str(key_id), recognized=bool(recognized), meta=meta)


def read_bin(
    path: PathLike, *, label: str | None = None, on_error: OnError = None, keep_empty: bool = False
) -> Iterator[Sketch]:
    """Sketches from a Quick, Draw! ``.bin`` file; ``label`` defaults to the file name.

    Records have no line numbers: errors name the record (1-based) and its byte offset. A truncated
    record ends the file (there is no way to resynchronise), after being reported. A file whose first record's
    header is implausible (``plausible_header``: recognized 0/1, an A-Z country code, under 4096 strokes), say text
    named ``.bin``, or that starts as an image or a document does with no whole record following (a PNG named
    ``.bin``; the message names it), is one error (its record 1) and is not read further; the rest of a file after
    ``MAX_EMPTY_RUN`` empty records in a row (zeros: model weights named ``.bin``) is one error too.
    """
    for _, sketch in iter_bin(path, label=label, on_error=on_error, keep_empty=keep_empty):
        yield sketch


def iter_bin(
    path: PathLike, *, label: str | None = None, on_error: OnError = None, keep_empty: bool = False,
    from_name: bool = True,
) -> Iterator[tuple[Place, Sketch]]:
    """``read_bin`` with each sketch's ``Place`` (``record 3 (byte 120)``)."""
    path = Path(path)
    source = str(path)
    if label is None and from_name:
        label = label_from_path(path)
    with open(path, "rb") as f:
        head = f.peek(_HEADER.size + 2)[: _HEADER.size + 2]
        # an image's signature refuses the file only when no whole record follows it: a key id can start so
        if head and (not plausible_header(head) or (_document_kind(head) and not _starts_whole_record(f))):
            # a fact about the file, not one of its records: none was read (prepare counts it as an unreadable file,
            # predict as a file it could not read, not as "1 sketch could not be classified")
            report(FormatError(f"record 1 (byte 0): not a Quick, Draw! .bin record {_what_instead(head)} The rest of "
                               "the file is not read", source=source, whole_file=True), on_error)
            return
        index = empty_run = 0
        while True:
            offset = f.tell()
            if not f.peek(1)[:1]:
                return
            index += 1
            try:
                sketch = _read_record(f, label)
            except _Truncated:
                report(FormatError(f"record {index} (byte {offset}): truncated record", source=source), on_error)
                return
            place = Place(source, prefix=f"record {index} (byte {offset}): ")
            if sketch.num_points == 0 and not keep_empty:
                report(place.locate(EmptySketchError("empty drawing (no points)")), on_error)
                empty_run += 1
                if empty_run >= MAX_EMPTY_RUN:
                    report(FormatError(f"records {index - empty_run + 1}-{index} are all empty: not Quick, Draw! "
                                       "drawings (zeros?); the rest of the file is not read", source=source,
                                       whole_file=True), on_error)
                    return
                continue
            empty_run = 0
            yield place, sketch


MAX_EMPTY_RUN = 100
"""Empty records in a row after which a ``.bin`` file is taken for something else (say, zeros) and left: Quick,
Draw!'s files hold no empty drawings, and a file of zeros would otherwise be one error every 17 bytes."""


def _first_record(head: bytes) -> str:
    """What the first record's header says, for the message refusing a file as no ``.bin``."""
    if len(head) < _HEADER.size + 2:
        return f"{len(head)} bytes, shorter than one record's header"
    _, country, recognized, _, n_strokes = _HEADER.unpack_from(head)
    return f"countrycode={country!r}, recognized={recognized}, n_strokes={n_strokes}"


def _document_kind(head: bytes) -> str | None:
    """What image or document ``head`` starts as (``sniff.document_kind``), or ``None``."""
    from .sniff import document_kind  # sniff imports this module: imported when first needed

    return document_kind(head)


def _starts_whole_record(f: BinaryIO) -> bool:
    """Whether the file ``f`` (at its start, and left there) starts with nothing but whole, plausible records
    (``records_follow``): asked only of a file whose first bytes are also an image's or a document's signature
    (``_document_kind``)."""
    start = f.read(SNIFF_BYTES)
    f.seek(0)
    return records_follow(start, os.fstat(f.fileno()).st_size)


def _what_instead(head: bytes) -> str:
    """Why a file is refused as no ``.bin``: the image or document it is, when known, else what its first record's
    header says."""
    kind = _document_kind(head)
    return f"(this is {kind}): not a .bin file." if kind else f"({_first_record(head)}): not a .bin file?"


def plausible_header(head: bytes) -> bool:
    """Whether the first bytes of a file plausibly start a ``.bin`` record's header: recognized 0 or 1, a country
    code of A-Z or NUL bytes, under 4096 strokes (zero too: a file of zeros is left after ``MAX_EMPTY_RUN``
    records). ``read_bin``'s check; sniffing asks more (``looks_like_bin``)."""
    if len(head) < _HEADER.size + 2:
        return False
    _, country, recognized, _, n_strokes = _HEADER.unpack_from(head)
    return recognized in (0, 1) and all(c == 0 or 65 <= c <= 90 for c in country) and n_strokes < 4096


SNIFF_BYTES = 65536
"""The first bytes of a file that ``looks_like_bin`` is given: its first record must lie within them (a simplified
Quick, Draw! drawing takes a few hundred bytes: at most 1,031 in the 8,100 of ``quickdraw_simplified``)."""


def looks_like_bin(head: bytes, *, size: int | None = None) -> bool:
    """Whether ``head``, a file's first ``SNIFF_BYTES`` (the whole file when shorter), starts with a whole
    Quick, Draw! ``.bin`` record: a plausible header (``plausible_header``), at least one stroke, each of at least
    one point, and all of its bytes within ``head``. Used to sniff a file whose name does not tell its format, so
    other binary files (images, archives) are not taken for drawings.

    ``size``: the whole file's size, when ``head`` may be only its first bytes. A first record that runs past
    ``head`` (an unsimplified drawing: one stroke of 40,000 points takes 80,000 bytes) then counts as well, when
    everything of it within ``head`` is valid and the part it is known to take so far lies within ``size``."""
    if not plausible_header(head):
        return False
    end = _record_end(head, 0, drawn=True)
    return end is not None and (end <= len(head) or _cut_by_window(head, end, size))


def records_follow(start: bytes, size: int) -> bool:
    """Whether ``start``, a file's first ``SNIFF_BYTES`` (``size`` bytes in all), is ``.bin`` records and nothing
    else: a first record as ``looks_like_bin`` wants it, then records with plausible headers, each whole, up to the
    end of the file (the last one may run past ``start`` when the file goes on).

    The test for a file that starts with an image's or a document's signature (``sniff.document_kind``): a real
    ``.bin`` can, when its first key id's bytes happen to (``ff d8 ff``, a JPEG's, is one key id in 2**24), while an
    image cannot pass it. ``looks_like_bin`` alone is not enough there: a JFIF JPEG of density 1:1 (pillow's
    default) makes a whole one-point first record, but the bytes after it (``ff db``: its quantisation table) are
    no record's header."""
    if not looks_like_bin(start):
        return False
    offset = 0
    while offset < len(start):
        end = _record_end(start, offset)
        if end is None:
            return False
        offset = end
    return offset <= size and (offset == size or len(start) < size)


def _record_end(data: bytes, offset: int, *, drawn: bool = False) -> int | None:
    """The offset just past the record at ``offset`` in ``data``; ``None`` when its header is implausible (or, with
    ``drawn``, when it has no stroke or a stroke of no point). For a record cut by the end of ``data``, an offset
    past that end: as far as the record is known to reach."""
    if len(data) - offset < _HEADER.size + 2:
        return offset + _HEADER.size + 2
    if not plausible_header(data[offset:offset + _HEADER.size + 2]):
        return None
    n_strokes = _HEADER.unpack_from(data, offset)[4]
    if drawn and n_strokes == 0:
        return None
    offset += _HEADER.size
    for _ in range(n_strokes):
        if offset + _COUNT.size > len(data):
            return offset + _COUNT.size
        (n_points,) = _COUNT.unpack_from(data, offset)
        if drawn and n_points == 0:
            return None
        offset += _COUNT.size + 2 * n_points
        if offset > len(data):
            return offset
    return offset


def _cut_by_window(head: bytes, known_end: int, size: int | None) -> bool:
    """Whether a first record, valid as far as ``head`` goes, is cut only because ``head`` is a window on a longer
    file (``size`` bytes) that holds at least the ``known_end`` bytes the record is known to take."""
    return size is not None and len(head) < size and known_end <= size


def _timestamp(value: Any) -> int:
    """Unix seconds from a number or Quick, Draw!'s ``"2017-03-11 14:47:44.05242 UTC"`` strings; else 0."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return int(value) if np.isfinite(value) else 0
    if isinstance(value, str):
        text = value.removesuffix(" UTC")
        for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
            try:
                return int(datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp())
            except ValueError:
                continue
    return 0


def _encode(sketch: Sketch, index: int) -> bytes:
    where = f"sketch {index} (key_id {sketch.key_id!r})"
    try:
        key_id = int(sketch.key_id) if sketch.key_id is not None else 0
    except ValueError:
        raise SketchError(f"{where}: .bin stores key_id as an unsigned 64-bit integer") from None
    if not 0 <= key_id < 2**64:
        raise SketchError(f"{where}: key_id does not fit in uint64")
    if len(sketch.strokes) > 0xFFFF:
        raise SketchError(f"{where}: more than 65535 strokes")
    country = str(sketch.meta.get("countrycode") or "").encode("ascii", "replace")[:2].ljust(2, b"\0")
    timestamp = _timestamp(sketch.meta.get("timestamp"))
    if not 0 <= timestamp <= 0xFFFFFFFF:
        raise SketchError(f"{where}: timestamp {timestamp} does not fit .bin's unsigned 32-bit unix seconds")
    parts = [_HEADER.pack(key_id, country, int(bool(sketch.recognized)), timestamp, len(sketch.strokes))]
    for s in sketch.strokes:
        xy = s[:, :2]
        if len(xy) > 0xFFFF:
            raise SketchError(f"{where}: a stroke has more than 65535 points")
        if not ((xy == np.round(xy)) & (xy >= 0) & (xy <= 255)).all():
            raise SketchError(f"{where}: .bin stores integer coordinates 0..255; simplify the sketch first")
        parts.append(_COUNT.pack(len(xy)))
        parts.append(np.ascontiguousarray(xy.T, dtype=np.uint8).tobytes())  # xs then ys
    return b"".join(parts)


def write_bin(sketches: Iterable[Sketch], path: PathLike) -> int:
    """Write sketches as Quick, Draw! ``.bin`` records, atomically; returns the count written.

    ``meta["countrycode"]`` and ``meta["timestamp"]`` (unix seconds, or Quick, Draw!'s date string) are kept.
    ``.bin`` stores ``recognized`` as 0 or 1, so an unknown (``None``) one is written as 0.
    Raises ``SketchError`` for coordinates outside integer 0..255 or a non-numeric ``key_id``.
    """
    count = 0
    with atomic_write(path, "wb") as f:
        for i, sketch in enumerate(sketches):
            f.write(_encode(sketch, i))
            count += 1
    return count
