"""Multiply-accumulate counts (MACs) per sketch, measured by running the model.

``count_macs`` runs one eval-mode forward under ``torch.utils.flop_counter.FlopCounterMode``, which sees every
matmul, linear layer, convolution and (on CPU, where ``nn.GRU`` runs as matmuls) GRU cell; 1 MAC = 2 FLOPs.
Attention is counted on the dense backend's plain path (``fused = False``), i.e. the full ``N x N`` score and
weighted-sum matmuls whatever the mask, as the paper's model computes them. Element-wise ops (softmax, norms,
activations, embeddings) are not counted.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..batch import Batch
from .attention import GraphAttention

__all__ = ["count_macs"]


@torch.no_grad()
def count_macs(model: nn.Module, batch: Batch) -> int:
    """MACs per sketch of one forward pass over ``batch`` (averaged over its sketches; padding included, so
    pass sketches of the length you care about, e.g. all 100 points to compare with the paper)."""
    attns = [m for m in model.modules() if isinstance(m, GraphAttention)]
    saved = [(m.backend, m.fused) for m in attns]
    was_training = model.training
    model.eval()
    try:
        for m in attns:
            m.backend, m.fused = "dense", False
        with FlopCounterMode(display=False) as counter:
            model(batch)
        flops = counter.get_total_flops()
    finally:
        for m, (backend, fused) in zip(attns, saved):
            m.backend, m.fused = backend, fused
        model.train(was_training)
    return int(round(flops / 2 / batch.size))
