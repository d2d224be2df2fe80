"""Quick, Draw! and SPG ndjson: one JSON record per line, ``{"key_id", "drawing": [...], ...}``.

Three record styles share the layout and differ in what a stroke holds:

- ``simplified``: ``[xs, ys]`` integer coordinates 0..255 plus a ``"word"`` field (Quick, Draw!).
- ``raw``: ``[xs, ys, ts]`` float pixel coordinates and millisecond times (Quick, Draw! raw);
  the times become the third column of each stroke, ``(n, 3)``.
- ``spg``: ``[xs, ys, part_ids]`` where the third list is a semantic PART LABEL per point, never
  a time: it goes to ``Sketch.parts`` and strokes stay ``(n, 2)``. SPG records have no ``"word"``;
  the class comes from the file name.

Reading ``simplified`` and ``raw`` is the same code (a third list is time); only ``spg`` differs.
``.json`` files may also hold one JSON document (a record, a drawing, or a list of them).
"""

from __future__ import annotations

import codecs
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import FormatError, SketchError
from ..sketch import COORD_ORIGIN, MAX_COORDINATE, MAX_TIME, TIME_ORIGIN, Sketch, point_list_hint
from ..wording import a_type
from .base import (
    GZIP_ERRORS,
    EmptySketchError,
    OnError,
    PathLike,
    Place,
    atomic_write,
    label_from_path,
    locate,
    open_bytes,
    plain_name,
    report,
)

__all__ = [
    "Style", "STYLES", "TIME_ORIGIN", "COORD_ORIGIN", "parse_drawing", "parse_record", "parse_line", "load_json",
    "line_key_id", "line_based", "is_one_stroke", "looks_like_spg", "sniff_style", "sniff_file_style", "read_ndjson",
    "iter_ndjson", "write_ndjson", "record_from_sketch",
]

Style = Literal["simplified", "raw", "spg"]
STYLES: tuple[str, ...] = ("simplified", "raw", "spg")

SPG_MAX_PART_ID = 64
"""Part ids are small (SPG classes have at most 8 parts); raw times pass 64 ms within a stroke."""

_EXACT_F32 = float(1 << 24)  # float32 holds every integer up to here: times to the millisecond (4.6 hours)
_REBASE_COORDS = float(1 << 20)
"""Coordinates beyond this magnitude are rebased in float64 (``parse_drawing``): from 2**20 on float32's step is
1/8 px or more, so a drawing tens of pixels wide would lose its sub-pixel detail (at 1.6e7, whole pixels).
Real canvases stay far below it (a few thousand px), and values below it are cast as they are, unchanged."""

_RECORD_FIELDS = frozenset({"word", "key_id", "recognized", "drawing"})
_SNIFF_RECORDS = 5
_BOM = b"\xef\xbb\xbf"


# ---------------------------------------------------------------------------------------- parsing
def parse_drawing(drawing: Any, *, spg: bool = False
                  ) -> tuple[list[np.ndarray], list[np.ndarray] | None, dict[str, Any]]:
    """Parse ``[[xs, ys(, third)], ...]`` into strokes and (SPG) parts, without per-point Python loops.

    Returns ``(strokes, parts, origins)``: strokes are float32 ``(n_i, 2)`` or, when a non-SPG
    drawing has a third list, ``(n_i, 3)`` with time in ms; ``parts`` is one int32 ``(n_i,)`` per stroke
    for SPG, else ``None``. Values float32 would round are rebased in float64 first, and what was
    subtracted goes to ``origins`` (``Sketch.meta`` entries; empty for the usual drawing): absolute clock
    times beyond 2**24 ms (JavaScript's ``Date.now()``) become relative to the first point's time
    (``TIME_ORIGIN``), and coordinates beyond 2**20 in magnitude, where float32's step passes 1/8 px,
    relative to the drawing's smallest x and y (``COORD_ORIGIN``; exact while the drawing itself spans less
    than 2**20). Smaller values, all real drawings', are cast to float32 as they are. Empty strokes are
    dropped, and take no part in the layout (an empty ``[xs, ys]`` among ``[xs, ys, ts]`` strokes is fine).
    Coordinates must be numbers of magnitude <= 1e9, times finite and of magnitude <= 1e15.
    Raises ``FormatError`` (without a location, naming the stroke) on bad input.

    A stroke of points ``[[x, y], ...]`` instead of ``[xs, ys]`` is refused with a hint, except a stroke of
    two or three points: ``[[x0, y0], [x1, y1]]`` reads as ``[xs, ys]`` and ``[[x0, y0], [x1, y1], [x2, y2]]``
    as ``[xs, ys, ts]``, which are valid strokes; no rule tells them apart without risking refusing valid
    drawings (nothing promises that RAW times increase), so such strokes are taken as the layout says.
    """
    if not isinstance(drawing, list):
        raise FormatError(f"'drawing' must be a list of strokes, got {type(drawing).__name__}")
    ncols = 3 if spg else 0
    lens: list[int] = []
    flat: list[Any] = []
    want = "[xs, ys, part_ids]" if spg else "[xs, ys] or [xs, ys, ts]"
    for i, stroke in enumerate(drawing):
        if spg and isinstance(stroke, list) and len(stroke) > 3:
            stroke = stroke[:3]  # 264 of SPG's raw/ strokes carry a 4th list (unused): keep xs, ys, part_ids
        if not isinstance(stroke, list) or len(stroke) not in (2, 3):
            hint = f" ({point_list_hint(want)})" if _is_point_list(stroke) else ""
            raise FormatError(f"stroke {i}: expected {want}, got {_describe(stroke)}{hint}")
        if all(isinstance(col, list) and not col for col in stroke):
            lens.append(0)  # an empty stroke holds no points and no times: it does not decide the layout
            continue
        if ncols == 0:
            ncols = len(stroke)
        elif len(stroke) != ncols:
            what = "SPG strokes need [xs, ys, part_ids]" if spg else f"earlier strokes have {ncols}"
            raise FormatError(f"stroke {i}: has {len(stroke)} lists; {what}")
        for j, col in enumerate(stroke):
            if not isinstance(col, list):
                hint = _number_hint(drawing) if isinstance(col, (int, float)) else ""
                raise FormatError(f"stroke {i}: expected lists of numbers, got {_describe(col)} as list {j}{hint}")
            flat.extend(col)
        n = len(stroke[0])
        if any(len(col) != n for col in stroke):
            raise FormatError(f"stroke {i}: its lists differ in length ({', '.join(str(len(c)) for c in stroke)})")
        lens.append(n)

    def stroke_of(position: int) -> int:
        """The stroke holding ``flat[position]`` (empty strokes hold none), for an error message."""
        ends = np.cumsum(np.asarray(lens, dtype=np.int64) * ncols)  # (S,) where each stroke's values end in flat
        return int(np.searchsorted(ends, position, side="right"))

    values = _numbers(flat, stroke_of)  # stroke by stroke: xs, ys(, third)
    origins: dict[str, Any] = {}
    if values.size and not (values.min() >= -_REBASE_COORDS and values.max() <= _REBASE_COORDS):
        # the usual drawing (small values) needs none of this: large values are rebased exactly in float64
        values = values.astype(np.float64)
        column = np.repeat(np.tile(np.arange(ncols), len(lens)), np.repeat(lens, ncols))  # (V,) 0 x, 1 y, 2 t
        timed = column == 2 if ncols == 3 and not spg else np.zeros(len(values), dtype=bool)
        if timed.any():
            time_origin = _check_times(values, timed, stroke_of)
            if time_origin is not None:
                values[timed] -= time_origin
                origins[TIME_ORIGIN] = time_origin
        _check_magnitude(values, ~timed, stroke_of)  # SPG part ids too
        xs, ys = column == 0, column == 1
        if np.abs(values[xs | ys]).max(initial=0.0) > _REBASE_COORDS:
            origin = [float(values[xs].min()), float(values[ys].min())]
            values[xs] -= origin[0]
            values[ys] -= origin[1]
            origins[COORD_ORIGIN] = origin
    values32 = values.astype(np.float32)
    strokes: list[np.ndarray] = []
    parts: list[np.ndarray] | None = [] if spg else None
    start = 0
    for n in lens:
        if n == 0:
            continue
        block = values32[start : start + ncols * n].reshape(ncols, n)  # (ncols, n)
        start += ncols * n
        if parts is None:
            strokes.append(block.T)  # (n, 2|3)
        else:
            strokes.append(block[:2].T)  # (n, 2)
            parts.append(_part_ids(block[2], len(strokes) - 1))
    return strokes, parts, origins


ONE_STROKE_HINT = "one stroke [xs, ys] given where a drawing [[xs, ys], ...] belongs?"


def is_one_stroke(value: Any) -> bool:
    """Whether ``value`` is one stroke ``[xs, ys]`` (lists of numbers, at least one number) rather than a drawing
    ``[[xs, ys], ...]``: what ``ONE_STROKE_HINT`` is said of (the service's body, ``predict_batch``'s argument)."""
    return (isinstance(value, (list, tuple)) and bool(value) and all(isinstance(col, (list, tuple)) for col in value)
            and any(value) and all(_is_number(v) for col in value for v in col))


def _is_number(value: Any) -> bool:
    """A number as ``json.loads`` or numpy gives it (``int``, ``float``, a numpy scalar), not a boolean."""
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def _number_hint(drawing: list[Any]) -> str:
    """The hint for a drawing whose stroke holds a number where a list belongs: one stroke ``[xs, ys]`` given as
    the drawing, or sketch-rnn's stroke-3 rows ``[dx, dy, pen]`` as lists (2 or more rows of 3 numbers, every pen 0
    or 1; from 4 rows on it cannot be a stroke of [xs, ys] or [xs, ys, ts])."""
    one = ONE_STROKE_HINT
    rows = "stroke-3 rows [dx, dy, pen_lifted] given as lists? pass them as an (n, 3) numpy array"
    stroke3 = len(drawing) >= 2 and all(
        isinstance(row, list) and len(row) == 3 and all(isinstance(v, (int, float)) for v in row)
        and row[2] in (0, 1) for row in drawing)
    return f" ({one})" if not stroke3 else f" ({rows})" if len(drawing) > 3 else f" ({one} or {rows})"


def _is_point_list(stroke: Any) -> bool:
    """Whether a stroke looks like points ``[[x, y], ...]`` (or ``[[x, y, t], ...]``): a non-empty list of
    lists of two or three numbers."""
    return isinstance(stroke, list) and bool(stroke) and all(
        isinstance(p, list) and len(p) in (2, 3) and all(type(v) in (int, float) for v in p) for p in stroke)


def _shown(value: Any) -> str:
    """A number for a message: short when that is exact (``2e+09``, ``nan``), else every digit it needs
    (``1000000001``, ``1234567.125``), so a value is never shown equal to a limit it breaks; or the size of an
    integer too large for a float."""
    try:
        number = float(value)
    except OverflowError:
        return f"an integer of {len(str(abs(value)))} digits"
    short = f"{number:g}"
    if not np.isfinite(number) or float(short) == number:
        return short
    return str(int(number)) if number.is_integer() else repr(number)


def _check_magnitude(values: np.ndarray, checked: np.ndarray, stroke_of: Callable[[int], int]) -> None:
    """``FormatError`` naming the first stroke with a value (``values[checked]``) that is NaN, infinite or beyond
    +-1e9 (min / max first: the usual drawing costs no search)."""
    picked = values[checked]
    if not picked.size or (picked.min() >= -MAX_COORDINATE and picked.max() <= MAX_COORDINATE):
        return
    bad = np.flatnonzero(checked & ~(np.abs(values) <= MAX_COORDINATE))[0]  # NaN fails <= too
    if not np.isfinite(values[bad]):
        raise FormatError(f"stroke {stroke_of(bad)}: coordinates contain NaN or infinity")
    raise _too_large(stroke_of(bad), values[bad])


def _too_large(stroke: int, value: Any) -> FormatError:
    return FormatError(
        f"stroke {stroke}: coordinates must be of magnitude <= {MAX_COORDINATE:g}, found {_shown(value)}")


def _numbers(flat: list[Any], stroke_of: Callable[[int], int]) -> np.ndarray:
    """The coordinate values as a numeric array (int64 or float64); strings, booleans, ``None`` and
    nested lists are refused, naming the first stroke holding one. A boolean among numbers, which numpy would
    read as 1 or 0, is refused too, as the service refuses it (one pass over the values' types, in C)."""
    try:
        values = np.array(flat)
    except (TypeError, ValueError, OverflowError):  # ragged nesting, or an integer too large for numpy
        values = None
    if values is not None:
        if values.ndim != 1:
            raise FormatError("coordinates must be numbers, not lists (one list of xs and one of ys per stroke)")
        if not values.size:
            return values
        if values.dtype.kind in "iuf":
            if bool not in set(map(type, flat)):  # true / false would have become 1 / 0
                return values
            bad = next(k for k, v in enumerate(flat) if type(v) is bool)
            raise FormatError(f"stroke {stroke_of(bad)}: coordinates must be numbers, found a bool")
    bad = next((k for k, v in enumerate(flat) if type(v) not in (int, float)), None)
    if bad is not None:
        raise FormatError(f"stroke {stroke_of(bad)}: coordinates must be numbers, found {a_type(flat[bad])}")
    big = next((k for k, v in enumerate(flat) if abs(v) > MAX_COORDINATE), None)  # numbers all: integers beyond int64
    if big is None:
        raise FormatError("coordinates must be numbers")
    raise _too_large(stroke_of(big), flat[big])


def _check_times(values: np.ndarray, timed: np.ndarray, stroke_of: Callable[[int], int]) -> float | None:
    """Validate a drawing's times (``values[timed]``); the origin to subtract when float32 could not hold them
    exactly. Their order is not checked: nothing promises that RAW times increase, and a valid drawing must not
    be refused for it."""
    times = values[timed]
    largest = np.abs(times).max()  # NaN when any time is NaN: both tests below fail then
    if not largest <= MAX_TIME:
        bad = np.flatnonzero(timed & ~(np.abs(values) <= MAX_TIME))[0]
        where = f"stroke {stroke_of(bad)}: "
        if not np.isfinite(values[bad]):
            raise FormatError(f"{where}times contain NaN or infinity")
        raise FormatError(f"{where}times must be finite milliseconds of magnitude <= {MAX_TIME:g}, "
                          f"found {_shown(values[bad])}")
    if largest <= _EXACT_F32:
        return None
    return float(times[0])


def _part_ids(values: np.ndarray, index: int) -> np.ndarray:
    ids = values.astype(np.int32)
    if (ids != values).any() or ids.min() < 0:
        raise FormatError(f"stroke {index}: SPG part ids must be non-negative integers")
    return ids


def _describe(obj: Any) -> str:
    if isinstance(obj, list):
        return f"a list of {len(obj)}"
    return type(obj).__name__


def parse_record(
    record: Any, *, style: Style = "simplified", label: str | None = None, keep_empty: bool = False
) -> Sketch:
    """One ndjson record (a dict with ``"drawing"``, or a bare drawing list) -> ``Sketch``.

    The label is the record's ``"word"`` when present (a string; ``null`` counts as absent), else ``label``.
    ``key_id`` and ``recognized`` become fields; other fields (``countrycode``, ``timestamp``, ...) go to ``meta``.
    Raises ``FormatError`` (``EmptySketchError`` for a drawing without points unless ``keep_empty``); a ``"word"``
    that is not a string is one (it names the class: a number or a list in its place is not silently replaced
    by ``label``). The error carries the record's ``key_id`` and label (``FormatError.key_id`` / ``.label``) as far
    as they can be read, so a caller can count a failed drawing against its class.
    """
    if isinstance(record, dict):
        if "drawing" not in record:
            key_id, word = _identity(record, label)
            raise FormatError(f"record has no 'drawing' field (fields: {sorted(record)[:8]})", key_id=key_id,
                              label=word)
        drawing = record["drawing"]
    elif isinstance(record, list):
        drawing, record = record, {}
    else:
        raise FormatError(f"expected a JSON object with a 'drawing' field, got {type(record).__name__}")
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    try:
        return _record_sketch(record, drawing, style, label, keep_empty)
    except FormatError as exc:  # name the drawing that failed, when the record says which it is
        if exc.key_id is None and exc.label is None:
            exc.key_id, exc.label = _identity(record, label)
        raise


def _identity(record: dict[str, Any], label: str | None) -> tuple[str | None, str | None]:
    """``(key_id, label)`` of a record as far as they can be read (``None`` for one that cannot): the label is the
    record's ``word``, else ``label``."""
    try:
        key_id = key_id_string(record.get("key_id"))
    except FormatError:
        key_id = None
    word = record.get("word")
    return key_id, (word if isinstance(word, str) else label if word is None else None)


def _record_sketch(record: dict[str, Any], drawing: Any, style: Style, label: str | None, keep_empty: bool
                   ) -> Sketch:
    """``parse_record``'s work once the record's shape is checked (``record`` is ``{}`` for a bare drawing)."""
    strokes, parts, origins = parse_drawing(drawing, spg=style == "spg")
    if not strokes:
        if not keep_empty:
            raise EmptySketchError("empty drawing (no points)")
        parts = [] if parts is not None else None
    word = record.get("word")
    if word is not None and not isinstance(word, str):
        raise FormatError(f"'word' (the class name) must be a string, found {a_type(word)}: "
                          f"{json.dumps(word)[:40]}")
    key_id = key_id_string(record.get("key_id"))
    recognized = record.get("recognized")
    meta = {k: v for k, v in record.items() if k not in _RECORD_FIELDS and k not in (TIME_ORIGIN, COORD_ORIGIN)}
    meta.update(origins)
    try:
        return Sketch(
            strokes,
            label=label if word is None else word,
            key_id=key_id,
            parts=parts,
            recognized=_recognized(recognized),
            meta=meta,
        )
    except SketchError as exc:
        raise FormatError(str(exc)) from None


# ---------------------------------------------------------------------------------------- sniffing
def parse_line(line: bytes | str, *, style: Style = "simplified", label: str | None = None,
               keep_empty: bool = False) -> Sketch:
    """One ndjson line -> ``Sketch`` (``json.loads`` + ``parse_record``). Every problem with the line is a
    ``FormatError`` without a location: invalid JSON, bytes that are not UTF-8, a number too long to read. A line
    that is no JSON keeps the key id it plainly shows (``line_key_id``: a line cut short by a killed writer still
    names its drawing) and the ``word`` it plainly shows as its label; ``None`` without one (whether the file's
    name gives its class depends on the file's other records: ``evaluate`` decides it)."""
    try:
        record = load_json(line)
    except FormatError as exc:
        exc.key_id = line_key_id(line)
        exc.label = _line_word(line)
        raise
    return parse_record(record, style=style, label=label, keep_empty=keep_empty)


_KEY_ID_FIELD = re.compile(rb'[{,]\s*"key_id"\s*:\s*(?:"([^"\\]*)"|(-?[0-9]+)(?![0-9.eE]))')


_WORD_FIELD = re.compile(rb'[{,]\s*"word"\s*:\s*"([^"\\]*)"')


def _line_word(line: bytes | str) -> str | None:
    """The ``word`` a line that is no JSON plainly shows (one ``"word"`` field holding a plain string), else
    ``None``."""
    data = line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line
    if data.count(b'"word"') != 1 or not (match := _WORD_FIELD.search(data)):
        return None
    return match.group(1).decode("utf-8", "surrogateescape")


def line_key_id(line: bytes | str) -> str | None:
    """The key id of one ndjson line's record, as ``parse_line`` gives it (``Sketch.key_id``, or its error's
    ``key_id``), without decoding the line where the line makes it plain: a line with one ``{``, no backslash and
    one ``"key_id"`` field whose value is a plain string or an integer (Google's lines) is read with a regular
    expression, about a hundred times faster than ``json.loads`` of a RAW drawing; any other line is decoded.
    ``None`` for a line without a readable key id (none, or no JSON object at all)."""
    data = line.encode("utf-8", "surrogatepass") if isinstance(line, str) else line
    if b"\\" not in data and data.count(b"{") == 1:
        fields = data.count(b'"key_id"')
        if fields == 0:
            return None
        if fields == 1 and (match := _KEY_ID_FIELD.search(data)):
            text, number = match.groups()
            return text.decode("utf-8", "surrogateescape") if text is not None else str(int(number))
    try:
        record = load_json(line)
    except FormatError:
        return None
    return _identity(record, None)[0] if isinstance(record, dict) else None


def load_json(text: bytes | str, *, encoding: str | None = "utf-8") -> Any:
    """``json.loads`` whose every failure is a ``FormatError`` saying what is wrong: invalid JSON, bytes
    that are not in their encoding, a number too long to read (over 4300 digits), nesting too deep.

    Bytes are decoded as ``encoding``: UTF-8 (a UTF-8 byte order mark is understood) for a line of a file, whose
    encoding the file's start decided (``json.loads`` would take a line starting with FF FE for UTF-16); None for a
    whole JSON text given as bytes (an API's argument, a request's body), whose encoding its first bytes tell, as
    the JSON standard says: UTF-8, UTF-16 or UTF-32, with or without a byte order mark."""
    name = "UTF-8"
    try:
        if isinstance(text, (bytes, bytearray)):
            if encoding is None:
                encoding = json.detect_encoding(text)
            elif encoding.lower().replace("_", "-") in ("utf-8", "utf8") and text.startswith(codecs.BOM_UTF8):
                encoding = "utf-8-sig"
            name = encoding.upper().removesuffix("-SIG")
            text = text.decode(encoding)
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = ""
        seen = exc.doc[: exc.pos]  # the decoded text up to the fault (positions count characters)
        if exc.msg == "Extra data" and re.search(r"\r(?!\n)", seen):
            # objects separated by a bare CR: the file is one line to every line-based reader
            hint = "; the lines end in CR only (old Mac line ends): convert them, e.g. tr '\\r' '\\n' < in > out"
        joint = " " if exc.msg.endswith(" at") else ", "  # "Unterminated string starting at column 2"
        raise FormatError(f"invalid JSON ({exc.msg}{joint}column {exc.colno}){hint}") from None
    except UnicodeDecodeError as exc:
        raise FormatError(f"not {name} ({exc.reason} at byte {exc.start})") from None
    except (ValueError, RecursionError) as exc:
        digits = re.search(r"value has (\d+) digits", str(exc))  # Python's limit, and its advice, are no help here
        what = f"a number of {int(digits[1]):,} digits, which no coordinate or id has" if digits else str(exc)
        raise FormatError(f"unreadable JSON ({what})") from None


def _recognized(value: Any) -> bool | None:
    """Quick, Draw!'s ``recognized`` flag: a JSON boolean; also 0 / 1 and "true" / "false" / "yes" / "no".
    Anything else is unknown (``None``): a metadata flag never costs a good drawing."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
        return value.strip().lower() in ("true", "yes")
    return None


def looks_like_spg(record: Any) -> bool:
    """SPG heuristic: no ``"word"`` field, every stroke has exactly three lists, and every third value
    is a small non-negative integer (a part id < ``SPG_MAX_PART_ID``) that does not behave like a time
    (strictly increasing along every stroke). A stroke may carry a 4th list, as 264 of SPG's raw/ strokes do: an
    SPG record (an object with a ``key_id``) that has one is judged by its first three lists, like the others, so
    that it reads alone (``predict`` of one line) as it reads in its file (no other layout has a 4th list: it is
    refused otherwise). A bare drawing with a 4th list abstains: four lists of numbers alone are no sign of SPG."""
    return _spg_vote(record) is True


def _spg_vote(record: Any) -> bool | None:
    """``looks_like_spg``, with ``None`` for a record that cannot tell (no strokes, malformed)."""
    spg_record = False  # an object with a key_id, as SPG's records are
    if isinstance(record, dict):
        if "word" in record:
            return False
        spg_record = "key_id" in record
        record = record.get("drawing")
    if not isinstance(record, list) or not record:
        return None
    thirds: list[list[Any]] = []
    extra = False  # a stroke with a 4th list
    for stroke in record:
        if not isinstance(stroke, list) or len(stroke) < 2:
            return None
        if len(stroke) == 2:
            return False
        if not isinstance(stroke[2], list):
            return None
        extra |= len(stroke) > 3
        thirds.append(stroke[2])
    values = [v for third in thirds for v in third]
    if not values:
        return None
    if not all(type(v) is int and 0 <= v < SPG_MAX_PART_ID for v in values):
        return False
    if all(all(a < b for a, b in zip(t, t[1:])) for t in thirds) and max(map(len, thirds)) >= 3:
        return False  # strictly increasing along every stroke: times, not part ids
    return None if extra and not spg_record else True


def _has_third_list(record: Any) -> bool:
    drawing = record.get("drawing") if isinstance(record, dict) else record
    return isinstance(drawing, list) and any(isinstance(s, list) and len(s) == 3 for s in drawing)


def key_id_string(value: Any) -> str | None:
    """A record's ``key_id`` as a string: a string as it is, an integer in decimal, an integral float (a 16-digit
    id written ``5629189624315904.0``) as that integer, so one drawing has one key however it was written. Any
    other value (a list, an object, ``true``, a fraction) raises ``FormatError``."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    raise FormatError(f"'key_id' must be a string or an integer, found {a_type(value)}: "
                      f"{json.dumps(value)[:40]}")


_WIDE_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
              (b"\xfe\xff", "UTF-16"))


def wide_text(head: bytes) -> str | None:
    """``"UTF-16"`` or ``"UTF-32"`` when a file's first bytes are those of such text (a byte order mark, or the
    NULs of ASCII text so encoded: ``{ 00 " 00``, ``00 00 00 {`` ...), else ``None``. Other NULs are no text at
    all (``not_text``)."""
    for bom, name in _WIDE_BOMS:
        if head.startswith(bom):
            return name

    def shaped(period: int, zeros: tuple[int, ...]) -> bool:
        """Whether each of the first 8 bytes (4 of a short file) is NUL exactly where ``zeros`` (offsets in each
        ``period`` bytes) say: ASCII characters so encoded."""
        group = head[:8] if len(head) >= 8 else head[:4]
        return len(group) >= 4 and all((byte == 0) == (i % period in zeros) for i, byte in enumerate(group))

    if shaped(4, (1, 2, 3)) or shaped(4, (0, 1, 2)):  # UTF-32 LE / BE
        return "UTF-32"
    if shaped(2, (1,)) or shaped(2, (0,)):  # UTF-16 LE / BE
        return "UTF-16"
    return None


def not_text(head: bytes, source: str) -> FormatError | None:
    """The one error about the whole file (``whole_file``) for a file read as ndjson or JSON whose first bytes
    (``head``, decompressed) are no UTF-8 text: an image or a document (``not_a_sketch_file``), a zip archive,
    UTF-16/32 text (``wide_text_error``), or other binary data (a NUL byte, which JSON text never has); else
    ``None``. Read line by line, such a file gave an error per chunk of bytes between newlines."""
    from .sniff import ZIP_MAGIC, document_kind, not_a_sketch_file

    if (kind := document_kind(head)) is not None:
        return not_a_sketch_file(source, kind)
    if head.startswith(ZIP_MAGIC):
        return FormatError("a zip archive (an .npz? a model file?), not ndjson or JSON text; nothing in it was read",
                           source=source, whole_file=True)
    if (wide := wide_text(head)) is not None:
        return wide_text_error(wide, source)
    if (nul := head.find(b"\0")) >= 0:
        return FormatError(f"binary data (a NUL byte at byte {nul}), not ndjson or JSON text; nothing in it was "
                           "read", source=source, whole_file=True)
    return None


def wide_text_error(name: str, source: str) -> FormatError:
    """The one error for a file of ``name`` (UTF-16/32) text: lines are read as UTF-8, so none of it is read."""
    return FormatError(f"{name} text, and JSON is read as UTF-8; nothing in it was read. Convert it first: "
                       f"iconv -f {name} -t UTF-8 FILE > NEW", source=source, whole_file=True)


def sniff_file_style(path: PathLike, *, default: Style | None = "simplified") -> Style | None:
    """``sniff_style`` on the first records of an ndjson/json file; ``default`` when none of them can be read (an
    empty file, or lines that are not records): pass ``None`` to tell that case apart."""
    records = [r for r in _head_records(Path(path)) if isinstance(r, (dict, list))]
    return sniff_style(records) if records else default


def sniff_style(records: Iterable[Any]) -> Style:
    """The style of a file from its first records: ``spg`` when every record that can tell looks like
    SPG (see ``looks_like_spg``; empty and malformed records abstain), ``raw`` when strokes carry a
    third list, else ``simplified``."""
    sample = [r for r in records if isinstance(r, (dict, list))]
    votes = [v for v in map(_spg_vote, sample) if v is not None]
    if votes and all(votes):
        return "spg"
    if any(_has_third_list(r) for r in sample):
        return "raw"
    return "simplified"


def _head_records(path: Path, limit: int = _SNIFF_RECORDS) -> list[Any]:
    """Up to ``limit`` parseable records from the start of a file, gzip-compressed or not (bad lines, and
    compressed data that breaks off, are skipped here and reported by the reader)."""
    try:
        document = _json_document(path)
    except FormatError:
        return []  # the reader reports it
    if document is not None:
        return document[:limit]
    out: list[Any] = []
    with open_bytes(path) as f:
        try:
            for line in f:
                if len(out) >= limit:
                    break
                try:
                    out.append(load_json(line))  # bytes: a byte order mark is understood
                except FormatError:
                    continue
        except GZIP_ERRORS:
            pass  # the reader reports it
    return out


# ---------------------------------------------------------------------------------------- reading
def read_ndjson(
    path: PathLike,
    style: Style | None = None,
    *,
    label: str | None = None,
    on_error: OnError = None,
    keep_empty: bool = False,
) -> Iterator[Sketch]:
    """Sketches from an ndjson file, in file order.

    ``style=None`` sniffs it from the first records (``sniff_style``). The label of a record
    without ``"word"`` is ``label`` or else the file name (``label_from_path``; SPG's ``alarm_clock_test.ndjson``
    gives Quick, Draw!'s word ``"alarm clock"``). Blank lines, a
    UTF-8 BOM, CRLF line ends and a missing final newline are fine, and so is gzip-compressed content
    (``cat.ndjson.gz``, read as it is decompressed; line numbers are the decompressed file's). A malformed line
    raises ``FormatError`` naming ``path:line`` (1-based), or with ``on_error`` is reported and skipped.
    """
    for _, sketch in iter_ndjson(path, style, label=label, on_error=on_error, keep_empty=keep_empty):
        yield sketch


def iter_ndjson(
    path: PathLike,
    style: Style | None = None,
    *,
    label: str | None = None,
    on_error: OnError = None,
    keep_empty: bool = False,
    from_name: bool = True,
    choose: Callable[[Iterator[tuple[int, bytes]]], Iterable[tuple[int, bytes]]] | None = None,
) -> Iterator[tuple[Place, Sketch]]:
    """``read_ndjson`` with each sketch's ``Place``: its line (``path:17``), or in a JSON document its record
    (``path: record 3``). Compressed data that breaks off (a truncated or corrupt ``.gz``) is reported once,
    as an error about the rest of the file (``whole_file``), after the lines read before it.

    ``choose`` picks the lines to read, in a file of lines (not a JSON document): it is given every line that is
    not blank as ``(line number, bytes)`` and returns those to parse, in file order; a line it leaves out is not
    parsed, so not reported either (``evaluate --sample-per-file`` parses only its sample)."""
    path = Path(path)
    source = str(path)
    refusal = None
    if path.is_file():  # a stream (/dev/stdin) is not read twice
        try:
            with open_bytes(path) as f:
                refusal = not_text(f.read(4096), source)
        except GZIP_ERRORS:
            pass  # reported below, after the lines before the break
    if refusal is not None:
        report(refusal, on_error)
        return
    if style is None:
        style = sniff_file_style(path)
    elif style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    if label is None and from_name:
        label = label_from_path(path, spg=style == "spg")
    try:
        document = _json_document(path)
    except FormatError as exc:
        report(exc, on_error)
        return
    if document is not None:
        yield from _read_document(document, source, style, label, on_error, keep_empty)
        return
    with open_bytes(path) as f:
        broke: list[FormatError] = []
        lines = _record_lines(f, source, broke)
        try:
            for lineno, line in lines if choose is None else choose(lines):
                try:
                    sketch = parse_line(line, style=style, label=label, keep_empty=keep_empty)
                except FormatError as exc:
                    report(locate(exc, source, lineno), on_error)
                    continue
                yield Place(source, lineno), sketch
        except FormatError as exc:  # UTF-16/32 text
            report(exc, on_error)
        for exc in broke:  # after the lines read before the break
            report(exc, on_error)


def _record_lines(f: Iterable[bytes], source: str, broke: list[FormatError]) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` of each line of ``f`` that is not blank, a UTF-8 BOM taken off the first.
    Compressed data that breaks off ends the lines, its error (about the rest of the file) put in ``broke``;
    ``FormatError`` (about the whole file) for UTF-16/32 text (``iter_ndjson`` has refused a file of no UTF-8 text,
    ``not_text``, before; this catches it in a stream)."""
    lineno = 0
    try:
        for lineno, line in enumerate(f, 1):
            if lineno == 1:
                if (wide := wide_text(line[:4])) is not None:  # cut at b"\n", its lines would be half read
                    raise wide_text_error(wide, source)
                line = line.removeprefix(_BOM)
            if line and not line.isspace():
                yield lineno, line.rstrip(b"\r\n")  # a record cut short is "unterminated", not "a control character"
    except GZIP_ERRORS as exc:
        broke.append(FormatError(f"the compressed data breaks off after line {lineno} ({type(exc).__name__}: "
                                 f"{exc}); the lines before it were read", source=source, whole_file=True))


def _json_document(path: Path) -> list[Any] | None:
    """For a ``.json`` (or ``.json.gz``) file holding one JSON document: its records (a list of records or
    drawings, one record, or one drawing); none for a file of white space only, as an empty ndjson file holds
    none. ``None`` for ndjson content (which then goes line by line, so a malformed line is reported with its
    number). A document that is an object without a ``drawing`` (metadata such as a ``meta.json``) is a
    ``FormatError`` about the whole file: it holds no record to count as failed.

    A file of another name (standard input's copy, ``x.ndjson``, no suffix) is read as a document only when its
    start says it is one (``_starts_a_document``); when it then does not parse, it is one error as a ``.json``
    file's is, unless any of its lines is JSON on its own: then it goes line by line, so that no good line is lost
    to the guess."""
    named = Path(plain_name(path)).suffix.lower() == ".json"
    if not named and not _starts_a_document(path):  # line_based(path), the suffix already looked at
        return None
    try:
        with open_bytes(path) as f:
            data = f.read()
    except GZIP_ERRORS as exc:
        raise FormatError(f"unreadable compressed data ({type(exc).__name__}: {exc}); nothing in it was read",
                          source=str(path), whole_file=True) from None
    if (refusal := not_text(data[:4096], str(path))) is not None:
        raise refusal
    if not data.removeprefix(_BOM).strip():
        return []
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        if _lines_stand_alone(data, whole=not named):
            return None  # ndjson content: read line by line
        line = exc.lineno if isinstance(exc, json.JSONDecodeError) else None
        raise FormatError(f"not a valid JSON document ({getattr(exc, 'msg', exc)}); nothing in it was read",
                          source=str(path), line=line, whole_file=True) from None
    if isinstance(doc, list) and _depth(doc) != 3:  # a list of records; depth 3 is one drawing
        return doc
    if isinstance(doc, dict) and "drawing" not in doc:  # metadata (a meta.json, a report.json), not a record
        raise FormatError(f"a JSON object without a 'drawing' field (fields: {sorted(doc)[:8]}): not a sketch "
                          "file; nothing in it was read", source=str(path), whole_file=True)
    return [doc]


_ARRAY_OF_OBJECTS = re.compile(rb"\[\s*\{")


def line_based(path: str | os.PathLike) -> bool:
    """Whether an ndjson or JSON file is read line by line (each line a record, numbered): yes unless it is named
    ``.json`` (``.json.gz``) or, whatever its name, starts as one JSON document (``_starts_a_document``). The
    readers, ``prepare``'s parallel chunks and ``evaluate --sample-per-file`` all go by it."""
    path = Path(path)
    return Path(plain_name(path)).suffix.lower() != ".json" and not _starts_a_document(path)


def _starts_a_document(path: Path) -> bool:
    """Whether a file not named ``.json`` starts as one JSON document rather than as ndjson, from its first 64 KiB:
    a list of objects (``[{"drawing": ...}, ...]``: an ndjson line never is one, a bare drawing starting ``[[``), or
    a pretty-printed document (its first line a lone ``[`` or ``{``, as ``json.dumps(..., indent=2)``, ``jq`` and
    ``JSON.stringify`` write it; never a valid ndjson line). A file of one long line (a RAW drawing of many points)
    is neither, nor is ndjson whose lines are all broken: they read line by line. A stream (a pipe) is not looked
    at: what was read of it would be lost to the reader."""
    try:
        if not path.is_file():
            return False
        with open_bytes(path) as f:
            head = f.read(1 << 16)
    except (OSError, *GZIP_ERRORS):
        return False  # the reader reports it
    head = head.removeprefix(_BOM).lstrip()
    if not head.startswith((b"[", b"{")):
        return False
    return bool(_ARRAY_OF_OBJECTS.match(head)) or head.split(b"\n", 1)[0].strip() in (b"[", b"{")


_BRACKETED_LINE = re.compile(rb"^[ \t]*[\[{].*[\]}][ \t\r]*$", re.MULTILINE)


def _lines_stand_alone(data: bytes, whole: bool = False) -> bool:
    """Whether a non-blank line of the first 64 KiB (of all of ``data`` when ``whole``) is a JSON object or array
    on its own (ndjson), unlike the lines of a pretty-printed document; so a ``.json`` file of lines reads as the
    same ``.jsonl`` file would, bad leading lines (a comment header) and all. Only lines that open and close with
    a bracket are parsed (a pretty-printed document has few: its scan over a large file is a regular expression's)."""
    text = (data if whole else data[: 1 << 16]).removeprefix(_BOM)
    lines = (m[0] for m in _BRACKETED_LINE.finditer(text))
    for line in lines:
        try:
            if isinstance(load_json(line), (dict, list)):
                return True
        except FormatError:
            continue
    return False


def _depth(obj: Any) -> int:
    """Nesting depth following first elements: a drawing ``[[xs, ys], ...]`` has depth 3."""
    depth = 0
    while isinstance(obj, list) and obj:
        depth, obj = depth + 1, obj[0]
    return depth + (1 if isinstance(obj, list) else 0)


def _read_document(
    records: list[Any], source: str, style: Style, label: str | None, on_error: OnError, keep_empty: bool
) -> Iterator[tuple[Place, Sketch]]:
    for i, record in enumerate(records, 1):
        place = Place(source, prefix=f"record {i}: ")
        try:
            sketch = parse_record(record, style=style, label=label, keep_empty=keep_empty)
        except FormatError as exc:
            report(place.locate(exc), on_error)
            continue
        yield place, sketch


# ---------------------------------------------------------------------------------------- writing
def _column(values: np.ndarray, ndigits: int, offset: float = 0.0) -> list:
    """One coordinate list (``values + offset``): ints when every value is integral, else floats rounded to
    ``ndigits``."""
    v = values.astype(np.float64) + offset
    r = np.round(v)
    if (r == v).all():
        return r.astype(np.int64).tolist()
    return np.round(v, ndigits).tolist()


def _coord_origin(sketch: Sketch) -> tuple[float, float]:
    """The ``COORD_ORIGIN`` reading subtracted from this sketch's coordinates (``(0, 0)`` when none)."""
    origin = sketch.meta.get(COORD_ORIGIN)
    if origin is None:
        return 0.0, 0.0
    try:
        x, y = (float(v) for v in origin)
    except (TypeError, ValueError):
        raise SketchError(f"sketch {sketch.key_id!r}: meta[{COORD_ORIGIN!r}] must be [x, y], got {origin!r}") from None
    return x, y


def record_from_sketch(sketch: Sketch, style: Style = "simplified", *, ndigits: int = 3) -> dict[str, Any]:
    """The ndjson record for one sketch.

    ``simplified``: ``word, countrycode, timestamp, recognized, key_id, drawing [[xs, ys], ...]``
    (times dropped). ``raw``: the same with ``[xs, ys, ts]`` (needs times). ``spg``: ``key_id,
    drawing [[xs, ys, part_ids], ...]`` and no ``word`` (needs ``parts``; the class goes in the file
    name). Scalar ``meta`` entries are kept; coordinates are written as ints when integral. A sketch read from an
    ``.npz`` so keeps its ``split`` and ``index`` as fields; read back, they are plain metadata like any other
    field: ``prepare`` takes a record's split from its file's name (``cat_test.ndjson``), never from a field.
    """
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    if style == "raw" and not sketch.has_time and sketch.strokes:
        raise SketchError(f"sketch {sketch.key_id!r} has no times; style='raw' needs [xs, ys, ts] strokes")
    if style == "spg" and sketch.parts is None:
        raise SketchError(f"sketch {sketch.key_id!r} has no parts; style='spg' needs per-point part ids")
    rec: dict[str, Any] = {}
    if style != "spg" and sketch.label is not None:
        rec["word"] = sketch.label
    for k in ("countrycode", "timestamp"):
        if k in sketch.meta:
            rec[k] = sketch.meta[k]
    if sketch.recognized is not None and style != "spg":
        rec["recognized"] = sketch.recognized
    if sketch.key_id is not None:
        rec["key_id"] = sketch.key_id
    for k, v in sketch.meta.items():
        if k not in rec and k not in _RECORD_FIELDS and k not in (TIME_ORIGIN, COORD_ORIGIN) and (
                v is None or isinstance(v, (str, int, float, bool))):
            rec[k] = v
    ncols = 3 if style == "raw" else 2
    offsets = [*_coord_origin(sketch), float(sketch.meta.get(TIME_ORIGIN) or 0.0)]
    drawing = []
    for i, s in enumerate(sketch.strokes):
        cols = [_column(s[:, c], ndigits, offsets[c]) for c in range(ncols)]
        if style == "spg":
            cols.append(np.asarray(sketch.parts[i]).astype(np.int64).tolist())
        drawing.append(cols)
    rec["drawing"] = drawing
    return rec


def write_ndjson(
    sketches: Iterable[Sketch], path: PathLike, *, style: Style = "simplified", ndigits: int = 3
) -> int:
    """Write one record per line (see ``record_from_sketch``), atomically; returns the count written."""
    count = 0
    with atomic_write(path, "w", encoding="utf-8", newline="\n") as f:
        for sketch in sketches:
            f.write(json.dumps(record_from_sketch(sketch, style, ndigits=ndigits), separators=(",", ":")))
            f.write("\n")
            count += 1
    return count
