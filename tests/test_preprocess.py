"""Preprocessing: resampling, RDP, Google-style ``simplify`` (hand-worked RAW drawings and real
data), the point cap and the fidelity distances."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from sketchgraph.errors import SketchError
from sketchgraph.preprocess import (
    MAX_INK,
    Preprocessing,
    cap_points,
    ink_length,
    normalize,
    point_set_distance,
    polyline_distance,
    preprocess,
    rdp,
    resample,
    simplify,
    simplify_arrays,
)
from sketchgraph.sketch import Sketch


def raw(*strokes, t0: float = 0.0) -> Sketch:
    """A RAW-style sketch from ``[(x, y), ...]`` point lists: float coordinates plus ms times."""
    out, t = [], t0
    for pts in strokes:
        xy = np.asarray(pts, dtype=np.float64)
        ts = t + 17.0 * np.arange(len(xy))
        out.append(np.column_stack([xy, ts]))
        t = ts[-1] + 250.0
    return Sketch.from_strokes(out, label="hand", key_id="k1")


def as_lists(sketch: Sketch) -> list[list[list[int]]]:
    return [s.astype(int).tolist() for s in sketch.strokes]


# ------------------------------------------------------------------------------ resample
@pytest.mark.parametrize(
    "points, expected",
    [
        ([(0, 0), (3, 0)], [(0, 0), (1, 0), (2, 0), (3, 0)]),
        ([(0, 0), (2.5, 0)], [(0, 0), (1, 0), (2, 0), (2.5, 0)]),  # the exact end point is a sample
        ([(0, 0), (1, 0), (1, 1.5)], [(0, 0), (1, 0), (1, 1), (1, 1.5)]),  # arc length runs round corners
        ([(0, 0), (0.5, 0), (0.5, 1.5)], [(0, 0), (0.5, 0.5), (0.5, 1.5)]),
        ([(0, 0), (0, 0), (2, 0), (2, 0)], [(0, 0), (1, 0), (2, 0)]),  # repeated points carry no length
        ([(7, 7)], [(7, 7)]),  # one point stays one point
        ([(5, 5), (5, 5), (5, 5)], [(5, 5), (5, 5)]),  # zero length: first and last
        ([(0, 0), (0.3, 0.4)], [(0, 0), (0.3, 0.4)]),  # shorter than the spacing
        ([(0, 0), (3 + 1e-12, 0)], [(0, 0), (1, 0), (2, 0), (3 + 1e-12, 0)]),  # no near-duplicate sample
    ],
)
def test_resample_hand_worked(points, expected):
    np.testing.assert_allclose(resample(np.array(points, float)), np.array(expected, float), atol=1e-12)


def test_resample_spacing_and_ends():
    rng = np.random.default_rng(3)
    pts = np.cumsum(rng.normal(0, 4, (40, 2)), axis=0)
    out = resample(pts, 1.0)
    seg = np.hypot(*np.diff(out, axis=0).T)
    arc = np.hypot(*np.diff(pts, axis=0).T).sum()
    assert len(out) == int(np.ceil(arc)) + 1
    assert np.all(seg <= 1.0 + 1e-5)  # chords of 1-px arcs (arc lengths are kept on a 2**-20 px grid)
    np.testing.assert_array_equal(out[[0, -1]], pts[[0, -1]])
    assert resample(np.zeros((0, 2))).shape == (0, 2)


# ------------------------------------------------------------------------------ rdp
@pytest.mark.parametrize(
    "points, epsilon, expected",
    [
        ([(0, 0), (1, 0.1), (2, -0.1), (3, 0.05), (4, 0)], 2.0, [(0, 0), (4, 0)]),  # near-straight collapses
        ([(0, 0), (5, 0), (10, 0), (10, 5), (10, 10)], 2.0, [(0, 0), (10, 0), (10, 10)]),  # the corner stays
        ([(0, 0), (10, 0), (5, 0)], 2.0, [(0, 0), (10, 0), (5, 0)]),  # turning point: segment distance 5
        ([(0, 0), (5, 2), (10, 0)], 2.0, [(0, 0), (10, 0)]),  # exactly epsilon is not "farther than"
        ([(0, 0), (5, 2.01), (10, 0)], 2.0, [(0, 0), (5, 2.01), (10, 0)]),
        ([(0, 0), (2, 3), (4, 3), (6, 0)], 2.0, [(0, 0), (2, 3), (6, 0)]),  # tie: the first farthest point
        ([(0, 0), (3, 4), (0, 0)], 2.0, [(0, 0), (3, 4), (0, 0)]),  # zero chord: distance to the end
        ([(1, 1), (2, 2)], 2.0, [(1, 1), (2, 2)]),
        ([(1, 1)], 2.0, [(1, 1)]),
    ],
)
def test_rdp_hand_worked(points, epsilon, expected):
    np.testing.assert_array_equal(rdp(np.array(points, float), epsilon), np.array(expected, float))


def _rdp_recursive(p: list[list[float]], eps: float, max_depth: int = 10**9) -> list[bool]:
    """The textbook recursion in plain Python floats (same arithmetic as the library), ``max_depth`` levels deep
    at most (the whole span is level 0)."""
    keep = [False] * len(p)
    keep[0] = keep[-1] = True

    def rec(a: int, b: int, level: int = 0) -> None:
        if b - a < 2 or level >= max_depth:
            return
        (ax, ay), (bx, by) = p[a], p[b]
        dx, dy = bx - ax, by - ay
        n2 = dx * dx + dy * dy
        n2 = n2 if n2 != 0.0 else 1.0
        best, arg = -1.0, -1
        for i in range(a + 1, b):
            ex, ey = p[i][0] - ax, p[i][1] - ay
            t = min(max((ex * dx + ey * dy) / n2, 0.0), 1.0)
            ex, ey = ex - t * dx, ey - t * dy
            if ex * ex + ey * ey > best:
                best, arg = ex * ex + ey * ey, i
        if best > eps * eps:
            keep[arg] = True
            rec(a, arg, level + 1)
            rec(arg, b, level + 1)

    rec(0, len(p) - 1)
    return keep


@pytest.mark.parametrize("seed", range(6))
def test_rdp_equals_the_recursion(seed):
    rng = np.random.default_rng(seed)
    pts = resample(np.cumsum(rng.normal(0, 6, (60, 2)), axis=0))
    expected = np.asarray(_rdp_recursive(pts.tolist(), 2.0))
    np.testing.assert_array_equal(rdp(pts, 2.0), pts[expected])


def _rdp_implementation(name: str):
    if name == "compiled":
        from sketchgraph._rdp import rdp_keep
        from sketchgraph.preprocess import RDP_MAX_DEPTH

        return lambda xy, lengths, eps, max_depth=RDP_MAX_DEPTH: rdp_keep(xy, lengths, eps, max_depth)
    from sketchgraph.preprocess import _rdp_vectorised

    return _rdp_vectorised


@pytest.mark.parametrize("impl", ["compiled", "numpy"])
@pytest.mark.parametrize("seed", range(4))
def test_rdp_flat_equals_the_recursion_per_stroke(seed, impl):
    """Many strokes in one call, in both implementations, on integer points full of exact ties and zero
    chords, with strokes of 0, 1 and 2 points: each stroke keeps what the recursion keeps."""
    _rdp_flat = _rdp_implementation(impl)
    rng = np.random.default_rng(seed)
    lengths = np.concatenate([[0, 1, 2], rng.integers(3, 120, 12)])
    rng.shuffle(lengths)
    pts = np.round(np.cumsum(rng.normal(0, 3, (lengths.sum(), 2)), axis=0)) % 9  # a 9 x 9 grid: many ties
    for eps in (0.0, 1.0, 2.0):
        keep = _rdp_flat(pts, lengths, eps)
        expected = [k for part in np.split(pts, np.cumsum(lengths)[:-1]) if len(part)
                    for k in (_rdp_recursive(part.tolist(), eps) if len(part) > 2 else [True] * len(part))]
        np.testing.assert_array_equal(keep, expected)


@pytest.mark.parametrize("impl", ["compiled", "numpy"])
@pytest.mark.parametrize("seed", range(3))
def test_rdp_implementations_agree_on_resampled_drawings(seed, impl):
    """Float points as the simplification produces them (1-px resampling of random walks), many strokes."""
    from sketchgraph.preprocess import _resample_flat

    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 80, 30)
    walk = np.cumsum(rng.normal(0, 4, (lengths.sum(), 2)), axis=0)
    res, res_lengths = _resample_flat(walk, lengths, 1.0)
    expected = [k for part in np.split(res, np.cumsum(res_lengths)[:-1])
                for k in (_rdp_recursive(part.tolist(), 2.0) if len(part) > 2 else [True] * len(part))]
    np.testing.assert_array_equal(_rdp_implementation(impl)(res, res_lengths, 2.0), expected)


def _zigzag(n: int) -> np.ndarray:
    """``(n, 2)``: one stroke across the full 255 width and back, n times: RDP keeps every vertex, each split peeling
    one off (the quadratic worst case)."""
    return np.array([[(i % 2) * 255.0, i * 255.0 / n] for i in range(n)])


@pytest.mark.parametrize("impl", ["compiled", "numpy"])
@pytest.mark.parametrize("max_depth", [0, 1, 3, 7, 64])
def test_rdp_depth_limit_is_the_recursion_stopped_at_that_level(impl, max_depth):
    """Both implementations stop at the same level as the recursion does (their visiting orders differ, their
    results do not), on a zig-zag that needs hundreds of levels and on random walks that need a few."""
    from sketchgraph.preprocess import _resample_flat

    rng = np.random.default_rng(max_depth)
    walks = np.cumsum(rng.normal(0, 4, (200, 2)), axis=0)
    res, lengths = _resample_flat(np.concatenate([_zigzag(300), walks]), np.array([300, 120, 80]), 1.0)
    expected = [k for part in np.split(res, np.cumsum(lengths)[:-1])
                for k in _rdp_recursive(part.tolist(), 2.0, max_depth)]
    np.testing.assert_array_equal(_rdp_implementation(impl)(res, lengths, 2.0, max_depth), expected)


def test_rdp_depth_limit_bounds_the_worst_case_and_spares_real_strokes():
    """The zig-zag keeps every vertex without the limit and RDP_MAX_DEPTH + 2 points with it (one per level, plus
    the ends); a scribbled stroke far below the limit is the same either way."""
    from sketchgraph.preprocess import RDP_MAX_DEPTH, _rdp_flat, _resample_flat

    res, lengths = _resample_flat(_zigzag(400), np.array([400]), 1.0)
    unlimited = _rdp_flat(res, lengths, 2.0, max_depth=10**9)
    limited = _rdp_flat(res, lengths, 2.0)
    assert unlimited.sum() >= 390 and limited.sum() == RDP_MAX_DEPTH + 2  # about one sample per vertex
    assert simplify(Sketch([_zigzag(400)])).num_points == RDP_MAX_DEPTH + 2
    rng = np.random.default_rng(0)
    res, lengths = _resample_flat(np.cumsum(rng.normal(0, 6, (500, 2)), axis=0), np.array([500]), 1.0)
    np.testing.assert_array_equal(_rdp_flat(res, lengths, 2.0), _rdp_flat(res, lengths, 2.0, max_depth=10**9))


def test_rdp_dispatch_loads_the_kernel_when_it_pays(monkeypatch):
    """Small inputs take numpy until enough points were simplified or an input is large; the results are
    the same bits either way."""
    import sketchgraph.preprocess as P

    monkeypatch.setattr(P, "_rdp_state", {"points": 0, "kernel": None})
    monkeypatch.setattr(P, "COMPILED_MIN_POINTS", 5_000)
    monkeypatch.setattr(P, "COMPILED_AFTER_POINTS", 20_000)
    rng = np.random.default_rng(0)
    small = [Sketch.from_strokes([np.cumsum(rng.normal(0, 30, (40, 2)), axis=0)]) for _ in range(40)]
    first = [simplify(sk) for sk in small[:3]]
    assert P._rdp_state["kernel"] is None and 0 < P._rdp_state["points"] < 20_000
    again = [simplify(sk) for sk in small]  # crosses COMPILED_AFTER_POINTS on the way
    assert P._rdp_state["kernel"] is not None
    for a, b in zip(first, again):
        assert all(np.array_equal(x, y) for x, y in zip(a.strokes, b.strokes))
    monkeypatch.setattr(P, "_rdp_state", {"points": 0, "kernel": None})
    simplify(small[0])  # a few hundred samples: numpy
    assert P._rdp_state["kernel"] is None
    monkeypatch.setattr(P, "COMPILED_MIN_POINTS", 100)
    simplify(small[0])  # now a large input: the kernel
    assert P._rdp_state["kernel"] is not None and P.load_compiled_rdp()


def test_rdp_falls_back_to_numpy_when_the_kernel_cannot_load(monkeypatch):
    """numba missing or unable to cache (a read-only install): a warning says why, numpy gives the same bits."""
    import sys

    import sketchgraph.preprocess as P

    rng = np.random.default_rng(1)
    sk = Sketch.from_strokes([np.cumsum(rng.normal(0, 30, (60, 2)), axis=0) for _ in range(3)])
    want = simplify(sk)
    monkeypatch.setattr(P, "_rdp_state", {"points": 0, "kernel": None})
    monkeypatch.setattr(P, "COMPILED_MIN_POINTS", 1)
    monkeypatch.setitem(sys.modules, "sketchgraph._rdp", None)  # import fails
    with pytest.warns(RuntimeWarning, match="compiled RDP kernel unavailable"):
        got = simplify(sk)
    assert P._rdp_state["kernel"] is False and not P.load_compiled_rdp()
    assert all(np.array_equal(a, b) for a, b in zip(got.strokes, want.strokes))


# ------------------------------------------------------------------------------ simplify, hand-worked
def test_straight_line_collapses_to_its_end_points():
    k = np.arange(21)
    sk = raw(np.column_stack([312.4 + 10.25 * k, 140.0 + 2.5 * k]))  # extent 205 x 50 px
    out = simplify(sk)
    assert as_lists(out) == [[[0, 0], [255, 62]]]  # 50 * 255 / 205 = 62.2
    assert (out.label, out.key_id, out.has_time, out.parts) == ("hand", "k1", False, None)


def test_right_angle_keeps_its_corner():
    # 210 px right, then 100 px down, unevenly sampled; scale 255 / 210
    sk = raw([(100.5, 50.25), (130.0, 50.25), (131.0, 50.25), (250.7, 50.25), (310.5, 50.25),
              (310.5, 80.0), (310.5, 150.25)])
    assert as_lists(simplify(sk)) == [[[0, 0], [255, 0], [255, 121]]]


@pytest.mark.parametrize(
    "corner, expected",
    [
        (100.6, [[0, 0], [101, 0], [101, 255]]),  # nearest sample after the corner: (100.6, 0.4)
        (100.4, [[0, 0], [100, 1], [100, 255]]),  # (100.4, 0.6) beats (100, 0): the corner is cut by the 1-px grid
    ],
)
def test_corner_between_samples(corner, expected):
    """Already in the 255 frame (scale 1): samples sit at whole arc lengths, so a corner at arc
    length 100.4 is represented by the farther of its neighbouring samples, rounded last."""
    sk = raw([(0.0, 0.0), (corner, 0.0), (corner, 255.0)])
    assert as_lists(simplify(sk)) == [expected]


def test_doubling_back_keeps_the_turning_point():
    assert as_lists(simplify(raw([(0, 0), (255, 0), (100, 0)]))) == [[[0, 0], [255, 0], [100, 0]]]


def test_taps_and_zero_length_strokes():
    sk = raw([(10, 10), (265, 10)], [(137.3, 60.2)], [(50.2, 40.1), (50.2, 40.1), (50.2, 40.1)])
    assert as_lists(simplify(sk)) == [[[0, 0], [255, 0]], [[127, 50]], [[40, 30], [40, 30]]]


@pytest.mark.parametrize(
    "strokes, expected",
    [
        ([[(5, 5)]], [[[0, 0]]]),
        ([[(5, 5), (5, 5)]], [[[0, 0], [0, 0]]]),
        ([[(5, 5)], [(5, 5)]], [[[0, 0]], [[0, 0]]]),
    ],
)
def test_degenerate_extent(strokes, expected):
    assert as_lists(simplify(raw(*strokes))) == expected


def test_repeated_raw_points_change_nothing():
    pts = [(0, 0), (40, 3), (80, 30), (120, 90), (160, 100)]
    doubled = [p for q in pts for p in (q, q)]
    assert as_lists(simplify(raw(doubled))) == as_lists(simplify(raw(pts)))


@pytest.mark.parametrize(
    "scale, offset", [(3.5, (1000.0, -400.0)), (0.125, (0.0, 0.0)), (1.0, (-3e5, 7e5)), (40.0, (12.3, 4.5))]
)
def test_scale_and_offset_invariance_hand(scale, offset):
    base = [[(100.5, 50.25), (130.0, 50.25), (250.7, 50.25), (310.5, 50.25), (310.5, 150.25)],
            [(0, 0), (255, 0), (100, 0)], [(137.3, 60.2)]]
    moved = [[(x * scale + offset[0], y * scale + offset[1]) for x, y in s] for s in base]
    assert as_lists(simplify(raw(*moved))) == as_lists(simplify(raw(*base)))


def test_scale_and_offset_invariance_synthetic(synthetic_sketches):
    """Float arithmetic may flip a near-tie, so: identical for nearly all, close for all."""
    same, dists = 0, []
    for sk in synthetic_sketches:
        moved = sk.replace(strokes=[np.column_stack([s[:, :2] * 2.7 + [531.0, -77.0], s[:, 2]]) for s in sk.strokes])
        a, b = simplify(sk), simplify(moved)
        same += a == b
        dists.append(point_set_distance(a, b))
    assert same >= 0.9 * len(synthetic_sketches)
    assert max(dists) < 1.0


@pytest.mark.parametrize(
    "strokes",
    [
        [[(0, 0), (255, 62)]],
        [[(0, 0), (255, 0), (255, 121)]],
        [[(0, 0), (255, 0), (100, 0)], [(127, 50)], [(40, 30), (40, 30)]],
    ],
)
def test_idempotent_on_its_hand_worked_outputs(strokes):
    once = simplify(raw(*strokes))
    assert as_lists(once) == [[list(p) for p in s] for s in strokes]
    assert simplify(once) == once


def test_idempotent_within_rounding(synthetic_sketches):
    """Resimplifying moves corners by about a pixel, and drops points whose deviation rounding
    pushed under epsilon (which can cost a sparse point set several px): the point sets are close
    for most drawings, the shapes for all."""
    twice = [(simplify(simplify(sk)), simplify(sk)) for sk in synthetic_sketches]
    assert np.median([point_set_distance(a, b) for a, b in twice]) < 0.5
    assert max(polyline_distance(a, b) for a, b in twice) < 1.0


def test_output_invariants(synthetic_sketches):
    for sk in synthetic_sketches:
        out = simplify(sk)
        pts = out.points()
        assert out.num_strokes == sk.num_strokes
        assert all(s.shape[1] == 2 and s.dtype == np.float32 and len(s) >= 2 for s in out.strokes)
        np.testing.assert_array_equal(pts, np.round(pts))
        assert pts.min() >= 0 and pts.max() <= 255 and pts.max() >= 254
        # every stroke starts and ends at its RAW end points (framed, rounded)
        xy = sk.points().astype(np.float64)
        lo, ext = xy.min(0), (xy - xy.min(0)).max()
        for s_raw, s_out in zip(sk.strokes, out.strokes):
            ends = np.round((s_raw[[0, -1], :2].astype(np.float64) - lo) * (255 / ext))
            np.testing.assert_array_equal(s_out[[0, -1]], ends)


def test_batched_equals_per_sketch(synthetic_sketches):
    sketches = list(synthetic_sketches)
    pts = np.concatenate([sk.points() for sk in sketches])
    lengths = np.concatenate([sk.stroke_lengths() for sk in sketches])
    coords, out_lengths = simplify_arrays(pts, lengths, [sk.num_strokes for sk in sketches])
    one_by_one = [simplify(sk) for sk in sketches]
    np.testing.assert_array_equal(coords, np.concatenate([sk.points() for sk in one_by_one]))
    np.testing.assert_array_equal(out_lengths, np.concatenate([sk.stroke_lengths() for sk in one_by_one]))


def test_simplify_arrays_keeps_empty_strokes_and_checks_input():
    coords, lengths = simplify_arrays(np.array([[0, 0], [10, 0], [5, 5]], float), [2, 0, 1])
    np.testing.assert_array_equal(lengths, [2, 0, 1])
    assert coords.tolist() == [[0, 0], [255, 0], [128, 128]]  # 127.5 rounds half to even
    with pytest.raises(SketchError):
        simplify_arrays(np.zeros((3, 2)), [2, 2])
    with pytest.raises(SketchError):
        simplify_arrays(np.array([[0, 0], [np.nan, 1]]), [2])
    with pytest.raises(SketchError):
        simplify_arrays(np.zeros((2, 2)), [1, 1], [2, 0])


def test_degenerate_ink_is_rejected_quickly():
    """20,000 points jumping between opposite corners: 7.2M px of strokes, past ``MAX_INK``."""
    sk = Sketch.from_strokes([np.tile([[0.0, 0.0], [255.0, 255.0]], (10_000, 1))])
    with pytest.raises(SketchError, match="too long"):
        simplify(sk)


def test_every_unusable_sketch_of_a_batch_is_named():
    """simplify_arrays names each refused sketch (its index in the batch) and why; unusable_sketches finds
    the same without simplifying; a batch of one keeps the plain message."""
    from sketchgraph.errors import UnusableSketchesError
    from sketchgraph.preprocess import unusable_sketches

    ok = [[0.0, 0.0], [10.0, 5.0], [20.0, 0.0]]
    ink = np.tile([[0.0, 0.0], [255.0, 255.0]], (4000, 1))  # ~2.9M px
    nan = [[0.0, 0.0], [np.nan, 1.0]]
    parts = [ok, ink, ok, nan, ink]
    points = np.concatenate([np.asarray(p, float) for p in parts])
    lengths = np.array([len(p) for p in parts])
    with pytest.raises(UnusableSketchesError) as caught:
        simplify_arrays(points, lengths, np.ones(5, int))
    problems = caught.value.problems
    assert sorted(problems) == [1, 3, 4] and "NaN" in problems[3] and "too long" in problems[1]
    message = str(caught.value)
    assert message.startswith("sketch 1: drawing too long to simplify") and message.endswith("(and 2 more)")
    assert unusable_sketches(points, lengths, np.ones(5, int)) == problems
    assert unusable_sketches(np.asarray(ok), [3], [1]) == {}
    with pytest.raises(UnusableSketchesError, match="^coordinates contain NaN or infinity$"):
        simplify_arrays(np.asarray(nan), [2])


def test_simplify_rejects_empty():
    with pytest.raises(SketchError, match="no points"):
        simplify(Sketch.from_strokes([]))


# ------------------------------------------------------------------------------ normalize, cap, preprocess
def test_normalize_keeps_times_and_parts():
    sk = Sketch.from_strokes([[[10, 30], [20, 20], [0, 5]], [[20], [40], [9]]], parts=[np.array([1, 2]), np.array([3])])
    out = normalize(sk)
    np.testing.assert_allclose(out.points(), [[0, 0], [255, 0], [127.5, 255]])
    np.testing.assert_array_equal(out.times(), [0, 5, 9])
    assert [p.tolist() for p in out.parts] == [[1, 2], [3]]


@pytest.mark.parametrize(
    "lengths, cap, kept, dropped",
    [
        ([3, 4, 5], 5, [3, 2], 7),
        ([3, 4, 5], 3, [3], 9),
        ([3, 4, 5], 4, [3, 1], 8),  # a one-point remainder ends its stroke
        ([3, 4, 5], 12, [3, 4, 5], None),  # within the cap: unchanged, no meta key
        ([1, 1, 1], 1, [1], 2),
    ],
)
def test_cap_points(lengths, cap, kept, dropped):
    strokes = [np.column_stack([np.arange(n), np.full(n, i)]).astype(np.float32) for i, n in enumerate(lengths)]
    parts = [np.full(n, i) for i, n in enumerate(lengths)]
    sk = Sketch(strokes, parts=parts)
    out = cap_points(sk, cap)
    assert out.stroke_lengths().tolist() == kept
    assert out.meta.get("dropped_points") == dropped
    assert [len(p) for p in out.parts] == kept
    np.testing.assert_array_equal(out.points(), sk.points()[: sum(kept)])
    if dropped is None:
        assert out is sk


def test_cap_points_accumulates_and_validates():
    sk = Sketch([np.zeros((10, 2), np.float32)])
    assert cap_points(cap_points(sk, 8), 5).meta["dropped_points"] == 5
    with pytest.raises(SketchError):
        cap_points(sk, 0)


def test_preprocess_config(synthetic_sketches):
    sk = synthetic_sketches[0]
    capped = preprocess(sk, Preprocessing(max_points=5))
    assert capped.num_points == 5 and capped.meta["dropped_points"] == simplify(sk).num_points - 5
    plain = preprocess(sk, Preprocessing(simplify=False, max_points=10_000))
    assert plain.num_points == sk.num_points and plain.has_time
    assert plain.points().min() == 0 and plain.points().max() == pytest.approx(255, abs=1e-4)
    assert Preprocessing.from_dict(Preprocessing(epsilon=1.5).to_dict()) == Preprocessing(epsilon=1.5)


# ------------------------------------------------------------------------------ fidelity distances
@pytest.mark.parametrize(
    "a, b, psd",
    [
        ([(0, 0)], [(3, 4)], 5.0),
        ([(0, 0), (1, 0)], [(0, 0)], 0.25),  # (mean(0, 1) + mean(0)) / 2
        ([(0, 0), (10, 0)], [(10, 0), (0, 0)], 0.0),
    ],
)
def test_point_set_distance(a, b, psd):
    assert point_set_distance(np.array(a, float), np.array(b, float)) == pytest.approx(psd)


def test_polyline_distance_ignores_sampling():
    a = Sketch.from_strokes([np.array([[0, 0], [10, 0]], float)])
    b = Sketch.from_strokes([np.array([[0, 0], [3, 0], [7, 0], [10, 0]], float)])
    assert polyline_distance(a, b) == 0.0
    assert point_set_distance(a, b) > 0.0
    c = Sketch.from_strokes([np.array([[0, 1], [10, 1]], float)])
    assert polyline_distance(a, c) == pytest.approx(1.0)


# ------------------------------------------------------------------------------ real data
def _load(path, limit_step=1):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for i, line in enumerate(f) if line.strip() and i % limit_step == 0]


@pytest.mark.realdata
def test_spg_raw_vs_splits(shared_data_path):
    """SPG's split files are *not* Google-simplified: SPG resampled every drawing to 256 points
    and centred it in a 254 frame. So compare shapes: ``simplify(raw)`` against the split's
    polylines (mapped to the 255 frame), and against ``simplify`` of the split."""
    raw_dir, split_dir = shared_data_path("spg20", "raw"), shared_data_path("spg20", "splits")
    raws = {rec["key_id"]: rec["drawing"] for path in sorted(raw_dir.glob("*_raw.ndjson")) for rec in _load(path, 20)}
    poly, psd = [], []
    for path in sorted(split_dir.glob("*.ndjson")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                key = re.search(r'"key_id":\s*"(\d+)"', line)
                if key is None or key.group(1) not in raws:
                    continue
                ours = simplify(Sketch.from_strokes([s[:2] for s in raws[key.group(1)]]))
                theirs = normalize(Sketch.from_strokes([s[:2] for s in json.loads(line)["drawing"]]))
                poly.append(polyline_distance(ours, theirs))
                psd.append(point_set_distance(ours, simplify(theirs)))
    assert len(poly) == len(raws) == 800
    # measured on all 16,000 (benchmarks/bench_simplify.py): polyline median 0.54 p95 0.71; psd median 1.33 p95 2.70
    assert np.median(poly) < 0.75 and np.percentile(poly, 95) < 1.0
    assert np.median(psd) < 1.75 and np.percentile(psd, 95) < 3.5


@pytest.mark.realdata
def test_google_simplified_is_nearly_a_fixed_point(shared_data_path):
    """Google's own simplified drawings, simplified again: within rounding of themselves."""
    root = shared_data_path("quickdraw_simplified")
    dists, n_in, n_out = [], 0, 0
    for path in sorted(root.glob("*.ndjson"))[::3]:
        for rec in _load(path, limit_step=2):
            g = Sketch.from_strokes(rec["drawing"])
            s = simplify(g)
            assert s.num_strokes == g.num_strokes
            dists.append(point_set_distance(s, g))
            n_in, n_out = n_in + g.num_points, n_out + s.num_points
    # measured on all 8,100: median 0.42, p95 1.67; 4.4% fewer points (deviations rounded under 2 px)
    assert np.median(dists) < 0.6 and np.percentile(dists, 95) < 2.2
    assert 0.9 * n_in < n_out <= n_in


@pytest.mark.realdata
def test_google_data_supports_the_design(shared_data_path):
    """Facts in Google's simplified files behind two choices of ``simplify``: (1) RDP measures the
    distance to the chord *segment*: some 3-point strokes double back along a line, which a
    line-distance RDP would have flattened; (2) a stroke keeps both end points even when they round
    to the same pixel: taps appear as ``[p, p]`` (our one-point RAW strokes stay one point, the same
    point set)."""
    reversals, taps, lengths = 0, 0, []
    for path in sorted(shared_data_path("quickdraw_simplified").glob("*.ndjson"))[::4]:
        for rec in _load(path):
            for xs, ys in rec["drawing"]:
                lengths.append(len(xs))
                p = np.column_stack([xs, ys]).astype(float)
                taps += len(p) == 2 and (p[0] == p[1]).all()
                if len(p) == 3:
                    d, e = p[2] - p[0], p[1] - p[0]
                    reversals += abs(d[0] * e[1] - d[1] * e[0]) < 1e-9 and np.hypot(*d) > 0
    assert min(lengths) == 2 and taps > 0 and reversals > 0


# ------------------------------------------------------------------------------ cap policy "adapt"
def _shaky_circle(n_strokes: int = 3, points: int = 400, seed: int = 0) -> Sketch:
    """Circles drawn with a shaky hand: far more than 100 points survive simplification."""
    rng = np.random.default_rng(seed)
    strokes = []
    for k in range(n_strokes):
        t = np.linspace(0, 2 * np.pi, points)
        r = 100 + 30 * k + rng.normal(0, 4, points)
        strokes.append(np.column_stack([300 + r * np.cos(t), 300 + r * np.sin(t)]))
    return Sketch.from_strokes(strokes)


def test_adapt_keeps_every_stroke_under_the_cap():
    sk = _shaky_circle()
    truncated = preprocess(sk, Preprocessing(max_points=100))
    adapted = preprocess(sk, Preprocessing(max_points=100, cap="adapt"))
    assert truncated.num_points == 100 and truncated.meta["dropped_points"] > 0
    assert truncated.num_strokes < sk.num_strokes  # truncation lost whole strokes
    assert adapted.num_points <= 100 and "dropped_points" not in adapted.meta
    assert adapted.num_strokes == sk.num_strokes


def test_adapt_without_simplification_is_refused_where_it_is_chosen(tiny_checkpoint, tmp_path):
    """``adapt`` re-simplifies, so without ``simplify`` it would truncate while saying ``adapt``: ``check_cap``
    refuses it, and so do ``prepare`` (before anything is written) and ``from_pretrained(cap="adapt")`` on a
    checkpoint that does not simplify. A stored record of it still loads (it prepares as ``truncate``)."""
    from sketchgraph.checkpoint import load_checkpoint
    from sketchgraph.data import prepare
    from sketchgraph.predict import SketchClassifier

    stored = Preprocessing(simplify=False, cap="adapt")
    assert stored.adapt_epsilons() == []
    with pytest.raises(ValueError, match=r"^cap 'adapt' simplifies a long drawing again .* only 'truncate' applies$"):
        stored.check_cap()
    for ok in (Preprocessing(), Preprocessing(cap="adapt"), Preprocessing(simplify=False)):
        ok.check_cap()
    (tmp_path / "cat.ndjson").write_text('{"drawing": [[[0, 10, 20], [0, 10, 0]]]}\n')
    with pytest.raises(ValueError, match="needs simplification"):
        prepare([tmp_path / "cat.ndjson"], tmp_path / "out", preprocessing=stored, progress=False)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
    model, config = load_checkpoint(tiny_checkpoint)
    unsimplified = {**config, "preprocessing": {**config.get("preprocessing", {}), "simplify": False}}
    with pytest.raises(ValueError, match="needs simplification"):
        SketchClassifier.from_model(model, unsimplified, cap="adapt")
    assert SketchClassifier.from_model(model, unsimplified, cap="truncate").preprocessing.cap == "truncate"
    assert SketchClassifier.from_model(model, config, cap="adapt").preprocessing.cap == "adapt"


def test_adapt_changes_nothing_for_short_drawings():
    sk = Sketch.from_strokes([[[0, 50, 100], [0, 80, 0]], [[10, 90], [40, 40]]])
    a = preprocess(sk, Preprocessing(cap="adapt"))
    t = preprocess(sk, Preprocessing())
    assert a.to_lists() == t.to_lists()


@pytest.mark.parametrize("threads", [1, 2, 5])
def test_adapt_batched_equals_reference(monkeypatch, threads):
    import sketchgraph.data.flat as flat_module
    from sketchgraph.data.flat import preprocess_flat, preprocess_reference

    monkeypatch.setattr(flat_module, "MIN_THREAD_SKETCHES", 1)  # one thread per sketch at most
    sketches = [_shaky_circle(seed=s, n_strokes=1 + s % 3) for s in range(4)]
    sketches.insert(2, Sketch.from_strokes([[[0, 5, 9], [0, 7, 2]]]))
    cfg = Preprocessing(max_points=60, cap="adapt")
    got, want = preprocess_flat(sketches, cfg, threads=threads), preprocess_reference(sketches, cfg)
    np.testing.assert_array_equal(got.coords, want.coords)
    np.testing.assert_array_equal(got.flags, want.flags)
    np.testing.assert_array_equal(got.lengths, want.lengths)


def test_unknown_cap_policy():
    with pytest.raises(ValueError, match="cap"):
        Preprocessing(cap="drop")


def test_preprocessing_accepts_epsilon_zero_and_integral_float_caps():
    """epsilon 0 (no RDP, every resampled point kept up to the cap) and max_points 100.0 (a JSON number) are valid,
    as they were before the settings were checked; negative, NaN and fractional values are not."""
    from sketchgraph.preprocess import Preprocessing

    assert Preprocessing(epsilon=0, max_points=100.0).max_points == 100
    assert isinstance(Preprocessing(max_points=100.0).max_points, int)
    for bad in (dict(epsilon=-1), dict(epsilon=float("nan")), dict(max_points=2.5), dict(max_points=0)):
        with pytest.raises(ValueError):
            Preprocessing(**bad)


@pytest.mark.parametrize("strokes, want", [
    ([[(0, 0), (100, 0), (100, 100), (0, 100), (0, 0)]], 4 * 255.0),  # a square fills the frame: 4 sides of 255
    ([[(0, 0), (10, 0)], [(500, 0), (510, 0)]], 2 * 10 * 255 / 510),  # the pen-up jump is no ink
    ([[(3, 4)]], 0.0),
    ([[(3, 4)], [(3, 4)]], 0.0),
])
def test_ink_length_hand_worked(strokes, want):
    assert ink_length(Sketch.from_strokes([np.array(s, float) for s in strokes])) == pytest.approx(want)


def test_ink_length_counts_the_samples_simplification_makes(synthetic_sketches):
    """It is the work measure: the 1-px resampling of the framed drawing makes about one sample per px of ink
    (plus the end of each stroke), and the simplification refuses a drawing over MAX_INK of it."""
    from sketchgraph.preprocess import _frame, _resample_flat

    for sk in synthetic_sketches[:20]:
        xy = sk.points().astype(np.float64)
        lengths = np.array([len(s) for s in sk.strokes])
        _, samples = _resample_flat(_frame(xy, np.array([len(xy)]), 255.0), lengths, 1.0)
        assert abs(samples.sum() - ink_length(sk)) <= 2 * sk.num_strokes
    degenerate = Sketch.from_strokes([np.tile([[0.0, 0.0], [1.0, 1.0]], (5000, 1))])
    assert ink_length(degenerate) > MAX_INK
    with pytest.raises(SketchError, match="too long to simplify"):
        preprocess(degenerate)
    assert ink_length(Sketch([np.array([[0, 0], [np.inf, 1]], np.float32)])) == float("inf")


@pytest.mark.realdata
@pytest.mark.parametrize("source", ["spg20 raw", "quickdraw_simplified"])
def test_real_drawings_never_reach_the_rdp_depth_limit(shared_data_path, source):
    """Every real drawing simplifies exactly as with an unlimited recursion (they need at most 29 of the 64
    levels: `bench_simplify.py --depth`), so the limit changes nothing for them."""
    from sketchgraph.data.flat import flatten
    from sketchgraph.formats import read_sketches
    from sketchgraph.preprocess import RDP_MAX_DEPTH, _check_layout, _rdp_flat, _resample_flat, _unusable

    if source == "spg20 raw":
        paths, kw = sorted(shared_data_path("spg20", "raw").glob("*_raw.ndjson")), {"format": "spg"}
    else:
        paths, kw = sorted(shared_data_path("quickdraw_simplified").glob("*.ndjson")), {}
    sketches = [s for path in paths for s in read_sketches(path, **kw) if s.num_points]
    flat = flatten(sketches)
    xy, lengths, sketch_points = _check_layout(flat.points, flat.stroke_lengths, flat.sketch_strokes)
    problems, framed, seg = _unusable(xy, lengths[lengths > 0], sketch_points, 255.0)
    res, res_lengths = _resample_flat(framed, lengths[lengths > 0], 1.0, seg)
    assert not problems and len(sketches) >= 8_000
    limited = _rdp_flat(res, res_lengths, 2.0)
    np.testing.assert_array_equal(limited, _rdp_flat(res, res_lengths, 2.0, max_depth=10**9))
    assert not np.array_equal(limited, _rdp_flat(res, res_lengths, 2.0, max_depth=RDP_MAX_DEPTH // 4))
