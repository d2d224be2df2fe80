"""Whether bfloat16 autocast is worth it on a device.

bfloat16 autocast speeds a model up only where the hardware multiplies bfloat16 natively (CUDA GPUs from
Ampere on; CPUs with AVX512-BF16 or AMX). Elsewhere PyTorch emulates it, and the same model runs several
times SLOWER than in float32 (measured: ``predict_batch`` of the shipped checkpoint fell from 821 to 187
sketches/s on an AVX2-only CPU with ``benchmarks/bench_predict.py --precision bfloat16``). Both the
classifier and the trainer warn when asked for bfloat16 there.
"""

from __future__ import annotations

import warnings

import torch

__all__ = ["native_bf16", "warn_if_emulated_bf16"]


def native_bf16(device: torch.device | str) -> bool:
    """True when bfloat16 matrix products run natively on ``device``: ``torch.cuda.is_bf16_supported()``
    on CUDA; on CPU, oneDNN's own check for AVX512-BF16 / AMX instructions."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):  # a build without oneDNN
            return False
    return True  # other accelerators: trust the caller


def warn_if_emulated_bf16(device: torch.device | str, what: str) -> bool:
    """Warn (``RuntimeWarning``) that ``what`` runs bfloat16 emulated, hence slower, on ``device``.
    Returns whether bfloat16 is native there."""
    native = native_bf16(device)
    if not native:
        kind = torch.device(device).type
        where = f"CPU (capability {torch.backends.cpu.get_cpu_capability()})" if kind == "cpu" else kind.upper()
        warnings.warn(f"{what}: this {where} has no native bfloat16, so bfloat16 autocast is emulated and several "
                      "times slower than float32; use float32 here", RuntimeWarning, stacklevel=3)
    return native
