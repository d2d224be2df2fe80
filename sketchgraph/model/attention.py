r"""Masked multi-graph attention: one multi-head attention whose heads are restricted to graph relations.

Each relation ``r`` (``stroke1``, ``stroke2``, ``temporal``, ``full``; see ``sketchgraph.graph``) owns a group
of heads. For a node i, relation r and a head of r's group, with neighbours :math:`\mathcal{N}_r(i)` (self-loop
included):

.. math::

    h_i' = \sum_{j \in \mathcal{N}_r(i)} \operatorname{softmax}_j\Big(\frac{q_i^\top k_j}{\sqrt{d}}\Big)\, v_j,
    \qquad q_i = W_Q x_i,\; k_j = W_K x_j,\; v_j = W_V x_j,

then the heads of all groups are concatenated and projected, :math:`x_i' = W_O [h_i'^{(1)} \| \dots \| h_i'^{(H)}]`.

Masking attention with a sparse adjacency turns a Transformer into a graph neural network on the sketch graph:
a node only aggregates messages from its neighbours under each relation. With the ``full`` relation (every pair
of valid nodes) this is exactly the plain Transformer's self-attention.

Two interchangeable backends compute the same thing (outputs and gradients agree to float rounding):

- ``"dense"``: ``torch.nn.functional.scaled_dot_product_attention`` on the padded batch with an additive
  ``(B, H, N, N)`` mask (0 / ``-inf``) built once per batch from one boolean ``(B, N, N)`` mask per relation
  (padding rows carry a self-loop, so no softmax row is all-masked);
- ``"dgl"``: message passing on the batched DGL heterograph of the valid nodes (one edge type per relation,
  src = key j, dst = query i): ``apply_edges(u_dot_v)`` scores, ``edge_softmax`` over each node's incoming
  edges, ``update_all(u_mul_e, sum)``. Node features are gathered from the padded ``(B, N, D)`` tensor with the
  batch's ``node_index`` and scattered back.

Both return 0 on padding rows, so padding never leaks into anything downstream.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..batch import Batch
from .dropout import Dropout, dropout

__all__ = ["BACKENDS", "GraphAttention"]

BACKENDS = ("dense", "dgl")


class GraphAttention(nn.Module):
    r"""Multi-head attention with ``heads`` heads per relation, each masked by its relation's adjacency:
    :math:`h_i' = \sum_{j \in N_r(i)} \operatorname{softmax}_j(q_i \cdot k_j / \sqrt{d})\, v_j` per relation r
    and head, then ``proj`` of the concatenated heads (see the module docstring).

    With one relation this is a masked multi-head attention (the paper's per-relation attention); with several
    relations the heads are split across them (``heads * len(relations)`` heads in one attention call).

    Args:
        dim: input and output width D.
        relations: relation names (keys of ``Batch.masks`` / edge types of ``Batch.dgl()``), one head group each.
        heads: heads per relation.
        head_dim: width d of each head (the total inner width is ``heads * len(relations) * head_dim``).
        bias: biases on the q/k/v and output projections (the paper has none).
        dropout: dropout on the *inputs* of the q, k and v projections, with independent masks (the paper's
            placement); when 0 or in eval mode the three projections run as one fused matmul.
        attn_dropout: dropout on the attention weights.
        backend: ``"dense"`` or ``"dgl"`` (see the module docstring); a plain attribute, switchable at any time.

    Attribute ``fused`` (default True): the dense backend calls the fused ``scaled_dot_product_attention``; set it
    to False for the plain matmul-softmax-matmul path (also taken whenever the weights are requested).
    """

    def __init__(
        self, dim: int, *, relations: Sequence[str], heads: int, head_dim: int, bias: bool = False,
        dropout: float = 0.0, attn_dropout: float = 0.0, backend: str = "dense",
    ) -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.relations = tuple(relations)
        self.heads = heads
        self.head_dim = head_dim
        self.num_heads = heads * len(self.relations)
        inner = self.num_heads * head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=bias)  # rows: [W_Q; W_K; W_V]
        self.proj = nn.Linear(inner, dim, bias=bias)  # W_O
        self.dropout = Dropout(dropout)
        self.attn_dropout = attn_dropout
        self.backend = backend
        self.fused = True

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q, k, v ``(..., H * d)`` each; independent input-dropout masks when dropout is active."""
        if self.training and self.dropout.p > 0:
            w = self.qkv.weight.chunk(3, 0)
            b = self.qkv.bias.chunk(3, 0) if self.qkv.bias is not None else (None,) * 3
            return tuple(F.linear(self.dropout(x), w[i], b[i]) for i in range(3))
        return self.qkv(x).chunk(3, -1)

    def forward(
        self, x: torch.Tensor, batch: Batch, *, need_weights: bool = False
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        """Attend within each relation.

        Args:
            x: ``(B, N, D)`` padded node features.
            batch: supplies ``masks`` / ``valid`` (dense) or ``dgl()`` (dgl) for the same padded layout.
            need_weights: also return the attention weights.

        Returns:
            ``(out, weights)``: ``out`` ``(B, N, D)`` with zeros on padding rows; ``weights`` is
            ``{relation: (B, heads, N, N)}`` (row i = query, column j = key; exactly 0 outside the relation)
            or ``None``.
        """
        if self.backend == "dgl":
            return self._forward_dgl(x, batch, need_weights)
        return self._forward_dense(x, batch, need_weights)

    def _forward_dense(self, x, batch, need_weights):
        B, N, _ = x.shape
        H, d = self.num_heads, self.head_dim
        q, k, v = (t.view(B, N, H, d).transpose(1, 2) for t in self._qkv(x))  # (B, H, N, d)
        bias = batch.attention_bias(self.relations, self.heads, q.dtype)  # (B, H, N, N) 0 / -inf
        p = self.attn_dropout if self.training else 0.0
        weights = None
        if need_weights or not self.fused:  # the plain path
            scores = (q @ k.transpose(-2, -1)) * d**-0.5  # (B, H, N, N)
            attn = (scores + bias).softmax(-1)  # (B, H, N, N)
            if need_weights:
                # padding rows -> 0, as in the dgl backend (where, not a product: a product keeps NaN)
                shown = torch.where(batch.valid[:, None, :, None], attn, 0.0)
                weights = dict(zip(self.relations, shown.split(self.heads, 1)))  # {r: (B, heads, N, N)}
            h = dropout(attn, p, self.training) @ v  # (B, H, N, d)
        else:
            h = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=p)  # (B, H, N, d)
        h = h.transpose(1, 2).reshape(B, N, H * d)  # (B, N, H * d)
        return torch.where(batch.valid[..., None], self.proj(h), 0.0), weights  # (B, N, D), 0 on padding rows

    def _forward_dgl(self, x, batch, need_weights):
        os.environ.setdefault("DGLBACKEND", "pytorch")
        import dgl.function as fn
        from dgl.nn.functional import edge_softmax

        B, N, D = x.shape
        H, d = self.num_heads, self.head_dim
        g, node_index = batch.dgl()
        V = node_index.numel()
        xv = x.reshape(B * N, D)[node_index]  # (V, D) valid nodes only
        q, k, v = (t.view(V, H, d) for t in self._qkv(xv))  # (V, H, d)
        q = q * d**-0.5
        outs, weights = [], {} if need_weights else None
        for r, rel in enumerate(self.relations):
            heads = slice(r * self.heads, (r + 1) * self.heads)
            sg = g[rel]  # single-relation view: src = key j, dst = query i
            with sg.local_scope():
                sg.ndata["q"], sg.ndata["k"], sg.ndata["v"] = q[:, heads], k[:, heads], v[:, heads]
                sg.apply_edges(fn.u_dot_v("k", "q", "s"))  # (E, heads, 1) q_i . k_j
                # (E, heads, 1) softmax over each query's in-edges, in float32: DGL 1.1's CPU kernel gets bfloat16
                # wrong when all of a node's scores are below about -88 (inf / NaN weights)
                s = sg.edata["s"]
                low = s.dtype in (torch.bfloat16, torch.float16)
                a = edge_softmax(sg, s.float()).to(s.dtype) if low else edge_softmax(sg, s)
                if need_weights:
                    weights[rel] = self._dense_weights(sg, a, node_index, B, N)
                sg.edata["a"] = dropout(a, self.attn_dropout, self.training)
                sg.update_all(fn.u_mul_e("v", "a", "m"), fn.sum("m", "h"))
                outs.append(sg.ndata["h"])  # (V, heads, d)
        h = self.proj(torch.cat(outs, 1).reshape(V, H * d))  # (V, D)
        out = h.new_zeros(B * N, D).index_copy(0, node_index, h)  # (B * N, D), zeros on padding
        return out.view(B, N, D), weights

    @staticmethod
    def _dense_weights(sg, a: torch.Tensor, node_index: torch.Tensor, B: int, N: int) -> torch.Tensor:
        """Scatter edge weights ``(E, heads, 1)`` to a dense ``(B, heads, N, N)`` map (query row, key column)."""
        src, dst = sg.edges()
        qi, kj = node_index[dst], node_index[src]  # flat b * N + i
        w = a.new_zeros(B, a.shape[1], N, N)
        w[qi // N, :, qi % N, kj % N] = a[..., 0]  # (E, heads)
        return w
