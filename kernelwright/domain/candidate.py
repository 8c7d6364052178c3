"""A proposed kernel and the result of compiling it."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field

from kernelwright.domain.diagnostic import Diagnostic
from kernelwright.domain.target import Target

__all__ = ["Candidate", "CompileResult"]


class Candidate(BaseModel):
    """A candidate solution: a Python module defining `ModelNew` (KernelBench contract).

    For `ptx` and `cuda`, the kernel source is a string inside that module, handed to
    `sandbox.runtime.load_ptx` / `load_cuda`; `kernel_source` holds it once extracted.
    """

    model_config = ConfigDict(frozen=True)

    target: Target
    source: str
    kernel_source: str | None = None
    turn: int = 0

    @property
    def digest(self) -> str:
        """Content hash of the candidate (what artifacts and verdicts are keyed by)."""
        return hashlib.sha256(f"{self.target.value}\0{self.source}".encode()).hexdigest()


class CompileResult(BaseModel):
    """The outcome of compiling a candidate's kernel with a real toolchain."""

    ok: bool
    toolchain: str  # "ptxas 13.0", "nvcc 13.0", "triton 3.9 (syntax)", ...
    diagnostics: list[Diagnostic] = Field(default_factory=list)
    artifacts: dict[str, str] = Field(default_factory=dict)  # name -> path (e.g. "cubin")
    duration_s: float = 0.0
    toolchain_missing: bool = False
    log: str = ""
    level: str | None = None  # tt-metal: static_checked, syntax_checked, built (how far it got)
