"""The ``Sketch``: an ordered list of strokes, each a float32 array of points.

A stroke is ``(n, 2)`` (x, y) or ``(n, 3)`` (x, y, t with t in milliseconds). All strokes of one
sketch have the same number of columns. Per-point part ids (SPG's third list) are kept apart in
``parts`` because they are labels, not coordinates.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import SketchError
from .wording import a_type

__all__ = ["Sketch", "point_list_hint"]


def point_list_hint(want: str = "[xs, ys] or [xs, ys, ts]") -> str:
    """The hint for a stroke given as points ``[[x, y], ...]`` where ``want`` (coordinate lists) belongs."""
    return f"points given as [[x, y], ...]? give each stroke as {want}"


_KIND_NAMES = {"U": "str", "S": "bytes", "b": "bool", "c": "complex", "M": "datetime64", "m": "timedelta64"}


def _array_kind(arr: np.ndarray) -> str:
    """What an array of other than numbers holds, for a message: ``str array (<U1)``."""
    return f"{_KIND_NAMES.get(arr.dtype.kind, arr.dtype.name)} array ({arr.dtype})"


def _numeric(obj: Any, where: str) -> np.ndarray:
    """``obj`` (nested lists or an array) as a float64 array, or ``SketchError`` prefixed by ``where`` unless it
    holds real numbers only: strings, booleans, ``None`` and complex numbers are refused, as the JSON reader
    refuses them (``numpy`` would read ``"1"`` and ``True`` as 1.0)."""
    try:
        arr = np.asarray(obj)
    except (TypeError, ValueError, OverflowError) as exc:
        raise SketchError(f"{where}: not numeric ({exc})") from None
    if arr.dtype.kind not in "iuf":
        if arr.dtype.kind != "O":
            found = _array_kind(arr) if isinstance(obj, np.ndarray) else _KIND_NAMES.get(arr.dtype.kind, str(arr.dtype))
            raise SketchError(f"{where}: coordinates must be numbers, found a {found}")
        bad = [v for v in arr.flat if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real)][:1]
        if bad:
            raise SketchError(f"{where}: coordinates must be numbers, found {a_type(bad[0])}")
    try:
        return arr.astype(np.float64, copy=False)
    except (TypeError, ValueError, OverflowError) as exc:  # an object array whose numbers do not fit a float
        raise SketchError(f"{where}: not numeric ({exc})") from None


def _as_stroke(obj: Any, index: int) -> np.ndarray:
    """Turn ``[xs, ys]`` / ``[xs, ys, ts]`` lists or an ``(n, 2|3)`` array into ``(n, 2|3)`` float32."""
    arr = _numeric(obj, f"stroke {index}")
    if arr.ndim != 2:
        raise SketchError(f"stroke {index}: expected [xs, ys(, ts)] or an (n, 2|3) array, got shape {arr.shape}")
    if not isinstance(obj, np.ndarray):
        arr = arr.T  # list form is always [xs, ys(, ts)] -> (n, 2|3)
    if arr.shape[1] not in (2, 3):
        if isinstance(obj, np.ndarray):
            got = f"shape {arr.shape}"
        else:  # arr is the lists transposed: (values per list, lists)
            hint = f" ({point_list_hint()})" if arr.shape[0] in (2, 3) else ""  # lists of 2 or 3 numbers: points
            got = f"{arr.shape[1]} lists of {arr.shape[0]}{hint}"
        raise SketchError(f"stroke {index}: expected 2 or 3 coordinate lists (or an (n, 2|3) array), got {got}")
    if not np.isfinite(arr).all():
        raise SketchError(f"stroke {index}: coordinates contain NaN or infinity")
    if np.abs(arr[:, :2]).max(initial=0.0) > MAX_COORDINATE:
        raise SketchError(f"stroke {index}: coordinates larger than {MAX_COORDINATE:g} in magnitude")
    return arr.astype(np.float32)


def _is_empty(obj: Any) -> bool:
    """True for ``[]``, ``[[], []]``, ``[[], [], []]`` and ``(0, k)`` arrays."""
    if isinstance(obj, np.ndarray):
        return obj.size == 0
    if isinstance(obj, (list, tuple)):
        return len(obj) == 0 or all(isinstance(c, (list, tuple, np.ndarray)) and len(c) == 0 for c in obj)
    return False


MAX_COORDINATE = 1e9
"""The largest coordinate magnitude a sketch may have (the readers, ``Sketch.from_strokes`` and the service)."""
MAX_TIME = 1e15
"""The largest time magnitude (ms) a reader accepts; a clock in ms since 1970 is about 1.8e12."""

COORD_ORIGIN = "sketchgraph.coord_origin"
"""``Sketch.meta`` key of the ``[x, y]`` a reader subtracted from coordinates beyond 2**20 in magnitude, where
float32's step passes 1/8 px (``sketchgraph.formats.ndjson.parse_drawing``); the ndjson writer adds it back. It
describes the strokes as read: ``Sketch.replace`` with new strokes (simplification, normalisation,
augmentation) drops it."""
TIME_ORIGIN = "sketchgraph.time_origin_ms"
"""``Sketch.meta`` key of the clock time a reader subtracted from absolute times (``sketchgraph.formats.ndjson.
parse_drawing``; also importable from there); the raw writer adds it back. ``COORD_ORIGIN`` is its twin for
coordinates. A record's own field of either name is dropped when read: the names are the reader's."""


@dataclass
class Sketch:
    """A free-hand sketch.

    Attributes:
        strokes: list of float32 arrays, each ``(n_i, 2)`` or ``(n_i, 3)`` (x, y[, t ms]).
        label: class name, if known.
        key_id: the record's identifier, if known.
        parts: optional per-point part ids, one int array ``(n_i,)`` per stroke (SPG).
        recognized: Quick, Draw!'s ``recognized`` flag, if known.
        meta: any other fields of the source record (countrycode, timestamp, ...).
    """

    strokes: list[np.ndarray]
    label: str | None = None
    key_id: str | None = None
    parts: list[np.ndarray] | None = None
    recognized: bool | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.strokes, list):
            self.strokes = list(self.strokes)
        for i, s in enumerate(self.strokes):
            if not isinstance(s, np.ndarray) or s.ndim != 2 or s.shape[1] not in (2, 3):
                shape = getattr(s, "shape", type(s).__name__)
                raise SketchError(f"stroke {i}: expected an (n, 2|3) array, got {shape} (lists: Sketch.from_strokes)")
            if s.dtype.kind not in "iuf":
                raise SketchError(f"stroke {i}: coordinates must be numbers, found a {_array_kind(s)}")
        differs = next((i for i, s in enumerate(self.strokes) if s.shape[1] != self.strokes[0].shape[1]), None)
        if differs is not None:
            first, other = self.strokes[0].shape[1], self.strokes[differs].shape[1]
            raise SketchError(f"strokes mix 2 and 3 columns: stroke {differs} has {other}, the strokes before it "
                              f"{first}")
        if self.parts is not None:
            if len(self.parts) != len(self.strokes) or any(
                len(p) != len(s) for p, s in zip(self.parts, self.strokes)
            ):
                raise SketchError("parts must give one id per point of every stroke")

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_strokes(
        cls,
        strokes: Sequence[Any],
        *,
        label: str | None = None,
        key_id: str | None = None,
        drop_empty: bool = True,
        **kwargs: Any,
    ) -> Sketch:
        """Build from ``[[xs, ys], ...]``, ``[[xs, ys, ts], ...]`` or a list of ``(n, 2|3)`` arrays.

        Empty strokes are dropped (``drop_empty``); an empty result is allowed here and rejected
        by the steps that need points (``num_points == 0``).
        """
        if isinstance(strokes, np.ndarray):
            if strokes.ndim == 2 and strokes.dtype != object:
                strokes = [strokes]  # one (n, 2|3) stroke
            elif strokes.ndim >= 1:
                strokes = list(strokes)  # an object array of strokes, or (S, n, 2|3)
        if not isinstance(strokes, (list, tuple)):
            raise SketchError(f"strokes must be a list of strokes, got {type(strokes).__name__}")
        out = []
        for i, s in enumerate(strokes):
            if _is_empty(s):
                if drop_empty:
                    continue
                raise SketchError(f"stroke {i} is empty")
            out.append(_as_stroke(s, i))
        return cls(out, label=label, key_id=key_id, **kwargs)

    @classmethod
    def from_stroke3(cls, data: np.ndarray, **kwargs: Any) -> Sketch:
        """From sketch-rnn stroke-3 rows ``(dx, dy, pen_lifted)`` ``(n, 3)``; the first point is
        the origin plus the first offset. ``pen_lifted=1`` ends a stroke after that point."""
        data = _numeric(data, "stroke-3 data")
        if data.ndim != 2 or data.shape[1] != 3:
            raise SketchError(f"stroke-3 data must have shape (n, 3), got {data.shape}")
        if not np.isfinite(data).all():
            raise SketchError("stroke-3 data contains NaN or infinity")
        bad = np.flatnonzero((data[:, 2] != 0) & (data[:, 2] != 1))
        if len(bad):
            raise SketchError(
                f"stroke-3 rows are (dx, dy, pen_lifted) with pen_lifted 0 or 1; row {bad[0]} has "
                f"{data[bad[0], 2]:g}. Points (x, y, t) of one stroke go in a list of strokes: [array]"
            )
        xy = np.cumsum(data[:, :2], axis=0)
        ends = np.flatnonzero(data[:, 2] > 0.5)
        bounds = np.concatenate([[0], ends + 1, [len(data)]])
        strokes = [xy[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        return cls([_as_stroke(s, i) for i, s in enumerate(strokes)], **kwargs)

    @classmethod
    def from_stroke5(cls, data: np.ndarray, **kwargs: Any) -> Sketch:
        """From stroke-5 rows ``(dx, dy, p_down, p_up, p_end)``; stops at the first end-of-sketch row."""
        data = _numeric(data, "stroke-5 data")
        if data.ndim != 2 or data.shape[1] != 5:
            raise SketchError(f"stroke-5 data must have shape (n, 5), got {data.shape}")
        end = np.flatnonzero(data[:, 4] > 0.5)
        if len(end):
            data = data[: end[0]]
        return cls.from_stroke3(np.column_stack([data[:, 0], data[:, 1], data[:, 3] > 0.5]), **kwargs)

    # ------------------------------------------------------------------ conversions
    def to_stroke3(self) -> np.ndarray:
        """Stroke-3 ``(N, 3)`` float32: offsets from the previous point (the first from the
        origin) and ``pen_lifted=1`` on the last point of each stroke."""
        pts = self.points()
        if len(pts) == 0:
            return np.zeros((0, 3), np.float32)
        d = np.diff(pts, axis=0, prepend=np.zeros((1, 2), pts.dtype))
        pen = np.zeros(len(pts), np.float32)
        pen[np.cumsum([len(s) for s in self.strokes]) - 1] = 1.0
        return np.column_stack([d, pen]).astype(np.float32)

    def to_stroke5(self, max_len: int | None = None) -> np.ndarray:
        """Stroke-5 ``(max_len or N+1, 5)``: ``(dx, dy, p_down, p_up, p_end)``, padded with end rows."""
        s3 = self.to_stroke3()
        n = len(s3)
        total = max_len if max_len is not None else n + 1
        if total < n + 1:
            raise SketchError(f"sketch has {n} points; stroke-5 needs max_len >= {n + 1}")
        out = np.zeros((total, 5), np.float32)
        out[:n, :2] = s3[:, :2]
        out[:n, 2] = 1.0 - s3[:, 2]
        out[:n, 3] = s3[:, 2]
        out[n:, 4] = 1.0
        return out

    def to_lists(self, ndigits: int | None = None) -> list[list[list[float]]]:
        """``[[xs, ys(, ts)], ...]`` as plain Python lists (Quick, Draw! ndjson layout)."""
        out = []
        for s in self.strokes:
            cols = []
            for c in range(s.shape[1]):
                v = s[:, c].astype(np.float64)
                if ndigits is not None:
                    v = np.round(v, ndigits)
                vals = [int(x) if float(x).is_integer() else float(x) for x in v]
                cols.append(vals)
            out.append(cols)
        return out

    # ------------------------------------------------------------------ properties
    def points(self) -> np.ndarray:
        """All points in drawing order, ``(N, 2)`` float32 (time dropped)."""
        if not self.strokes:
            return np.zeros((0, 2), np.float32)
        return np.concatenate([s[:, :2] for s in self.strokes]).astype(np.float32, copy=False)

    def times(self) -> np.ndarray | None:
        """Per-point times ``(N,)`` in ms, or ``None`` when the sketch has none."""
        if not self.has_time or not self.strokes:
            return None
        return np.concatenate([s[:, 2] for s in self.strokes])

    def stroke_lengths(self) -> np.ndarray:
        """Number of points per stroke, ``(S,)`` int64."""
        return np.array([len(s) for s in self.strokes], dtype=np.int64)

    @property
    def has_time(self) -> bool:
        return bool(self.strokes) and self.strokes[0].shape[1] == 3

    @property
    def num_points(self) -> int:
        return int(sum(len(s) for s in self.strokes))

    @property
    def num_strokes(self) -> int:
        return len(self.strokes)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(min_x, min_y, max_x, max_y)``; raises ``SketchError`` on an empty sketch."""
        pts = self.points()
        if len(pts) == 0:
            raise SketchError("empty sketch has no bounds")
        lo, hi = pts.min(0), pts.max(0)
        return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])

    def __eq__(self, other: object) -> bool:
        """Equal fields, with strokes and parts compared element-wise (dtype-insensitive)."""
        if not isinstance(other, Sketch):
            return NotImplemented

        def same(a: list[np.ndarray] | None, b: list[np.ndarray] | None) -> bool:
            if a is None or b is None:
                return a is b
            return len(a) == len(b) and all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b))

        return (
            (self.label, self.key_id, self.recognized, self.meta)
            == (other.label, other.key_id, other.recognized, other.meta)
            and same(self.strokes, other.strokes)
            and same(self.parts, other.parts)
        )

    __hash__ = None  # mutable

    def replace(self, **changes: Any) -> Sketch:
        """A copy with some fields replaced (strokes are shared unless replaced). New ``strokes`` without a new
        ``meta`` drop ``meta[COORD_ORIGIN]``: it belonged to the old coordinates."""
        kw = dict(
            strokes=self.strokes, label=self.label, key_id=self.key_id, parts=self.parts,
            recognized=self.recognized, meta=dict(self.meta),
        )
        if "strokes" in changes and "meta" not in changes:
            kw["meta"].pop(COORD_ORIGIN, None)
        kw.update(changes)
        return Sketch(**kw)

    def __repr__(self) -> str:
        return (
            f"Sketch(label={self.label!r}, key_id={self.key_id!r}, strokes={self.num_strokes}, "
            f"points={self.num_points}, time={self.has_time})"
        )
