"""Compiler command lines shared by service and worker, and the worker's own CUDA C++ compilers.

The service (`sandbox.compile`) and the worker (`load_cuda`) build their nvcc/ptxas command lines
with the functions here, so a cubin found in the shared cache was built exactly as the worker would
have built it. In the worker, CUDA C++ is compiled by nvcc when the image has it, else by NVRTC
through ctypes (`libnvrtc.so*`, e.g. from the `nvidia-cuda-nvrtc` wheel that CUDA builds of torch
pull in).

Standard library only: this runs in lean worker images.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sandbox.runtime.errors import KernelCompileError

__all__ = [
    "NVCC_FLAGS",
    "compile_cuda",
    "compile_cuda_nvcc",
    "compile_cuda_nvrtc",
    "find_nvcc",
    "has_arch_option",
    "load_nvrtc",
    "nvcc_command",
    "ptxas_command",
]

# -lineinfo costs nothing at run time and lets compute-sanitizer / ncu point at source lines.
NVCC_FLAGS: tuple[str, ...] = ("-cubin", "-lineinfo")
_ARCH_OPTIONS = ("-arch", "--gpu-architecture", "-gencode", "--generate-code", "-code", "--gpu-code")
_COMPILE_TIMEOUT_S = 600.0
_NVRTC_SUCCESS = 0


def has_arch_option(options: Sequence[str]) -> bool:
    """Whether the user's options already choose the architecture (then we add no `-arch` of our own)."""
    return any(
        opt == name or opt.startswith((f"{name}=", f"{name} ")) for opt in options for name in _ARCH_OPTIONS
    )


def nvcc_command(
    nvcc: str | Path,
    source: Path,
    output: Path,
    *,
    arch: str,
    options: Sequence[str] = (),
    extra: Sequence[str] = (),
) -> list[str]:
    """nvcc argv compiling one `.cu` file to one cubin for `arch` (unless `options` pick one)."""
    argv = [str(nvcc), *NVCC_FLAGS]
    if not has_arch_option(options):
        argv.append(f"-arch={arch}")
    argv += [*extra, *options, "-o", str(output), str(source)]
    return argv


def ptxas_command(
    ptxas: str | Path, source: Path, output: Path, *, arch: str, extra: Sequence[str] = ()
) -> list[str]:
    """ptxas argv assembling one `.ptx` file to one cubin for `arch`."""
    return [str(ptxas), f"-arch={arch}", *extra, "-o", str(output), str(source)]


def find_nvcc() -> str | None:
    """nvcc from `$CUDA_HOME/bin`, the PATH, or /usr/local/cuda/bin (in that order), if any."""
    candidates: list[str] = []
    for variable in ("CUDA_HOME", "CUDA_PATH"):
        home = os.environ.get(variable)
        if home:
            candidates.append(os.path.join(home, "bin", "nvcc"))
    on_path = shutil.which("nvcc")
    if on_path:
        candidates.append(on_path)
    candidates.append("/usr/local/cuda/bin/nvcc")
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def compile_cuda_nvcc(source: str, arch: str, options: Sequence[str], nvcc: str) -> bytes:
    """Compile CUDA C++ to a cubin with nvcc in a temporary folder; `KernelCompileError` on failure."""
    with tempfile.TemporaryDirectory(prefix="kernelwright-nvcc-") as tmp:
        src, out = Path(tmp) / "kernel.cu", Path(tmp) / "kernel.cubin"
        src.write_text(source, encoding="utf-8")
        argv = nvcc_command(nvcc, src, out, arch=arch, options=options)
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=_COMPILE_TIMEOUT_S,
                cwd=tmp,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise KernelCompileError(
                f"nvcc did not finish within {_COMPILE_TIMEOUT_S:g} s", compiler="nvcc"
            ) from exc
        log = (done.stdout + done.stderr).strip()
        if done.returncode != 0 or not out.is_file():
            raise KernelCompileError(log or f"nvcc exited with status {done.returncode}", compiler="nvcc")
        return out.read_bytes()


def _nvrtc_candidates() -> list[str]:
    names = ["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2"]
    paths: list[str] = []
    for variable in ("CUDA_HOME", "CUDA_PATH"):
        home = os.environ.get(variable)
        if home:
            paths += sorted(glob.glob(os.path.join(home, "lib*", "libnvrtc.so*")))
    # pip wheels: nvidia/cuda_nvrtc/lib (CUDA 12) or nvidia/cu13/lib (CUDA 13)
    for entry in sys.path:
        paths += sorted(glob.glob(os.path.join(entry, "nvidia", "*", "lib", "libnvrtc.so*")))
    paths += sorted(glob.glob("/usr/local/cuda/lib*/libnvrtc.so*"))
    return names + [p for p in paths if "builtins" not in os.path.basename(p)]


def load_nvrtc() -> ctypes.CDLL | None:
    """The NVRTC library, searched by soname, under CUDA_HOME, in pip's nvidia wheels and /usr/local/cuda."""
    for candidate in _nvrtc_candidates():
        with contextlib.suppress(OSError):
            return ctypes.CDLL(candidate)
    return None


def _nvrtc_check(lib: ctypes.CDLL, call: str, code: int) -> None:
    if code != _NVRTC_SUCCESS:
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        raw: bytes | None = lib.nvrtcGetErrorString(code)
        message = raw.decode(errors="replace") if raw else f"error {code}"
        raise KernelCompileError(f"{call} failed: {message}", compiler="nvrtc")


def _nvrtc_options(arch: str, options: Sequence[str]) -> list[str]:
    result = ["-lineinfo"]
    if not has_arch_option(options):
        result.append(f"--gpu-architecture={arch}")
    for variable in ("CUDA_HOME", "CUDA_PATH"):
        home = os.environ.get(variable)
        if home and os.path.isdir(os.path.join(home, "include")):
            result.append(f"--include-path={os.path.join(home, 'include')}")
            break
    else:
        if os.path.isdir("/usr/local/cuda/include"):
            result.append("--include-path=/usr/local/cuda/include")
    return result + list(options)


def compile_cuda_nvrtc(source: str, arch: str, options: Sequence[str], lib: ctypes.CDLL) -> bytes:
    """Compile CUDA C++ to a cubin with NVRTC; `KernelCompileError` with NVRTC's log on failure."""
    program = ctypes.c_void_p()
    _nvrtc_check(
        lib,
        "nvrtcCreateProgram",
        lib.nvrtcCreateProgram(ctypes.byref(program), source.encode(), b"kernel.cu", 0, None, None),
    )
    try:
        opts = [opt.encode() for opt in _nvrtc_options(arch, options)]
        array: Any = (ctypes.c_char_p * max(len(opts), 1))(*opts)
        code: int = lib.nvrtcCompileProgram(program, len(opts), array)
        log_size = ctypes.c_size_t()
        _nvrtc_check(
            lib, "nvrtcGetProgramLogSize", lib.nvrtcGetProgramLogSize(program, ctypes.byref(log_size))
        )
        log_buffer = ctypes.create_string_buffer(max(log_size.value, 1))
        _nvrtc_check(lib, "nvrtcGetProgramLog", lib.nvrtcGetProgramLog(program, log_buffer))
        log = log_buffer.value.decode(errors="replace")
        if code != _NVRTC_SUCCESS:
            raise KernelCompileError(
                log or f"nvrtcCompileProgram failed with status {code}", compiler="nvrtc"
            )
        size = ctypes.c_size_t()
        _nvrtc_check(lib, "nvrtcGetCUBINSize", lib.nvrtcGetCUBINSize(program, ctypes.byref(size)))
        if size.value == 0:
            raise KernelCompileError(
                "NVRTC produced no cubin (was a virtual compute_XX architecture requested?)", compiler="nvrtc"
            )
        cubin = ctypes.create_string_buffer(size.value)
        _nvrtc_check(lib, "nvrtcGetCUBIN", lib.nvrtcGetCUBIN(program, cubin))
        return cubin.raw
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(program))


def compile_cuda(source: str, arch: str, options: Sequence[str] = ()) -> tuple[bytes, str]:
    """Compile CUDA C++ to a cubin with nvcc, or NVRTC when nvcc is absent; returns (cubin, compiler)."""
    nvcc = find_nvcc()
    if nvcc is not None:
        return compile_cuda_nvcc(source, arch, options, nvcc), "nvcc"
    lib = load_nvrtc()
    if lib is not None:
        return compile_cuda_nvrtc(source, arch, options, lib), "nvrtc"
    raise KernelCompileError(
        "neither nvcc (CUDA_HOME/bin, PATH, /usr/local/cuda/bin) nor NVRTC (libnvrtc.so) was found to "
        "compile the CUDA source; install the CUDA toolkit or the nvidia-cuda-nvrtc wheel",
        compiler="load_cuda",
    )
