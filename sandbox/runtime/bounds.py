"""Speed-of-light bound of a problem on this GPU (stdlib + torch only; runs in the reference worker).

No kernel can finish faster than it takes to move the bytes it must touch at the GPU's peak memory
bandwidth, nor faster than its floating-point work at the GPU's peak tensor-core rate. Both peaks are
measured here (a large device-to-device copy; a large bf16 matmul, the fastest arithmetic that can still
pass fp32 tolerances) and cached per GPU model in a JSON file, because they cost about a second. The
work is counted on the reference itself: bytes of its inputs, parameters and outputs (each must be
read or written at least once, from DRAM: timed trials get fresh inputs and a flushed L2), FLOPs from
torch's FLOP counter.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import torch

__all__ = ["Peaks", "load_or_measure_peaks", "problem_bound"]

Peaks = dict[str, float]  # {"bandwidth_gbs": ..., "tensor_tflops": ...}

_COPY_ELEMENTS = 256 * 1024 * 1024  # 1 GiB of fp32 read + 1 GiB written
_MATMUL_N = 8192


def _best_ms(fn: Any, repeats: int = 5) -> float:
    fn()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
        start.record()
        fn()
        end.record()
        end.synchronize()
        best = min(best, float(start.elapsed_time(end)))
    return best


def _copy_gbs(device: torch.device) -> float:
    src = torch.empty(_COPY_ELEMENTS, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    copy_ms = _best_ms(lambda: dst.copy_(src))
    return 2 * src.numel() * src.element_size() / (copy_ms * 1e-3) / 1e9


def _matmul_tflops(device: torch.device) -> float:
    a = torch.randn(_MATMUL_N, _MATMUL_N, dtype=torch.bfloat16, device=device)
    b = torch.randn(_MATMUL_N, _MATMUL_N, dtype=torch.bfloat16, device=device)
    mm_ms = _best_ms(lambda: torch.mm(a, b))
    return 2 * _MATMUL_N**3 / (mm_ms * 1e-3) / 1e12


def measure_peaks(device: torch.device) -> Peaks:
    """Peak copy bandwidth (GB/s) and bf16 matmul rate (TFLOP/s), best of a few runs."""
    with torch.no_grad():
        peaks = {"bandwidth_gbs": _copy_gbs(device), "tensor_tflops": _matmul_tflops(device)}
    torch.cuda.empty_cache()  # give the scratch buffers back before the problem's own tensors grow
    return peaks


def load_or_measure_peaks(device: torch.device, cache: Path | None) -> Peaks:
    """The cached peaks of this GPU model, measured and stored first when missing."""
    name = torch.cuda.get_device_name(device)
    known: dict[str, Any] = {}
    if cache is not None and cache.is_file():
        with contextlib.suppress(OSError, ValueError):
            known = json.loads(cache.read_text(encoding="utf-8"))
    entry = known.get(name)
    if isinstance(entry, dict) and {"bandwidth_gbs", "tensor_tflops"} <= entry.keys():
        return {k: float(entry[k]) for k in ("bandwidth_gbs", "tensor_tflops")}
    peaks = measure_peaks(device)
    if cache is not None:
        known[name] = peaks
        with contextlib.suppress(OSError):
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(known, indent=1), encoding="utf-8")
            tmp.replace(cache)  # atomic: concurrent workers never read half a file
    return peaks


def _tensor_bytes(values: Any) -> int:
    if isinstance(values, torch.Tensor):
        return values.numel() * values.element_size()
    if isinstance(values, list | tuple):
        return sum(_tensor_bytes(v) for v in values)
    return 0


def problem_bound(model: Any, inputs: list[Any], peaks: Peaks) -> dict[str, float]:
    """Bytes, FLOPs and the minimum milliseconds any implementation of `model(*inputs)` needs here."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        outputs = model(*inputs)
    params = sum(_tensor_bytes(p) for p in model.parameters()) + sum(
        _tensor_bytes(b) for b in model.buffers()
    )
    moved = _tensor_bytes(list(inputs)) + _tensor_bytes(outputs) + params
    flops = float(counter.get_total_flops())
    memory_ms = moved / (peaks["bandwidth_gbs"] * 1e9) * 1e3
    compute_ms = flops / (peaks["tensor_tflops"] * 1e12) * 1e3
    return {
        "bytes": float(moved),
        "flops": flops,
        "memory_ms": memory_ms,
        "compute_ms": compute_ms,
        "min_ms": max(memory_ms, compute_ms),
        **peaks,
    }
