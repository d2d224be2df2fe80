"""Where a model runs: a torch device name checked against what this machine has, and the CPUs it may use."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["usable_device", "usable_cpus", "KERNEL_CACHE_ENV", "KERNEL_CACHE_ENVS", "no_kernel_cache"]

KERNEL_CACHE_ENV = "ONEDNN_PRIMITIVE_CACHE_CAPACITY"
KERNEL_CACHE_ENVS = (KERNEL_CACHE_ENV, "DNNL_PRIMITIVE_CACHE_CAPACITY")  # oneDNN reads the older name too


@contextmanager
def no_kernel_cache() -> Iterator[None]:
    """Within the block, oneDNN's cache of compiled CPU kernels is off (``ONEDNN_PRIMITIVE_CACHE_CAPACITY=0``), unless
    the user set its size (under that name or the older ``DNNL_PRIMITIVE_CACHE_CAPACITY``: their value is kept); the
    variable is removed again at the end, so processes started later do not inherit it.

    For runs over many files of drawings (``sketchgraph predict``, ``evaluate``): torch's CPU GELU compiles a oneDNN
    kernel for each input shape, and oneDNN keeps up to 1,024 of them. The layers of one model call share its
    shape, but each call of such a run has a shape of its own (the number of drawings and their padded length), so
    the kernels pile up, and the memory of the run grew with the file: a peak of 1.37 GB over 64,000 drawings
    against 0.59 GB without the cache, in the same time (``benchmarks/bench_predict_memory.py``). oneDNN reads the
    variable once, when it first builds a kernel: the block must come before the process's first GELU on the CPU
    (for the rest of the process the cache then stays off)."""
    if any(name in os.environ for name in KERNEL_CACHE_ENVS):
        yield
        return
    os.environ[KERNEL_CACHE_ENV] = "0"
    try:
        yield
    finally:
        os.environ.pop(KERNEL_CACHE_ENV, None)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def usable_device(device: str | torch.device) -> torch.device:
    """``torch.device(device)`` (``"auto"``: CUDA when available, else CPU), or a ``ValueError`` saying why this
    machine cannot use it (torch built without CUDA, no GPU, a GPU index past the last one, no Apple MPS),
    instead of torch's assertion on first use. Device types other than cpu, cuda and mps (xpu, meta, ...) are
    refused: nothing here is tested on them."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"not a torch device: {device!r} ({exc})") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {str(dev)!r}: sketchgraph runs on cpu, cuda or mps (or auto)")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "torch was built without CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ValueError(f"device {str(dev)!r} is not usable here: {why}; use the CPU "
                             "(device=\"cpu\", --device cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(dev)!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(dev)!r} is not usable here: Apple MPS is not available")
    return dev
