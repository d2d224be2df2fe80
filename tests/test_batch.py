"""``Batch``: padding to the batch maximum, masks equal to the per-sketch graphs, and the batched
DGL graph (edge counts, node order, unbatching)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sketchgraph.batch import Batch
from sketchgraph.errors import SketchError
from sketchgraph.graph import FLAG_PAD, RELATIONS, GraphSpec, build_graph, relation_masks
from sketchgraph.sketch import Sketch

LENGTHS = [[3, 2], [1], [4, 1, 2], [2, 2]]  # stroke lengths of four sketches: 5, 1, 7 and 4 points


def make_graphs(stroke_lengths=LENGTHS, relations=RELATIONS):
    rng = np.random.default_rng(0)
    sketches = [Sketch([rng.uniform(0, 255, (n, 2)).astype(np.float32) for n in ls]) for ls in stroke_lengths]
    return [build_graph(sk, GraphSpec(tuple(relations))) for sk in sketches]


def flat_of(graphs):
    lengths = np.array([g.num_nodes for g in graphs])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return np.concatenate([g.coords for g in graphs]), np.concatenate([g.flags for g in graphs]), starts, lengths


def test_from_flat_pads_to_the_batch_max():
    graphs = make_graphs()
    coords, flags, starts, lengths = flat_of(graphs)
    b = Batch.from_flat(coords, flags, starts, lengths, RELATIONS, labels=np.array([3, 1, 4, 1]))
    assert b.size == 4 and b.coords.shape == (4, 7, 2) and b.flags.shape == (4, 7)
    assert b.lengths.tolist() == [5, 1, 7, 4]
    assert b.labels.tolist() == [3, 1, 4, 1] and b.labels.dtype == torch.long
    assert b.position.tolist() == [list(range(7))] * 4
    for i, g in enumerate(graphs):
        n = g.num_nodes
        np.testing.assert_array_equal(b.coords[i, :n].numpy(), g.coords)
        np.testing.assert_array_equal(b.flags[i, :n].numpy(), g.flags)
        assert (b.coords[i, n:] == 0).all() and (b.flags[i, n:] == FLAG_PAD).all()
        assert b.valid[i].tolist() == [True] * n + [False] * (7 - n)


def test_from_flat_sub_batch_pads_to_its_own_max():
    coords, flags, starts, lengths = flat_of(make_graphs())
    b = Batch.from_flat(coords, flags, starts[[1, 3]], lengths[[1, 3]], ["stroke1"])
    assert b.coords.shape == (2, 4, 2)
    b = Batch.from_flat(coords, flags, starts[[1, 3]], lengths[[1, 3]], ["stroke1"], pad_to=100)
    assert b.coords.shape == (2, 100, 2) and b.masks["stroke1"].shape == (2, 100, 100)


@pytest.mark.parametrize("bad", [dict(pad_to=3), dict(starts=[], lengths=[])])
def test_from_flat_rejects(bad):
    coords, flags, starts, lengths = flat_of(make_graphs())
    kw = dict(starts=starts, lengths=lengths)
    kw.update(bad)
    with pytest.raises(SketchError):
        Batch.from_flat(coords, flags, relations=RELATIONS, **kw)


def test_from_flat_reads_memory_mapped_arrays(tmp_path):
    coords, flags, starts, lengths = flat_of(make_graphs())
    mc = np.lib.format.open_memmap(tmp_path / "c.npy", mode="w+", dtype=np.float16, shape=coords.shape)
    mc[:] = coords
    mf = np.lib.format.open_memmap(tmp_path / "f.npy", mode="w+", dtype=np.uint8, shape=flags.shape)
    mf[:] = flags
    b = Batch.from_flat(mc, mf, starts, lengths, RELATIONS)
    ref = Batch.from_flat(coords.astype(np.float16), flags, starts, lengths, RELATIONS)
    assert torch.equal(b.coords, ref.coords) and torch.equal(b.flags, ref.flags)
    assert b.coords.dtype == torch.float32 and b.flags.dtype == torch.long
    assert mc.flags.writeable and (np.asarray(mc) == coords.astype(np.float16)).all()  # the source is untouched


@pytest.mark.parametrize("relation", RELATIONS)
def test_masks_equal_each_graph(relation):
    graphs = make_graphs()
    b = Batch.from_graphs(graphs)
    m = b.masks[relation]
    assert torch.equal(m, relation_masks(b.flags, [relation], pad_self_loops=True)[relation])
    for i, g in enumerate(graphs):
        n = g.num_nodes
        np.testing.assert_array_equal(m[i, :n, :n].numpy(), g.dense_masks()[relation])
        assert not m[i, :n, n:].any() and not m[i, n:, :n].any()
        assert torch.equal(m[i, n:, n:], torch.eye(7 - n, dtype=torch.bool))  # padding: self-loops only


def test_no_row_is_fully_masked():
    b = Batch.from_graphs(make_graphs())
    scores = torch.zeros(b.size, 7, 7)
    for m in b.masks.values():
        att = torch.softmax(scores.masked_fill(~m, float("-inf")), dim=-1)
        assert not torch.isnan(att).any()


@pytest.mark.parametrize("heads", [1, 2, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_attention_bias_is_the_masks_per_head(heads, dtype):
    relations = ("stroke2", "temporal")
    b = Batch.from_graphs(make_graphs(), relations)
    bias = b.attention_bias(relations, heads, dtype)
    assert bias.shape == (4, 2 * heads, 7, 7) and bias.dtype == dtype
    for h in range(2 * heads):
        allowed = b.masks[relations[h // heads]]  # head h belongs to relation h // heads
        assert (bias[:, h][allowed] == 0).all() and (bias[:, h][~allowed] == float("-inf")).all()
    assert b.attention_bias(relations, heads, dtype) is bias  # built once per batch, shared by the layers
    assert b.attention_bias(relations[:1], heads, dtype).shape[1] == heads
    assert b.to("cpu").attention_bias(relations, heads, dtype) is not bias  # a moved batch rebuilds it


def test_from_graphs_equals_from_flat_and_moves():
    graphs = make_graphs()
    a = Batch.from_graphs(graphs, labels=[0, 1, 2, 3])
    b = Batch.from_flat(*flat_of(graphs), RELATIONS, labels=np.arange(4))
    for name in ("coords", "flags", "position", "valid", "labels"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert all(torch.equal(a.masks[r], b.masks[r]) for r in RELATIONS)
    c = a.to("cpu")
    assert torch.equal(c.coords, a.coords) and c._dgl is None
    with pytest.raises(SketchError):
        Batch.from_graphs([])


def test_transform_hook_sees_the_padded_tensors():
    graphs = make_graphs()
    seen = {}

    def double(coords, flags):
        seen["shapes"] = (tuple(coords.shape), tuple(flags.shape))
        return coords * 2, flags

    b = Batch.from_flat(*flat_of(graphs), ["stroke1"], transform=double)
    assert seen["shapes"] == ((4, 7, 2), (4, 7))
    np.testing.assert_array_equal(b.coords[2].numpy(), graphs[2].coords * 2)


# ------------------------------------------------------------------------------ DGL
@pytest.mark.parametrize("relations", [RELATIONS, ("stroke2", "temporal")])
def test_dgl_edges_nodes_and_order(relations):
    graphs = make_graphs(relations=relations)
    b = Batch.from_graphs(graphs)
    g, node_index = b.dgl()
    assert b.dgl()[0] is g  # cached
    N = b.coords.shape[1]
    valid_flat = torch.nonzero(b.valid.reshape(-1), as_tuple=True)[0]
    assert torch.equal(node_index, valid_flat)  # batch order, then point order
    assert g.num_nodes("point") == int(b.lengths.sum()) == 17
    assert g.batch_num_nodes("point").tolist() == [5, 1, 7, 4]
    pair_valid = b.valid[:, :, None] & b.valid[:, None, :]
    for rel in relations:
        m = b.masks[rel] & pair_valid
        assert g.num_edges(rel) == int(m.sum())
        src, dst = g.edges(etype=rel)
        # map graph nodes back to (sketch, position): each edge is a True mask entry (query=dst, key=src)
        s, d = node_index[src], node_index[dst]
        assert torch.equal(d // N, s // N)  # no edge crosses sketches
        assert m[d // N, d % N, s % N].all()
        assert g.batch_num_edges(rel).tolist() == m.sum((1, 2)).tolist()


def test_dgl_unbatch_equals_each_graph():
    import dgl

    graphs = make_graphs()
    g, _ = Batch.from_graphs(graphs).dgl()
    for part, ref in zip(dgl.unbatch(g), graphs):
        ref_g = ref.to_dgl()
        for rel in RELATIONS:
            got = set(zip(*(t.tolist() for t in part.edges(etype=rel))))
            want = set(zip(*(t.tolist() for t in ref_g.edges(etype=rel))))
            assert got == want


@pytest.mark.parametrize("row", [[100, 102, 101], [102, 101, 102], [100, 101, 102, 100]])
def test_from_padded_refuses_a_point_after_padding(row):
    flags = torch.tensor([[100, 100, 101, 102], row + [102] * (4 - len(row))])
    coords = torch.zeros(2, 4, 2)
    with pytest.raises(SketchError, match=r"flags row\(s\) \[1\] have a point after padding"):
        Batch.from_padded(coords, flags, RELATIONS)
    assert Batch.from_padded(coords[:1], flags[:1], RELATIONS).valid.sum() == 3  # a good row alone is fine
