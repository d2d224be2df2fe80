"""The compiled Ramer-Douglas-Peucker kernel behind ``sketchgraph.preprocess`` (numba, imported lazily).

One pass per stroke with an explicit stack of open intervals: the textbook recursion, step for step.
For an interval ``(a, b)``: the interior point farthest from the chord *segment* ``a-b`` (the first one on
ties); if its squared distance exceeds ``epsilon**2``, keep it and handle ``(a, i)`` and ``(i, b)``, one
level deeper, unless the interval already is at level ``max_depth`` (a stroke's whole span is level 0), where
recursion stops. Which points survive does not depend on the order the intervals are handled.

The depth limit bounds the work at ``max_depth`` passes over a stroke's points. Without it the worst case is
quadratic: a full-width zig-zag keeps every vertex, each split peeling one off, so a legal 7,000-point drawing
took 32-38 s per pass. Real drawings stay far below the limit (``sketchgraph.preprocess.RDP_MAX_DEPTH``).

The arithmetic is plain float64 in the order written, compiled without fast-math, so no multiply-add is
fused and the result is the same bits on every CPU and in every run (the tests compare it with a
pure-Python recursion). ``nogil``: threads simplify different sketches in parallel. ``cache``: compiled
once per installation (about a second), then loaded from numba's cache (still most of a second per process:
``sketchgraph.preprocess`` sends small inputs to its numpy version until loading the kernel pays off).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["rdp_keep"]


@njit(cache=True, nogil=True)
def _rdp_keep(x: np.ndarray, y: np.ndarray, stroke_lengths: np.ndarray, eps2: float, max_depth: int
              ) -> np.ndarray:
    keep = np.zeros(x.shape[0], dtype=np.bool_)
    longest = 0
    for n in stroke_lengths:
        longest = max(longest, n)
    stack = np.empty(3 * longest + 3, dtype=np.int64)  # (a, b, level): at most one pending interval per point
    start = 0
    for n in stroke_lengths:
        if n == 0:
            continue
        keep[start] = True
        keep[start + n - 1] = True
        stack[0], stack[1], stack[2] = start, start + n - 1, 0
        top = 3
        start += n
        while top:
            a, b, level = stack[top - 3], stack[top - 2], stack[top - 1]
            top -= 3
            if b - a < 2 or level >= max_depth:
                continue
            ax, ay = x[a], y[a]
            dx, dy = x[b] - ax, y[b] - ay
            n2 = dx * dx + dy * dy
            if n2 == 0.0:  # a zero chord gives t = 0: the distance to its end point
                n2 = 1.0
            best, arg = -1.0, -1
            for i in range(a + 1, b):
                ex, ey = x[i] - ax, y[i] - ay
                t = (ex * dx + ey * dy) / n2
                if t < 0.0:
                    t = 0.0
                elif t > 1.0:
                    t = 1.0
                ex -= t * dx
                ey -= t * dy
                d2 = ex * ex + ey * ey
                if d2 > best:
                    best, arg = d2, i
            if best > eps2:
                keep[arg] = True
                stack[top], stack[top + 1], stack[top + 2] = arg, b, level + 1
                stack[top + 3], stack[top + 4], stack[top + 5] = a, arg, level + 1
                top += 6
    return keep


def rdp_keep(xy: np.ndarray, stroke_lengths: np.ndarray, epsilon: float, max_depth: int) -> np.ndarray:
    """Keep-mask ``(M,)`` bool of RDP on every stroke of a flat ``(M, 2)`` float64 array.

    Args:
        xy: ``(M, 2)`` points, strokes concatenated.
        stroke_lengths: ``(T,)`` points per stroke (summing to ``M``).
        epsilon: tolerance, in the units of ``xy``; distances are to the chord segment.
        max_depth: levels of recursion at most (see the module docstring).
    """
    x = np.ascontiguousarray(xy[:, 0], dtype=np.float64)
    y = np.ascontiguousarray(xy[:, 1], dtype=np.float64)
    return _rdp_keep(x, y, np.ascontiguousarray(stroke_lengths, dtype=np.int64), float(epsilon) ** 2,
                     int(max_depth))
