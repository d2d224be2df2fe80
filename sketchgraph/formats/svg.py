"""SVG sketches (e.g. TU-Berlin): one stroke per path / subpath, curves sampled to polylines.

The element tree is walked here, in document order: ``<path>``, ``<line>``, ``<polyline>``, ``<polygon>``,
``<rect>``, ``<circle>`` and ``<ellipse>`` are shapes (``<line>``, ``<rect>``, ``<circle>``, ``<ellipse>`` written
as path data here from their lengths, the others by svgpathtools); ``<g>``,
``<a>``, ``<switch>`` and nested ``<svg>`` (placed by ``x``/``y``/``width``/``height``/``viewBox``/
``preserveAspectRatio``) are
containers; ``<use>`` draws what it references (``href`` or ``xlink:href``). Every ``transform`` on the way is
applied (svgpathtools' ``svg2paths`` ignores them, and its ``Document`` skips shapes outside ``<g>``, under
``<a>`` or in files without the SVG namespace). ``<defs>``, ``<symbol>`` (unless used), text, images, clip
paths, masks, markers and elements with ``display="none"`` or ``opacity="0"`` (attribute or style, ``!important`` or
not) draw no strokes, nor do shapes under ``visibility="hidden"`` (inherited; a shape may set ``visible`` again); a
``<switch>`` draws its first drawable child; a shape under a singular transform (``scale(0)``) has no area and
draws nothing. At most ``_MAX_USES`` (10,000) ``<use>`` copies are made, since nested uses multiply. Lengths in
``px``, ``pt``, ``pc``, ``mm``, ``cm``, ``in``, ``em`` are converted to user units. A shape's length that is a
percentage or not a length (``<line x1="10%">``, ``<circle r="5furlongs">``), or a missing circle radius, refuses
the file, naming element and attribute; a percentage in ``<svg>``/``<use>`` ``x``/``y``/``width``/``height`` is
ignored. Points are in the root's user units (the viewBox frame), y pointing down as in every other format here.
Each continuous subpath becomes a stroke (a move to a new place starts a new stroke). Lines keep their end points
exactly; Bezier curves and arcs are sampled at about ``spacing`` units (at most ``MAX_SEGMENT_SAMPLES`` points per
segment), arcs in their own coordinates then mapped (exact under any transform). At most ``MAX_POINTS``
(1,000,000) points per file, counted over every shape and ``<use>`` copy before any is sampled. A malformed or
unreadable file (an XML ``encoding`` that cannot be read), an invalid transform or coordinates beyond 1e9 raise
``FormatError`` naming the file.

``write_svg`` writes one ``<path d="M x y L x y ...">`` per stroke and stores the label and key_id as
``data-label`` / ``data-key-id`` attributes of the root, which ``read_svg`` reads back.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from ..errors import FormatError, SketchError
from ..sketch import Sketch
from .base import EmptySketchError, OnError, PathLike, Place, atomic_write, label_from_path, locate, report

__all__ = [
    "DEFAULT_SPACING", "MAX_SEGMENT_SAMPLES", "MAX_POINTS", "read_svg", "iter_svg", "svg_to_sketch", "write_svg",
    "sample_path",
]

DEFAULT_SPACING = 3.0
"""Sampling step along curves, in SVG user units (a few pixels of an 800x800 TU-Berlin sketch)."""

MAX_SEGMENT_SAMPLES = 10_000
"""Most points sampled on one curve segment (the step grows beyond)."""

MAX_POINTS = 1_000_000
"""Most points one SVG file may give, counted shape by shape (every ``<use>`` copy too, and every drawn shape as
at least one) before anything is sampled, so a tiny file cannot ask for billions of points; a TU-Berlin sketch
has about 1-2 thousand."""

_MAX_ABS = 1e9
_CONTAINERS = frozenset({"svg", "g", "a", "switch"})
_MAX_USE_DEPTH = 32
_MAX_USES = 10_000
_DECLARATION = re.compile(r"([A-Za-z-]+)\s*:\s*([^;]*)")  # one ``name: value`` of a style attribute


def _property(el: ET.Element, name: str) -> str | None:
    """A presentation property of ``el`` as written on it, lower case: its ``style`` declaration (the last one wins;
    ``!important`` dropped) over its attribute; ``None`` when neither sets it."""
    value = el.get(name)
    for key, text in _DECLARATION.findall(el.get("style", "")):
        if key.lower() == name:
            value = text
    return None if value is None else value.replace("!important", "").strip().lower()


def _renders_nothing(el: ET.Element) -> bool:
    """``display: none`` or ``opacity: 0`` (attribute or style): the element and everything in it draw nothing."""
    if _property(el, "display") == "none":
        return True
    opacity = _property(el, "opacity")
    try:
        return opacity is not None and float(opacity.rstrip("%")) <= 0
    except ValueError:  # an invalid value is ignored, as browsers do
        return False


def _sample_segment(seg, spacing: float) -> np.ndarray:
    """Points of one segment at parameters ``[0, 1)`` (its end point is the next segment's start),
    complex ``(k,)``."""
    from svgpathtools import Arc, Line

    if isinstance(seg, Line):
        return np.array([seg.start])
    if isinstance(seg, Arc):
        return _arc_points(seg, _arc_samples(seg, 1.0, spacing))
    return _bezier_points(seg, _bezier_samples(seg, spacing))


def _samples(length: float, spacing: float) -> int:
    if not math.isfinite(length):
        raise FormatError(f"a curve has coordinates beyond {_MAX_ABS:g}")
    return int(min(MAX_SEGMENT_SAMPLES, max(1, math.ceil(length / spacing))))


def _bezier_samples(seg, spacing: float) -> int:
    """Points to sample on a Bezier segment: its control polygon's length (>= its arc length) over ``spacing``."""
    return _samples(float(np.abs(np.diff(np.array(seg.bpoints()))).sum()), spacing)


def _bezier_points(seg, k: int) -> np.ndarray:
    """A Bezier segment at ``t = 0, 1/k, ... (k-1)/k``, complex ``(k,)``."""
    ctrl = np.array(seg.bpoints())  # (d + 1,) complex control points
    t = np.arange(k)[:, None] / k  # (k, 1)
    d = len(ctrl) - 1
    i = np.arange(d + 1)[None, :]  # (1, d + 1)
    basis = np.array([math.comb(d, j) for j in range(d + 1)]) * t**i * (1 - t) ** (d - i)  # (k, d + 1)
    return basis @ ctrl


def _arc_samples(seg, stretch: float, spacing: float) -> int:
    """Points to sample on an ``Arc`` whose points are then stretched at most ``stretch`` times: a bound of its
    length (the swept angle times the larger radius) times ``stretch``, over ``spacing``."""
    radius = max(abs(seg.radius.real), abs(seg.radius.imag))
    return _samples(abs(math.radians(seg.delta)) * radius * stretch, spacing)


def _arc_points(seg, k: int) -> np.ndarray:
    """An ``Arc`` at ``t = 0, 1/k, ... (k-1)/k``, complex ``(k,)``, evaluated at once (as ``Arc.point``)."""
    angle = np.radians(seg.theta + np.arange(k) / k * seg.delta)  # (k,)
    ellipse = seg.radius.real * np.cos(angle) + 1j * seg.radius.imag * np.sin(angle)  # (k,) before its rotation
    return seg.rot_matrix * ellipse + seg.center


def _polylines(runs: list[np.ndarray]) -> list[np.ndarray]:
    """Complex ``(n,)`` point runs -> float32 ``(n', 2)`` strokes, repeated consecutive points dropped."""
    strokes = []
    for pts in runs:
        xy = np.column_stack([pts.real, pts.imag])  # (n, 2)
        if not (np.abs(xy) <= _MAX_ABS).all():
            raise FormatError(f"coordinates must be finite numbers of magnitude <= {_MAX_ABS:g}")
        keep = np.concatenate([[True], (np.diff(xy, axis=0) != 0).any(axis=1)])
        strokes.append(xy[keep].astype(np.float32))
    return strokes


def sample_path(path, spacing: float = DEFAULT_SPACING) -> list[np.ndarray]:
    """An svgpathtools ``Path`` -> one float32 ``(n, 2)`` polyline per continuous subpath; repeated
    consecutive points are dropped."""
    if len(path) == 0:
        return []
    return _polylines([np.concatenate([_sample_segment(seg, spacing) for seg in sub] + [np.array([sub[-1].end])])
                       for sub in path.continuous_subpaths()])


class _Placed:
    """One drawn shape (an svgpathtools ``Path`` in its own coordinates) placed by its ``3x3`` matrix, planned but
    not yet sampled: ``count`` is how many points ``points()`` gives, so a file's budget is checked first.

    Lines and Bezier curves are mapped by the matrix, then sampled (exact: the image of a Bezier is the Bezier of
    the mapped control points). Arcs are sampled in the shape's own coordinates at ``spacing`` over the matrix'
    largest stretch, then their points are mapped: exact under every affine matrix, singular ones included
    (svgpathtools' own arc transform draws a mirrored arc on the wrong side, and a rotated ellipse under a
    non-uniform scale with the wrong radii)."""

    def __init__(self, path, matrix: np.ndarray, spacing: float):
        from svgpathtools import Arc, Line
        from svgpathtools.path import transform

        self.matrix, self.spacing = matrix, spacing
        stretch = float(np.linalg.norm(matrix[:2, :2], 2)) if any(isinstance(seg, Arc) for seg in path) else 1.0
        self.plans: list[list[tuple[object, bool, int]]] = []  # per subpath: (segment, mapped already, samples)
        for sub in path.continuous_subpaths() if len(path) else []:
            plan: list[tuple[object, bool, int]] = []
            for seg in sub:
                if isinstance(seg, Arc):
                    plan.append((seg, False, _arc_samples(seg, stretch, spacing)))
                else:
                    mapped = transform(seg, matrix)
                    plan.append((mapped, True, 1 if isinstance(mapped, Line) else _bezier_samples(mapped, spacing)))
            self.plans.append(plan)
        self.count = sum(k for plan in self.plans for _, _, k in plan) + len(self.plans)

    def _map(self, pts: np.ndarray) -> np.ndarray:
        """Complex points ``(k,)`` in the shape's coordinates -> the root's."""
        m, x, y = self.matrix, pts.real, pts.imag
        return (m[0, 0] * x + m[0, 1] * y + m[0, 2]) + 1j * (m[1, 0] * x + m[1, 1] * y + m[1, 2])

    def points(self) -> list[np.ndarray]:
        """Complex ``(n,)`` points of each continuous subpath, in the root's coordinates (``count`` in all)."""
        runs = []
        for plan in self.plans:
            parts = [_sample_segment(seg, self.spacing) if mapped else self._map(_arc_points(seg, k))
                     for seg, mapped, k in plan]
            last, mapped, _ = plan[-1]
            parts.append(np.array([last.end]) if mapped else self._map(np.array([last.end])))
            runs.append(np.concatenate(parts))
        return runs


def _local(tag: object) -> str:
    """An element's tag without its namespace (comments and processing instructions give '')."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


_LENGTH = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([a-zA-Z]*)\s*$")
_UNITS = {"": 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0, "q": 96 / 101.6,
          "em": 16.0, "ex": 8.0}  # CSS pixels per unit (em / ex at the default 16 px font)


def _number(el: ET.Element, name: str, default: float = 0.0) -> float:
    """A length attribute in user units (``px``, ``mm``, ``in``... converted); ``default`` when it is missing, a
    percentage or not a length."""
    match = _LENGTH.match(el.get(name) or "")
    if match is None or match.group(2).lower() not in _UNITS:
        return default
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


def _length(el: ET.Element, name: str, default: float | None = 0.0, *, negative: bool = True) -> float | None:
    """A shape's length attribute in user units (``px``, ``mm``, ``in``... converted), ``default`` when it is
    missing. A percentage, a value that is not a finite length, or (``negative=False``) a negative one raises
    ``FormatError`` naming the element and attribute: a shape is never drawn from a guess."""
    value = el.get(name)
    if value is None:
        return default
    match = _LENGTH.match(value)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        why = "percentages are not supported" if value.strip().endswith("%") else "not a length"
        raise FormatError(f"<{_local(el.tag)}> {name}={value!r}: {why}")
    number = float(match.group(1)) * _UNITS[unit]
    if not math.isfinite(number) or (number < 0 and not negative):
        raise FormatError(f"<{_local(el.tag)}> {name}={value!r}: not a finite{'' if negative else ' positive'} "
                          "length")
    return number


def _radius(el: ET.Element, name: str) -> float | None:
    """``rx``/``ry`` of a ``<rect>`` or ``<ellipse>``: ``None`` when missing or ``auto`` (the other one's)."""
    return None if (el.get(name) or "").strip() == "auto" else _length(el, name, None, negative=False)


def _shape_path(el: ET.Element, tag: str) -> str:
    """The path data of a drawn shape. ``<path>``, ``<polyline>`` and ``<polygon>`` as svgpathtools reads them
    (their points are picked out as number pairs); ``<line>``, ``<rect>``, ``<circle>`` and ``<ellipse>`` written
    here from their lengths (units converted, ``_length``), so no attribute text goes into path data. A rect, circle
    or ellipse of zero size draws nothing, as in a browser; a missing ``r`` (``rx``/``ry``) is an error."""
    from svgpathtools.document import CONVERSIONS

    if tag not in ("line", "rect", "circle", "ellipse"):
        return CONVERSIONS[tag](el)
    if tag == "line":
        x1, y1, x2, y2 = (_length(el, n) for n in ("x1", "y1", "x2", "y2"))
        return f"M {x1!r} {y1!r} L {x2!r} {y2!r}"
    if tag == "rect":
        x, y = _length(el, "x"), _length(el, "y")
        w, h = _length(el, "width", negative=False), _length(el, "height", negative=False)
        if not w or not h:
            return ""
        rx, ry = _radius(el, "rx"), _radius(el, "ry")
        rx, ry = (rx if rx is not None else ry or 0.0), (ry if ry is not None else rx or 0.0)
        rx, ry = min(rx, w / 2), min(ry, h / 2)
        if not rx or not ry:
            return f"M {x!r} {y!r} H {x + w!r} V {y + h!r} H {x!r} Z"
        arc = f"A {rx!r} {ry!r} 0 0 1"
        return (f"M {x + rx!r} {y!r} H {x + w - rx!r} {arc} {x + w!r} {y + ry!r} V {y + h - ry!r} "
                f"{arc} {x + w - rx!r} {y + h!r} H {x + rx!r} {arc} {x!r} {y + h - ry!r} V {y + ry!r} "
                f"{arc} {x + rx!r} {y!r} Z")
    cx, cy = _length(el, "cx"), _length(el, "cy")
    if tag == "circle":
        rx = ry = _length(el, "r", None, negative=False)
        if rx is None:
            raise FormatError("<circle> has no r (its radius)")
    else:
        rx, ry = _radius(el, "rx"), _radius(el, "ry")
        if rx is None and ry is None:
            raise FormatError("<ellipse> has neither rx nor ry (its radii)")
        rx, ry = (rx if rx is not None else ry), (ry if ry is not None else rx)
    if not rx or not ry:
        return ""
    return f"M {cx - rx!r} {cy!r} A {rx!r} {ry!r} 0 1 0 {cx + rx!r} {cy!r} A {rx!r} {ry!r} 0 1 0 {cx - rx!r} {cy!r} Z"


def _translate(x: float, y: float, sx: float = 1.0, sy: float = 1.0) -> np.ndarray:
    return np.array([[sx, 0.0, x], [0.0, sy, y], [0.0, 0.0, 1.0]])


_ALIGN = re.compile(r"^x(Min|Mid|Max)Y(Min|Mid|Max)$")
_FRACTION = {"Min": 0.0, "Mid": 0.5, "Max": 1.0}


def _viewport(el: ET.Element) -> np.ndarray:
    """A nested ``<svg>``'s placement: ``x``/``y``, and its viewBox fitted into ``width``/``height`` as its
    ``preserveAspectRatio`` says (``[defer] <align> [meet | slice]``; default ``xMidYMid meet``: uniform scale,
    centred; ``none``: each axis stretched to fit; an invalid value is ignored, as browsers do)."""
    x, y = _number(el, "x"), _number(el, "y")
    box = (el.get("viewBox") or "").replace(",", " ").split()
    width, height = _number(el, "width", -1.0), _number(el, "height", -1.0)
    if len(box) != 4 or width <= 0 or height <= 0:
        return _translate(x, y)
    try:
        bx, by, bw, bh = map(float, box)
    except ValueError:
        raise FormatError(f"<svg> viewBox={el.get('viewBox')!r} is not four numbers") from None
    if bw <= 0 or bh <= 0:
        return _translate(x, y)
    words = (el.get("preserveAspectRatio") or "").split()
    words = words[1:] if words[:1] == ["defer"] else words
    align, fit = (words + ["xMidYMid", "meet"][len(words):])[:2] if len(words) <= 2 else ("", "")
    if align == "none" and fit in ("meet", "slice"):
        sx, sy = width / bw, height / bh
        return _translate(x - bx * sx, y - by * sy, sx, sy)
    match = _ALIGN.match(align)
    if match is None or fit not in ("meet", "slice"):  # invalid: ignored, as browsers do
        match, fit = _ALIGN.match("xMidYMid"), "meet"
    s = (min if fit == "meet" else max)(width / bw, height / bh)
    fx, fy = _FRACTION[match.group(1)], _FRACTION[match.group(2)]
    return _translate(x + (width - bw * s) * fx - bx * s, y + (height - bh * s) * fy - by * s, s, s)


def _shapes(root: ET.Element) -> Iterator[tuple[ET.Element, np.ndarray]]:
    """``(shape element, 3x3 matrix to the root's user units)`` of every drawn shape, in document order (a shape a
    ``<use>`` draws comes once per copy)."""
    from svgpathtools.document import CONVERSIONS
    from svgpathtools.parser import parse_transform

    ids = {el.get("id"): el for el in root.iter() if el.get("id")}
    uses = 0

    def own(el: ET.Element, matrix: np.ndarray) -> np.ndarray:
        try:
            return matrix @ parse_transform(el.get("transform"), strict=True)
        except ValueError as exc:
            raise FormatError(f"<{_local(el.tag)}> has an invalid transform {el.get('transform')!r} ({exc})"
                              ) from None

    def drawn(el: ET.Element) -> bool:
        tag = _local(el.tag)
        return tag in CONVERSIONS or tag in _CONTAINERS or tag == "use"

    def walk(el: ET.Element, matrix: np.ndarray, depth: int, visible: bool = True
             ) -> Iterator[tuple[ET.Element, np.ndarray]]:
        nonlocal uses
        tag = _local(el.tag)
        if _renders_nothing(el):
            return
        visibility = _property(el, "visibility")  # inherited, and a child may set it back to visible
        if visibility in ("visible", "hidden", "collapse"):
            visible = visibility == "visible"
        if tag in CONVERSIONS:
            if visible:
                yield el, own(el, matrix)
        elif tag in _CONTAINERS:
            matrix = own(el, matrix)
            if tag == "svg" and el is not root:
                matrix = matrix @ _viewport(el)
            children = [c for c in el if drawn(c)]
            for child in children[:1] if tag == "switch" else children:  # <switch> renders one child
                yield from walk(child, matrix, depth, visible)
        elif tag == "use":
            ref = el.get("href") or el.get("{http://www.w3.org/1999/xlink}href") or ""
            target = ids.get(ref[1:]) if ref.startswith("#") else None
            if target is None:
                return
            if depth >= _MAX_USE_DEPTH:
                raise FormatError(f"<use href={ref!r}> nests more than {_MAX_USE_DEPTH} deep (a cycle?)")
            uses += 1
            if uses > _MAX_USES:
                raise FormatError(f"more than {_MAX_USES} <use> copies (nested uses multiply)")
            matrix = own(el, matrix) @ _translate(_number(el, "x"), _number(el, "y"))
            if _local(target.tag) == "symbol":
                for child in target:
                    yield from walk(child, matrix, depth + 1, visible)
            else:
                yield from walk(target, matrix, depth + 1, visible)

    yield from walk(root, np.identity(3), 0)


def _placed_shapes(root: ET.Element, spacing: float) -> list[_Placed]:
    """Every drawn shape of the document, placed and planned (``_Placed``), once the points they would give
    (every shape counting at least one) are within ``MAX_POINTS``; else ``FormatError`` before any is sampled.
    A shape under a singular matrix (``scale(0)``) has no area and draws nothing, as in a browser."""
    from svgpathtools import parse_path

    paths: dict[int, object] = {}  # a shape's parsed path, once however many <use> copies draw it
    placed: list[_Placed] = []
    total = 0
    for el, matrix in _shapes(root):
        if id(el) not in paths:
            d = _shape_path(el, _local(el.tag))
            paths[id(el)] = parse_path(d) if d else None
        path = paths[id(el)]
        total += 1
        if path is not None and np.linalg.det(matrix[:2, :2]) != 0:
            shape = _Placed(path, matrix, spacing)
            total += shape.count - 1
            placed.append(shape)
        if total > MAX_POINTS:
            raise FormatError(f"would sample at least {total:,} points, shapes times <use> copies (limit "
                              f"{MAX_POINTS:,}); nothing was sampled")
    return placed


def svg_to_sketch(path: PathLike, *, label: str | None = None, spacing: float = DEFAULT_SPACING,
                  from_name: bool = True) -> Sketch:
    """One SVG file -> ``Sketch`` (see the module docstring). The label is the root's
    ``data-label``, else ``label``, else the parent folder's name (``alarm clock/81.svg``); the key id is the root's
    ``data-key-id``, else the file's stem. ``from_name=False`` takes neither from the path (they stay ``None``)."""
    source = str(path)
    from .sniff import document_kind, not_a_sketch_file

    with open(source, "rb") as f:
        kind = document_kind(f.read(32))
    if kind is not None:  # an image under an .svg name: say so, not "invalid SVG/XML: not well-formed"
        raise not_a_sketch_file(path, kind)
    try:
        root = ET.parse(source).getroot()
    except ET.ParseError as exc:
        raise FormatError(f"invalid SVG/XML: {exc}", source=source, line=exc.position[0]) from None
    except (LookupError, ValueError) as exc:  # expat: an unknown (LookupError) or multi-byte (ValueError) encoding=
        raise FormatError(f"unreadable SVG/XML: {exc}; save the file as UTF-8", source=source) from None
    strokes: list[np.ndarray] = []
    try:
        for shape in _placed_shapes(root, spacing):
            strokes.extend(_polylines(shape.points()))
    except FormatError as exc:
        raise locate(exc, source) from None
    except Exception as exc:  # noqa: BLE001 - svgpathtools raises anything on bad path data
        raise FormatError(f"cannot read SVG paths: {type(exc).__name__}: {exc}", source=source) from None
    return Sketch(
        strokes,
        label=root.get("data-label") or label or (label_from_path(path, folder=True) if from_name else None),
        key_id=root.get("data-key-id") or (Path(path).stem if from_name else None),
    )


def read_svg(
    path: PathLike,
    *,
    label: str | None = None,
    on_error: OnError = None,
    keep_empty: bool = False,
    spacing: float = DEFAULT_SPACING,
) -> Iterator[Sketch]:
    """The one sketch of an SVG file, as an iterator like the other readers (nothing when the
    file is reported through ``on_error``)."""
    for _, sketch in iter_svg(path, label=label, on_error=on_error, keep_empty=keep_empty, spacing=spacing):
        yield sketch


def iter_svg(
    path: PathLike,
    *,
    label: str | None = None,
    on_error: OnError = None,
    keep_empty: bool = False,
    spacing: float = DEFAULT_SPACING,
    from_name: bool = True,
) -> Iterator[tuple[Place, Sketch]]:
    """``read_svg`` with the sketch's ``Place``: the file."""
    try:
        sketch = svg_to_sketch(path, label=label, spacing=spacing, from_name=from_name)
        if sketch.num_points == 0 and not keep_empty:
            raise EmptySketchError("no paths with points", source=str(path))
    except FormatError as exc:
        report(exc, on_error)
        return
    yield Place(str(path)), sketch


def _num(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
"""Characters XML 1.0 cannot hold, escaped or not."""


def _attribute(name: str, value: str) -> str:
    """`` name="value"`` quoted for XML; ``SketchError`` for a character XML cannot hold (the file would be
    unreadable)."""
    bad = _NOT_XML.search(value)
    if bad:
        raise SketchError(f"{name} {value!r} holds {bad.group()!r}, a character XML cannot hold; an SVG cannot "
                          "store it")
    return f" {name}={quoteattr(value)}"


def write_svg(sketch: Sketch, path: PathLike, *, padding: float = 4.0, stroke_width: float = 2.0) -> Path:
    """Write one ``<path>`` (polyline ``M``/``L``) per stroke, atomically, in the sketch's own
    coordinates rounded to 3 decimals; the viewBox is the bounds plus ``padding``. Times and parts are not stored.
    A label or key_id with a control character XML cannot hold raises ``SketchError``."""
    if sketch.num_points:
        x0, y0, x1, y1 = sketch.bounds
    else:
        x0 = y0 = x1 = y1 = 0.0
    x0, y0 = x0 - padding, y0 - padding
    w, h = max(x1 - x0 + padding, 1.0), max(y1 - y0 + padding, 1.0)
    attrs = ""
    if sketch.label is not None:
        attrs += _attribute("data-label", sketch.label)
    if sketch.key_id is not None:
        attrs += _attribute("data-key-id", sketch.key_id)
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" viewBox="{_num(x0)} {_num(y0)} {_num(w)} {_num(h)}" '
        f'width="{_num(w)}" height="{_num(h)}"{attrs}>',
        f'<g fill="none" stroke="black" stroke-width="{_num(stroke_width)}" stroke-linecap="round" '
        'stroke-linejoin="round">',
    ]
    for s in sketch.strokes:
        xy = s[:, :2].astype(np.float64)
        if len(xy) == 1:
            xy = np.repeat(xy, 2, axis=0)  # a dot: a zero-length line, still drawn with round caps
        coords = [f"{_num(x)} {_num(y)}" for x, y in xy.tolist()]
        lines.append(f'<path d="M{coords[0]} L{" ".join(coords[1:])}"/>')
    lines += ["</g>", "</svg>", ""]
    with atomic_write(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines))
    return Path(path)
