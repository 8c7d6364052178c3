"""The closeness test of `compare.py` fused into one CUDA kernel, for large GPU outputs.

The torch version makes about twenty passes over every chunk of an output: on a 1.6 G-element
KernelBench output that is 160 ms a draw on an H100, most of the verifier's correctness time. This kernel
reads the reference and the candidate's output once (7 ms there) and leaves eight figures in a small
buffer: per-thread float64 sums and float32 maxima, combined per block and then with atomics. It goes
through our own launch API (a cubin compiled once per machine and cached, loaded in about a
millisecond), not Triton, whose first launch in each new worker process costs half a second. Decisions
and figures match the torch version's (a GPU test runs both on the same data), except that a NaN in the
candidate's output does not show in the max figures: it is still counted as a violation.
(Standard library + torch; the reference worker uses this only on a GPU.)
"""

from __future__ import annotations

import ctypes
from typing import Any

import torch

from sandbox.runtime.launch import Kernel, load_cuda

__all__ = ["FIGURES", "fused_figures"]

FIGURES = (
    "sum_abs",
    "sq_diff",
    "sq_ref",
    "max_abs",
    "max_rel",
    "violations",
    "nonfinite_out",
    "nonfinite_ref",
)

_SOURCE = r"""
#include <cuda_fp16.h>
#include <cuda_bf16.h>

__device__ __forceinline__ float as_float(float v) { return v; }
__device__ __forceinline__ float as_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float as_float(__nv_bfloat16 v) { return __bfloat162float(v); }

// figures: [0] sum |d|, [1] sum d^2, [2] sum r^2 (finite r), as doubles;
// [3] max |d|, [4] max |d|/|r| as float bits in the low word; [5] violations,
// [6] non-finite outputs where r is finite, [7] non-finite references, as counts.
template <typename T>
__device__ void judge(const T* __restrict__ ref, const T* __restrict__ out, long long n,
                      float atol, float rtol, unsigned long long* figures) {
    double sum_abs = 0.0, sq_diff = 0.0, sq_ref = 0.0;
    float max_abs = 0.0f, max_rel = 0.0f;
    unsigned long long bad = 0, nonfinite_out = 0, nonfinite_ref = 0;
    long long stride = (long long)gridDim.x * blockDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float r = as_float(ref[i]);
        float o = as_float(out[i]);
        bool finite = isfinite(r);
        float d = finite ? fabsf(o - r) : 0.0f;
        float m = finite ? fabsf(r) : 0.0f;
        bool within = d <= m * rtol + atol;  // false when d is NaN
        bool same_special = finite || r == o || (isnan(r) && isnan(o));
        bad += (!within || !same_special) ? 1ull : 0ull;
        nonfinite_out += (finite && !isfinite(o)) ? 1ull : 0ull;
        nonfinite_ref += finite ? 0ull : 1ull;
        sum_abs += (double)d;
        sq_diff += (double)d * (double)d;
        sq_ref += finite ? (double)r * (double)r : 0.0;
        max_abs = fmaxf(max_abs, d);                 // fmaxf skips NaN
        max_rel = fmaxf(max_rel, d / fmaxf(m, 1e-12f));
    }
    for (int offset = 16; offset > 0; offset >>= 1) {
        sum_abs += __shfl_down_sync(0xffffffffu, sum_abs, offset);
        sq_diff += __shfl_down_sync(0xffffffffu, sq_diff, offset);
        sq_ref += __shfl_down_sync(0xffffffffu, sq_ref, offset);
        max_abs = fmaxf(max_abs, __shfl_down_sync(0xffffffffu, max_abs, offset));
        max_rel = fmaxf(max_rel, __shfl_down_sync(0xffffffffu, max_rel, offset));
        bad += __shfl_down_sync(0xffffffffu, bad, offset);
        nonfinite_out += __shfl_down_sync(0xffffffffu, nonfinite_out, offset);
        nonfinite_ref += __shfl_down_sync(0xffffffffu, nonfinite_ref, offset);
    }
    if ((threadIdx.x & 31) == 0) {
        atomicAdd((double*)&figures[0], sum_abs);
        atomicAdd((double*)&figures[1], sq_diff);
        atomicAdd((double*)&figures[2], sq_ref);
        // non-negative floats order like their bit patterns
        atomicMax((unsigned int*)&figures[3], __float_as_uint(max_abs));
        atomicMax((unsigned int*)&figures[4], __float_as_uint(max_rel));
        atomicAdd(&figures[5], bad);
        atomicAdd(&figures[6], nonfinite_out);
        atomicAdd(&figures[7], nonfinite_ref);
    }
}

extern "C" __global__ void judge_f32(const float* ref, const float* out, long long n, float atol,
                                     float rtol, unsigned long long* figures) {
    judge<float>(ref, out, n, atol, rtol, figures);
}
extern "C" __global__ void judge_f16(const __half* ref, const __half* out, long long n, float atol,
                                     float rtol, unsigned long long* figures) {
    judge<__half>(ref, out, n, atol, rtol, figures);
}
extern "C" __global__ void judge_bf16(const __nv_bfloat16* ref, const __nv_bfloat16* out, long long n,
                                      float atol, float rtol, unsigned long long* figures) {
    judge<__nv_bfloat16>(ref, out, n, atol, rtol, figures);
}
"""

_NAMES = {torch.float32: "judge_f32", torch.float16: "judge_f16", torch.bfloat16: "judge_bf16"}
_THREADS = 256
_kernels: dict[str, Kernel] = {}


def _kernel(name: str) -> Kernel:
    if name not in _kernels:
        module = load_cuda(_SOURCE)
        for each in _NAMES.values():
            _kernels[each] = module.get_function(each)
    return _kernels[name]


def fused_figures(ref: torch.Tensor, out: torch.Tensor, atol: float, rtol: float) -> dict[str, Any]:
    """The figures of `out` against `ref` (same shape, 32- or 16-bit float, on one GPU) from one pass."""
    name = _NAMES[ref.dtype]
    flat_ref, flat_out = ref.reshape(-1).contiguous(), out.reshape(-1).contiguous()
    figures = torch.zeros(8, dtype=torch.int64, device=ref.device)
    blocks = max(1, min(4096, -(-flat_ref.numel() // _THREADS)))
    _kernel(name)(
        grid=(blocks, 1, 1),
        block=(_THREADS, 1, 1),
        args=(flat_ref, flat_out, ctypes.c_int64(flat_ref.numel()), float(atol), float(rtol), figures),
    )
    raw = figures.cpu()
    sums = raw[:3].view(torch.float64).tolist()
    maxima = raw[3:5].to(torch.int32).view(torch.float32).tolist()
    counts = raw[5:].tolist()
    return dict(zip(FIGURES, [*sums, *maxima, *(float(c) for c in counts)], strict=True))
