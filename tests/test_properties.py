"""Property tests: random and degenerate drawings through the whole pipeline

    Sketch.from_strokes -> simplify -> cap_points -> build_graph -> Batch

end either in a clear ``SketchError`` (a ``ValueError`` of ours) or in a valid result; never in
another exception or a hang."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sketchgraph.batch import Batch
from sketchgraph.errors import SketchError
from sketchgraph.graph import FLAG_CONTINUE, FLAG_END, RELATIONS, GraphSpec, build_graph
from sketchgraph.preprocess import cap_points, rdp, resample, simplify, simplify_arrays
from sketchgraph.sketch import Sketch

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_POINTS = 100

finite = st.floats(min_value=-1e8, max_value=1e8, allow_nan=False, allow_infinity=False, width=32)
anything = st.one_of(finite, st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e8, -1e8, 0.0, 2e9]))
small = st.integers(-3, 3).map(float)  # collisions: repeated and collinear points


@st.composite
def stroke_lists(draw, values=finite, max_len=30):
    """One stroke in list form ``[xs, ys]`` or ``[xs, ys, ts]``, occasionally with repeated points."""
    n = draw(st.integers(0, max_len))
    xs = draw(st.lists(values, min_size=n, max_size=n))
    ys = draw(st.lists(values, min_size=n, max_size=n))
    if n and draw(st.booleans()):
        k = draw(st.integers(0, n - 1))
        xs, ys = xs[: k + 1] + [xs[k]] * 3 + xs[k + 1 :], ys[: k + 1] + [ys[k]] * 3 + ys[k + 1 :]
    if draw(st.booleans()):
        return [xs, ys, list(np.arange(len(xs), dtype=float) * 16)]
    return [xs, ys]


drawings = st.one_of(
    st.lists(stroke_lists(), max_size=8),
    st.lists(stroke_lists(values=small, max_len=6), max_size=6),
    st.lists(stroke_lists(values=anything, max_len=5), max_size=4),
    st.lists(stroke_lists(max_len=1), min_size=1, max_size=60),  # many one-point strokes
)


def check_graph_and_batch(sketches: list[Sketch]) -> None:
    graphs = [build_graph(sk, GraphSpec(RELATIONS), max_points=MAX_POINTS) for sk in sketches]
    batch = Batch.from_graphs(graphs)
    B, N = batch.flags.shape
    assert N == max(g.num_nodes for g in graphs) <= MAX_POINTS
    eye = torch.eye(N, dtype=torch.bool)
    for m in batch.masks.values():
        assert m.shape == (B, N, N)
        assert torch.equal(m, m.transpose(1, 2))
        assert torch.diagonal(m, dim1=1, dim2=2).all()  # valid self-loops, padding self-loops
        pair = batch.valid[:, :, None] & batch.valid[:, None, :]
        assert not (m & ~eye & ~pair).any()
    g, node_index = batch.dgl()
    assert g.num_nodes("point") == len(node_index) == sum(gr.num_nodes for gr in graphs)
    for gr in graphs:
        assert set(np.unique(gr.flags)) <= {FLAG_CONTINUE, FLAG_END} and gr.flags[-1] == FLAG_END


def run_pipeline(strokes) -> None:
    try:
        sk = Sketch.from_strokes(strokes)
        out = cap_points(simplify(sk), MAX_POINTS)
    except SketchError:
        return  # clear rejection: empty, non-finite, too large, malformed
    pts = out.points()
    assert out.num_points <= MAX_POINTS and out.num_points >= 1
    assert np.isfinite(pts).all() and (pts == np.round(pts)).all()
    assert pts.min() >= 0 and pts.max() <= 255
    assert out.num_strokes <= sk.num_strokes
    check_graph_and_batch([out, cap_points(simplify(Sketch.from_strokes([[[0, 3], [0, 4]]])), MAX_POINTS)])


@SETTINGS
@given(drawings)
@example([])
@example([[[], []]])
@example([[[5.0], [5.0]]])  # one point
@example([[[5.0] * 50, [7.0] * 50]])  # one point, repeated
@example([[[1e8, -1e8, 1e8], [-1e8, 1e8, 0.0]]])  # huge coordinates
@example([[[0.0, 1e-30], [0.0, 0.0]]])  # a tiny extent
@example([[[0.0, float("nan")], [0.0, 1.0]]])
@example([[[0.0, float("inf")], [0.0, 1.0]]])
@example([[[0.0, 1.0], [0.0]]])  # ragged
@example([[[float(i)], [float(i % 7)]] for i in range(300)])  # 300 one-point strokes
def test_pipeline_never_crashes(strokes):
    run_pipeline(strokes)


def test_long_strokes_finish_quickly():
    rng = np.random.default_rng(0)
    cases = [
        rng.uniform(-1e8, 1e8, (10_000, 2)),  # a 10,000-point scribble across the frame: ~1.2M samples
        np.cumsum(rng.normal(0, 1, (10_000, 2)), axis=0),
        np.repeat([[3.0, 4.0]], 10_000, axis=0),
    ]
    for pts in cases:
        t = time.perf_counter()
        run_pipeline([pts.T.tolist()])
        assert time.perf_counter() - t < 15.0


@SETTINGS
@given(st.lists(stroke_lists(values=st.floats(-1e4, 1e4, width=32), max_len=25).filter(lambda s: len(s[0])),
                min_size=1, max_size=5), st.integers(1, 4))
def test_batched_simplify_is_bit_identical(strokes, copies):
    """``simplify_arrays`` over many sketches gives exactly each sketch's own ``simplify``."""
    sk = Sketch.from_strokes([s[:2] for s in strokes])
    others = [Sketch([s * (k + 1.5) + 17 * k for s in sk.strokes]) for k in range(copies)]
    sketches = [*others, sk]
    coords, lengths = simplify_arrays(
        np.concatenate([s.points() for s in sketches]), np.concatenate([s.stroke_lengths() for s in sketches]),
        [s.num_strokes for s in sketches],
    )
    alone = simplify(sk)
    np.testing.assert_array_equal(coords[-alone.num_points :], alone.points())
    np.testing.assert_array_equal(lengths[-sk.num_strokes :], alone.stroke_lengths())


@SETTINGS
@given(st.lists(st.tuples(st.floats(-300, 300), st.floats(-300, 300)), min_size=1, max_size=40),
       st.floats(0.1, 10))
def test_rdp_and_resample_keep_end_points(points, epsilon):
    pts = np.array(points)
    res = resample(pts)
    np.testing.assert_array_equal(res[0], pts[0])
    np.testing.assert_array_equal(res[-1], pts[-1])
    kept = rdp(res, epsilon)
    np.testing.assert_array_equal(kept[[0, -1]], res[[0, -1]])
    # a subsequence of the samples, in order
    j = 0
    for p in kept:
        while j < len(res) and not (res[j] == p).all():
            j += 1
        assert j < len(res)
        j += 1


@pytest.mark.parametrize("n_strokes", [1, 99, 100, 101, 250])
def test_many_one_point_strokes_hit_the_cap(n_strokes):
    sk = Sketch.from_strokes([[[float(i)], [float(i % 5)]] for i in range(n_strokes)])
    out = cap_points(simplify(sk), MAX_POINTS)
    assert out.num_strokes == min(n_strokes, MAX_POINTS) and out.num_points == min(n_strokes, MAX_POINTS)
    assert out.meta.get("dropped_points", 0) == max(n_strokes - MAX_POINTS, 0)
    g = build_graph(out)
    assert (g.flags == FLAG_END).all()
