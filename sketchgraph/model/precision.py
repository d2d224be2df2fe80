"""Whether bfloat16 autocast is worth it on a device.

bfloat16 autocast speeds a model up only where the hardware multiplies bfloat16 natively (CUDA GPUs from
Ampere on; CPUs with AVX512-BF16 or AMX). Elsewhere PyTorch emulates it, and the same model runs several
times SLOWER than in float32 (measured: ``predict_batch`` of the shipped checkpoint fell from 821 to 187
sketches/s on an AVX2-only CPU with ``benchmarks/bench_predict.py --precision bfloat16``). Both the
classifier and the trainer warn when asked for bfloat16 there.
"""

from __future__ import annotations

import platform
import warnings

import torch

__all__ = ["native_bf16", "warn_if_emulated_bf16"]


_X86 = ("x86_64", "amd64", "i386", "i686", "x86")


def native_bf16(device: torch.device | str) -> bool:
    """True when bfloat16 matrix products run natively on ``device``.

    CUDA: compute capability 8.0 (Ampere) or later (``torch.cuda.is_bf16_supported(including_emulation=False)``: with
    emulation counted, a V100 or T4 would pass; ROCm GPUs pass). x86 CPUs: the AVX512-BF16 or AMX instructions
    (``torch.cpu._is_avx512_bf16_supported()`` / ``_is_amx_tile_supported()``). Other CPUs (ARM), or a torch without
    those two checks: oneDNN's ``_is_mkldnn_bf16_supported()``, which on x86 is true on any AVX-512 CPU, BF16 or not.
    """
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return False
        if device.index is not None and device.index != torch.cuda.current_device():  # the check reads the current GPU
            return bool(torch.version.hip) or torch.cuda.get_device_capability(device)[0] >= 8
        try:
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
        except TypeError:  # a torch before the including_emulation keyword: compare the compute capability
            return bool(torch.version.hip) or torch.cuda.get_device_capability(device)[0] >= 8
    if device.type == "cpu":
        avx512_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
        amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
        if platform.machine().lower() in _X86 and avx512_bf16 is not None and amx is not None:
            return bool(avx512_bf16() or amx())
        return _onednn_bf16()
    return True  # other accelerators: trust the caller


def _onednn_bf16() -> bool:
    """oneDNN's bfloat16 check (``False`` in a build without oneDNN)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


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
