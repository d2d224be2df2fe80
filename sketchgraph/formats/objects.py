"""``sketch_from_obj``: one sketch from whatever a caller holds in memory (used by the predict API)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import FormatError, SketchError
from ..sketch import Sketch
from .base import EmptySketchError
from .ndjson import _EXACT_F32, _REBASE_COORDS, Style, load_json, looks_like_spg, parse_record

__all__ = ["sketch_from_obj"]


def sketch_from_obj(
    obj: Any, *, label: str | None = None, style: Style | None = None, keep_empty: bool = False
) -> Sketch:
    """Make a ``Sketch`` from any of these:

    - a ``Sketch`` (returned as is; ``label`` fills a missing label);
    - strokes ``[[xs, ys], ...]`` or ``[[xs, ys, ts], ...]``, or a list of ``(n, 2|3)`` arrays (float64 or
      integer arrays get the JSON reader's exact rebasing of huge coordinates and clock times, ``parse_drawing``);
    - an ndjson record ``{"drawing": [...], "word": ..., "key_id": ...}``, or its JSON text (str/bytes);
    - stroke-3 rows ``(n, 3)`` ``(dx, dy, pen_lifted)`` or stroke-5 rows ``(n, 5)`` as a numpy array.

    ``style`` is as in ``parse_record``; ``None`` treats a third list as time unless the record
    looks like SPG (``looks_like_spg``). A sketch without points raises ``EmptySketchError``
    unless ``keep_empty``. Bad input raises ``FormatError`` saying what was expected.
    """
    if isinstance(obj, Sketch):
        sketch = obj if label is None or obj.label is not None else obj.replace(label=label)
    elif isinstance(obj, (str, bytes, bytearray)):
        try:
            parsed = load_json(obj.lstrip("\ufeff") if isinstance(obj, str) else bytes(obj), encoding=None)
        except FormatError as exc:
            raise FormatError(f"not a JSON sketch: {exc}") from None
        if not isinstance(parsed, (dict, list)):
            raise FormatError(f"JSON sketch must be an object or a list, got {type(parsed).__name__}")
        return sketch_from_obj(parsed, label=label, style=style, keep_empty=keep_empty)
    elif isinstance(obj, np.ndarray):
        sketch = _from_array(obj, label)
    elif isinstance(obj, (list, tuple)) and obj and all(isinstance(s, np.ndarray) for s in obj):
        if _beyond_float32(obj):  # read as JSON strokes: parse_drawing rebases them exactly, in float64; an
            strokes = [s.T.tolist() for s in obj]  # array's third column is time ("raw"), never SPG part ids
            return sketch_from_obj(strokes, label=label, style=style or "raw", keep_empty=keep_empty)
        try:
            sketch = Sketch.from_strokes(list(obj), label=label)
        except SketchError as exc:
            raise FormatError(str(exc)) from None
    elif isinstance(obj, (dict, list, tuple)):
        if isinstance(obj, dict):
            record = {**obj, "drawing": _json_like(obj["drawing"])} if "drawing" in obj else obj
        else:
            record = _json_like(obj)
        if style is None:
            style = "spg" if looks_like_spg(record) else "simplified"
        return parse_record(record, style=style, label=label, keep_empty=keep_empty)
    else:
        raise FormatError(
            f"cannot make a Sketch from {type(obj).__name__}; expected a Sketch, [[xs, ys], ...], "
            "an ndjson record (dict or JSON string) or stroke-3 rows (n, 3)"
        )
    if sketch.num_points == 0 and not keep_empty:
        raise EmptySketchError("empty drawing (no points)")
    return sketch


def _beyond_float32(arrays: list[np.ndarray] | tuple[np.ndarray, ...]) -> bool:
    """Whether ``(n, 2|3)`` stroke arrays of a type wider than float32 (float64, integers) hold values the JSON
    reader rebases (``parse_drawing``): coordinates beyond 2**20 in magnitude, or times beyond 2**24 (absolute
    clock times such as ``Date.now()``'s)."""
    if not all(a.ndim == 2 and a.shape[1] in (2, 3) and a.dtype.kind in "iuf" for a in arrays):
        return False  # Sketch.from_strokes says what is wrong
    wide = [a for a in arrays if a.dtype.kind in "iu" or a.dtype.itemsize > 4]
    return any(_largest(a[:, :2]) > _REBASE_COORDS or _largest(a[:, 2:]) > _EXACT_F32 for a in wide)


def _largest(values: np.ndarray) -> float:
    """The largest finite magnitude in ``values`` (0 when there is none): NaN and infinity are refused later."""
    return float(np.abs(values[np.isfinite(values)]).max(initial=0))


def _json_like(drawing: Any) -> Any:
    """In-memory strokes as JSON would give them, for ``parse_record``: tuples and 1-d numpy arrays become lists
    (``[(xs, ys)]``, ``[[np.array(xs), np.array(ys)]]``). Booleans are refused (JSON's ``true`` is no
    coordinate, and Python would read it as 1)."""
    if not isinstance(drawing, (list, tuple)):
        return drawing
    strokes = []
    for stroke in drawing:
        if isinstance(stroke, (list, tuple)):
            stroke = [col.tolist() if isinstance(col, np.ndarray) and col.ndim == 1 else
                      list(col) if isinstance(col, tuple) else col for col in stroke]
            if any(isinstance(v, (bool, np.bool_)) for col in stroke if isinstance(col, list) for v in col):
                raise FormatError("coordinates must be numbers, found a bool")
        strokes.append(stroke)
    return strokes


def _from_array(arr: np.ndarray, label: str | None) -> Sketch:
    if arr.ndim != 2 or arr.shape[1] not in (3, 5):
        hint = (" (points (x, y) of one stroke? strokes go in a list: [array] for one stroke, [a, b] for two)"
                if arr.ndim == 2 and arr.shape[1] == 2 else "")
        raise FormatError(f"a numpy sketch must be stroke-3 (n, 3) or stroke-5 (n, 5) rows, got shape {arr.shape}"
                          + hint)
    try:
        if arr.shape[1] == 3:
            return Sketch.from_stroke3(arr, label=label)
        return Sketch.from_stroke5(arr, label=label)
    except SketchError as exc:
        raise FormatError(str(exc)) from None
