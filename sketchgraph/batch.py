"""``Batch``: padded tensors plus one boolean mask per relation, built without per-point loops.

Sketches are stored flat (all points of all sketches concatenated, as in a prepared dataset):
``coords (P, 2)``, ``flags (P,)`` and per-sketch ``starts``/``lengths``. ``Batch.from_flat`` gathers a
batch with one fancy-indexing op, padded to the longest sketch in the batch (not always to 100).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from .errors import SketchError
from .graph import FLAG_PAD, SketchGraph, dgl_from_masks, relation_masks

__all__ = ["Batch"]


@dataclass
class Batch:
    """A padded batch of sketch graphs.

    Attributes:
        coords: ``(B, N, 2)`` float32 coordinates (0 on padding).
        flags: ``(B, N)`` int64 flags, 102 on padding.
        position: ``(B, N)`` int64 0..N-1.
        valid: ``(B, N)`` bool, False on padding.
        masks: ``{relation: (B, N, N) bool}``, query i may attend key j; padding rows carry a
            self-loop so no softmax row is all-masked.
        labels: ``(B,)`` int64 class indices, or ``None``.
    """

    coords: torch.Tensor
    flags: torch.Tensor
    position: torch.Tensor
    valid: torch.Tensor
    masks: dict[str, torch.Tensor]
    labels: torch.Tensor | None = None
    _dgl: tuple | None = field(default=None, repr=False, compare=False)
    _bias: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def size(self) -> int:
        return int(self.coords.shape[0])

    @property
    def lengths(self) -> torch.Tensor:
        """``(B,)`` number of valid points per sketch."""
        return self.valid.sum(1)

    @classmethod
    def from_flat(
        cls,
        coords: np.ndarray,
        flags: np.ndarray,
        starts: np.ndarray,
        lengths: np.ndarray,
        relations: Sequence[str],
        labels: np.ndarray | None = None,
        pad_to: int | None = None,
        transform: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> Batch:
        """Gather sketches ``starts[b] : starts[b] + lengths[b]`` from flat arrays.

        Args:
            coords: ``(P, 2)`` flat coordinates (any float/int dtype, may be memory-mapped).
            flags: ``(P,)`` flat flags (100 / 101).
            starts, lengths: ``(B,)`` int offsets and point counts.
            relations: relation names for the masks.
            labels: ``(B,)`` optional class indices.
            pad_to: pad to this many points instead of the batch's longest sketch.
            transform: optional ``(coords (B, N, 2) float32, flags (B, N) int64) -> (coords, flags)``
                applied to the padded tensors before the masks are built (augmentation hook).
        """
        starts = np.asarray(starts, dtype=np.int64)
        lengths = np.asarray(lengths, dtype=np.int64)
        B = len(starts)
        if B == 0 or len(lengths) != B:
            raise SketchError(f"a batch needs >= 1 sketch and one length per start; got {B} and {len(lengths)}")
        longest = int(lengths.max())
        if pad_to is not None and pad_to < longest:
            raise SketchError(f"pad_to={pad_to} is shorter than the longest sketch ({longest} points)")
        N = int(pad_to if pad_to is not None else longest)
        ar = np.arange(N, dtype=np.int64)
        valid = ar[None, :] < lengths[:, None]  # (B, N)
        gather = np.where(valid, starts[:, None] + ar[None, :], 0)  # (B, N)
        xy = np.asarray(coords[gather.reshape(-1)], dtype=np.float32).reshape(B, N, 2)
        xy[~valid] = 0.0
        fl = np.asarray(flags[gather.reshape(-1)], dtype=np.int64).reshape(B, N)
        fl[~valid] = FLAG_PAD
        xy_t, fl_t = torch.from_numpy(xy), torch.from_numpy(fl)
        if transform is not None:
            xy_t, fl_t = transform(xy_t, fl_t)
        return cls.from_padded(
            xy_t, fl_t, relations,
            None if labels is None else torch.as_tensor(np.asarray(labels), dtype=torch.long),
        )

    @classmethod
    def from_padded(
        cls, coords: torch.Tensor, flags: torch.Tensor, relations: Sequence[str],
        labels: torch.Tensor | None = None,
    ) -> Batch:
        """From already padded ``coords (B, N, 2)`` and ``flags (B, N)`` (102 on padding, only after a
        sketch's points: the masks' first<->last edge and the positions assume the valid points come first)."""
        B, N = flags.shape
        valid = flags != FLAG_PAD
        holes = (valid[:, 1:] & ~valid[:, :-1]).any(1)  # (B,) a valid point after padding
        if not torch.jit.is_tracing() and bool(holes.any()):  # an exported graph (traced) takes what it is given
            rows = holes.nonzero().flatten().tolist()
            raise SketchError(
                f"flags row(s) {rows[:5]} have a point after padding (flag {FLAG_PAD}): padding must come after "
                "every point of a sketch"
            )
        return cls(
            coords=coords.float(),
            flags=flags.long(),
            position=torch.arange(N, device=flags.device).expand(B, N).contiguous(),
            valid=valid,
            masks=relation_masks(flags, relations, pad_self_loops=True),
            labels=labels,
        )

    @classmethod
    def from_graphs(
        cls, graphs: Sequence[SketchGraph], relations: Sequence[str] | None = None,
        labels: Sequence[int] | None = None,
    ) -> Batch:
        """Batch ``SketchGraph`` objects (relations default to the first graph's spec)."""
        if not graphs:
            raise SketchError("cannot batch zero graphs")
        rels = relations if relations is not None else graphs[0].spec.relations
        lengths = np.array([g.num_nodes for g in graphs], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        coords = np.concatenate([g.coords for g in graphs])
        flags = np.concatenate([g.flags for g in graphs])
        return cls.from_flat(coords, flags, starts, lengths, rels, labels)

    def to(self, device: torch.device | str) -> Batch:
        """Move every tensor to ``device`` (the cached DGL graph is dropped)."""
        return replace(
            self,
            coords=self.coords.to(device), flags=self.flags.to(device),
            position=self.position.to(device), valid=self.valid.to(device),
            masks={k: v.to(device) for k, v in self.masks.items()},
            labels=None if self.labels is None else self.labels.to(device),
            _dgl=None, _bias={},
        )

    def attention_bias(self, relations: Sequence[str], heads: int, dtype: torch.dtype) -> torch.Tensor:
        """``(B, len(relations) * heads, N, N)`` additive attention mask: 0 where query i may attend key j
        under the head's relation (head h -> relation ``h // heads``), ``-inf`` elsewhere. Built once per
        batch and ``dtype`` and shared by every layer: ``scaled_dot_product_attention`` on CPU is faster
        with a prebuilt additive mask than with a boolean one it converts per call."""
        key = (tuple(relations), heads, dtype)
        if key not in self._bias:
            allowed = torch.stack([self.masks[r] for r in relations], 1)  # (B, R, N, N)
            if heads > 1:
                allowed = allowed.repeat_interleave(heads, 1)  # (B, H, N, N)
            bias = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
            self._bias[key] = bias.masked_fill_(~allowed, float("-inf"))
        return self._bias[key]

    def dgl(self):
        """``(graph, node_index)``: the batched DGL heterograph of the valid nodes (one edge type
        per relation) and the flat padded index ``b * N + i`` of each graph node. Cached."""
        if self._dgl is None:
            self._dgl = dgl_from_masks(self.masks, self.valid)
        return self._dgl
