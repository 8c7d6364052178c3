"""Reading a CUDA shared library's kernel stubs, and matching profiler kernel names against them."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import pytest

from sandbox.runtime.extension_kernels import (
    device_stubs,
    is_extension_kernel,
    kernel_identifier,
    mapped_libraries,
)

_SOURCE = r"""
__global__ void relu_kernel(const float* x, float* y, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = x[i] > 0.f ? x[i] : 0.f;
}
namespace kw { namespace detail {
template <typename T> __global__ void scale_kernel(T* x, T factor, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= factor;
}
template __global__ void scale_kernel<float>(float*, float, int);
} }
extern "C" int host_helper(int n) { return n + 1; }
"""


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("needs nvcc (the CUDA toolkit) to build a shared library with kernels")
    folder = tmp_path_factory.mktemp("ext")
    (folder / "kernels.cu").write_text(_SOURCE)
    out = folder / "libkw_kernels.so"
    subprocess.run(
        [nvcc, "-shared", "-Xcompiler", "-fPIC", "-o", str(out), str(folder / "kernels.cu")],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def test_a_library_s_kernels_are_read_from_its_stubs(library: Path) -> None:
    stubs = device_stubs(library)
    assert stubs and all("11relu_kernel" in stub or "12scale_kernel" in stub for stub in stubs), stubs
    # the profiler's demangled names of these kernels
    assert is_extension_kernel("relu_kernel(float const*, float*, int)", stubs)
    assert is_extension_kernel("void kw::detail::scale_kernel<float>(float*, float, int)", stubs)
    # PyTorch's and cuBLAS's kernels are not the extension's
    assert not is_extension_kernel(
        "void at::native::vectorized_elementwise_kernel<4, at::native::(anonymous namespace)::"
        "clamp_min_scalar_kernel_impl(at::TensorIteratorBase&, c10::Scalar)::{lambda()#1}>(int, float*)",
        stubs,
    )
    assert not is_extension_kernel("sm90_xmma_gemm_f32f32_tf32f32_f32_nn_n_tilesize128x128x32", stubs)
    assert not is_extension_kernel("host_helper", stubs)  # a host function has no device stub


def test_a_loaded_library_is_among_the_mapped_ones(library: Path) -> None:
    before = mapped_libraries()
    assert str(library) not in before and any("libc" in path for path in before)
    ctypes.CDLL(str(library))
    assert str(library) in mapped_libraries() - before


def test_files_that_are_not_elf_libraries_hold_no_kernels(tmp_path: Path) -> None:
    (tmp_path / "text.so").write_text("__device_stub__Z11relu_kernelPKfPfi, but not in an ELF file")
    (tmp_path / "short.so").write_bytes(b"\x7fELF")
    assert device_stubs(tmp_path / "text.so") == frozenset()
    assert device_stubs(tmp_path / "short.so") == frozenset()
    assert device_stubs(tmp_path / "missing.so") == frozenset()


@pytest.mark.parametrize(
    ("name", "identifier"),
    [
        ("relu_kernel(float const*, float*, int)", "relu_kernel"),
        ("void relu_kernel(float const*, float*, int)", "relu_kernel"),
        ("void kw::detail::scale_kernel<float>(float*, float, int)", "scale_kernel"),
        ("void (anonymous namespace)::tile_kernel<64>(float*)", "tile_kernel"),
        ("ampere_sgemm_128x64_nn", "ampere_sgemm_128x64_nn"),
        ("", ""),
    ],
)
def test_kernel_identifiers_from_profiler_names(name: str, identifier: str) -> None:
    assert kernel_identifier(name) == identifier
