"""Reading a ``POST /predict`` body: bytes -> JSON -> ``PredictRequest`` -> a checked ``Sketch``.

The app calls ``read_drawing`` in a worker thread, never on the event loop. That alone does not keep the loop
free: ``json.loads`` and pydantic's validation hold the GIL from start to end, and their cost grows with the
number of JSON arrays (a 1 MB body of 100,000 one-point strokes takes about a second on a 2-core machine, while
a body of the same size made of numbers takes a few tens of milliseconds). So before parsing, the body's ``[`` and
``{`` are counted (a fast byte scan), and a body with more than a drawing of ``max_strokes`` strokes needs
(``DrawingLimits.max_containers``) is refused without being parsed.

The errors keep the shapes FastAPI gives a body it reads itself: ``RequestValidationError`` (a list of
``{loc, msg, type}``) for JSON syntax and schema errors, with the same messages and locations, plus json's
reason and the line and column for syntax errors; ``UnreadableBody`` (one sentence) for a body ``json.loads``
cannot read at all; ``SketchError`` (one sentence) for a drawing that breaks a rule the schema cannot say.
"""

from __future__ import annotations

import difflib
import json
import sys
from dataclasses import dataclass
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from ..errors import FormatError, SketchError
from ..formats.ndjson import parse_drawing
from ..sketch import MAX_COORDINATE, MAX_TIME, Sketch
from .schemas import RECORD_FIELDS, PredictRequest

__all__ = ["DrawingLimits", "UnreadableBody", "check_drawing", "read_drawing", "SPARE_CONTAINERS", "MAX_ISSUES"]

SPARE_CONTAINERS = 64  # JSON arrays and objects a body may hold besides its drawing's (extra fields, refused by name)
MAX_ISSUES = 20
"""The most issues a 422 lists, then one saying how many more there are: a body of many thousands of unknown fields
gave as many issues (seconds of work, an answer many times the body's size). The drawing's own values stop at
the first wrong one (``schemas.Drawing``)."""


class UnreadableBody(ValueError):
    """A body that is not JSON this server reads (not UTF-8, an integer of too many digits, nesting too deep,
    too many arrays and objects); its message says why."""


@dataclass(frozen=True)
class DrawingLimits:
    """The most points and strokes a drawing may have."""

    max_points: int
    max_strokes: int

    def __post_init__(self) -> None:
        if self.max_points < 1 or self.max_strokes < 1:
            raise ValueError(f"max_points and max_strokes must be >= 1, got {self.max_points} and {self.max_strokes}")

    @property
    def max_containers(self) -> int:
        """The most ``[`` and ``{`` a body may hold: the body's object, the drawing's list, a list per stroke and
        up to 3 in each (``[xs, ys, ts]``), and ``SPARE_CONTAINERS`` for extra fields."""
        return 2 + 4 * self.max_strokes + SPARE_CONTAINERS


def check_drawing(drawing: list[list[list[float]]], limits: DrawingLimits) -> Sketch:
    """A ``Sketch`` from request strokes, or ``SketchError`` saying what is wrong with them."""
    if not drawing:
        raise SketchError("drawing is empty: send at least one stroke [xs, ys]")
    if len(drawing) > limits.max_strokes:
        raise SketchError(f"drawing has {len(drawing)} strokes; at most {limits.max_strokes} are accepted")
    try:  # the readers' checks, and their exact float64 rebasing of huge values
        strokes, _, origins = parse_drawing(drawing)
    except FormatError as exc:
        raise SketchError(str(exc)) from None
    total = sum(len(s) for s in strokes)
    if total == 0:
        raise SketchError("drawing has no points")
    if total > limits.max_points:
        raise SketchError(f"drawing has {total} points; at most {limits.max_points} are accepted")
    return Sketch(strokes, meta=origins)


def _issue(loc: tuple[str | int, ...], msg: str, kind: str) -> RequestValidationError:
    return RequestValidationError([{"loc": loc, "msg": msg, "type": kind}])


def parse_json(body: bytes, limits: DrawingLimits) -> Any:
    """The JSON value of ``body`` (UTF-8, or UTF-16 / UTF-32 as ``json.loads`` detects them); ``UnreadableBody``
    when it has more arrays and objects than ``limits`` allow (checked before parsing) or cannot be read, and
    ``RequestValidationError`` for a missing body or a syntax error (json's reason, line and column)."""
    if not body:
        raise _issue(("body",), "Field required", "missing")
    containers = body.count(b"[") + body.count(b"{")
    if containers > limits.max_containers:
        raise UnreadableBody(
            f"the body has {containers:,} '[' and '{{' (JSON arrays and objects, counted with any inside strings); "
            f"a drawing of at most "
            f"{limits.max_strokes:,} strokes needs at most {limits.max_containers:,}: refused without parsing it")
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise _issue(("body", exc.pos), f"JSON decode error: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                     "json_invalid") from None
    except UnicodeDecodeError as exc:
        raise UnreadableBody(f"the body is not JSON this server can read: {exc}") from None
    except RecursionError:
        why = "arrays or objects nested too deeply"
        raise UnreadableBody(f"the body is not JSON this server can read: {why}") from None
    except ValueError as exc:  # the one other refusal: an integer literal longer than Python converts
        if "integer string conversion" not in str(exc):
            raise UnreadableBody(f"the body is not JSON this server can read: {exc}") from None
        raise UnreadableBody(f"the body is not JSON this server can read: a number is too long (an integer may "
                             f"have at most {sys.get_int_max_str_digits():,} digits)") from None


def _message(error: dict[str, Any]) -> str:
    """pydantic's message for one validation error; for an unknown field (``extra_forbidden``), also the fields
    there are, and the nearest one when the name looks like a misspelling of it (``topk``: ``top_k``). The Quick,
    Draw! record's keys that are accepted and ignored (``RECORD_FIELDS``) are not offered. An integer beyond a
    float's range (over 308 digits) is said to be too large, as a float of that size is (``check_drawing``)."""
    value = error.get("input")
    if error["type"] == "float_type" and isinstance(value, int) and not isinstance(value, bool):
        what = f"times (ts) of magnitude <= {MAX_TIME:.0e}" if error["loc"][-2:-1] == (2,) else (
            f"coordinates of magnitude <= {MAX_COORDINATE:.0e}")
        return f"{error['msg']}: this integer of {len(str(abs(value))):,} digits is too large; a drawing has {what}"
    if error["type"] != "extra_forbidden" or len(error["loc"]) != 1:
        return error["msg"]
    fields = [name for name in PredictRequest.model_fields if name not in RECORD_FIELDS]
    name = str(error["loc"][0])
    close = difflib.get_close_matches(name.lower(), fields, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{error['msg']}: the fields are {' and '.join(map(repr, fields))}, not {name!r}{hint}"


def read_drawing(body: bytes, limits: DrawingLimits) -> tuple[Sketch, int]:
    """The checked sketch and ``top_k`` of a ``POST /predict`` body; the errors as in the module docstring (an
    unknown field is a schema error too, naming the fields there are)."""
    value = parse_json(body, limits)
    if isinstance(value, dict):  # many unknown fields: refused before pydantic makes an error of each
        unknown = [name for name in value if name not in PredictRequest.model_fields]
        if len(unknown) > MAX_ISSUES:
            raise RequestValidationError(_listed([
                {"loc": (name,), "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
                for name in unknown[:MAX_ISSUES + 1]], len(unknown)))
    try:
        # from_attributes: the messages FastAPI's own body validation gives ("... or object to extract fields from")
        request = PredictRequest.model_validate(value, from_attributes=True)
    except ValidationError as exc:
        raise RequestValidationError(_listed(exc.errors(), exc.error_count())) from None
    return check_drawing(request.drawing, limits), request.top_k


def _listed(errors: list[Any], count: int) -> list[dict[str, Any]]:
    """The issues of a 422 (under ``body``): the first ``MAX_ISSUES`` of ``count``, then one saying how many more
    there are when there are more."""
    shown = [{"loc": ("body", *e["loc"]), "msg": _message(e), "type": e["type"]} for e in errors[:MAX_ISSUES]]
    if count > MAX_ISSUES:
        shown.append({"loc": ("body",), "msg": f"and {count - MAX_ISSUES:,} more issues (the first {MAX_ISSUES} "
                                               f"are listed)", "type": "too_many_issues"})
    return shown
