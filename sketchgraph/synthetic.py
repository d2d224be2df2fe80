"""Seeded synthetic sketch datasets: ten labelled shape classes drawn like RAW Quick, Draw! input.

Every shape starts as clean polylines in a unit box (y down, as on a screen). ``_humanize`` then makes
it look hand-drawn and recorded by a device: a random affine map (rotation, anisotropic scale, shear),
a slow wobble along each stroke, small per-stroke misplacement, placement on a canvas of random size
and offset (floats, e.g. 120..900 px), and sampling at a varying pen speed every ~16 ms, with sensor
jitter, the odd repeated point, and millisecond times with pauses between strokes. So the data has to
go through ``simplify`` like real RAW drawings, and classes differ in shape, not in easy statistics
(stroke counts and orders vary within a class).

    >>> sketches = make_dataset(n_per_class=20, seed=0)        # 200 sketches, RAW-like
    >>> write_dataset("out/synth", 100, seed=0, splits={"train": 80, "valid": 10, "test": 10})

Determinism: sketch ``i`` of class ``c`` depends only on ``(seed, c's index in CLASSES, i)``, so
the same seed writes the same bytes, and asking for more sketches or fewer classes does not change
the others.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from .errors import SketchError
from .sketch import Sketch

__all__ = ["CLASSES", "make_sketch", "make_dataset", "write_dataset", "sketch_record"]

Strokes = list[np.ndarray]  # clean polylines, each (n, 2) in the unit box


# ------------------------------------------------------------------------------ shape primitives
def _arc(cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int = 48) -> np.ndarray:
    """Points of an elliptic arc from angle ``a0`` to ``a1`` (radians) -> ``(n, 2)``."""
    a = np.linspace(a0, a1, n)
    return np.column_stack([cx + rx * np.cos(a), cy + ry * np.sin(a)])


def _poly(*pts: tuple[float, float]) -> np.ndarray:
    return np.asarray(pts, dtype=np.float64)


def _maybe_reverse(strokes: Strokes, rng: np.random.Generator, p: float = 0.3) -> Strokes:
    """Reverse the direction of each stroke with probability ``p`` (people start at either end)."""
    return [s[::-1] if rng.random() < p else s for s in strokes]


def _closed_polygon(corners: np.ndarray, rng: np.random.Generator) -> Strokes:
    """A closed polygon as one stroke from a random corner, or one stroke per side, or two halves."""
    k = len(corners)
    start = int(rng.integers(k))
    ring = np.roll(corners, -start, axis=0)
    if rng.random() < 0.5:
        ring = ring[::-1]
    loop = np.vstack([ring, ring[:1]])
    mode = rng.random()
    if mode < 0.5:
        return [loop]
    if mode < 0.8:
        return [loop[i : i + 2] for i in range(k)]
    half = k // 2
    return [loop[: half + 1], loop[half:]]


# ------------------------------------------------------------------------------ the ten classes
def _circle(rng: np.random.Generator) -> Strokes:
    r = rng.uniform(0.38, 0.48)
    aspect = rng.uniform(0.8, 1.2)
    a0 = rng.uniform(0, 2 * np.pi)
    sweep = (2 * np.pi + rng.uniform(-0.15, 0.35)) * rng.choice([-1, 1])
    if rng.random() < 0.2:  # two arcs
        mid = a0 + sweep / 2
        return [_arc(0.5, 0.5, r, r * aspect, a0, mid), _arc(0.5, 0.5, r, r * aspect, mid, a0 + sweep)]
    return [_arc(0.5, 0.5, r, r * aspect, a0, a0 + sweep, 64)]


def _square(rng: np.random.Generator) -> Strokes:
    w, h = rng.uniform(0.7, 0.95), rng.uniform(0.7, 0.95)
    x0, y0 = 0.5 - w / 2, 0.5 - h / 2
    return _closed_polygon(_poly((x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h)), rng)


def _triangle(rng: np.random.Generator) -> Strokes:
    apex = (rng.uniform(0.3, 0.7), rng.uniform(0.05, 0.15))
    base_y = rng.uniform(0.85, 0.95)
    return _closed_polygon(_poly(apex, (rng.uniform(0.85, 0.95), base_y), (rng.uniform(0.05, 0.15), base_y)), rng)


def _star(rng: np.random.Generator) -> Strokes:
    r = rng.uniform(0.42, 0.5)
    rot = rng.uniform(-0.2, 0.2) - np.pi / 2
    a = rot + 2 * np.pi * np.arange(5) / 5
    tips = np.column_stack([0.5 + r * np.cos(a), 0.5 + r * np.sin(a)])
    if rng.random() < 0.6:  # pentagram, one stroke
        order = (np.arange(6) * 2) % 5
        start = int(rng.integers(5))
        return [tips[(order + start) % 5]]
    inner = r * rng.uniform(0.35, 0.5)
    ring = []
    for k in range(5):
        ring.append(tips[k])
        a = rot + 2 * np.pi * (k + 0.5) / 5
        ring.append((0.5 + inner * np.cos(a), 0.5 + inner * np.sin(a)))
    ring = np.asarray(ring)
    return [np.vstack([ring, ring[:1]])]


def _house(rng: np.random.Generator) -> Strokes:
    left, right = rng.uniform(0.1, 0.2), rng.uniform(0.8, 0.9)
    eave, floor = rng.uniform(0.4, 0.5), rng.uniform(0.9, 0.97)
    peak = (rng.uniform(0.4, 0.6), rng.uniform(0.03, 0.12))
    body = _poly((left, eave), (left, floor), (right, floor), (right, eave))
    roof = _poly((left - rng.uniform(0, 0.06), eave), peak, (right + rng.uniform(0, 0.06), eave))
    strokes = [body, roof] if rng.random() < 0.6 else [roof, body]
    if rng.random() < 0.5:  # closed body top
        strokes.append(_poly((left, eave), (right, eave)))
    if rng.random() < 0.6:
        dx = rng.uniform(0.35, 0.55)
        dw, dh = rng.uniform(0.1, 0.16), rng.uniform(0.2, 0.3)
        strokes.append(_poly((dx, floor), (dx, floor - dh), (dx + dw, floor - dh), (dx + dw, floor)))
    return _maybe_reverse(strokes, rng)


def _spiral(rng: np.random.Generator) -> Strokes:
    turns = rng.uniform(2.0, 3.5)
    a = np.linspace(0, 2 * np.pi * turns, int(60 * turns))
    r = 0.47 * (a / a[-1]) ** rng.uniform(0.8, 1.1)
    a0 = rng.uniform(0, 2 * np.pi)
    sign = rng.choice([-1, 1])
    pts = np.column_stack([0.5 + r * np.cos(sign * a + a0), 0.5 + r * np.sin(sign * a + a0)])
    return [pts if rng.random() < 0.7 else pts[::-1]]


def _zigzag(rng: np.random.Generator) -> Strokes:
    k = int(rng.integers(4, 8))
    xs = np.linspace(0.03, 0.97, k + 1) + rng.uniform(-0.02, 0.02, k + 1)
    amp = rng.uniform(0.15, 0.3)
    ys = 0.5 + amp * np.where(np.arange(k + 1) % 2 == 0, -1.0, 1.0) * rng.choice([-1, 1])
    return _maybe_reverse([np.column_stack([xs, ys])], rng, 0.5)


def _cross(rng: np.random.Generator) -> Strokes:
    cx, cy = rng.uniform(0.42, 0.58), rng.uniform(0.42, 0.58)
    h = _poly((rng.uniform(0.03, 0.12), cy), (rng.uniform(0.88, 0.97), cy + rng.uniform(-0.03, 0.03)))
    v = _poly((cx, rng.uniform(0.03, 0.12)), (cx + rng.uniform(-0.03, 0.03), rng.uniform(0.88, 0.97)))
    strokes = [v, h] if rng.random() < 0.5 else [h, v]
    return _maybe_reverse(strokes, rng)


def _heart(rng: np.random.Generator) -> Strokes:
    t = np.linspace(0, np.pi, 40)
    # one half of the classic heart curve, from the top notch to the bottom tip
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    x, y = x / 34 + 0.5, (y + 12) / 30 * rng.uniform(0.9, 1.05) + 0.08
    right = np.column_stack([x, y])
    left = np.column_stack([1.0 - x, y])
    if rng.random() < 0.5:
        return [left, right] if rng.random() < 0.5 else [right, left]
    return [np.vstack([left[::-1], right[1:]])[::-1] if rng.random() < 0.5 else np.vstack([left[::-1], right[1:]])]


def _arrow(rng: np.random.Generator) -> Strokes:
    y = rng.uniform(0.4, 0.6)
    tip = (rng.uniform(0.9, 0.97), y)
    head = rng.uniform(0.18, 0.3)
    spread = rng.uniform(0.15, 0.25)
    shaft = _poly((rng.uniform(0.03, 0.1), y + rng.uniform(-0.03, 0.03)), tip)
    wing = _poly((tip[0] - head, y - spread), tip, (tip[0] - head, y + spread))
    strokes = [shaft, wing] if rng.random() < 0.5 else [shaft, wing[:2], wing[1:]]
    turn = int(rng.integers(4))  # point right, down, left or up
    c, s_ = np.cos(turn * np.pi / 2), np.sin(turn * np.pi / 2)
    rot = np.array([[c, -s_], [s_, c]])
    return [(st - 0.5) @ rot.T + 0.5 for st in strokes]


_SHAPES: dict[str, Callable[[np.random.Generator], Strokes]] = {
    "circle": _circle, "square": _square, "triangle": _triangle, "star": _star, "house": _house,
    "spiral": _spiral, "zigzag": _zigzag, "cross": _cross, "heart": _heart, "arrow": _arrow,
}
CLASSES: tuple[str, ...] = tuple(_SHAPES)


# ------------------------------------------------------------------------------ hand + device
def _densify(poly: np.ndarray, step: float = 0.005) -> np.ndarray:
    """Linear interpolation of a polyline to ~``step`` spacing (keeps its corners)."""
    seg = np.hypot(*np.diff(poly, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    if cum[-1] == 0:
        return poly[:1].copy()
    u = np.union1d(np.linspace(0, cum[-1], max(int(cum[-1] / step), 2)), cum)
    return np.column_stack([np.interp(u, cum, poly[:, 0]), np.interp(u, cum, poly[:, 1])])


def _wobble(n: int, rng: np.random.Generator, amp: float) -> np.ndarray:
    """A slow random displacement along a stroke -> ``(n, 2)``: a few low-frequency sinusoids."""
    s = np.linspace(0, 1, n)[:, None]
    freq = rng.uniform(0.5, 3.0, (1, 3))
    phase = rng.uniform(0, 2 * np.pi, (2, 1, 3))
    a = rng.uniform(0, amp, (2, 1, 3))
    return np.stack([(a[k] * np.sin(2 * np.pi * freq * s + phase[k])).sum(1) for k in range(2)], 1)


def _sample_device(pts: np.ndarray, rng: np.random.Generator, speed: float) -> tuple[np.ndarray, np.ndarray]:
    """Record a canvas-space polyline as a device would: a point every ~16 ms at a pen speed that
    varies along the stroke. Returns ``(m, 2)`` points and ``(m,)`` ms offsets from the stroke start."""
    seg = np.hypot(*np.diff(pts, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    total = cum[-1]
    if total == 0.0:
        return pts[:1].copy(), np.zeros(1)
    # speed profile: slow start and end, random swell in between
    s = cum / total
    swell = 1 + 0.3 * np.sin(2 * np.pi * (s * rng.uniform(1, 3) + rng.random()))
    v = speed * (0.45 + np.sin(np.pi * s) ** 0.7) * swell
    v = np.maximum(v, 0.05 * speed)
    t = np.concatenate([[0.0], np.cumsum(seg / ((v[1:] + v[:-1]) / 2))])  # ms at each polyline point
    dt = rng.uniform(12, 20, int(t[-1] / 12) + 2)
    ts = np.concatenate([[0.0], np.cumsum(dt)])
    ts = np.append(ts[ts < t[-1]], t[-1])
    arc = np.interp(ts, t, cum)
    out = np.column_stack([np.interp(arc, cum, pts[:, 0]), np.interp(arc, cum, pts[:, 1])])
    return out, ts


def _humanize(strokes: Strokes, rng: np.random.Generator) -> list[np.ndarray]:
    """Clean unit-box polylines -> RAW-like ``(m, 3)`` strokes (canvas px floats, ms times)."""
    theta = rng.normal(0, 0.18)
    sx, sy = rng.uniform(0.75, 1.25, 2)
    shear = rng.normal(0, 0.1)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    A = rot @ np.array([[sx, shear], [0.0, sy]])
    size = rng.uniform(120, 600)
    offset = rng.uniform(0, 400, 2)
    speed = rng.uniform(0.4, 1.6)  # px per ms
    wob = rng.uniform(0.005, 0.02)
    out, clock = [], 0.0
    for poly in strokes:
        dense = _densify(poly)
        dense = dense + _wobble(len(dense), rng, wob) + rng.normal(0, 0.012, 2)
        canvas = (dense - 0.5) @ A.T * size + size / 2 + offset
        pts, ts = _sample_device(canvas, rng, speed)
        pts = pts + rng.normal(0, 0.35, pts.shape)  # sensor jitter
        if len(pts) > 3 and rng.random() < 0.3:  # devices repeat points now and then
            k = int(rng.integers(len(pts)))
            pts, ts = np.insert(pts, k, pts[k], 0), np.insert(ts, k, ts[k])
        times = np.round(clock + ts)
        out.append(np.column_stack([np.round(pts, 2), times]))
        clock = times[-1] + rng.uniform(80, 500)
    return out


# ------------------------------------------------------------------------------ public API
def _rng(seed: int, class_index: int, i: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(class_index), int(i)])


def _key_id(seed: int, class_index: int, i: int) -> str:
    """A 16-digit, Quick, Draw!-like key (unique per seed modulo 1000, class and index < 1e9)."""
    return f"9{seed % 1000:03d}{class_index:03d}{i:09d}"


def make_sketch(cls_name: str, rng: np.random.Generator) -> Sketch:
    """One RAW-like sketch of class ``cls_name`` (one of ``CLASSES``): strokes ``(n_i, 3)`` float32
    (canvas px, ms), ``label=cls_name``, ``recognized=True``."""
    if cls_name not in _SHAPES:
        raise SketchError(f"unknown synthetic class {cls_name!r}; choose from {CLASSES}")
    return Sketch.from_strokes(_humanize(_SHAPES[cls_name](rng), rng), label=cls_name, recognized=True)


def _classes(classes: Sequence[str] | None) -> list[str]:
    names = list(CLASSES if classes is None else classes)
    bad = [c for c in names if c not in _SHAPES]
    if bad or not names:
        raise SketchError(f"classes must be a non-empty subset of {CLASSES}, got {names}")
    return names


def _class_sketches(name: str, n: int, seed: int) -> list[Sketch]:
    ci = CLASSES.index(name)
    out = []
    for i in range(n):
        sk = make_sketch(name, _rng(seed, ci, i))
        sk.key_id = _key_id(seed, ci, i)
        out.append(sk)
    return out


def make_dataset(n_per_class: int, seed: int = 0, classes: Sequence[str] | None = None) -> list[Sketch]:
    """``n_per_class`` RAW-like sketches of every class (default ``CLASSES``), grouped by class in
    the given order, each with ``label`` and a unique ``key_id``."""
    if n_per_class < 0:
        raise SketchError(f"n_per_class must be >= 0, got {n_per_class}")
    return [sk for name in _classes(classes) for sk in _class_sketches(name, n_per_class, seed)]


def sketch_record(sketch: Sketch, format: str = "raw") -> dict:
    """A Quick, Draw!-style record ``{word, key_id, recognized, drawing}``.

    ``format="raw"``: ``drawing`` is ``[[xs, ys, ts], ...]`` (px floats with 2 decimals, integer ms);
    ``"simplified"``: the sketch is simplified first and ``drawing`` is ``[[xs, ys], ...]`` of ints 0..255.
    """
    if format == "simplified":
        from .preprocess import simplify

        sketch = simplify(sketch)
        drawing = [[s[:, 0].astype(int).tolist(), s[:, 1].astype(int).tolist()] for s in sketch.strokes]
    elif format == "raw":
        drawing = [
            [np.round(s[:, 0].astype(np.float64), 2).tolist(), np.round(s[:, 1].astype(np.float64), 2).tolist(),
             s[:, 2].astype(np.int64).tolist() if s.shape[1] == 3 else []]
            for s in sketch.strokes
        ]
        drawing = [d if d[2] else d[:2] for d in drawing]
    else:
        raise SketchError(f"format must be 'raw' or 'simplified', got {format!r}")
    return {"word": sketch.label, "key_id": sketch.key_id, "recognized": bool(sketch.recognized), "drawing": drawing}


def _split_counts(n: int, splits: Mapping[str, float | int]) -> dict[str, int]:
    """Per-class counts: ints are counts (they must add up to ``n``); floats are fractions of ``n``
    (adding up to 1; rounding remainders go to the first splits)."""
    vals = list(splits.values())
    if not splits or any(v < 0 for v in vals):
        raise SketchError(f"splits must map names to non-negative counts or fractions, got {dict(splits)}")
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in vals):
        if sum(vals) != n:
            raise SketchError(f"split counts {dict(splits)} add up to {sum(vals)}, not n_per_class={n}")
        return {k: int(v) for k, v in splits.items()}
    if abs(sum(vals) - 1.0) > 1e-6:
        raise SketchError(f"split fractions {dict(splits)} must add up to 1")
    counts = [int(np.floor(v * n + 1e-9)) for v in vals]
    for k in range(n - sum(counts)):
        counts[k % len(counts)] += 1
    return dict(zip(splits, counts))


def write_dataset(
    directory: str | Path,
    n_per_class: int,
    seed: int = 0,
    format: str = "raw",
    splits: Mapping[str, float | int] | None = None,
    classes: Sequence[str] | None = None,
) -> list[Path]:
    """Write a synthetic dataset as Quick, Draw!-style ndjson files; returns the paths written.

    Without ``splits``: one ``<class>.ndjson`` per class with ``n_per_class`` records. With
    ``splits`` (e.g. ``{"train": 80, "valid": 10, "test": 10}`` or ``{"train": 0.8, ...}``):
    ``<class>_<split>.ndjson``, the class's sketches ``0..n-1`` dealt out in the splits' order.
    Same arguments -> same bytes. ``format`` is ``"raw"`` or ``"simplified"`` (see ``sketch_record``).
    """
    if format not in ("raw", "simplified"):
        raise SketchError(f"format must be 'raw' or 'simplified', got {format!r}")
    names = _classes(classes)
    counts = {"": n_per_class} if splits is None else _split_counts(n_per_class, splits)
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        sketches = _class_sketches(name, n_per_class, seed)
        start = 0
        for split, n in counts.items():
            path = out_dir / (f"{name}_{split}.ndjson" if split else f"{name}.ndjson")
            lines = [json.dumps(sketch_record(sk, format), separators=(",", ":")) for sk in sketches[start : start + n]]
            path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
            paths.append(path)
            start += n
    return paths
