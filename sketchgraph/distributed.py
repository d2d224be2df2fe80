"""Multi-process training helpers (``torchrun`` / ``torch.distributed``), no-ops in one process.

``init_distributed`` reads the standard ``torchrun`` environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) and joins the process group with gloo (CPU) or
nccl (CUDA). Samples are sharded DistributedSampler-style (``shard_indices``): every rank draws the
same permutation (a function of the seed alone), keeps positions ``rank, rank + W, ...`` and, for
training, the same count as every other rank so the collective calls stay in step.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["DistContext", "init_distributed", "shard_indices", "all_reduce_sum", "agree"]

BARRIER_TIMEOUT_S = 300  # how long a finishing rank waits for the others before leaving the group


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size``, on GPU ``local_rank``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process (rank 0) writes files and shows progress."""
        return self.rank == 0

    def close(self, *, sync: bool = True) -> None:
        """Leave the process group if ``init_distributed`` created it.

        With ``sync`` (a normal end) every rank first waits for the others, so no rank tears gloo's connections
        down while another still uses them: a rank that finished first could abort at exit ("terminate called
        without an active exception"). After an error there is no waiting (the other ranks may be gone).
        """
        if self.owns_group and dist.is_initialized():
            if sync:
                try:
                    if dist.get_backend() == "gloo":
                        dist.monitored_barrier(timeout=timedelta(seconds=BARRIER_TIMEOUT_S))
                    else:
                        dist.barrier()
                except RuntimeError:  # a rank died or timed out: leave anyway
                    pass
            dist.destroy_process_group()


def init_distributed(device_type: str) -> DistContext:
    """Join the process group described by the ``torchrun`` environment (one process: no-op).

    Args:
        device_type: ``"cuda"`` selects nccl, anything else gloo.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), owns)


def shard_indices(n: int, ctx: DistContext, *, seed: int | None) -> np.ndarray:
    """This rank's sample indices out of ``n`` (a ``DataLoader`` sampler).

    Args:
        n: number of samples.
        ctx: the rank and world size W.
        seed: shuffle with this seed (same on every rank) and give every rank ``n // W`` samples;
            ``None``: keep the order and cover every sample once (ranks may differ by one).

    Returns:
        ``(m,)`` int64 indices: positions ``rank, rank + W, ...`` of the (permuted) order.
    """
    if seed is None:
        return np.arange(ctx.rank, n, ctx.world_size, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(n)
    return order[: (n // ctx.world_size) * ctx.world_size][ctx.rank :: ctx.world_size].astype(np.int64)


def all_reduce_sum(values: Sequence[float] | torch.Tensor, ctx: DistContext, device: torch.device) -> list[float]:
    """Sum numbers over ranks (float64; identity in one process)."""
    t = torch.as_tensor(values, dtype=torch.float64, device=device).detach().clone().reshape(-1)
    if ctx.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().tolist()


def agree(flag: bool, ctx: DistContext, device: torch.device) -> bool:
    """Rank 0's decision, on every rank (e.g. stopping for a time budget measured per process)."""
    if not ctx.enabled:
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.broadcast(t, src=0)
    return bool(t.item())
