"""Baselines on the same ``Batch``: a small CNN on rendered rasters and the paper's bidirectional GRU.

``rasterize_batch`` draws a padded batch of point sequences into ``(B, 1, S, S)`` canvases in a handful of
tensor ops (no per-sketch Python loop). We chose this over PIL's ``ImageDraw.line`` per sketch because it runs
inside the model's forward on whatever device the batch is on and is faster for a batch: 64 sketches of 100
points at 64 x 64 take ~4 ms on one CPU core, against ~9 ms for a PIL loop (measured on a shared core).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from ..batch import Batch
from ..graph import FLAG_CONTINUE, FLAG_PAD
from .mgt import _mlp, _widths, check_int, check_probability, normalize_coords

__all__ = ["rasterize_batch", "CNNConfig", "SketchCNN", "BiGRUConfig", "BiGRU"]


def rasterize_batch(
    coords: torch.Tensor, flags: torch.Tensor, size: int = 64, *, margin: int = 2, line_width: int = 1
) -> torch.Tensor:
    """Render sketches as binary images, vectorised over the batch.

    Each sketch's valid points are fitted into the frame (centred on their bounding box, uniform scale so the
    longer side spans ``size - 1 - 2 * margin`` pixels, aspect ratio kept; y grows downwards, as in Quick, Draw!).
    Consecutive points of the same stroke are joined by 1-pixel lines (DDA: one sample per pixel step along the
    segment's major axis, so lines are 8-connected and thin, like Bresenham's); every point is drawn too (so
    one-point strokes show as dots). Pen-up jumps are not drawn.

    Args:
        coords: ``(B, N, 2)`` (x, y). flags: ``(B, N)`` 100 / 101 / 102 (padding).
        size: canvas side in pixels. margin: empty border in pixels.
        line_width: odd stroke width in pixels (wider lines by max-pool dilation).

    Returns:
        ``(B, 1, size, size)`` float canvas, 1 where ink, 0 elsewhere.
    """
    if line_width < 1 or line_width % 2 == 0:
        raise ValueError(f"line_width must be odd and positive, got {line_width}")
    B, N, _ = coords.shape
    valid = flags != FLAG_PAD  # (B, N)
    span = size - 1 - 2 * margin
    px = normalize_coords(coords.float(), valid) * (span / 2) + (size - 1) / 2  # (B, N, 2) in pixels
    # segments i -> i+1 inside a stroke, plus a zero-length segment on every point (so dots show)
    a = torch.cat([px[:, :-1], px], 1)  # (B, M, 2), M = 2N - 1
    b = torch.cat([px[:, 1:], px], 1)  # (B, M, 2)
    ok = torch.cat([valid[:, 1:] & (flags[:, :-1] == FLAG_CONTINUE), valid], 1)  # (B, M)
    sketch, _ = ok.nonzero(as_tuple=True)  # (K,) sketch of each drawn segment
    a, d = a[ok], (b - a)[ok]  # (K, 2)
    n = d.abs().amax(1).ceil().long() + 1  # (K,) samples: one per pixel step along the major axis (DDA)
    seg = torch.repeat_interleave(torch.arange(len(n), device=n.device), n)  # (T,) segment of each sample
    k = torch.arange(len(seg), device=n.device) - (n.cumsum(0) - n)[seg]  # (T,) 0..n-1 within its segment
    t = (k / (n[seg] - 1).clamp(min=1))[:, None]  # (T, 1)
    ij = (a[seg] + d[seg] * t).round().long().clamp(0, size - 1)  # (T, 2) (col, row)
    canvas = torch.zeros(B * size * size, device=coords.device)
    canvas[(sketch[seg] * size + ij[:, 1]) * size + ij[:, 0]] = 1.0
    img = canvas.view(B, 1, size, size)  # (B, 1, size, size)
    if line_width > 1:
        img = F.max_pool2d(img, line_width, stride=1, padding=line_width // 2)
    return img


@dataclass
class CNNConfig:
    """A plain CNN on ``image_size`` rasters: per width in ``channels`` a conv3x3-BN-ReLU-maxpool2 block, then
    global average pooling, dropout and a Linear (393,460 parameters at 20 classes).

    Attributes:
        num_classes: outputs (the dataset's class count; set by training, not by a ``[model]`` table).
        image_size: side of the square raster in pixels each sketch is drawn into (``rasterize_batch``).
        channels: output channels of each conv block; each block halves the raster.
        line_width: stroke width in pixels on the raster (odd: a line widens by the same on both sides; 1 = one-pixel
            lines).
        dropout: dropout before the final Linear.
        preset: the preset it was built from (recorded, not a setting).
    """

    num_classes: int = 345
    image_size: int = 64
    channels: tuple[int, ...] = (32, 64, 128, 256)
    line_width: int = 1
    dropout: float = 0.0
    preset: str | None = None

    def __post_init__(self) -> None:
        """Check every field (``ValueError`` messages start with ``CNNConfig.<field>``): integer sizes >= 1, an
        ``image_size`` that survives one halving per block, an odd ``line_width``, a dropout in [0, 1)."""
        self.channels = _widths("CNNConfig", "channels", self.channels)
        check_int("CNNConfig", "num_classes", self.num_classes, 1)
        check_int("CNNConfig", "line_width", self.line_width, 1)
        if self.line_width % 2 == 0:
            raise ValueError(f"CNNConfig.line_width must be odd (lines widen symmetrically), got {self.line_width}")
        check_int("CNNConfig", "image_size", self.image_size, max(8, 2 ** len(self.channels)),
                  f" (at least 8, and each of the {len(self.channels)} blocks halves it)")
        check_probability("CNNConfig", "dropout", self.dropout)


class SketchCNN(nn.Module):
    """``forward(batch) -> logits (B, C)``; rasterises the batch itself (``rasterize_batch``)."""

    arch = "cnn"
    relations: tuple[str, ...] = ()

    def __init__(self, config: CNNConfig) -> None:
        super().__init__()
        self.config = cfg = config
        blocks, c_in = [], 1
        for c in cfg.channels:
            blocks += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(cfg.dropout),
                                  nn.Linear(c_in, cfg.num_classes))

    def forward(self, batch: Batch) -> torch.Tensor:
        img = rasterize_batch(batch.coords, batch.flags, self.config.image_size,
                              line_width=self.config.line_width)  # (B, 1, S, S)
        return self.head(self.features(img))  # (B, C)


@dataclass
class BiGRUConfig:
    """The paper's RNN baseline (official ``GRUNet``): input ``Linear(xy) + E(flag) + E(position)`` (one shared
    ``Embedding(103)``), a bidirectional multi-layer GRU, readout = the last layer's final hidden states of both
    directions (forward at the sketch's last valid point, backward at its first), then a classifier MLP
    (``classifier=()``: one Linear, as the official code).

    Attributes:
        num_classes: outputs (the dataset's class count; set by training, not by a ``[model]`` table).
        embed_dim: width of the input embedding (coordinates, pen flag and position, summed).
        hidden: GRU hidden size per direction (the readout is ``2 * hidden`` wide).
        layers: stacked bidirectional GRU layers.
        dropout: between GRU layers (when ``layers > 1``) and between the classifier's hidden layers.
        coord_norm: ``"none"``: the stored coordinates as they are; ``"unit"``: each sketch fitted into [-1, 1]
            (``normalize_coords``) before the embedding.
        classifier: hidden widths of the classifier MLP (``()``: one Linear).
        preset: the preset it was built from (recorded, not a setting).
    """

    num_classes: int = 345
    embed_dim: int = 256
    hidden: int = 256
    layers: int = 5
    dropout: float = 0.5
    coord_norm: str = "none"
    classifier: tuple[int, ...] = ()
    preset: str | None = None

    def __post_init__(self) -> None:
        """Check every field (``ValueError`` messages start with ``BiGRUConfig.<field>``): integer sizes >= 1,
        classifier widths >= 1, a dropout in [0, 1), a known ``coord_norm``."""
        self.classifier = _widths("BiGRUConfig", "classifier", self.classifier)
        if self.coord_norm not in ("none", "unit"):
            raise ValueError(f"BiGRUConfig.coord_norm must be 'none' or 'unit', got {self.coord_norm!r}")
        for name in ("num_classes", "embed_dim", "hidden", "layers"):
            check_int("BiGRUConfig", name, getattr(self, name), 1)
        check_probability("BiGRUConfig", "dropout", self.dropout)


class BiGRU(nn.Module):
    """``forward(batch) -> logits (B, C)``; padding is skipped with packed sequences (unlike the official code,
    which reads the output at step 100 whatever the sketch's length)."""

    arch = "bigru"
    relations: tuple[str, ...] = ()

    def __init__(self, config: BiGRUConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.coord_embed = nn.Linear(2, cfg.embed_dim, bias=False)
        self.token_embed = nn.Embedding(FLAG_PAD + 1, cfg.embed_dim)  # positions 0..99, flags 100..102
        self.gru = nn.GRU(cfg.embed_dim, cfg.hidden, cfg.layers, batch_first=True, bidirectional=True,
                          dropout=cfg.dropout if cfg.layers > 1 else 0.0)
        self.classifier = _mlp([2 * cfg.hidden, *cfg.classifier, cfg.num_classes], act="relu", dropout=cfg.dropout,
                               final_act=False, final_dropout=False)

    def forward(self, batch: Batch) -> torch.Tensor:
        xy = normalize_coords(batch.coords, batch.valid) if self.config.coord_norm == "unit" else batch.coords
        x = self.coord_embed(xy) + self.token_embed(batch.flags) + self.token_embed(batch.position)  # (B, N, E)
        lengths = batch.lengths.clamp(min=1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, h_n = self.gru(packed)  # (layers * 2, B, hidden), in batch order
        g = torch.cat([h_n[-2], h_n[-1]], -1)  # (B, 2 * hidden): last layer, forward and backward
        return self.classifier(g)  # (B, C)
