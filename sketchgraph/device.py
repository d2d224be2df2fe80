"""Where a model runs: a torch device name checked against what this machine has, and the CPUs it may use."""

from __future__ import annotations

import os

import torch

__all__ = ["usable_device", "usable_cpus"]


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
            raise ValueError(f"device {str(dev)!r} is not usable here: {why}; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(dev)!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(dev)!r} is not usable here: Apple MPS is not available")
    return dev
