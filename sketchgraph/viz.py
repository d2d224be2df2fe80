"""Pictures of sketch graphs, predictions and attention maps (matplotlib; PNG, or the format a path's suffix names).

``draw_graph`` draws a sketch graph: its points (nodes, in the 255-pixel frame after preprocessing), the
edges of chosen relations in distinct colours, and optionally the top predictions as a bar panel. To draw
what a classifier's model sees, pass ``clf.graph(x)`` (or ``preprocessing=clf.preprocessing``): a raw sketch
is otherwise preprocessed with the default ``Preprocessing()``, which may differ from a checkpoint's (the
shipped ``spg20`` re-simplifies long drawings, ``cap="adapt"``, where the default truncates them).
``plot_attention`` shows attention maps as a relations x heads grid. ``draw_sketches`` lays out many drawings
as a gallery (e.g. the misclassified ones), one colour per stroke.

Figures are built with ``matplotlib.figure.Figure`` directly (no ``pyplot`` global state), so these
functions are safe to call from worker threads and need no display.
"""

from __future__ import annotations

import itertools
import numbers
import os
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .errors import SketchError
from .formats.base import atomic_write, canonical_label
from .graph import FLAG_END, GraphSpec, SketchGraph, build_graph, relation_masks
from .preprocess import Preprocessing, preprocess
from .sketch import Sketch
from .wording import a_type, counted

__all__ = ["draw_graph", "draw_sketches", "plot_attention", "RELATION_STYLE", "FIGURE_FORMATS", "figure_target",
           "save_figure"]

#: how each relation's edges are drawn: colour, line style, width, alpha, legend text
RELATION_STYLE: dict[str, dict[str, Any]] = {
    "stroke1": dict(color="#1f77b4", linestyle="-", linewidth=2.0, alpha=0.9, label="stroke edge (1-hop)"),
    "stroke2": dict(color="#17becf", linestyle="-", linewidth=1.0, alpha=0.6, label="stroke edge (2-hop)"),
    "temporal": dict(color="#ff7f0e", linestyle="--", linewidth=1.4, alpha=0.9, label="temporal edge"),
    "full": dict(color="#999999", linestyle="-", linewidth=0.3, alpha=0.25, label="full (all pairs)"),
}


def _path_of(obj: Any) -> Path | None:
    """``obj`` as a path when it names a file: a ``PathLike``, or a string that is no JSON text (``[[...]]``,
    ``{...}``). ``FileNotFoundError`` for such a string naming nothing (it was parsed as JSON: "invalid JSON")."""
    if isinstance(obj, os.PathLike):
        path = Path(obj).expanduser()
    elif isinstance(obj, str) and obj.strip() and not obj.lstrip("\ufeff \t\r\n").startswith(("{", "[")):
        path = Path(obj).expanduser()
    else:
        return None
    if not path.exists():
        raise FileNotFoundError(f"no such sketch file: {obj}")
    return path


def _sketches_in(path: Path, most: int | None = None) -> list[Sketch]:
    """The sketches of a file or folder (the first ``most`` of them); ``SketchError`` when it has none."""
    from .formats import read_sketches

    sketches = list(itertools.islice(read_sketches(path), most))
    if not sketches:
        raise SketchError(f"{path}: contains no sketches")
    return sketches


def _one_sketch(obj: Any) -> Sketch:
    """A ``Sketch`` from anything ``sketch_from_obj`` accepts, or a sketch file's path (a file of one sketch)."""
    if isinstance(obj, Sketch):
        return obj
    path = _path_of(obj)
    if path is None:
        from .formats import sketch_from_obj

        return sketch_from_obj(obj)
    if path.is_dir():
        raise SketchError(f"{obj} is a folder, where one sketch belongs: draw_sketches({str(obj)!r}) draws every "
                          "sketch in it")
    sketches = _sketches_in(path, most=2)  # a second one is enough to refuse (a file may hold 100,000)
    if len(sketches) > 1:
        raise SketchError(f"{obj} holds several sketches, where one belongs: pick one "
                          f"(sketchgraph.formats.read_sketches({str(obj)!r})), or draw them all with "
                          "draw_sketches")
    return sketches[0]


def _as_graph(obj: Sketch | SketchGraph | Any, relations: Sequence[str], preprocessing: Preprocessing) -> SketchGraph:
    if isinstance(obj, SketchGraph):
        return obj
    sketch = preprocess(_one_sketch(obj), preprocessing)
    return build_graph(sketch, GraphSpec(tuple(relations)), preprocessing.max_points)


def _edges(graph: SketchGraph, relation: str) -> np.ndarray:
    """Undirected edges of ``relation`` without self-loops, ``(E, 2)`` node index pairs (i < j)."""
    if relation in graph.edges:
        src, dst = graph.edges[relation]
    else:
        mask = relation_masks(torch.from_numpy(graph.flags)[None], [relation])[relation][0]  # (N, N)
        dst, src = (t.numpy() for t in torch.nonzero(mask, as_tuple=True))
    pairs = np.stack([np.minimum(src, dst), np.maximum(src, dst)], axis=1)  # (E, 2)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.unique(pairs, axis=0) if len(pairs) else pairs.reshape(0, 2)


MAX_BARS = 20
"""The most predictions ``draw_graph`` draws as bars (a longer list, say all of a 345-class model's: its first
``MAX_BARS``, the title says of how many)."""


def _label_score(p: Any) -> tuple[str, float]:
    if isinstance(p, Mapping):
        label, score = p["label"], p["score"]
    elif hasattr(p, "label"):
        label, score = p.label, p.score
    else:
        label, score = p
    score = float(score)
    if not 0.0 <= score <= 1.0 + 1e-6:  # NaN too
        raise ValueError(f"prediction scores are probabilities in 0..1 (softmax, as Prediction.score); got {score} "
                         f"for {str(label)!r}: logits, say an exported model's outputs, need a softmax first")
    return str(label), score


def _short(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with "..." (long class names would run off a panel)."""
    return textwrap.shorten(str(text), width, placeholder="...") if len(str(text)) > width else str(text)


def _draw_predictions(ax, prediction: Sequence[Any], true_label: str | None) -> None:
    pairs = [_label_score(p) for p in prediction]
    if not pairs:
        raise ValueError("prediction is empty: pass at least one (label, score), or None for no bar panel")
    shown = f"top {MAX_BARS} of {len(pairs)} predictions" if len(pairs) > MAX_BARS else "top predictions"
    pairs = pairs[:MAX_BARS]
    labels = [lab for lab, _ in pairs][::-1]  # best at the top
    scores = np.array([s for _, s in pairs][::-1])
    true = canonical_label(true_label) if true_label else None  # "alarm_clock" is the class "alarm clock"
    colors = ["#2ca02c" if true is not None and canonical_label(lab) == true else "#4c72b0" for lab in labels]
    ax.barh(np.arange(len(labels)), scores, color=colors, height=0.7)
    ax.set_yticks(np.arange(len(labels)), [_short(lab, 18) for lab in labels], fontsize=11)
    for y, s in enumerate(scores):
        ax.text(min(s, 1.0) + 0.02, y, f"{100 * s:.1f}%", va="center", fontsize=10)
    ax.set_xlim(0, 1.25)
    ax.set_xticks([0, 0.5, 1.0], ["0", "50%", "100%"])
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(shown + (f"  (true: {_short(true_label, 18)})" if true_label else ""), fontsize=12)


def _canvas_axes(ax, lo: Sequence[float], hi: Sequence[float], margin: float) -> None:
    """Frame ``ax`` on the box ``lo``..``hi`` (``(x, y)`` each) plus ``margin``, y pointing down as on a canvas,
    equal aspect and no ticks."""
    ax.set_xlim(lo[0] - margin, hi[0] + margin)
    ax.set_ylim(hi[1] + margin, lo[1] - margin)  # inverted: canvas coordinates
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])


FIGURE_FORMATS = ("png", "pdf", "svg", "svgz", "jpg", "jpeg", "tif", "tiff", "webp", "eps", "ps")
"""The file formats a figure is written in, named by the path's suffix (a path without one: PNG)."""


@dataclass(frozen=True)
class FigureTarget:
    """Where a figure goes and in which format (``figure_target``)."""

    path: Path
    format: str


def figure_target(path: str | os.PathLike) -> FigureTarget:
    """Check, before a figure is drawn, that it can be written to ``path``: in the format its suffix names (one
    of ``FIGURE_FORMATS``, any case; no suffix: PNG), and not over a folder. ``ValueError`` for another suffix,
    ``IsADirectoryError`` for a folder (the figure would be drawn, then fail on a hidden temporary's name), or a
    path written as one (``out/``: it would have become a file called ``out``)."""
    text = os.fspath(path)
    path = Path(path).expanduser()
    if path.is_dir() or (isinstance(text, str) and text.endswith(("/", os.sep))):
        what = "it is a folder" if path.is_dir() else "it is written as a folder (a final /)"
        raise IsADirectoryError(f"cannot write a figure to {path}: {what}; name a file in it, e.g. "
                                f"{path / 'figure.png'}")
    fmt = path.suffix[1:].lower() or "png"
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"cannot write a figure to {path}: {path.suffix!r} is no figure format; name the file "
                         f"with one of {', '.join('.' + f for f in FIGURE_FORMATS)} (no suffix: PNG)")
    return FigureTarget(path, fmt)


def save_figure(fig: Figure, path: str | os.PathLike | FigureTarget, dpi: float | str = "figure") -> Path:
    """Write ``fig`` to ``path`` (checked by ``figure_target``) in the format its suffix names, atomically (a
    killed run leaves no half-written file), creating its folder. Returns the path."""
    target = path if isinstance(path, FigureTarget) else figure_target(path)
    target.path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target.path, "wb") as f:
        fig.savefig(f, dpi=dpi, format=target.format)
    return target.path


def _save(fig: Figure, target: FigureTarget | None, dpi: int) -> Figure:
    if target is not None:
        save_figure(fig, target, dpi)
    return fig


def draw_graph(
    sketch_or_graph: Sketch | SketchGraph | Any,
    path: str | Path | None = None,
    *,
    relations: Sequence[str] = ("stroke1", "temporal"),
    prediction: Sequence[Any] | None = None,
    preprocessing: Preprocessing = Preprocessing(),
    title: str | None = None,
    size: tuple[float, float] = (10.0, 5.0),
    dpi: int = 100,
) -> Figure:
    """Draw a sketch as a graph (and its predictions), optionally saving it to ``path`` (``save_figure``: PNG, PDF,
    SVG, ... as the suffix says).

    Args:
        sketch_or_graph: a ``SketchGraph`` of ``N`` nodes (drawn as is; ``clf.graph(x)`` is what a classifier's
            model sees), or a ``Sketch`` / anything ``sketch_from_obj`` accepts / the path of a file of one sketch
            (preprocessed with ``preprocessing`` first: pass ``clf.preprocessing`` to match a checkpoint).
        relations: which relations' edges to draw, each in its ``RELATION_STYLE``: one ``LineCollection`` per
            relation of ``(E, 2, 2)`` segments, labelled with its legend text (``gid`` the relation).
        prediction: ranked ``Prediction`` objects, ``{"label", "score"}`` dicts or
            ``(label, score)`` pairs, scores in 0..1 (``ValueError`` otherwise); adds a bar panel on the right, of
            the first ``MAX_BARS``.
        title: defaults to the sketch's label / key id and its node and stroke counts.
        size: figure size in inches; ``dpi`` sets the PNG resolution.

    Returns:
        the matplotlib ``Figure`` (also written to ``path`` when given): the graph in ``fig.axes[0]``, the
        predictions (when given) in ``fig.axes[1]``.
    """
    target = None if path is None else figure_target(path)
    graph = _as_graph(sketch_or_graph, relations, preprocessing)
    xy = graph.coords  # (N, 2), y grows downwards as on a canvas
    fig = Figure(figsize=size if prediction is not None else (size[1], size[1]), layout="constrained")
    if prediction is not None:
        ax, ax_pred = fig.subplots(1, 2, width_ratios=[1.0, 0.9])
    else:
        ax, ax_pred = fig.subplots(1, 1), None

    handles = []
    for rel in relations:
        style = dict(RELATION_STYLE.get(rel, dict(color="#9467bd", linestyle="-", linewidth=1.0, alpha=0.7)))
        label = style.pop("label", rel)
        segs = xy[_edges(graph, rel)]  # (E, 2, 2)
        ax.add_collection(LineCollection(segs, zorder=1 if rel != "full" else 0, label=label, gid=rel, **style))
        handles.append(Line2D([], [], label=label, **style))
    ends = graph.flags == FLAG_END
    ax.scatter(xy[~ends, 0], xy[~ends, 1], s=14, c="#222222", zorder=3)
    ax.scatter(xy[ends, 0], xy[ends, 1], s=30, c="#d62728", marker="s", zorder=3)
    ax.scatter(xy[:1, 0], xy[:1, 1], s=90, facecolors="none", edgecolors="#2ca02c", linewidths=2, zorder=4)
    handles += [
        Line2D([], [], color="#222222", marker="o", linestyle="", markersize=4, label="point (node)"),
        Line2D([], [], color="#d62728", marker="s", linestyle="", markersize=5, label="stroke end"),
        Line2D([], [], color="#2ca02c", marker="o", markerfacecolor="none", linestyle="", markersize=8,
               label="first point"),
    ]
    lo, hi = xy.min(0), xy.max(0)
    _canvas_axes(ax, lo, hi, 0.06 * float(max(hi - lo)) + 1.0)
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.01), ncol=2, fontsize=9, frameon=False)
    if title is None:
        name = graph.label or graph.key_id or "sketch"
        strokes = int(graph.stroke.max()) + 1
        title = f"{_short(name, 28)}: {counted(graph.num_nodes, 'point')}, {counted(strokes, 'stroke')}"
    ax.set_title(title, fontsize=12)
    if ax_pred is not None:
        _draw_predictions(ax_pred, prediction, graph.label)
    return _save(fig, target, dpi)


def draw_sketches(
    sketches: Sequence[Sketch | Any],
    path: str | Path | None = None,
    *,
    titles: Sequence[str] | None = None,
    cols: int = 6,
    panel: float = 2.0,
    dpi: int = 100,
) -> Figure:
    """A gallery: each sketch in its own panel as drawn (raw coordinates, y downwards), one colour per stroke.

    Args:
        sketches: ``Sketch`` objects, anything ``sketch_from_obj`` accepts, or paths of files of one sketch; at
            least one. Or the path of a sketch file or folder: every sketch in it.
        titles: one title per sketch (default: its label, else its key id, and its stroke count).
        cols: panels per row; ``panel`` is each panel's side in inches, ``dpi`` the PNG resolution.

    Returns:
        the matplotlib ``Figure`` (also written to ``path`` when given, as ``draw_graph`` writes it).
    """
    target = None if path is None else figure_target(path)
    folder = _path_of(sketches)
    if folder is not None:
        items = _sketches_in(folder)
    elif isinstance(sketches, (Sketch, SketchGraph, dict, np.ndarray, str, bytes)):
        raise TypeError(f"draw_sketches takes a sequence of sketches (or a sketch file or folder), got "
                        f"{a_type(sketches)}: for one sketch pass [sketch], or draw it with draw_graph")
    else:
        items = [_one_sketch(s) for s in sketches]
    if not items:
        raise ValueError("draw_sketches needs at least one sketch")
    if titles is not None and len(titles) != len(items):
        raise ValueError(f"{len(titles)} titles for {len(items)} sketches")
    if cols < 1:
        raise ValueError(f"cols must be >= 1, got {cols}")
    cols = min(cols, len(items))
    rows = -(-len(items) // cols)
    fig = Figure(figsize=(panel * cols, panel * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    colours = [f"C{i}" for i in range(10)]
    for i, ax in enumerate(axes):
        if i >= len(items):
            ax.set_axis_off()
            continue
        sketch = items[i]
        for k, stroke in enumerate(sketch.strokes):
            xy = stroke[:, :2]  # (n, 2)
            ax.plot(xy[:, 0], xy[:, 1], "-", color=colours[k % len(colours)], linewidth=1.2,
                    marker="o" if len(xy) == 1 else None, markersize=2)
        x0, y0, x1, y1 = sketch.bounds
        _canvas_axes(ax, (x0, y0), (x1, y1), 0.06 * max(x1 - x0, y1 - y0, 1.0))
        default = f"{_short(sketch.label or sketch.key_id or i, 16)} ({counted(len(sketch.strokes), 'stroke')})"
        ax.set_title(titles[i] if titles is not None else default, fontsize=8)
    return _save(fig, target, dpi)


def plot_attention(
    maps: Mapping[str, np.ndarray],
    path: str | Path | None = None,
    *,
    layer: int = -1,
    heads: Sequence[int] | None = None,
    title: str | None = None,
    cell: float = 1.9,
    dpi: int = 100,
) -> Figure:
    """Attention maps of one layer as a grid: one row per relation, one column per head.

    Args:
        maps: ``{relation: (layers, heads, N, N)}`` (``SketchClassifier.attention_maps``); entry
            ``[l, h, i, j]`` is how much query node ``i`` attends to key node ``j``. Every relation has the
            same shape.
        layer: which layer, an integer ``-layers <= layer < layers`` (negative counts from the last).
        heads: which heads, each an integer ``-heads <= h < heads`` (negative from the end, as ``layer``); at least
            one (all by default); one head may be given alone (``heads=0``).
        cell: inches per panel.

    Returns:
        the ``Figure`` (also written to ``path`` when given, as ``draw_graph`` writes it): panel ``(r, c)``
        (``fig.axes[r * len(heads) + c]``, row label the relation, column title ``head h``) shows
        ``maps[relation][layer, h]``; the last axes is the colour bar.

    Raises:
        ValueError: no maps, maps of different shapes or not 4-D, ``layer`` or a head out of range, or no heads.
        TypeError: ``layer`` or a head that is not an integer (``True``, ``1.5``, ``"1"``).
    """
    target = None if path is None else figure_target(path)
    rels = list(maps)
    if not rels:
        raise ValueError("no attention maps to plot")
    arrays = {r: np.asarray(maps[r]) for r in rels}
    shapes = {r: a.shape for r, a in arrays.items()}
    if len(set(shapes.values())) != 1 or arrays[rels[0]].ndim != 4:
        raise ValueError(f"attention maps must all be (layers, heads, N, N), got {shapes}")
    n_layers, n_heads = arrays[rels[0]].shape[:2]
    if not _is_int(layer):
        raise TypeError(f"layer must be an integer, got {a_type(layer)} ({layer!r})")
    if not -n_layers <= layer < n_layers:
        raise ValueError(f"layer {layer} out of range: the maps have {n_layers} layers (-{n_layers}..{n_layers - 1})")
    if heads is None:
        heads = list(range(n_heads))
    else:
        heads = [heads] if _is_int(heads) else list(heads)  # one head may be given alone: heads=0
        wrong = [h for h in heads if not _is_int(h)]
        if wrong:
            raise TypeError(f"heads must be integers (one, or a list of them), got {wrong[0]!r} ({a_type(wrong[0])})")
        heads = [int(h) for h in heads]
    if not heads or not all(-n_heads <= h < n_heads for h in heads):
        raise ValueError(f"heads must name at least one head in 0..{n_heads - 1} (or -{n_heads}..-1, from the "
                         f"end, as for layer), got {heads}")
    heads = [h % n_heads for h in heads]
    # room beside the panels for the row labels and the colour bar; the title wraps to the width
    fig = Figure(figsize=(max(cell * len(heads) + 0.8, 3.6), max(cell * len(rels) + 0.8, 2.4)), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(rels), len(heads), squeeze=False))
    vmax = max(float(arrays[r][layer][heads].max()) for r in rels) or 1.0
    image = None
    for r, rel in enumerate(rels):
        layer_maps = arrays[rel][layer]  # (H, N, N)
        for c, h in enumerate(heads):
            ax = axes[r, c]
            image = ax.imshow(layer_maps[h], cmap="viridis", vmin=0.0, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"head {h}", fontsize=10)
            if c == 0:
                ax.set_ylabel(rel, fontsize=11)
    fig.colorbar(image, ax=axes, shrink=0.6, label="attention weight")
    fig.suptitle(title or f"attention, layer {layer % n_layers + 1} of {n_layers} (rows: query, columns: key)",
                 wrap=True)
    return _save(fig, target, dpi)


def _is_int(value: Any) -> bool:
    """An integer (numpy's too), not a bool (``True`` would be layer 1)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
