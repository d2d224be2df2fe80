"""Preprocessing: Google-style simplification and the point cap.

``simplify`` reproduces Quick, Draw!'s published "simplified" drawings from RAW ones:

1. align the drawing to the top-left corner (subtract the minimum x and y over all strokes);
2. scale uniformly so the larger of max x / max y becomes 255;
3. resample every stroke at 1-pixel arc-length spacing, measured after scaling (float points; the
   first and the last point of a stroke are always samples);
4. Ramer-Douglas-Peucker per stroke with ``epsilon`` (2.0) on the resampled float points, with the
   distance to the chord *segment* (so a stroke that doubles back keeps its turning point); RDP
   always keeps a stroke's first and last point;
5. round to integers last.

Details that decide fidelity, each read off Google's own simplified files: RDP measures distance to
the chord *segment* (some of Google's 3-point strokes double back along a line); the last point of a
stroke is a sample (Google's drawings miss their extreme coordinates at stroke ends about as rarely as
at stroke starts); rounding comes after RDP (7% of Google's 3-point strokes have a middle point less
than 2 px from its chord); a stroke of several raw points keeps both end points even when they round
to the same pixel (Google's ``[p, p]`` taps). A stroke of a single raw point stays one point (the same
point set as ``[p, p]``), and repeated raw points are harmless (zero-length segments carry no arc
length).

Everything runs on flat arrays (all strokes of all sketches concatenated): ``simplify_arrays`` is the
one implementation; ``simplify``, ``resample`` and ``rdp`` are thin views of it, and batched
callers (the prepared-dataset builder) can call it directly.

``cap_points`` applies the paper's point cap: keep the first ``max_points`` points in drawing
order (truncate); a stroke cut by the cap ends at the last kept point (stroke-end flags are derived
from stroke lengths), and ``sketch.meta["dropped_points"]`` counts the removed points.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from .errors import SketchError, UnusableSketchesError
from .sketch import Sketch

__all__ = [
    "Preprocessing", "simplify", "simplify_arrays", "cap_points", "resample", "rdp", "normalize", "preprocess",
    "point_set_distance", "polyline_distance", "unusable_sketches", "load_compiled_rdp", "ink_length", "rdp_input",
]

# A total arc length within this of a whole number of spacings gets no extra sample just before its end.
_ARC_TOL = 1e-9
# Resampling measures arc length in integer multiples of this (about 1e-6 px); see _resample_flat.
_ARC_QUANTUM = 2.0**-20
# Levels of RDP recursion at most (a stroke's whole span is level 0). It bounds RDP's work at this many passes over
# a stroke's samples, so at most 64 x MAX_INK distance evaluations per simplification: without it the worst case is
# quadratic (a full-width zig-zag keeps every vertex and each split peels one off: 32-38 s for one pass over a legal
# 7,000-point drawing, and cap="adapt" makes up to 7 passes; with it, under 1 s in all). Real drawings need at most 29
# levels (18 for SPG-20's 16,000 RAW drawings, 29 for 8,100 of Google's simplified ones, 18 for 40,000 sketch-rnn
# ones, 9 for the TU-Berlin SVGs: `python benchmarks/bench_simplify.py --depth`), so they simplify exactly as
# without a limit; past it, a stroke keeps the points found so far (a drawn spiral of about 20 turns or more gets
# there, and its innermost turns come out coarser).
RDP_MAX_DEPTH = 64
# Most ink one sketch may have in the 255 frame (px, i.e. 1-px samples). Real drawings have ~1,000-
# 5,000 px; this bounds memory (~200 MB) and, with RDP_MAX_DEPTH, time: a simplification of a drawing at this
# limit takes about a second, and cap="adapt" at most 7 of them (`bench_simplify.py --depth` times two worst cases:
# 0.6-0.8 s and 1.6-2.1 s with cap="adapt", over two runs).
MAX_INK = 2_000_000


# ------------------------------------------------------------------------------ flat kernels
def _resample_flat(
    xy: np.ndarray, stroke_lengths: np.ndarray, spacing: float, seg: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Arc-length resampling of every stroke of a flat array.

    Args:
        xy: ``(P, 2)`` float64 points, strokes concatenated.
        stroke_lengths: ``(T,)`` int64 points per stroke, each >= 1.
        spacing: sample distance along the stroke.
        seg: ``(P-1,)`` distances between consecutive points, if already computed.

    Returns:
        ``(M, 2)`` float64 samples and ``(T,)`` int64 samples per stroke. A stroke of one point gives
        one sample; otherwise samples sit at arc lengths ``0, spacing, 2 * spacing, ...`` below the
        total length ``L``, plus the exact last point (so a zero-length stroke gives two samples).
    """
    ends = np.cumsum(stroke_lengths)  # (T,) exclusive
    starts = ends - stroke_lengths
    if seg is None:
        seg = _gaps(xy)
    # Arc lengths live on a fixed grid of _ARC_QUANTUM px, as integers: sums and differences on the
    # shared axis are then exact, so a stroke's samples do not depend on the other strokes in the
    # batch (simplify(sketch) == simplify_arrays(many sketches), bit for bit).
    q = np.round(seg / _ARC_QUANTUM).astype(np.int64)  # (P-1,)
    q[ends[:-1] - 1] = round(1.0 / _ARC_QUANTUM)  # cross-stroke "segments": any positive gap keeps strokes apart
    ui = np.concatenate([[0], np.cumsum(q)])  # (P,) one increasing arc-length axis for all strokes
    u = ui * _ARC_QUANTUM  # exact while ui < 2**53
    u0, u1 = u[starts], u[ends - 1]  # (T,)
    total = u1 - u0
    single = stroke_lengths == 1
    n_body = np.where(single, 1, np.maximum(np.ceil(total / spacing - _ARC_TOL), 1)).astype(np.int64)
    counts = n_body + ~single  # (T,) samples incl. the exact last point
    first = np.cumsum(counts) - counts  # (T,)
    k = np.arange(int(counts.sum())) - np.repeat(first, counts)  # (M,) sample index within its stroke
    target = (np.repeat(ui[starts], counts) + np.round(k * spacing / _ARC_QUANTUM).astype(np.int64)) * _ARC_QUANTUM
    last = (first + counts - 1)[~single]
    target[last] = u1[~single]
    # np.interp on repeated abscissae (zero-length segments) is fine: the repeated points are equal.
    out = np.column_stack([np.interp(target, u, xy[:, 0]), np.interp(target, u, xy[:, 1])])
    # exact end points, also where a stroke's length is below the arc-length grid
    out[first] = xy[starts]
    out[last] = xy[ends - 1][~single]
    return out, counts


# RDP runs in one of two implementations with the same results (bits): the compiled kernel (sketchgraph._rdp,
# numba; simplification runs several times faster with it, see benchmarks/bench_simplify.py) and vectorised
# numpy. Loading the kernel costs about a second once per process, more than numpy needs for a few dozen
# drawings, so small inputs take numpy until the process has simplified enough to repay the load (or has loaded
# the kernel anyway); without numba everything takes numpy.
COMPILED_MIN_POINTS = 50_000  # resampled points in one call (~40 Quick, Draw! drawings)
COMPILED_AFTER_POINTS = 1_000_000  # resampled points simplified so far in this process
_rdp_state = {"points": 0, "kernel": None}


def load_compiled_rdp() -> bool:
    """Load the compiled RDP kernel now (long-running processes: servers, notebooks, benchmarks), so that even
    the first small inputs use it. Returns False when it cannot be had (numba missing, or no writable place for
    its cache: set ``NUMBA_CACHE_DIR``); a ``RuntimeWarning`` says why, and numpy does the work (same results)."""
    if _rdp_state["kernel"] is None:
        try:
            from ._rdp import rdp_keep

            rdp_keep(np.zeros((3, 2)), np.array([3]), 1.0, RDP_MAX_DEPTH)  # compile or load from numba's cache
        except Exception as exc:  # ImportError, or numba's RuntimeError / OSError about its cache
            warnings.warn(f"compiled RDP kernel unavailable ({type(exc).__name__}: {exc}); simplifying with numpy "
                          "(the same results, slower)", RuntimeWarning, stacklevel=2)
            _rdp_state["kernel"] = False
        else:
            _rdp_state["kernel"] = rdp_keep
    return _rdp_state["kernel"] is not False


def _rdp_flat(xy: np.ndarray, stroke_lengths: np.ndarray, epsilon: float, max_depth: int = RDP_MAX_DEPTH
              ) -> np.ndarray:
    """Keep-mask ``(M,)`` of Ramer-Douglas-Peucker on every stroke of a flat ``(M, 2)`` array: keep both
    ends; find the interior point farthest from the chord segment (the first one on ties); if farther
    than ``epsilon`` keep it and recurse on both halves, at most ``max_depth`` levels deep (``RDP_MAX_DEPTH``).
    The compiled kernel or numpy (see above)."""
    state = _rdp_state
    if state["kernel"] is None and (len(xy) >= COMPILED_MIN_POINTS or state["points"] >= COMPILED_AFTER_POINTS):
        load_compiled_rdp()
    state["points"] += len(xy)
    if state["kernel"]:
        return state["kernel"](xy, stroke_lengths, epsilon, max_depth)
    return _rdp_vectorised(xy, stroke_lengths, epsilon, max_depth)


def _rdp_vectorised(xy: np.ndarray, stroke_lengths: np.ndarray, epsilon: float, max_depth: int = RDP_MAX_DEPTH
                    ) -> np.ndarray:
    """``_rdp_flat`` in numpy, for small inputs (no compiled kernel to load).

    Level-synchronous: all open intervals ``(a, b)`` of all strokes are split in one vectorised step
    per recursion level, for at most ``max_depth`` levels. Which points survive does not depend on the order
    intervals are visited, so this equals the textbook recursion: keep both ends; find the interior point
    farthest from the chord segment (the first one on ties); if farther than ``epsilon`` keep it and recurse on
    both halves, down to the same depth.
    """
    m = len(xy)
    keep = np.zeros(m, dtype=bool)
    ends = np.cumsum(stroke_lengths)
    keep[ends - stroke_lengths] = True
    keep[ends - 1] = True
    x, y = np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1])
    eps2 = float(epsilon) ** 2
    anchors = keep.nonzero()[0]  # (K,) kept points, increasing; interval k = (anchors[k], anchors[k+1])
    cur = (~keep).nonzero()[0]  # (Q,) interior points of open intervals, increasing
    pos = anchors.searchsorted(cur) - 1  # (Q,) interval of each point, non-decreasing
    xc, yc = x[cur], y[cur]
    # Plain element-wise float64 ufuncs only (no BLAS, no complex SIMD kernels that may fuse
    # multiply-adds), so the result is the same bits on every CPU and run.
    for _level in range(max_depth):
        if not len(cur):
            break
        ax, ay = x[anchors], y[anchors]
        dx, dy = ax[1:] - ax[:-1], ay[1:] - ay[:-1]  # (K-1,) chord of each interval
        n2 = dx * dx + dy * dy
        n2 += n2 == 0.0  # a zero chord gives t = 0: the distance to its end point
        ex, ey = xc - ax[pos], yc - ay[pos]
        px, py = dx[pos], dy[pos]
        t = (ex * px + ey * py) / n2[pos]
        t.clip(0.0, 1.0, out=t)
        ex -= t * px
        ey -= t * py
        dist2 = ex * ex + ey * ey  # (Q,) squared distance to the chord segment
        # the first farthest point of each interval (intervals are runs of equal pos)
        new_run = np.empty(len(pos), dtype=bool)
        new_run[0] = True
        np.not_equal(pos[1:], pos[:-1], out=new_run[1:])
        run_start = new_run.nonzero()[0]
        best = np.maximum.reduceat(dist2, run_start)  # (R,)
        hit = (dist2 == best[new_run.cumsum() - 1]).nonzero()[0]
        if len(hit) > len(best):  # ties: keep the first farthest point of each interval
            first = np.empty(len(hit), dtype=bool)
            first[0] = True
            np.not_equal(pos[hit[1:]], pos[hit[:-1]], out=first[1:])
            hit = hit[first]
        hit = hit[dist2[hit] > eps2]
        if not len(hit):
            break
        new_anchors = cur[hit]  # (S,) increasing, one per split interval
        keep[new_anchors] = True
        split = np.zeros(len(anchors), dtype=bool)
        split[pos[hit]] = True
        sel = split[pos]  # points of split intervals stay open, minus the new anchors
        sel[hit] = False
        cur, xc, yc, pos = cur[sel], xc[sel], yc[sel], pos[sel]
        # Interval k becomes k + (splits before k) and, right of its new anchor, one more.
        rank = np.cumsum(split)[pos] - 1  # (Q,) index of each point's interval among the split ones
        pos += rank + (cur > new_anchors[rank])
        anchors = np.insert(anchors, split.nonzero()[0] + 1, new_anchors)
    return keep


def _frame(xy: np.ndarray, sketch_points: np.ndarray, size: float) -> np.ndarray:
    """Align each sketch's ``(P, 2)`` points to the top-left and scale them uniformly so the larger
    extent is ``size`` (an extent of 0 is left unscaled). ``sketch_points`` ``(S,)``, each >= 1.
    Returns float64."""
    if len(sketch_points) == 1:  # the same operations, without the segment bookkeeping
        shifted = xy - xy.min(0)
        extent = float(shifted.max())
        return shifted * (size / extent) if extent > 0 else shifted
    starts = np.cumsum(sketch_points) - sketch_points
    sid = np.repeat(np.arange(len(sketch_points)), sketch_points)  # (P,)
    shifted = xy - np.minimum.reduceat(xy, starts, axis=0)[sid]
    extent = np.maximum.reduceat(shifted.max(1), starts)  # (S,)
    scale = np.where(extent > 0, size / np.where(extent > 0, extent, 1.0), 1.0)
    return shifted * scale[sid, None]


def _gaps(xy: np.ndarray) -> np.ndarray:
    """``(P-1,)`` distances between consecutive points of ``(P, 2)``."""
    return np.hypot(*np.diff(xy, axis=0).T) if len(xy) > 1 else np.zeros(0)


def _ink(gaps: np.ndarray, stroke_lengths: Any) -> np.ndarray:
    """``gaps`` ``(P-1,)`` with the pen-up jumps between strokes (``stroke_lengths``: points per stroke) set to 0,
    as a copy: the ink of each segment."""
    ink = gaps.copy()
    ink[np.cumsum(stroke_lengths)[:-1] - 1] = 0.0
    return ink


def _unusable(xy: np.ndarray, stroke_lengths: np.ndarray, sketch_points: np.ndarray, size: float
              ) -> tuple[dict[int, str], np.ndarray, np.ndarray]:
    """Sketches that cannot be simplified, and the framed points and gaps the simplification goes on with.

    Args:
        xy: ``(P, 2)`` float64 points; ``stroke_lengths`` ``(T,)`` all >= 1; ``sketch_points`` ``(S,)`` all >= 1.

    Returns:
        ``({sketch: reason}, framed (P, 2), gaps (P-1,))``: a sketch is unusable with non-finite coordinates
        or more than ``MAX_INK`` px of strokes once scaled to a 255 frame (degenerate input: real drawings
        have a few thousand).
    """
    starts = np.cumsum(sketch_points) - sketch_points
    finite = np.logical_and.reduceat(np.isfinite(xy).all(1), starts)  # (S,)
    problems = {int(i): "coordinates contain NaN or infinity" for i in np.flatnonzero(~finite)}
    if problems:
        xy = np.where(np.repeat(finite, sketch_points)[:, None], xy, 0.0)
    framed = _frame(xy, sketch_points, size)
    seg = _gaps(framed)
    per_sketch = np.add.reduceat(np.append(_ink(seg, stroke_lengths), 0.0), starts) * (255.0 / size)  # (S,)
    for i in np.flatnonzero(per_sketch > MAX_INK):
        problems[int(i)] = (f"drawing too long to simplify: {per_sketch[i]:,.0f} px of strokes in the 255 frame "
                            f"(limit {MAX_INK:,})")
    return problems, framed, seg


def ink_length(sketch: Sketch) -> float:
    """Pixels of strokes once ``sketch`` is scaled into the 255 frame (pen-up jumps excluded): about the number of
    1-px samples Google's simplification makes, so a cheap measure of its work. Real drawings have about 1,000
    (median) and under 3,200 at the 99th percentile (``benchmarks/stroke_counts.py``); over ``MAX_INK`` the
    simplification refuses a drawing. 0 for a drawing of one point (or none); ``inf`` when a coordinate is not
    finite."""
    if sketch.num_points == 0:
        return 0.0
    xy = np.concatenate([s[:, :2] for s in sketch.strokes]).astype(np.float64)  # (P, 2)
    extent = float((xy.max(0) - xy.min(0)).max())
    if not np.isfinite(extent):
        return float("inf")
    if extent == 0:
        return 0.0
    return float(_ink(_gaps(xy), [len(s) for s in sketch.strokes]).sum() * 255.0 / extent)


def unusable_sketches(points: np.ndarray, stroke_lengths: np.ndarray, sketch_strokes: np.ndarray,
                      size: float = 255.0) -> dict[int, str]:
    """``{sketch index: reason}`` for the sketches ``simplify_arrays`` would refuse (non-finite coordinates,
    more than ``MAX_INK`` px of strokes); the same arguments, every sketch with a point. Cheap next to
    simplifying: callers that select sketches before preprocessing (the data preparation) drop these first."""
    xy, lengths, sketch_points = _check_layout(points, stroke_lengths, sketch_strokes)
    return _unusable(xy, lengths[lengths > 0], sketch_points, size)[0] if len(xy) else {}


def _check_layout(points: np.ndarray, stroke_lengths: np.ndarray, sketch_strokes: np.ndarray | None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(xy (P, 2) float64, stroke_lengths (T,), sketch_points (S,))`` after checking the lengths add up
    and every sketch has a point (``SketchError`` otherwise)."""
    xy = np.asarray(points, dtype=np.float64)[:, :2]
    lengths = np.asarray(stroke_lengths, dtype=np.int64)
    if lengths.sum() != len(xy) or (lengths < 0).any():
        raise SketchError("stroke_lengths must be >= 0 and sum to the number of points")
    if sketch_strokes is None:
        sketch_points = np.array([len(xy)])
    else:
        sketch_strokes = np.asarray(sketch_strokes, dtype=np.int64)
        if sketch_strokes.sum() != len(lengths) or (sketch_strokes < 0).any():
            raise SketchError("sketch_strokes must be >= 0 and sum to the number of strokes")
        point_bounds = np.concatenate([[0], np.cumsum(lengths)])[np.cumsum(sketch_strokes)]
        sketch_points = np.diff(point_bounds, prepend=0)
    if (sketch_points == 0).any():
        raise SketchError("every sketch needs at least one point")
    return xy, lengths, sketch_points


def simplify_arrays(
    points: np.ndarray,
    stroke_lengths: np.ndarray,
    sketch_strokes: np.ndarray | None = None,
    *,
    epsilon: float = 2.0,
    size: float = 255.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Google's simplification of many sketches at once, on flat arrays (the one implementation).

    Args:
        points: ``(P, 2)`` (or ``(P, 3)``, time ignored) points of all strokes of all sketches.
        stroke_lengths: ``(T,)`` points per stroke (an empty stroke stays empty).
        sketch_strokes: ``(S,)`` strokes per sketch (every sketch needs a point); ``None``: one sketch.
        epsilon: RDP tolerance in pixels of the ``size`` frame.
        size: the larger extent after scaling (255 for Quick, Draw!).

    Returns:
        ``coords (M, 2)`` float32 integer-valued and ``stroke_lengths (T,)`` int64 (every non-empty
        stroke keeps at least one point, so stroke ``i`` of the output is stroke ``i`` of the input).

    Raises:
        SketchError: bad lengths or a sketch without points.
        UnusableSketchesError: sketches with non-finite points or more than ``MAX_INK`` px of strokes
            (degenerate input; real drawings have a few thousand); ``problems`` names them all.
    """
    lengths = np.asarray(stroke_lengths, dtype=np.int64)
    out_lengths = np.zeros(len(lengths), dtype=np.int64)
    res, res_lengths = rdp_input(points, stroke_lengths, sketch_strokes, size=size)
    if len(res) == 0:
        return np.zeros((0, 2), np.float32), out_lengths
    full = lengths > 0  # empty strokes stay empty
    keep = _rdp_flat(res, res_lengths, epsilon)
    stroke_of = np.repeat(np.arange(len(res_lengths)), res_lengths)
    out_lengths[full] = np.bincount(stroke_of[keep], minlength=len(res_lengths))
    coords = np.round(res[keep]) + 0.0  # + 0.0 turns -0.0 into 0.0
    return coords.astype(np.float32), out_lengths


def rdp_input(points: np.ndarray, stroke_lengths: np.ndarray, sketch_strokes: np.ndarray | None = None, *,
              size: float = 255.0) -> tuple[np.ndarray, np.ndarray]:
    """What ``simplify_arrays`` runs RDP on (the same arguments): ``(samples (M, 2) float64, lengths (T',))``, every
    non-empty stroke framed in ``size`` and resampled at 1 px. Raises as ``simplify_arrays`` does."""
    xy, lengths, sketch_points = _check_layout(points, stroke_lengths, sketch_strokes)
    if len(xy) == 0:
        return np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
    full = lengths > 0
    problems, framed, seg = _unusable(xy, lengths[full], sketch_points, size)
    if problems:
        raise UnusableSketchesError(problems, batch_size=len(sketch_points))
    return _resample_flat(framed, lengths[full], 1.0, seg)


# ------------------------------------------------------------------------------ single-stroke views
def resample(points: np.ndarray, spacing: float = 1.0) -> np.ndarray:
    """Points every ``spacing`` of arc length along one polyline, ``(n, 2)`` -> ``(m, 2)`` float64.

    The first and the exact last point are always samples (a zero-length stroke of several points
    gives its point twice); one point gives itself; zero points give ``(0, 2)``.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return pts.copy()
    return _resample_flat(pts, np.array([len(pts)]), float(spacing))[0]


def rdp(points: np.ndarray, epsilon: float) -> np.ndarray:
    """Ramer-Douglas-Peucker on one polyline, ``(n, 2)`` -> ``(m, 2)`` (a subset of the rows, in
    order; the first and last rows are always kept). Distances are to the chord segment."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 3:
        return pts.copy()
    return pts[_rdp_flat(pts, np.array([len(pts)]), epsilon)]


# ------------------------------------------------------------------------------ sketch level
def _require_points(sketch: Sketch) -> None:
    if sketch.num_points == 0:
        raise SketchError("sketch has no points" + (f" (key_id={sketch.key_id})" if sketch.key_id else ""))


def normalize(sketch: Sketch, size: float = 255.0) -> Sketch:
    """Align to the top-left and scale uniformly so the larger extent is ``size`` (steps 1-2).

    Times (if any) and part ids are kept; empty strokes are dropped.
    """
    _require_points(sketch)
    strokes = [s for s in sketch.strokes if len(s)]
    pts = np.concatenate([s[:, :2] for s in strokes]).astype(np.float64)
    framed = _frame(pts, np.array([len(pts)]), size).astype(np.float32)
    bounds = np.cumsum([len(s) for s in strokes])[:-1]
    out = []
    for s, xy in zip(strokes, np.split(framed, bounds)):
        s = s.copy()
        s[:, :2] = xy
        out.append(s)
    parts = None if sketch.parts is None else [p for p, s in zip(sketch.parts, sketch.strokes) if len(s)]
    return sketch.replace(strokes=out, parts=parts)


def simplify(sketch: Sketch, epsilon: float = 2.0, *, size: float = 255.0) -> Sketch:
    """Google's Quick, Draw! simplification (see the module docstring).

    Returns a sketch whose strokes are integer-valued float32 ``(m_i, 2)`` arrays in ``0..size``;
    times and part ids are dropped (resampling invents points). Raises ``SketchError`` on an empty
    sketch.
    """
    _require_points(sketch)
    strokes = [s for s in sketch.strokes if len(s)]
    lengths = np.array([len(s) for s in strokes], dtype=np.int64)
    pts = np.concatenate(strokes) if len(strokes) > 1 else strokes[0]
    coords, out_lengths = simplify_arrays(pts, lengths, epsilon=epsilon, size=size)
    return sketch.replace(strokes=np.split(coords, np.cumsum(out_lengths)[:-1]), parts=None)


def cap_points(sketch: Sketch, max_points: int = 100) -> Sketch:
    """Keep the first ``max_points`` points in drawing order (our reading of the paper's 100-point cap: the
    preprocessing behind the official data is not published, so how it flagged a cut stroke cannot be checked).

    Whole strokes past the cap are dropped; the stroke crossing the cap is cut and ends at the
    last kept point. ``meta["dropped_points"]`` adds up the removed points (the key is absent when
    nothing was ever dropped). A sketch within the cap is returned unchanged (the same object).
    """
    if max_points < 1:
        raise SketchError(f"max_points must be >= 1, got {max_points}")
    n = sketch.num_points
    if n <= max_points:
        return sketch
    strokes: list[np.ndarray] = []
    parts: list[np.ndarray] | None = [] if sketch.parts is not None else None
    left = max_points
    for i, s in enumerate(sketch.strokes):
        if left <= 0:
            break
        if len(s) == 0:
            continue
        strokes.append(s[:left])
        if parts is not None:
            parts.append(sketch.parts[i][:left])
        left -= len(strokes[-1])
    meta = dict(sketch.meta)
    meta["dropped_points"] = int(meta.get("dropped_points", 0)) + n - max_points
    return sketch.replace(strokes=strokes, parts=parts, meta=meta)


def _points64(x: Sketch | np.ndarray) -> np.ndarray:
    pts = x.points() if isinstance(x, Sketch) else np.asarray(x, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        raise SketchError("fidelity distances need non-empty point sets")
    return pts.astype(np.float64)


def point_set_distance(a: Sketch | np.ndarray, b: Sketch | np.ndarray) -> float:
    """Symmetric mean nearest-neighbour distance between two point sets, in their units (px).

    ``(mean_i min_j |a_i - b_j| + mean_j min_i |a_i - b_j|) / 2`` over all points (strokes and
    order ignored): the measure used to compare ``simplify`` with Google's simplified drawings.
    Accepts sketches or ``(n, 2)`` arrays; memory is ``O(n * m)``.
    """
    pa, pb = _points64(a), _points64(b)
    d2 = ((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1)  # (n, m)
    return float((np.sqrt(d2.min(1)).mean() + np.sqrt(d2.min(0)).mean()) / 2)


def _to_polyline(points: np.ndarray, strokes: list[np.ndarray]) -> np.ndarray:
    """``(n,)`` distance from each point to the nearest segment of the strokes (one-point strokes
    count as zero-length segments)."""
    segs = [np.stack([s[:-1], s[1:]], 1) if len(s) > 1 else s[:1, None].repeat(2, 1) for s in strokes if len(s)]
    ab = np.concatenate(segs).astype(np.float64)[:, :, :2]  # (k, 2 ends, 2)
    a, d = ab[:, 0], ab[:, 1] - ab[:, 0]  # (k, 2)
    n2 = (d * d).sum(1)
    e = points[:, None, :] - a[None]  # (n, k, 2)
    t = np.clip((e * d[None]).sum(-1) / np.where(n2 > 0, n2, 1.0), 0.0, 1.0)
    r = e - t[..., None] * d[None]
    return np.sqrt((r * r).sum(-1).min(1))


def polyline_distance(a: Sketch, b: Sketch) -> float:
    """Symmetric mean distance from the points of each sketch to the strokes (polylines) of the
    other, in px: a shape-fidelity measure that, unlike ``point_set_distance``, does not depend on
    where along a curve the points were sampled. Memory is ``O(n * segments)``."""
    pa, pb = _points64(a), _points64(b)
    return float((_to_polyline(pa, b.strokes).mean() + _to_polyline(pb, a.strokes).mean()) / 2)


CAP_POLICIES = ("truncate", "adapt")
ADAPT_FACTOR, ADAPT_STEPS = 1.5, 6  # epsilon 2.0 -> 3.0, 4.5, ..., 22.8 px


@dataclass(frozen=True)
class Preprocessing:
    """What happens to a sketch before its graph is built (stored in datasets and checkpoints).

    Attributes:
        simplify: run Google's simplification (``True`` for RAW / canvas input). Data that is already
            simplified is nearly a fixed point, not an exact one: on Google's simplified drawings a second
            pass keeps the strokes, drops about 4% of the points (RDP on rounded points) and moves the
            median drawing by under half a pixel (more for drawings Google did not frame at 0 / 255), so
            leaving it on is safe.
        epsilon: RDP tolerance in pixels of the 255-pixel frame.
        max_points: the point cap.
        cap: what happens to a drawing with more than ``max_points`` points after simplification:
            ``"truncate"`` (the paper: keep the first ``max_points`` points) or ``"adapt"`` (simplify
            it again with a coarser tolerance, ``epsilon * ADAPT_FACTOR ** k`` for k = 1..ADAPT_STEPS,
            until it fits, and truncate only what still does not), so long or shaky drawings keep
            all their strokes. ``"adapt"`` needs ``simplify``.
    """

    simplify: bool = True
    epsilon: float = 2.0
    max_points: int = 100
    cap: str = "truncate"

    def __post_init__(self) -> None:
        if self.cap not in CAP_POLICIES:
            raise ValueError(f"Preprocessing.cap must be one of {CAP_POLICIES}, got {self.cap!r}")
        if not isinstance(self.simplify, bool):
            raise ValueError(f"Preprocessing.simplify must be true or false, got {self.simplify!r}")
        points = self.max_points
        if isinstance(points, float) and points.is_integer():  # 100.0 from a JSON file
            object.__setattr__(self, "max_points", points := int(points))
        if isinstance(points, bool) or not isinstance(points, numbers.Integral) or points < 1:
            raise ValueError(f"Preprocessing.max_points must be a positive integer, got {self.max_points!r}")
        if isinstance(self.epsilon, bool) or not isinstance(self.epsilon, numbers.Real) or not (
                0 <= self.epsilon < math.inf):
            raise ValueError(f"Preprocessing.epsilon must be a number >= 0, got {self.epsilon!r}")

    def check_cap(self) -> None:
        """``ValueError`` when ``cap`` is ``"adapt"`` without ``simplify``: its coarser re-simplification needs the
        simplification, so every long drawing would be truncated while the record said ``adapt``. (A stored record
        of that kind still loads: it prepares a drawing as ``"truncate"`` does, and is compared as such.)"""
        if self.cap == "adapt" and not self.simplify:
            raise ValueError("cap 'adapt' simplifies a long drawing again with a coarser tolerance, so it needs "
                             "simplification: without it (--no-simplify, simplify=False) only 'truncate' applies")

    def adapt_epsilons(self) -> list[float]:
        """The coarser tolerances ``"adapt"`` tries, in order (empty for ``"truncate"``)."""
        if self.cap != "adapt" or not self.simplify:
            return []
        return [self.epsilon * ADAPT_FACTOR**k for k in range(1, ADAPT_STEPS + 1)]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessing:
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


def preprocess(sketch: Sketch, config: Preprocessing = Preprocessing()) -> Sketch:
    """Apply ``config``: simplification (or just normalisation to the 255 frame) then the cap."""
    sk = simplify(sketch, config.epsilon) if config.simplify else normalize(sketch)
    for eps in config.adapt_epsilons():
        if sk.num_points <= config.max_points:
            break
        sk = simplify(sketch, eps)
    return cap_points(sk, config.max_points)
