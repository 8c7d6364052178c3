"""KernelBench L1/1 (Square_matrix_multiplication), CUDA C++ candidate.

C = A @ B for N = 4096. An honest register-tiled fp32 kernel (64 x 64 tiles, 4 x 4 per thread, shared-memory
staging), correct for any M, N, K, not competitive with cuBLAS.

Bench material for bench/verify_speed.py (time to verdict): hand-written, honest (the kernels compute the
result), correct for any input values and the problem's shapes, not tuned.
"""

from __future__ import annotations

import ctypes

import torch

from sandbox.runtime import load_cuda

SRC = r"""
// C (M, N) = A (M, K) @ B (K, N) with A(m, k) = A[m * sam + k * sak] and B(k, n) = B[k * sbk + n * sbn],
// so one kernel serves B and B.T. 64 x 64 output tile per block of 256 threads, each thread 4 x 4
// outputs (rows ty + 16 i, cols tx + 16 j: conflict-free shared reads), K in steps of 16, fp32 FMA.
extern "C" __global__ void __launch_bounds__(256) matmul_tiled(
    const float* __restrict__ A, const float* __restrict__ B, float* __restrict__ C, int M, int N, int K,
    long long sam, long long sak, long long sbk, long long sbn)
{
    __shared__ float As[16][64];
    __shared__ float Bs[16][64];
    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int m0 = blockIdx.y * 64, n0 = blockIdx.x * 64;
    float acc[4][4] = {};
    for (int k0 = 0; k0 < K; k0 += 16) {
        for (int l = 0; l < 4; ++l) {
            const int e = tid + 256 * l;
            const int row = e >> 4, kk = e & 15;  // A: 16 consecutive k per row (coalesced when sak == 1)
            const int gm = m0 + row, gk = k0 + kk;
            As[kk][row] = (gm < M && gk < K) ? A[(long long)gm * sam + (long long)gk * sak] : 0.0f;
        }
        for (int l = 0; l < 4; ++l) {
            const int e = tid + 256 * l;
            int kk, col;
            if (sbk == 1) { kk = e & 15; col = e >> 4; }  // B.T: consecutive k are adjacent in memory
            else { kk = e >> 6; col = e & 63; }           // B: consecutive n are adjacent in memory
            const int gk = k0 + kk, gn = n0 + col;
            Bs[kk][col] = (gk < K && gn < N) ? B[(long long)gk * sbk + (long long)gn * sbn] : 0.0f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < 16; ++kk) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) a[i] = As[kk][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; ++j) b[j] = Bs[kk][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int gm = m0 + ty + 16 * i;
        if (gm >= M) continue;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int gn = n0 + tx + 16 * j;
            if (gn < N) C[(long long)gm * N + gn] = acc[i][j];
        }
    }
}
"""

_THREADS = 256
_MAX_BLOCKS = 8192


def _blocks(n: int) -> int:
    """Blocks for a grid-stride loop over n items: enough to fill an H100, at least one."""
    return max(1, min(-(-n // _THREADS), _MAX_BLOCKS))


class ModelNew(torch.nn.Module):
    """The reference `Model`'s constructor and forward, computed by the kernels above."""

    def __init__(self) -> None:
        super().__init__()
        module = load_cuda(SRC)
        self.kernel = module.get_function("matmul_tiled")

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        a = A.contiguous()
        b = B.contiguous()
        m, k = a.shape
        n = b.shape[1]
        sbk, sbn = (b.stride(0), b.stride(1))
        c = torch.empty((m, n), device=a.device, dtype=a.dtype)
        self.kernel(
            grid=(max(1, -(-n // 64)), max(1, -(-m // 64)), 1),
            block=(256, 1, 1),
            args=(
                a,
                b,
                c,
                m,
                n,
                k,
                ctypes.c_int64(a.stride(0)),
                ctypes.c_int64(a.stride(1)),
                ctypes.c_int64(sbk),
                ctypes.c_int64(sbn),
            ),
        )
        return c
