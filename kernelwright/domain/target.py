"""Kernel targets kernelwright can generate for."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Target"]


class Target(StrEnum):
    """What the generated kernel is written in."""

    PTX = "ptx"
    CUDA = "cuda"
    TRITON = "triton"
    TT_METAL = "tt-metal"

    @property
    def needs_nvidia_gpu(self) -> bool:
        """PTX and CUDA kernels can only run on an NVIDIA GPU (Triton has a CPU interpreter)."""
        return self in (Target.PTX, Target.CUDA)
