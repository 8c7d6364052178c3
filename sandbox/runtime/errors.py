"""Errors raised by the worker-side launch API.

They live here, not in `kernelwright.errors`, because `sandbox.runtime` runs in lean GPU images
that have torch but not kernelwright or pydantic. Both are `RuntimeError`s so that a candidate's
failure inside a worker surfaces like any other runtime error of PyTorch code.
"""

from __future__ import annotations

__all__ = ["NO_DRIVER_MESSAGE", "CudaDriverError", "KernelCompileError"]

NO_DRIVER_MESSAGE = "no CUDA driver (libcuda.so.1) found: PTX/CUDA kernels need an NVIDIA GPU"


class CudaDriverError(RuntimeError):
    """A CUDA driver API call failed (or there is no driver at all).

    `name` is the driver's error name (e.g. `CUDA_ERROR_INVALID_VALUE`), `code` its numeric
    `CUresult` (-1 when no driver could be loaded), `message` the driver's description plus what we
    were doing, so that the text alone tells a model what went wrong.
    """

    def __init__(self, name: str, code: int, message: str) -> None:
        self.name = name
        self.code = code
        self.message = message
        super().__init__(f"{name} ({code}): {message}")

    def __reduce__(self) -> tuple[type[CudaDriverError], tuple[str, int, str]]:
        # Keeps the error picklable across the worker/service process boundary.
        return (type(self), (self.name, self.code, self.message))


class KernelCompileError(RuntimeError):
    """A kernel failed to compile in the worker (driver PTX JIT, nvcc or NVRTC); `log` is the compiler's."""

    def __init__(self, log: str, *, compiler: str = "") -> None:
        self.log = log
        self.compiler = compiler
        prefix = f"{compiler}: " if compiler else ""
        super().__init__(f"{prefix}kernel compilation failed:\n{log.strip()}")

    def __reduce__(self) -> tuple[type[KernelCompileError], tuple[str], dict[str, str]]:
        return (type(self), (self.log,), {"compiler": self.compiler})
