"""KernelBench L1/1 (Square_matrix_multiplication), load_inline twin.

C = A @ B for N = 4096. An honest register-tiled fp32 kernel (64 x 64 tiles, 4 x 4 per thread, shared-memory
staging), correct for any M, N, K, not competitive with cuBLAS.

The `load_inline` twin of 1_square_matmul_cuda.py: the same kernels plus a torch C++ launcher, built in the
worker with torch.utils.cpp_extension.load_inline as KernelBench baselines are, for bench/verify_speed.py's
comparison. kernelwright accepts such candidates on the cuda
target with a warning (check.extension_build); their launches bypass the launch API, so the
guard finds their kernels by profiling each correctness call.
"""

from __future__ import annotations

import torch
from torch.utils.cpp_extension import load_inline

CUDA_SRC = r"""
#include <torch/extension.h>
#include <c10/cuda/CUDAStream.h>

static inline int blocks_for(long long n)
{
    long long b = (n + 255) / 256;
    return (int)(b < 1 ? 1 : (b > 8192 ? 8192 : b));
}
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

torch::Tensor run(torch::Tensor A, torch::Tensor B)
{
    auto a = A.contiguous();
    auto b = B.contiguous();
    const int m = (int)a.size(0), k = (int)a.size(1), n = (int)b.size(1);
    auto c = torch::empty({m, n}, a.options());
    dim3 grid((n + 63) / 64 > 0 ? (n + 63) / 64 : 1, (m + 63) / 64 > 0 ? (m + 63) / 64 : 1);
    matmul_tiled<<<grid, 256, 0, c10::cuda::getCurrentCUDAStream()>>>(
        a.data_ptr<float>(), b.data_ptr<float>(), c.data_ptr<float>(), m, n, k, a.stride(0), a.stride(1),
        b.stride(0), b.stride(1));
    return c;
}
"""

CPP_SRC = "torch::Tensor run(torch::Tensor A, torch::Tensor B);"


class ModelNew(torch.nn.Module):
    """The reference `Model`'s constructor and forward, through the load_inline extension."""

    def __init__(self) -> None:
        super().__init__()
        self.ext = load_inline(
            name="kb_l1_1_square_matmul",
            cpp_sources=CPP_SRC,
            cuda_sources=CUDA_SRC,
            functions=["run"],
        )

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        out = self.ext.run(A.contiguous(), B.contiguous())
        return out
