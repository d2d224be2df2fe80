"""Sketch graphs: nodes are points in drawing order, edges come in named relations.

Flags follow the official MGT tokens (they double as embedding indices next to positions 0..99):
``FLAG_CONTINUE`` (100, the pen continues to the next point), ``FLAG_END`` (101, the stroke ends
here) and ``FLAG_PAD`` (102, padding).

Relations (the official MGT definitions; every relation has self-loops on valid nodes and no
edge touches padding):

- ``stroke1`` (A^1-hop): i <-> i+1 when both are in the same stroke;
- ``stroke2`` (A^2-hop): ``stroke1`` plus i <-> i+2 when i, i+1, i+2 are in the same stroke;
- ``temporal`` (A^global): i <-> i+1 when i ends a stroke, plus first <-> last point;
- ``full``: every pair of valid nodes (the plain Transformer).

Every relation is a function of the flags alone. ``relation_masks`` is the single, vectorised
definition; ``build_graph`` and the collate both call it, so graphs and attention masks cannot
disagree.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import SketchError
from .preprocess import cap_points
from .sketch import Sketch

__all__ = [
    "FLAG_CONTINUE", "FLAG_END", "FLAG_PAD", "RELATIONS", "GraphSpec", "SketchGraph",
    "sketch_flags", "relation_masks", "build_graph", "dgl_from_masks",
]

FLAG_CONTINUE, FLAG_END, FLAG_PAD = 100, 101, 102
RELATIONS = ("stroke1", "stroke2", "temporal", "full")


@dataclass(frozen=True)
class GraphSpec:
    """Which relations a graph carries (in this order; the model's attention follows it)."""

    relations: tuple[str, ...] = ("stroke1", "stroke2", "temporal")

    def __post_init__(self) -> None:
        rels = tuple(self.relations)
        object.__setattr__(self, "relations", rels)
        bad = [r for r in rels if r not in RELATIONS]
        if bad or not rels or len(set(rels)) != len(rels):
            raise ValueError(f"relations must be distinct names from {RELATIONS}, got {rels}")

    def to_dict(self) -> dict:
        return {"relations": list(self.relations)}

    @classmethod
    def from_dict(cls, d: dict) -> GraphSpec:
        return cls(tuple(d["relations"]))


def sketch_flags(stroke_lengths: Sequence[int] | np.ndarray) -> np.ndarray:
    """Per-point flags ``(N,)`` int64 from stroke lengths: 101 on each stroke's last point, else 100."""
    lengths = np.asarray(stroke_lengths, dtype=np.int64)
    n = int(lengths.sum())
    flags = np.full(n, FLAG_CONTINUE, dtype=np.int64)
    if n:
        flags[np.cumsum(lengths[lengths > 0]) - 1] = FLAG_END
    return flags


def relation_masks(
    flags: torch.Tensor, relations: Sequence[str], *, pad_self_loops: bool = False
) -> dict[str, torch.Tensor]:
    """Boolean adjacency per relation from padded flags, fully vectorised.

    Args:
        flags: ``(B, N)`` integer flags (100 / 101 / 102 for padding). Valid points come first.
        relations: names from ``RELATIONS``.
        pad_self_loops: also put ``True`` on the diagonal of padding rows, so masked softmax over a
            padding row never sees an all-masked row (its output is ignored by the readout).

    Returns:
        ``{relation: (B, N, N) bool}``; ``mask[b, i, j]`` is True when node i may attend to node j.
    """
    flags = torch.as_tensor(flags)
    if flags.dim() != 2:
        raise ValueError(f"flags must be (B, N), got {tuple(flags.shape)}")
    B, N = flags.shape
    dev = flags.device
    valid = flags != FLAG_PAD  # (B, N)
    end = flags == FLAG_END  # (B, N)
    sid = torch.cumsum(end.long(), 1) - end.long()  # (B, N) stroke index of each point
    idx = torch.arange(N, device=dev)
    dist = idx[None, :] - idx[:, None]  # (N, N) j - i
    pair_valid = valid[:, :, None] & valid[:, None, :]  # (B, N, N)
    eye = dist == 0  # (N, N); comparisons rather than torch.eye / scatter keep this traceable to ONNX
    same = sid[:, :, None] == sid[:, None, :]  # (B, N, N)
    out: dict[str, torch.Tensor] = {}
    for rel in relations:
        if rel == "stroke1":
            m = same & (dist.abs() <= 1)
        elif rel == "stroke2":
            m = same & (dist.abs() <= 2)
        elif rel == "temporal":
            jump = end[:, :, None] & (dist == 1)  # i ends a stroke, j = i + 1
            last = (valid.sum(1) - 1).clamp(min=0)  # (B,)
            is_first = (idx == 0)[None, :]  # (1, N)
            is_last = idx[None, :] == last[:, None]  # (B, N)
            first_last = (is_first[:, :, None] & is_last[:, None, :]) | (is_last[:, :, None] & is_first[:, None, :])
            m = eye | jump | jump.transpose(1, 2) | first_last
        elif rel == "full":
            m = torch.ones(N, N, dtype=torch.bool, device=dev).expand(B, N, N)
        else:
            raise ValueError(f"unknown relation {rel!r}; choose from {RELATIONS}")
        m = m & pair_valid
        if pad_self_loops:
            m = m | (eye & ~valid[:, :, None])
        out[rel] = m
    return out


@dataclass
class SketchGraph:
    """One sketch as a graph.

    Attributes:
        coords: ``(N, 2)`` float32 point coordinates (x, y).
        flags: ``(N,)`` int64, 100 (pen continues) or 101 (stroke ends here).
        position: ``(N,)`` int64 index 0..N-1 in drawing order.
        stroke: ``(N,)`` int64 stroke index of each point.
        time: ``(N,)`` float32 ms, or ``None``.
        edges: ``{relation: (src (E,), dst (E,))}`` int64, self-loops included.
        label, key_id: from the sketch.
    """

    coords: np.ndarray
    flags: np.ndarray
    position: np.ndarray
    stroke: np.ndarray
    edges: dict[str, tuple[np.ndarray, np.ndarray]]
    time: np.ndarray | None = None
    label: str | None = None
    key_id: str | None = None
    spec: GraphSpec = field(default_factory=GraphSpec)

    @property
    def num_nodes(self) -> int:
        return len(self.coords)

    def dense_masks(self) -> dict[str, np.ndarray]:
        """``{relation: (N, N) bool}`` built from ``edges``."""
        n = self.num_nodes
        out = {}
        for rel, (src, dst) in self.edges.items():
            m = np.zeros((n, n), dtype=bool)
            m[dst, src] = True  # row = receiving node (query), column = sender (key)
            out[rel] = m
        return out

    def to_dgl(self):
        """A ``dgl.heterograph`` with node type ``point`` and one edge type per relation.

        Node data: ``coords`` (N, 2), ``flags`` (N,), ``position`` (N,), ``stroke`` (N,)
        [, ``time`` (N,)].
        """
        os.environ.setdefault("DGLBACKEND", "pytorch")
        import dgl

        data = {
            ("point", rel, "point"): (torch.from_numpy(src), torch.from_numpy(dst))
            for rel, (src, dst) in self.edges.items()
        }
        g = dgl.heterograph(data, num_nodes_dict={"point": self.num_nodes})
        g.ndata["coords"] = torch.from_numpy(self.coords)
        g.ndata["flags"] = torch.from_numpy(self.flags)
        g.ndata["position"] = torch.from_numpy(self.position)
        g.ndata["stroke"] = torch.from_numpy(self.stroke)
        if self.time is not None:
            g.ndata["time"] = torch.from_numpy(self.time)
        return g


def build_graph(sketch: Sketch, spec: GraphSpec = GraphSpec(), max_points: int = 100) -> SketchGraph:
    """Graph of a (preprocessed) sketch: points become nodes, relations become edge sets.

    No simplification happens here; the point cap (truncate, see ``cap_points``) does.
    Raises ``SketchError`` on an empty sketch.
    """
    if sketch.num_points == 0:
        raise SketchError(f"cannot build a graph from an empty sketch (key_id={sketch.key_id})")
    sk = cap_points(sketch, max_points)
    lengths = sk.stroke_lengths()
    flags = sketch_flags(lengths)
    masks = relation_masks(torch.from_numpy(flags)[None], spec.relations)
    edges = {}
    for rel, m in masks.items():
        dst, src = torch.nonzero(m[0], as_tuple=True)
        edges[rel] = (src.numpy().astype(np.int64), dst.numpy().astype(np.int64))
    n = len(flags)
    times = sk.times()
    return SketchGraph(
        coords=sk.points().astype(np.float32),
        flags=flags,
        position=np.arange(n, dtype=np.int64),
        stroke=np.repeat(np.arange(len(lengths), dtype=np.int64), lengths),
        edges=edges,
        time=None if times is None else times.astype(np.float32),
        label=sk.label,
        key_id=sk.key_id,
        spec=spec,
    )


def dgl_from_masks(masks: dict[str, torch.Tensor], valid: torch.Tensor):
    """A batched DGL heterograph from padded masks, keeping only valid nodes.

    Args:
        masks: ``{relation: (B, N, N) bool}`` (query i, key j).
        valid: ``(B, N)`` bool.

    Returns:
        ``(graph, node_index)`` where ``graph`` has ``valid.sum()`` nodes of type ``point`` (the
        valid nodes of all sketches, in batch order) and ``node_index`` ``(V,)`` is the flat index
        ``b * N + i`` of each graph node into the padded batch. Batch sizes are set so
        ``dgl.unbatch`` works.
    """
    os.environ.setdefault("DGLBACKEND", "pytorch")
    import dgl

    B, N = valid.shape
    flat_valid = valid.reshape(-1)
    node_index = torch.nonzero(flat_valid, as_tuple=True)[0]  # (V,)
    remap = torch.full((B * N,), -1, dtype=torch.long, device=valid.device)
    remap[node_index] = torch.arange(len(node_index), device=valid.device)
    data, counts = {}, {}
    for rel, m in masks.items():
        m = m & valid[:, :, None] & valid[:, None, :]
        b, i, j = torch.nonzero(m, as_tuple=True)
        data[("point", rel, "point")] = (remap[b * N + j], remap[b * N + i])  # src = key j, dst = query i
        counts[rel] = torch.bincount(b, minlength=B)
    g = dgl.heterograph(data, num_nodes_dict={"point": len(node_index)})
    g.set_batch_num_nodes({"point": valid.sum(1)})
    g.set_batch_num_edges({("point", rel, "point"): counts[rel] for rel in masks})
    return g, node_index
