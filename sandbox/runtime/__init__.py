"""Worker-side runtime: what candidate modules import to load and launch PTX/CUDA kernels.

    from sandbox.runtime import load_ptx, load_cuda, load_cubin

Importing this package is cheap and works on any machine: torch and the CUDA driver are only touched
when a `load_*` function is first used, and on a machine without an NVIDIA driver that call raises
`CudaDriverError` saying so. Everything under `sandbox.runtime` uses only the standard library and
torch, because it runs inside lean GPU worker images.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.runtime.errors import CudaDriverError, KernelCompileError

if TYPE_CHECKING:
    from sandbox.runtime.launch import Kernel, Module, load_cubin, load_cuda, load_ptx

__all__ = ["CudaDriverError", "Kernel", "KernelCompileError", "Module", "load_cubin", "load_cuda", "load_ptx"]

_LAZY = frozenset({"Kernel", "Module", "load_cubin", "load_cuda", "load_ptx"})


def __getattr__(name: str) -> Any:
    # Deferred so that `import sandbox.runtime` does not import torch (the service imports
    # `sandbox.runtime.kernel_cache` without having torch installed).
    if name in _LAZY:
        from sandbox.runtime import launch

        return getattr(launch, name)
    raise AttributeError(f"module 'sandbox.runtime' has no attribute {name!r}")
