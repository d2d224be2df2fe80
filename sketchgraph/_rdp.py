"""The compiled Ramer-Douglas-Peucker kernel behind ``sketchgraph.preprocess`` (numba, imported lazily).

One pass per stroke with an explicit stack of open intervals: the textbook recursion, step for step.
For an interval ``(a, b)``: the interior point farthest from the chord *segment* ``a-b`` (the first one on
ties); if its squared distance exceeds ``epsilon**2``, keep it and handle ``(a, i)`` and ``(i, b)``.
Which points survive does not depend on the order the intervals are handled.

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
def _rdp_keep(x: np.ndarray, y: np.ndarray, stroke_lengths: np.ndarray, eps2: float) -> np.ndarray:
    keep = np.zeros(x.shape[0], dtype=np.bool_)
    longest = 0
    for n in stroke_lengths:
        longest = max(longest, n)
    stack = np.empty(2 * longest + 2, dtype=np.int64)  # at most one pending interval per stroke point
    start = 0
    for n in stroke_lengths:
        if n == 0:
            continue
        keep[start] = True
        keep[start + n - 1] = True
        stack[0], stack[1] = start, start + n - 1
        top = 2
        start += n
        while top:
            a, b = stack[top - 2], stack[top - 1]
            top -= 2
            if b - a < 2:
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
                stack[top], stack[top + 1], stack[top + 2], stack[top + 3] = arg, b, a, arg
                top += 4
    return keep


def rdp_keep(xy: np.ndarray, stroke_lengths: np.ndarray, epsilon: float) -> np.ndarray:
    """Keep-mask ``(M,)`` bool of RDP on every stroke of a flat ``(M, 2)`` float64 array.

    Args:
        xy: ``(M, 2)`` points, strokes concatenated.
        stroke_lengths: ``(T,)`` points per stroke (summing to ``M``).
        epsilon: tolerance, in the units of ``xy``; distances are to the chord segment.
    """
    x = np.ascontiguousarray(xy[:, 0], dtype=np.float64)
    y = np.ascontiguousarray(xy[:, 1], dtype=np.float64)
    return _rdp_keep(x, y, np.ascontiguousarray(stroke_lengths, dtype=np.int64), float(epsilon) ** 2)
