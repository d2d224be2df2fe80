"""SVG sketches (e.g. TU-Berlin): one stroke per path / subpath, curves sampled to polylines.

Paths are read with svgpathtools' ``Document(path).paths()``, which applies the ``transform`` of
every enclosing ``<g>`` (``svg2paths`` ignores them). Points are in the root's user units (the
viewBox frame), y pointing down as in every other format here. Strokes follow document order
(svgpathtools returns paths grouped by tag and nesting; they are re-sorted). Each continuous
subpath becomes a stroke (a move to a new place starts a new stroke). Lines keep their end points exactly; Bezier
curves and arcs are sampled at about ``spacing`` units. ``<circle>``, ``<rect>``, ``<polyline>``
etc. are converted to paths by svgpathtools too.

``write_svg`` writes one ``<path d="M x y L x y ...">`` per stroke and stores the label and key_id
as ``data-label`` / ``data-key-id`` attributes of the root, which ``read_svg`` reads back.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from ..errors import FormatError
from ..sketch import Sketch
from .base import EmptySketchError, OnError, PathLike, atomic_write, label_from_path, report

__all__ = ["DEFAULT_SPACING", "read_svg", "svg_to_sketch", "write_svg", "sample_path"]

DEFAULT_SPACING = 3.0
"""Sampling step along curves, in SVG user units (a few pixels of an 800x800 TU-Berlin sketch)."""


def _sample_segment(seg, spacing: float) -> np.ndarray:
    """Points of one segment at parameters ``[0, 1)`` (its end point is the next segment's start),
    complex ``(k,)``."""
    from svgpathtools import Arc, Line

    if isinstance(seg, Line):
        return np.array([seg.start])
    if isinstance(seg, Arc):
        length = seg.length()
        k = max(1, math.ceil(length / spacing))
        return np.array([seg.point(t) for t in np.arange(k) / k])
    ctrl = np.array(seg.bpoints())  # (d + 1,) complex control points of a Bezier
    bound = float(np.abs(np.diff(ctrl)).sum())  # control polygon length >= arc length
    k = max(1, math.ceil(bound / spacing))
    t = np.arange(k)[:, None] / k  # (k, 1)
    d = len(ctrl) - 1
    i = np.arange(d + 1)[None, :]  # (1, d + 1)
    basis = np.array([math.comb(d, j) for j in range(d + 1)]) * t**i * (1 - t) ** (d - i)  # (k, d + 1)
    return basis @ ctrl


def sample_path(path, spacing: float = DEFAULT_SPACING) -> list[np.ndarray]:
    """An svgpathtools ``Path`` -> one float32 ``(n, 2)`` polyline per continuous subpath; repeated
    consecutive points are dropped."""
    if len(path) == 0:
        return []
    strokes = []
    for sub in path.continuous_subpaths():
        pts = np.concatenate([_sample_segment(seg, spacing) for seg in sub] + [np.array([sub[-1].end])])
        xy = np.column_stack([pts.real, pts.imag])  # (n, 2)
        keep = np.concatenate([[True], (np.diff(xy, axis=0) != 0).any(axis=1)])
        strokes.append(xy[keep].astype(np.float32))
    return strokes


def svg_to_sketch(path: PathLike, *, label: str | None = None, spacing: float = DEFAULT_SPACING) -> Sketch:
    """One SVG file -> ``Sketch`` (see the module docstring). The label is the root's
    ``data-label``, else ``label``, else the parent folder's name (``alarm clock/81.svg``)."""
    from svgpathtools import Document

    source = str(path)
    try:
        doc = Document(source)
        paths = doc.paths()
    except ET.ParseError as exc:
        raise FormatError(f"invalid SVG/XML: {exc}", source=source, line=exc.position[0]) from None
    except (ValueError, IndexError, KeyError) as exc:
        raise FormatError(f"cannot read SVG paths: {exc}", source=source) from None
    root = doc.tree.getroot()
    order = {id(el): i for i, el in enumerate(root.iter())}  # svgpathtools groups paths by tag and depth
    paths.sort(key=lambda p: order.get(id(getattr(p, "element", None)), len(order)))
    strokes = [s for p in paths for s in sample_path(p, spacing)]
    return Sketch(
        strokes,
        label=root.get("data-label") or label or label_from_path(path, folder=True),
        key_id=root.get("data-key-id") or Path(path).stem,
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
    try:
        sketch = svg_to_sketch(path, label=label, spacing=spacing)
        if sketch.num_points == 0 and not keep_empty:
            raise EmptySketchError("no paths with points", source=str(path))
    except FormatError as exc:
        report(exc, on_error)
        return
    yield sketch


def _num(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".") if v != int(v) else str(int(v))


def write_svg(sketch: Sketch, path: PathLike, *, padding: float = 4.0, stroke_width: float = 2.0) -> Path:
    """Write one ``<path>`` (polyline ``M``/``L``) per stroke, atomically, in the sketch's own
    coordinates; the viewBox is the bounds plus ``padding``. Times and parts are not stored."""
    if sketch.num_points:
        x0, y0, x1, y1 = sketch.bounds
    else:
        x0 = y0 = x1 = y1 = 0.0
    x0, y0 = x0 - padding, y0 - padding
    w, h = max(x1 - x0 + padding, 1.0), max(y1 - y0 + padding, 1.0)
    attrs = ""
    if sketch.label is not None:
        attrs += f" data-label={quoteattr(sketch.label)}"
    if sketch.key_id is not None:
        attrs += f" data-key-id={quoteattr(sketch.key_id)}"
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
