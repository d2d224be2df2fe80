"""Preprocessing: Google-style simplification and the point cap.

``simplify`` reproduces Quick, Draw!'s published "simplified" drawings from RAW ones:

1. align the drawing to the top-left corner (subtract the minimum x and y);
2. scale uniformly so the larger of max x / max y becomes 255;
3. resample every stroke at 1-pixel arc-length spacing (float points);
4. Ramer-Douglas-Peucker per stroke with ``epsilon`` (2.0) on the resampled float points;
5. round to integers last.

``cap_points`` applies the paper's point cap: keep the first ``max_points`` points in drawing
order (truncate); a stroke cut by the cap ends at the last kept point, and the number of
dropped points is recorded in ``sketch.meta["dropped_points"]`` so nothing is lost silently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .errors import SketchError
from .sketch import Sketch

__all__ = ["Preprocessing", "simplify", "cap_points", "resample", "rdp", "normalize", "preprocess"]


def resample(points: np.ndarray, spacing: float = 1.0) -> np.ndarray:
    """Points at every ``spacing`` of arc length along a polyline, ``(n, 2)`` -> ``(m, 2)`` float64.

    The first point is kept; the last point is appended when the remaining length is non-zero.
    Repeated points (zero-length segments) are skipped.
    """
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) < 2:
        return pts.copy()
    seg = np.hypot(*np.diff(pts, axis=0).T)  # (n-1,)
    cum = np.concatenate([[0.0], np.cumsum(seg)])  # (n,)
    total = cum[-1]
    if total == 0.0:
        return pts[:1].copy()
    targets = np.arange(0.0, total, spacing)  # (m,)
    if total - targets[-1] > 1e-9:
        targets = np.append(targets, total)
    keep = np.concatenate([[True], seg > 0])  # drop zero-length duplicates for interpolation
    cum_k, pts_k = cum[keep], pts[keep]
    x = np.interp(targets, cum_k, pts_k[:, 0])
    y = np.interp(targets, cum_k, pts_k[:, 1])
    return np.column_stack([x, y])


def rdp(points: np.ndarray, epsilon: float) -> np.ndarray:
    """Ramer-Douglas-Peucker: indices-preserving simplification of ``(n, 2)`` -> ``(m, 2)``.

    Iterative (no recursion limit on 10,000-point strokes); distances are to the chord segment.
    """
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    if n < 3:
        return pts.copy()
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, n - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        p, q = pts[a], pts[b]
        inner = pts[a + 1 : b]
        d = q - p
        norm2 = float(d @ d)
        if norm2 == 0.0:
            dist = np.hypot(*(inner - p).T)
        else:
            t = np.clip(((inner - p) @ d) / norm2, 0.0, 1.0)
            proj = p + t[:, None] * d
            dist = np.hypot(*(inner - proj).T)
        i = int(np.argmax(dist))
        if dist[i] > epsilon:
            m = a + 1 + i
            keep[m] = True
            stack.append((a, m))
            stack.append((m, b))
    return pts[keep]


def _require_points(sketch: Sketch) -> None:
    if sketch.num_points == 0:
        raise SketchError(f"sketch {sketch.key_id or ''} has no points".replace("  ", " "))


def normalize(sketch: Sketch, size: float = 255.0) -> Sketch:
    """Align to the top-left and scale uniformly so the larger extent is ``size`` (steps 1-2).

    Times (if any) are kept unchanged; part ids are kept.
    """
    _require_points(sketch)
    pts = sketch.points().astype(np.float64)
    lo = pts.min(0)
    extent = float((pts - lo).max())
    scale = size / extent if extent > 0 else 1.0
    strokes = []
    for s in sketch.strokes:
        out = s.astype(np.float64).copy()
        out[:, :2] = (out[:, :2] - lo) * scale
        strokes.append(out.astype(np.float32))
    return sketch.replace(strokes=strokes)


def simplify(sketch: Sketch, epsilon: float = 2.0, *, size: float = 255.0) -> Sketch:
    """Google's Quick, Draw! simplification (see the module docstring). Returns integer-valued
    float32 strokes of shape ``(m, 2)``; times and part ids are dropped (resampling invents points)."""
    _require_points(sketch)
    pts = sketch.points().astype(np.float64)
    lo = pts.min(0)
    extent = float((pts - lo).max())
    scale = size / extent if extent > 0 else 1.0
    strokes = []
    for s in sketch.strokes:
        xy = (s[:, :2].astype(np.float64) - lo) * scale
        xy = rdp(resample(xy, 1.0), epsilon)
        strokes.append(np.round(xy).astype(np.float32))
    return sketch.replace(strokes=strokes, parts=None)


def cap_points(sketch: Sketch, max_points: int = 100) -> Sketch:
    """Keep the first ``max_points`` points in drawing order (the paper's truncation policy).

    Whole strokes past the cap are dropped; the stroke crossing the cap is cut and ends at the
    last kept point. ``meta["dropped_points"]`` records how many points were removed.
    """
    if max_points < 1:
        raise SketchError(f"max_points must be >= 1, got {max_points}")
    n = sketch.num_points
    if n <= max_points:
        return sketch
    strokes, parts, left = [], [] if sketch.parts is not None else None, max_points
    for i, s in enumerate(sketch.strokes):
        if left <= 0:
            break
        strokes.append(s[:left])
        if parts is not None:
            parts.append(sketch.parts[i][:left])
        left -= len(s[:left])
    meta = dict(sketch.meta)
    meta["dropped_points"] = n - max_points
    return sketch.replace(strokes=strokes, parts=parts, meta=meta)


@dataclass(frozen=True)
class Preprocessing:
    """What happens to a sketch before its graph is built (stored in datasets and checkpoints).

    Attributes:
        simplify: run Google's simplification (``True`` for RAW / canvas input; for data that is
            already simplified it is idempotent up to rounding, so leaving it on is safe).
        epsilon: RDP tolerance in pixels of the 255-pixel frame.
        max_points: the point cap (truncate).
    """

    simplify: bool = True
    epsilon: float = 2.0
    max_points: int = 100

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessing:
        return cls(**{k: d[k] for k in ("simplify", "epsilon", "max_points") if k in d})


def preprocess(sketch: Sketch, config: Preprocessing = Preprocessing()) -> Sketch:
    """Apply ``config``: simplification (or just normalisation to the 255 frame) then the cap."""
    sk = simplify(sketch, config.epsilon) if config.simplify else normalize(sketch)
    return cap_points(sk, config.max_points)
