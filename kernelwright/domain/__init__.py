"""Domain types shared by every package (pydantic: they cross process, API and checkpoint boundaries)."""

from kernelwright.domain.candidate import Candidate, CompileResult
from kernelwright.domain.diagnostic import Diagnostic, Severity
from kernelwright.domain.problem import Problem
from kernelwright.domain.retrieval import Hit
from kernelwright.domain.target import Target
from kernelwright.domain.trace import TraceEvent, TraceKind
from kernelwright.domain.verdict import VERDICT_SCHEMA, DrawError, Outcome, Timing, Verdict

__all__ = [
    "VERDICT_SCHEMA",
    "Candidate",
    "CompileResult",
    "Diagnostic",
    "DrawError",
    "Hit",
    "Outcome",
    "Problem",
    "Severity",
    "Target",
    "Timing",
    "TraceEvent",
    "TraceKind",
    "Verdict",
]
