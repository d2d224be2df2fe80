"""The Multi-Graph Transformer (MGT, Xu, Joshi & Bresson, arXiv 1912.11258): one config for every variant.

A sketch is a set of points (nodes) in drawing order with several graphs over them (``sketchgraph.graph``). Each
layer attends within every relation (``GraphAttention``), mixes the relations, and applies a feed-forward
network; a masked readout over the valid nodes feeds an MLP classifier.

Two attention layouts:

- ``"per_relation"`` (the paper): a separate full-width multi-head attention per relation, each with its own
  residual, ``h_r = x + A_r(x)``; with several relations the results are concatenated and mixed,
  ``ReLU(W [h_1 || ... || h_R])`` (one relation: just ``x + A(x)``, as the official GT layers).
- ``"split_heads"`` (ours, faster): ONE attention whose heads are split across the relations, each head group
  masked by its relation, with the usual residual ``x + A(x)``. Same expressiveness per relation at 1/R of the
  projection cost, and no mixing Linear (the output projection mixes the groups).

Padding and BatchNorm: the official code pads every sketch to 100 points and runs ``BatchNorm1d`` over all
``B * 100`` rows, padding included, so a sketch's features depend on how much padding its batch has (and
padding nodes, which attend uniformly to all 100 nodes there, shift the statistics). We pad only to the batch's
longest sketch, so we normalise over the valid nodes only (``Norm``: ``BatchNorm1d`` on ``x[valid]``, padding rows
set to 0). This is a deliberate difference, not the official computation: in eval mode (running statistics) the
outputs are the official network's, but in train mode the batch statistics differ, and so do the running
statistics learnt, so an official checkpoint's BatchNorm buffers would not carry over. It makes the model exactly
padding-invariant (tested). Everything else in the ``mgt-paper`` preset follows the official code
(including its initialisation, ``init="official"``).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..batch import Batch
from ..graph import FLAG_CONTINUE, FLAG_PAD, RELATIONS
from .attention import BACKENDS, GraphAttention
from .dropout import Dropout

__all__ = ["MAX_POINTS", "MGTConfig", "MGT", "Norm", "normalize_coords"]

MAX_POINTS = FLAG_CONTINUE  # positions 0..99 share one embedding table with the flags 100..102
_ACTS = {"relu": nn.ReLU, "gelu": nn.GELU}


@dataclass
class MGTConfig:
    """Every MGT / Graph Transformer variant. The defaults are the paper's MGT (#17, ``mgt-paper``).

    Attributes:
        num_classes: output classes C.
        relations: graph relations to attend over (names from ``sketchgraph.graph.RELATIONS``).
        embed: ``"concat"`` (the paper: ``[Linear(xy) || E(flag) || E(position)]``, width ``3 * embed_dim``) or
            ``"sum"`` (the three added, width ``embed_dim``). Flags and positions share one ``Embedding(103)``.
        embed_dim: width of each input embedding.
        coord_norm: ``"none"`` (raw coordinates, the paper) or ``"unit"`` (each sketch fitted into [-1, 1],
            aspect ratio kept).
        coord_features: ``"xy"`` (the paper) or ``"xy+delta"``: also the offsets to the previous and next point
            of the same stroke (0 across pen-ups), i.e. the local pen direction (6 inputs).
        coord_mlp: embed the coordinate features with ``Linear -> act -> Linear`` instead of one bias-free Linear.
        layers: number of layers.
        layout: ``"per_relation"`` (the paper) or ``"split_heads"`` (see the module docstring).
        heads: attention heads per relation.
        head_dim: width of one head; default ``width // heads`` (per_relation) or ``width // (heads * R)``.
        ffn_dim: 0 for the official code's one-Linear feed-forward ``act(Linear(width, width))``; otherwise the hidden
            width of a two-Linear MLP.
        act: ``"relu"`` or ``"gelu"`` (feed-forward, relation mixing, classifier).
        norm: ``"batch"`` (BatchNorm over valid nodes) or ``"layer"``.
        prenorm: pre-norm residual blocks (``x + f(norm(x))``, plus a final norm) instead of the paper's post-norm.
        dropout: on the input of every encoder Linear (q, k, v with independent masks; relation mixing; FFN).
        attn_dropout: on the attention weights (the paper: none).
        readout: ``"sum"`` (the paper) or ``"mean"`` over valid nodes.
        classifier: hidden widths of the MLP classifier (each ``Dropout -> Linear -> act``), then ``Linear(., C)``.
        classifier_dropout: dropout in the classifier.
        init: ``"official"`` (the official code's uniform initialisation of attention, feed-forward and norm
            parameters) or ``"default"`` (PyTorch's).
        backend: attention backend, ``"dense"`` or ``"dgl"``.
        preset: name of the preset this config came from (informational).
    """

    num_classes: int = 345
    relations: tuple[str, ...] = ("stroke1", "stroke2", "temporal")
    embed: str = "concat"
    embed_dim: int = 256
    coord_norm: str = "none"
    coord_features: str = "xy"
    coord_mlp: bool = False
    layers: int = 4
    layout: str = "per_relation"
    heads: int = 8
    head_dim: int | None = None
    ffn_dim: int = 0
    act: str = "relu"
    norm: str = "batch"
    prenorm: bool = False
    dropout: float = 0.25
    attn_dropout: float = 0.0
    readout: str = "sum"
    classifier: tuple[int, ...] = (1024, 1024)
    classifier_dropout: float = 0.25
    init: str = "official"
    backend: str = "dense"
    preset: str | None = None

    def __post_init__(self) -> None:
        """Check every field: a named choice, relation names, integer sizes >= 1 (``ffn_dim`` >= 0, ``head_dim``
        None or >= 1), dropout probabilities in [0, 1), and a width the heads divide. ``ValueError`` messages start
        with ``MGTConfig.<field>`` (training reports them as ``model.<field>``)."""
        self.relations = _names("MGTConfig", "relations", self.relations)
        self.classifier = _widths("MGTConfig", "classifier", self.classifier)
        choices = {
            "embed": ("concat", "sum"), "coord_norm": ("none", "unit"), "coord_features": ("xy", "xy+delta"),
            "layout": ("per_relation", "split_heads"),
            "act": tuple(_ACTS), "norm": ("batch", "layer"), "readout": ("sum", "mean"),
            "init": ("official", "default"), "backend": BACKENDS,
        }
        for name, ok in choices.items():
            if getattr(self, name) not in ok:
                raise ValueError(f"MGTConfig.{name} must be one of {ok}, got {getattr(self, name)!r}")
        if not self.relations or any(r not in RELATIONS for r in self.relations):
            raise ValueError(f"MGTConfig.relations must be names from {RELATIONS}, got {list(self.relations)}")
        for name in ("num_classes", "embed_dim", "layers", "heads"):
            check_int("MGTConfig", name, getattr(self, name), 1)
        if self.head_dim is not None:
            check_int("MGTConfig", "head_dim", self.head_dim, 1, " (or unset: width // heads)")
        check_int("MGTConfig", "ffn_dim", self.ffn_dim, 0, " (0: the paper's one-Linear feed-forward)")
        for name in ("dropout", "attn_dropout", "classifier_dropout"):
            check_probability("MGTConfig", name, getattr(self, name))
        if self.head_dim is None and self.width % self.total_heads:
            raise ValueError(f"MGTConfig.heads: the width {self.width} is not divisible by {self.total_heads} heads; "
                             "set head_dim")

    @property
    def width(self) -> int:
        """Width of the node features in the encoder."""
        return 3 * self.embed_dim if self.embed == "concat" else self.embed_dim

    @property
    def total_heads(self) -> int:
        """Heads in one attention call (per_relation: one relation's; split_heads: all relations')."""
        return self.heads * (len(self.relations) if self.layout == "split_heads" else 1)

    @property
    def head_width(self) -> int:
        return self.head_dim if self.head_dim is not None else self.width // self.total_heads


def check_int(owner: str, name: str, value: Any, minimum: int, note: str = "") -> None:
    """``ValueError`` ("``owner.name`` must be an integer >= minimum``note``, got ...") unless ``value`` is an integer
    (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{owner}.{name} must be an integer >= {minimum}{note}, got {value!r}")


def check_probability(owner: str, name: str, value: Any) -> None:
    """``ValueError`` unless ``value`` is a number in [0, 1) (a dropout rate: 1 would drop everything; NaN fails)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"{owner}.{name} must be a probability in [0, 1), got {value!r}")


def _widths(owner: str, name: str, value: Any) -> tuple[int, ...]:
    """``value`` (a list of layer widths, each an integer >= 1) as a tuple; ``ValueError`` otherwise."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{owner}.{name} must be a list of layer widths, got {value!r}")
    for i, width in enumerate(value):
        check_int(owner, f"{name}[{i}]", width, 1)
    return tuple(value)


def _names(owner: str, name: str, value: Any) -> tuple[str, ...]:
    """``value`` (a list of names) as a tuple; ``ValueError`` for a lone string or a non-list."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{owner}.{name} must be a list of names, got {value!r}")
    return tuple(value)


def normalize_coords(coords: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Fit each sketch's valid points into [-1, 1] (centred on its bounding box, aspect kept); padding -> 0.

    Args:
        coords: ``(B, N, 2)``. valid: ``(B, N)`` bool.
    """
    m = valid[..., None]  # (B, N, 1)
    big = torch.finfo(coords.dtype).max
    lo = coords.masked_fill(~m, big).amin(1, keepdim=True)  # (B, 1, 2)
    hi = coords.masked_fill(~m, -big).amax(1, keepdim=True)  # (B, 1, 2)
    centre = (lo + hi) / 2
    half = ((hi - lo).amax(-1, keepdim=True) / 2).clamp(min=1e-6)  # (B, 1, 1)
    return torch.where(m, (coords - centre) / half, 0.0)  # not "* m": inf * 0 on padding in float16


def stroke_deltas(xy: torch.Tensor, flags: torch.Tensor) -> torch.Tensor:
    """Offsets to the previous and next point of the same stroke, ``(B, N, 2)`` -> ``(B, N, 4)``.

    ``flags`` ``(B, N)``: 100 means the next point continues the stroke; offsets across a pen-up, at the
    ends of the sketch and on padding are 0.
    """
    cont = (flags == FLAG_CONTINUE)[..., None]  # (B, N, 1): i -> i+1 in the same stroke
    nxt = torch.zeros_like(xy)
    nxt[:, :-1] = (xy[:, 1:] - xy[:, :-1]) * cont[:, :-1]
    prev = torch.zeros_like(xy)
    prev[:, 1:] = nxt[:, :-1]  # offset from i-1 to i equals i-1's "next" offset
    return torch.cat([prev, nxt], -1)


class Norm(nn.Module):
    """LayerNorm, or BatchNorm1d whose statistics come from the valid nodes only (padding rows -> 0)."""

    def __init__(self, kind: str, dim: int) -> None:
        super().__init__()
        self.kind = kind
        self.norm = nn.BatchNorm1d(dim) if kind == "batch" else nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        if self.kind == "layer":
            return self.norm(x)
        B, N, D = x.shape
        index = valid.reshape(-1).nonzero().squeeze(1)  # (V,) flat b * N + i of the valid nodes
        xs = x.reshape(B * N, D).index_select(0, index)  # (V, D)
        if self.training and len(index) < 2:  # batch statistics need two nodes: this batch uses the running ones
            bn = self.norm
            y = nn.functional.batch_norm(xs, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
        else:
            y = self.norm(xs)  # (V, D): batch statistics over valid nodes
        return x.new_zeros(B * N, D).index_copy(0, index, y).view(B, N, D)  # padding rows 0


def _mlp(dims: list[int], *, act: str, dropout: float, final_act: bool, final_dropout: bool = True) -> nn.Sequential:
    """``Dropout -> Linear -> act`` for each consecutive pair of ``dims``; the last Linear drops its act unless
    ``final_act`` and its input dropout unless ``final_dropout``. Dropout modules are kept at p=0 too, so the
    parameter names do not depend on it."""
    mods: list[nn.Module] = []
    n = len(dims) - 1
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        last = i == n - 1
        if final_dropout or not last:
            mods.append(Dropout(dropout))
        mods.append(nn.Linear(a, b))
        if final_act or not last:
            mods.append(_ACTS[act]())
    return nn.Sequential(*mods)


class MGTLayer(nn.Module):
    """One layer. With ``A`` the multi-graph attention, ``F`` the feed-forward and ``N1``, ``N2`` the norms:

    - post-norm (the paper): ``x = N1(x + A(x))``, then ``x = N2(x + F(x))``;
    - pre-norm: ``x = x + A(N1(x))``, then ``x = x + F(N2(x))``.

    For ``per_relation`` with several relations, ``x + A(x)`` is replaced by the paper's mixing
    ``act(Linear(Dropout([x + A_1(x) || ... || x + A_R(x)])))``, which already carries the residuals (pre-norm
    adds the outer one too).
    """

    def __init__(self, cfg: MGTConfig) -> None:
        super().__init__()
        W = cfg.width
        kw = dict(heads=cfg.heads, head_dim=cfg.head_width, dropout=cfg.dropout, attn_dropout=cfg.attn_dropout,
                  backend=cfg.backend)
        groups = [(r,) for r in cfg.relations] if cfg.layout == "per_relation" else [cfg.relations]
        self.attn = nn.ModuleList(GraphAttention(W, relations=g, **kw) for g in groups)
        self.mix = None
        if len(groups) > 1:
            self.mix = _mlp([len(groups) * W, W], act=cfg.act, dropout=cfg.dropout, final_act=True)
        hidden = [cfg.ffn_dim] if cfg.ffn_dim else []
        self.ffn = _mlp([W, *hidden, W], act=cfg.act, dropout=cfg.dropout, final_act=not cfg.ffn_dim)
        self.norm1, self.norm2 = Norm(cfg.norm, W), Norm(cfg.norm, W)
        self.prenorm = cfg.prenorm

    def _attend(self, x: torch.Tensor, batch: Batch, need_weights: bool):
        """``(update, weights)``: ``A(x)``, or the mixed per-relation residual branches."""
        outs, weights = [], {}
        for attn in self.attn:
            h, w = attn(x, batch, need_weights=need_weights)
            outs.append(h)
            weights.update(w or {})
        if self.mix is None:
            return outs[0], weights
        return self.mix(torch.cat([x + h for h in outs], -1)), weights  # (B, N, R * W) -> (B, N, W)

    def forward(self, x: torch.Tensor, batch: Batch, *, need_weights: bool = False):
        valid = batch.valid
        if self.prenorm:
            h, w = self._attend(self.norm1(x, valid), batch, need_weights)
            x = x + h
            x = x + self.ffn(self.norm2(x, valid))
        else:
            h, w = self._attend(x, batch, need_weights)
            x = self.norm1(h if self.mix is not None else x + h, valid)
            x = self.norm2(x + self.ffn(x), valid)
        return x, (w if need_weights else None)


class MGT(nn.Module):
    """Multi-Graph Transformer classifier: ``forward(batch) -> logits (B, C)``.

    ``forward(batch, return_attention=True)`` returns ``(logits, maps)`` with ``maps[layer][relation]`` the
    attention weights ``(B, heads, N, N)`` (query row, key column; 0 outside the relation and on padding rows).
    """

    arch = "mgt"

    def __init__(self, config: MGTConfig) -> None:
        super().__init__()
        self.config = cfg = config
        E, W = cfg.embed_dim, cfg.width
        n_in = 2 if cfg.coord_features == "xy" else 6
        self.coord_embed = (
            nn.Sequential(nn.Linear(n_in, E), _ACTS[cfg.act](), nn.Linear(E, E)) if cfg.coord_mlp
            else nn.Linear(n_in, E, bias=False)
        )
        self.token_embed = nn.Embedding(FLAG_PAD + 1, E)  # positions 0..99, flags 100 / 101 / 102
        self.layers = nn.ModuleList(MGTLayer(cfg) for _ in range(cfg.layers))
        self.norm_f = Norm(cfg.norm, W) if cfg.prenorm else None
        self.classifier = _mlp([W, *cfg.classifier, cfg.num_classes], act=cfg.act, dropout=cfg.classifier_dropout,
                               final_act=False, final_dropout=False)
        if cfg.init == "official":
            self._init_official()

    max_points = MAX_POINTS
    """The most points a sketch may have (the position embedding's size)."""

    @property
    def relations(self) -> tuple[str, ...]:
        """Relations the batches must carry."""
        return self.config.relations

    def set_backend(self, backend: str) -> MGT:
        """Switch every attention to ``"dense"`` or ``"dgl"`` (the weights are the same)."""
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.config.backend = backend
        for m in self.modules():
            if isinstance(m, GraphAttention):
                m.backend = backend
        return self

    @torch.no_grad()
    def _init_official(self) -> None:
        """The official code's init: U(+-1/sqrt(fan)) on attention (fan = head width for q/k/v, width for the
        output), feed-forward (fan = last dim) and BatchNorm affine parameters (fan = width)."""
        W = self.config.width
        for m in self.modules():
            if isinstance(m, GraphAttention):
                m.qkv.weight.uniform_(-m.head_dim**-0.5, m.head_dim**-0.5)
                m.proj.weight.uniform_(-W**-0.5, W**-0.5)
            elif isinstance(m, Norm):
                for p in m.parameters():
                    p.uniform_(-W**-0.5, W**-0.5)
            elif isinstance(m, MGTLayer):
                for p in m.ffn.parameters():
                    p.uniform_(-1 / math.sqrt(p.shape[-1]), 1 / math.sqrt(p.shape[-1]))

    def embed(self, batch: Batch) -> torch.Tensor:
        """``(B, N, width)`` input node features."""
        N = batch.flags.shape[1]
        if N > MAX_POINTS:
            raise ValueError(f"MGT takes at most {MAX_POINTS} points per sketch, got a batch padded to {N}")
        xy = normalize_coords(batch.coords, batch.valid) if self.config.coord_norm == "unit" else batch.coords
        if self.config.coord_features == "xy+delta":
            xy = torch.cat([xy, stroke_deltas(xy, batch.flags)], -1)  # (B, N, 6)
        parts = (self.coord_embed(xy), self.token_embed(batch.flags), self.token_embed(batch.position))
        return torch.cat(parts, -1) if self.config.embed == "concat" else parts[0] + parts[1] + parts[2]

    def forward(self, batch: Batch, *, return_attention: bool = False):
        missing = [r for r in self.config.relations if r not in batch.masks]
        if missing:
            raise ValueError(f"the batch lacks relations {missing}; build it with relations=model.relations")
        x = self.embed(batch)  # (B, N, W)
        maps = []
        for layer in self.layers:
            x, w = layer(x, batch, need_weights=return_attention)
            maps.append(w)
        if self.norm_f is not None:
            x = self.norm_f(x, batch.valid)
        g = (x * batch.valid[..., None]).sum(1)  # (B, W) masked sum over nodes
        if self.config.readout == "mean":
            g = g / batch.lengths.clamp(min=1)[:, None].to(g.dtype)
        logits = self.classifier(g)  # (B, C)
        return (logits, maps) if return_attention else logits
