"""The launch API on a real NVIDIA GPU: PTX and CUDA kernels against torch, and the cache-hit path."""

from __future__ import annotations

import asyncio
import ctypes
import importlib.util
import shutil
from pathlib import Path

import pytest
import torch

from sandbox.runtime import CudaDriverError, KernelCompileError, compilers, load_cubin, load_cuda, load_ptx
from sandbox.runtime.kernel_cache import CACHE_ENV, format_arch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs an NVIDIA GPU (torch.cuda.is_available() is False)"
    ),
]

RELU_PTX = r"""
.version 8.0
.target sm_80
.address_size 64

.visible .entry relu(.param .u64 x_ptr, .param .u64 y_ptr, .param .u32 n)
{
    .reg .pred %p<2>;
    .reg .b32 %r<6>;
    .reg .f32 %f<3>;
    .reg .b64 %rd<8>;

    ld.param.u64 %rd1, [x_ptr];
    ld.param.u64 %rd2, [y_ptr];
    ld.param.u32 %r1, [n];
    mov.u32 %r2, %ctaid.x;
    mov.u32 %r3, %ntid.x;
    mov.u32 %r4, %tid.x;
    mad.lo.s32 %r5, %r2, %r3, %r4;
    setp.ge.u32 %p1, %r5, %r1;
    @%p1 bra DONE;
    cvta.to.global.u64 %rd3, %rd1;
    cvta.to.global.u64 %rd4, %rd2;
    mul.wide.u32 %rd5, %r5, 4;
    add.s64 %rd6, %rd3, %rd5;
    add.s64 %rd7, %rd4, %rd5;
    ld.global.f32 %f1, [%rd6];
    max.f32 %f2, %f1, 0f00000000;
    st.global.f32 [%rd7], %f2;
DONE:
    ret;
}
"""

VADD_CU = r"""
extern "C" __global__ void vadd(const float* a, const float* b, float* c, long long n, float alpha) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) c[i] = a[i] + alpha * b[i];
}

extern "C" __global__ void smem_reverse(const float* x, float* y, int n) {
    extern __shared__ float tile[];
    int i = threadIdx.x;
    for (int j = i; j < n; j += blockDim.x) tile[j] = x[j];
    __syncthreads();
    for (int j = i; j < n; j += blockDim.x) y[j] = tile[n - 1 - j];
}
"""

CANDIDATE = f'''import torch
from sandbox.runtime import load_ptx

PTX = r"""{RELU_PTX}"""


class ModelNew(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.kernel = load_ptx(PTX).get_function("relu")

    def forward(self, x):
        y = torch.empty_like(x)
        n = x.numel()
        self.kernel(grid=((n + 255) // 256, 1, 1), block=(256, 1, 1), args=(x, y, n))
        return y
'''


@pytest.fixture(autouse=True)
def no_shared_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CACHE_ENV, raising=False)


def device_arch() -> str:
    return format_arch(*torch.cuda.get_device_capability())


def relu_check(kernel: object) -> None:
    x = torch.randn(10_000, device="cuda")
    y = torch.empty_like(x)
    n = x.numel()
    kernel(grid=((n + 255) // 256, 1, 1), block=(256, 1, 1), args=(x, y, n))  # type: ignore[operator]
    torch.cuda.synchronize()
    torch.testing.assert_close(y, torch.relu(x))


def test_ptx_through_the_driver_jit() -> None:
    module = load_ptx(RELU_PTX)
    assert module.origin == "driver-jit"
    kernel = module.get_function("relu")
    assert kernel.num_regs > 0 and kernel.max_threads_per_block >= 256
    relu_check(kernel)


def test_cuda_through_nvcc_or_nvrtc() -> None:
    module = load_cuda(VADD_CU)
    assert module.origin in ("nvcc", "nvrtc")
    kernel = module.get_function("vadd")
    a, b = torch.randn(5000, device="cuda"), torch.randn(5000, device="cuda")
    c = torch.empty_like(a)
    kernel(grid=(5000 + 127) // 128, block=128, args=(a, b, c, ctypes.c_int64(5000), 0.5))
    torch.cuda.synchronize()
    torch.testing.assert_close(c, a + 0.5 * b)
    assert load_cuda(VADD_CU).origin == "memory"  # compiled once per process


def test_cuda_through_nvrtc(monkeypatch: pytest.MonkeyPatch) -> None:
    if compilers.load_nvrtc() is None:
        pytest.skip("no libnvrtc on this machine")
    monkeypatch.setattr(compilers, "find_nvcc", lambda: None)
    module = load_cuda(VADD_CU + "\n// nvrtc\n")
    assert module.origin == "nvrtc"
    a = torch.randn(300, device="cuda")
    c = torch.empty_like(a)
    module.get_function("vadd")(grid=3, block=128, args=(a, a, c, ctypes.c_int64(300), 1.0))
    torch.cuda.synchronize()
    torch.testing.assert_close(c, 2 * a)


def test_large_dynamic_shared_memory_and_streams() -> None:
    kernel = load_cuda(VADD_CU).get_function("smem_reverse")
    n = 25_000  # 100 KB of floats: above the 48 KiB default, so the kernel must be opted in
    x = torch.randn(n, device="cuda")
    y = torch.empty_like(x)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())  # x was written on the default stream
    with torch.cuda.stream(stream):
        kernel(grid=1, block=1024, args=(x, y, n), shared_mem=n * 4)
    kernel(grid=1, block=1024, args=(x, y, n), shared_mem=n * 4, stream=stream)
    stream.synchronize()
    torch.testing.assert_close(y, x.flip(0))


def test_cache_hit_uses_the_services_cubin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pydantic_settings", reason="the service side (kernelwright) is not installed here")
    if shutil.which("ptxas") is None or shutil.which("nvcc") is None:
        pytest.skip("ptxas/nvcc not installed")
    from kernelwright.domain import Candidate, Target
    from kernelwright.settings import Settings
    from sandbox.compile import compile_candidate

    settings = Settings(_env_file=None, home=tmp_path / "home")  # type: ignore[call-arg]
    cache = tmp_path / "cache"
    cuda_candidate = (
        "from sandbox.runtime import load_cuda\n"
        f'SRC = r"""{VADD_CU}"""\n'
        "k = load_cuda(SRC, options=('-use_fast_math',))\n"
    )
    for target, source in ((Target.PTX, CANDIDATE), (Target.CUDA, cuda_candidate)):
        result = asyncio.run(
            compile_candidate(
                Candidate(target=target, source=source), settings, arch=device_arch(), cache_dir=cache
            )
        )
        assert result.ok, [d.render() for d in result.diagnostics]
    monkeypatch.setenv(CACHE_ENV, str(cache))
    spec = importlib.util.spec_from_loader("candidate", loader=None)
    assert spec is not None
    candidate = importlib.util.module_from_spec(spec)
    exec(compile(CANDIDATE, "candidate.py", "exec"), candidate.__dict__)
    model = candidate.ModelNew()
    assert model.kernel.module.origin == "cache"
    x = torch.randn(1000, device="cuda")
    torch.testing.assert_close(model(x), torch.relu(x))
    assert load_cuda(VADD_CU, options=("-use_fast_math",)).origin == "cache"
    # A corrupt cached cubin is not fatal: the worker compiles the source itself.
    for path in cache.glob("*.cubin"):
        path.write_bytes(b"garbage")
    assert load_ptx(RELU_PTX).origin == "driver-jit"


def test_load_cubin_and_errors() -> None:
    if shutil.which("ptxas") is None:
        pytest.skip("ptxas not installed")
    image = compilers.compile_cuda(VADD_CU, device_arch())[0]
    module = load_cubin(image)
    assert module.origin == "cubin"
    kernel = module.get_function("vadd")
    with pytest.raises(CudaDriverError, match='extern "C"'):
        module.get_function("vadd_typo")
    a = torch.ones(4, device="cuda")
    with pytest.raises(TypeError, match=r"takes 5 parameter\(s\).*4 argument"):
        kernel(grid=1, block=4, args=(a, a, a, ctypes.c_int64(4)))
    with pytest.raises(TypeError, match="argument 3 of kernel 'vadd' is 4 bytes"):
        kernel(grid=1, block=4, args=(a, a, a, 4, 1.0))
    with pytest.raises(TypeError, match="argument 0 is a tensor on cpu"):
        kernel(grid=1, block=4, args=(a.cpu(), a, a, ctypes.c_int64(4), 1.0))
    with pytest.raises(ValueError, match="exceeds the CUDA limit of 1024"):
        kernel(grid=1, block=2048, args=(a, a, a, ctypes.c_int64(4), 1.0))


def test_ptx_jit_error_carries_the_log() -> None:
    with pytest.raises(KernelCompileError) as caught:
        load_ptx(RELU_PTX.replace("max.f32", "maxx.f32"))
    assert "maxx" in caught.value.log


def test_cuda_compile_error_carries_the_log() -> None:
    with pytest.raises(KernelCompileError) as caught:
        load_cuda('extern "C" __global__ void k() { undefined_thing(); }')
    assert "undefined_thing" in caught.value.log
