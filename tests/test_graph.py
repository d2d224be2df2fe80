"""Graph relations against hand-worked adjacency matrices, the official MGT definitions, and the
three views of one graph (``relation_masks``, ``SketchGraph.dense_masks``, ``SketchGraph.to_dgl``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sketchgraph.errors import SketchError
from sketchgraph.graph import (
    FLAG_CONTINUE,
    FLAG_END,
    FLAG_PAD,
    RELATIONS,
    GraphSpec,
    build_graph,
    relation_masks,
    sketch_flags,
)
from sketchgraph.sketch import Sketch


def mat(text: str) -> np.ndarray:
    """A 0/1 matrix written out row by row."""
    return np.array([[c == "1" for c in row.split()] for row in text.strip().splitlines()], dtype=bool)


def sketch_of(lengths: list[int]) -> Sketch:
    """A sketch whose strokes have these point counts (coordinates are irrelevant to the relations)."""
    rng = np.random.default_rng(len(lengths))
    return Sketch([rng.uniform(0, 255, (n, 2)).astype(np.float32) for n in lengths])


# Hand-worked adjacency matrices: row i = query node, column j = key node.
CASES = {
    # two strokes of 3 and 2 points: flags 100 100 101 100 101
    "two_strokes": ([3, 2], 100, {
        "stroke1": mat("""
            1 1 0 0 0
            1 1 1 0 0
            0 1 1 0 0
            0 0 0 1 1
            0 0 0 1 1"""),
        "stroke2": mat("""
            1 1 1 0 0
            1 1 1 0 0
            1 1 1 0 0
            0 0 0 1 1
            0 0 0 1 1"""),
        "temporal": mat("""
            1 0 0 0 1
            0 1 0 0 0
            0 0 1 1 0
            0 0 1 1 0
            1 0 0 0 1"""),
    }),
    # four one-point strokes: flags 101 101 101 101 -- no stroke edges, every node jumps to the next
    "one_point_strokes": ([1, 1, 1, 1], 100, {
        "stroke1": np.eye(4, dtype=bool),
        "stroke2": np.eye(4, dtype=bool),
        "temporal": mat("""
            1 1 0 1
            1 1 1 0
            0 1 1 1
            1 0 1 1"""),
    }),
    # one stroke of 4 points: flags 100 100 100 101
    "one_stroke": ([4], 100, {
        "stroke1": mat("""
            1 1 0 0
            1 1 1 0
            0 1 1 1
            0 0 1 1"""),
        "stroke2": mat("""
            1 1 1 0
            1 1 1 1
            1 1 1 1
            0 1 1 1"""),
        "temporal": mat("""
            1 0 0 1
            0 1 0 0
            0 0 1 0
            1 0 0 1"""),
    }),
    # a single point: only its self-loop (first == last)
    "one_point": ([1], 100, {"stroke1": mat("1"), "stroke2": mat("1"), "temporal": mat("1")}),
    # three two-point strokes: flags 100 101 100 101 100 101 -- stroke2 adds nothing to stroke1
    "two_point_strokes": ([2, 2, 2], 100, {
        "stroke1": mat("""
            1 1 0 0 0 0
            1 1 0 0 0 0
            0 0 1 1 0 0
            0 0 1 1 0 0
            0 0 0 0 1 1
            0 0 0 0 1 1"""),
        "stroke2": mat("""
            1 1 0 0 0 0
            1 1 0 0 0 0
            0 0 1 1 0 0
            0 0 1 1 0 0
            0 0 0 0 1 1
            0 0 0 0 1 1"""),
        "temporal": mat("""
            1 0 0 0 0 1
            0 1 1 0 0 0
            0 1 1 0 0 0
            0 0 0 1 1 0
            0 0 0 1 1 0
            1 0 0 0 0 1"""),
    }),
    # strokes of 4 and 3 points truncated at max_points=5: the second keeps one point, which ends it
    # (flags 100 100 100 101 101) and is the sketch's last node
    "truncated_at_cap": ([4, 3], 5, {
        "stroke1": mat("""
            1 1 0 0 0
            1 1 1 0 0
            0 1 1 1 0
            0 0 1 1 0
            0 0 0 0 1"""),
        "stroke2": mat("""
            1 1 1 0 0
            1 1 1 1 0
            1 1 1 1 0
            0 1 1 1 0
            0 0 0 0 1"""),
        "temporal": mat("""
            1 0 0 0 1
            0 1 0 0 0
            0 0 1 0 0
            0 0 0 1 1
            1 0 0 1 1"""),
    }),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("relation", ["stroke1", "stroke2", "temporal", "full"])
def test_hand_worked_adjacency(case, relation):
    lengths, cap, expected = CASES[case]
    g = build_graph(sketch_of(lengths), GraphSpec(RELATIONS), max_points=cap)
    n = g.num_nodes
    want = np.ones((n, n), dtype=bool) if relation == "full" else expected[relation]
    np.testing.assert_array_equal(g.dense_masks()[relation], want)
    batched = relation_masks(torch.from_numpy(g.flags)[None], [relation])[relation]
    np.testing.assert_array_equal(batched[0].numpy(), want)


def test_truncated_graph_flags_and_nodes():
    sk = sketch_of([4, 3])
    g = build_graph(sk, max_points=5)
    assert g.flags.tolist() == [100, 100, 100, 101, 101]
    assert g.stroke.tolist() == [0, 0, 0, 0, 1] and g.position.tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(g.coords, sk.points()[:5])


@pytest.mark.parametrize(
    "lengths, flags",
    [([3, 2], [100, 100, 101, 100, 101]), ([1], [101]), ([1, 1], [101, 101]), ([2, 0, 1], [100, 101, 101]), ([], [])],
)
def test_sketch_flags(lengths, flags):
    assert sketch_flags(lengths).tolist() == flags


# ------------------------------------------------------------------------------ official definitions
def official_masks(flags: np.ndarray) -> dict[str, np.ndarray]:
    """The official MGT definitions, written as loops over one padded flag row ``(N,)``."""
    n = len(flags)
    valid = flags != FLAG_PAD
    nv = int(valid.sum())
    out = {r: np.zeros((n, n), dtype=bool) for r in RELATIONS}

    def both(rel: str, i: int, j: int) -> None:
        if j < n and valid[i] and valid[j]:
            out[rel][i, j] = out[rel][j, i] = True

    for i in range(n):
        for rel in RELATIONS:
            both(rel, i, i)
        if flags[i] == FLAG_CONTINUE:  # pen continues: i and i+1 share a stroke
            both("stroke1", i, i + 1)
            both("stroke2", i, i + 1)
            if i + 1 < n and flags[i + 1] == FLAG_CONTINUE:
                both("stroke2", i, i + 2)
        if flags[i] == FLAG_END:  # stroke ends: jump to the next stroke's first point
            both("temporal", i, i + 1)
        for j in range(n):
            both("full", i, j)
    if nv:
        both("temporal", 0, nv - 1)
    return out


def random_flags(rng: np.random.Generator, n_pad: int) -> np.ndarray:
    lengths = rng.integers(1, 5, rng.integers(1, 6))
    flags = sketch_flags(lengths)
    return np.concatenate([flags, np.full(n_pad, FLAG_PAD)])


@pytest.mark.parametrize("seed", range(5))
def test_matches_official_definitions(seed):
    rng = np.random.default_rng(seed)
    rows = [random_flags(rng, 0) for _ in range(8)]
    N = max(len(r) for r in rows) + 2
    flags = np.stack([np.pad(r, (0, N - len(r)), constant_values=FLAG_PAD) for r in rows])
    masks = relation_masks(torch.from_numpy(flags), RELATIONS)
    for b, row in enumerate(flags):
        ref = official_masks(row)
        for rel in RELATIONS:
            np.testing.assert_array_equal(masks[rel][b].numpy(), ref[rel], err_msg=f"{rel} row {b}")


def test_truncated_stroke_without_end_flag():
    """Flags whose last valid node still says 'pen continues' (another tool's truncation): no edge
    reaches the padding, and the last valid node is still joined to the first."""
    flags = torch.tensor([[100, 100, 101, 100, 100, 102, 102]])
    m = relation_masks(flags, RELATIONS)
    ref = official_masks(flags[0].numpy())
    for rel in RELATIONS:
        np.testing.assert_array_equal(m[rel][0].numpy(), ref[rel])
        assert not m[rel][0, :, 5:].any() and not m[rel][0, 5:].any()
    assert m["temporal"][0, 0, 4] and m["stroke1"][0, 3, 4]


# ------------------------------------------------------------------------------ invariants
@pytest.mark.parametrize("relation", RELATIONS)
@pytest.mark.parametrize("pad_self_loops", [False, True])
def test_invariants_with_padding(relation, pad_self_loops):
    rng = np.random.default_rng(11)
    rows = [random_flags(rng, 0) for _ in range(6)]
    N = max(len(r) for r in rows) + 3
    flags = torch.from_numpy(np.stack([np.pad(r, (0, N - len(r)), constant_values=FLAG_PAD) for r in rows]))
    m = relation_masks(flags, [relation], pad_self_loops=pad_self_loops)[relation]
    valid = flags != FLAG_PAD
    assert m.shape == (6, N, N) and m.dtype == torch.bool
    assert torch.equal(m, m.transpose(1, 2))  # symmetric
    diag = torch.diagonal(m, dim1=1, dim2=2)
    assert torch.equal(diag[valid], torch.ones(int(valid.sum()), dtype=torch.bool))  # self-loops on valid nodes
    off = m & ~torch.eye(N, dtype=torch.bool)
    assert not (off & ~(valid[:, :, None] & valid[:, None, :])).any()  # no edge touches padding
    assert torch.equal(diag[~valid], torch.full((int((~valid).sum()),), pad_self_loops))


def test_relation_masks_rejects_bad_input():
    with pytest.raises(ValueError):
        relation_masks(torch.tensor([100, 101]), ["stroke1"])
    with pytest.raises(ValueError):
        relation_masks(torch.tensor([[100, 101]]), ["nearest"])
    with pytest.raises(ValueError):
        GraphSpec(("stroke1", "stroke1"))


# ------------------------------------------------------------------------------ three views of a graph
@pytest.mark.parametrize("case", list(CASES))
def test_dense_masks_equal_relation_masks_and_dgl(case):
    lengths, cap, _ = CASES[case]
    spec = GraphSpec(RELATIONS)
    g = build_graph(sketch_of(lengths), spec, max_points=cap)
    masks = relation_masks(torch.from_numpy(g.flags)[None], spec.relations)
    dense = g.dense_masks()
    dg = g.to_dgl()
    assert dg.num_nodes("point") == g.num_nodes
    assert torch.equal(dg.ndata["flags"], torch.from_numpy(g.flags))
    for rel in spec.relations:
        np.testing.assert_array_equal(dense[rel], masks[rel][0].numpy())
        src, dst = dg.edges(etype=rel)
        got = set(zip(src.tolist(), dst.tolist()))
        rows, cols = np.nonzero(dense[rel])  # row = query = destination, column = key = source
        assert got == set(zip(cols.tolist(), rows.tolist()))
        assert dg.num_edges(rel) == int(dense[rel].sum())


def test_graph_from_a_simplified_sketch(synthetic_sketches):
    from sketchgraph.preprocess import preprocess

    sk = preprocess(synthetic_sketches[3])
    g = build_graph(sk)
    assert g.num_nodes == min(sk.num_points, 100)
    assert g.label == sk.label and g.key_id == sk.key_id
    assert g.coords.dtype == np.float32 and g.coords.shape == (g.num_nodes, 2)
    assert (g.flags == FLAG_END).sum() == sk.num_strokes
    assert g.time is None


def test_graph_keeps_times():
    sk = Sketch.from_strokes([[[0, 1, 2], [0, 0, 0], [0, 10, 20]], [[5], [5], [90]]])
    g = build_graph(sk)
    np.testing.assert_array_equal(g.time, [0, 10, 20, 90])
    assert torch.equal(g.to_dgl().ndata["time"], torch.tensor([0.0, 10.0, 20.0, 90.0]))


def test_build_graph_rejects_empty():
    with pytest.raises(SketchError):
        build_graph(Sketch([]))
