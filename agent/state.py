"""What flows through the graph (and is checkpointed): the run's state and its attempts."""

from __future__ import annotations

import operator
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field

from kernelwright.domain import CompileResult, Diagnostic, Hit, Outcome, Problem, Target, Verdict
from prompts import Step

__all__ = ["Attempt", "RunState", "RunStatus"]


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # a verified-correct kernel
    COMPILED_UNVERIFIED = "compiled_unverified"  # compiled, but this machine cannot run it (no GPU)
    BUDGET_EXHAUSTED = "budget_exhausted"
    FAILED = "failed"


class Attempt(BaseModel):
    """One turn: the prompt step, the model's reply, and how far its kernel got."""

    turn: int
    step: Step
    reply: str = ""
    finish_reason: str | None = None
    code: str | None = None
    diagnostics: list[Diagnostic] = Field(default_factory=list)
    compile: CompileResult | None = None
    verdict: Verdict | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None

    @property
    def outcome(self) -> Outcome:
        """The attempt's outcome class, also for attempts that never reached the verifier."""
        if self.verdict is not None:
            return self.verdict.outcome
        if self.compile is not None and self.compile.toolchain_missing:
            return Outcome.TOOLCHAIN_MISSING
        if any(d.is_error and d.code.startswith("hack.") for d in self.diagnostics):
            return Outcome.HACK_SUSPECTED  # refused by the static anti-hack policy before compiling
        return Outcome.COMPILE_ERROR

    def rank(self) -> tuple[int, float, int]:
        """Larger is better: correct and fast first, then compiled, then latest."""
        speedup = self.verdict.speedup_vs_eager if self.verdict and self.verdict.speedup_vs_eager else 0.0
        if self.outcome == Outcome.CORRECT:
            return (3, speedup, self.turn)
        if self.outcome in (Outcome.NO_GPU,):
            return (2, 0.0, self.turn)
        if self.compile is not None and self.compile.ok:
            return (1, 0.0, self.turn)
        return (0, 0.0, self.turn)


class RunState(BaseModel):
    """The checkpointed state of one generation run. Nodes return partial updates of it."""

    run_id: str
    problem: Problem
    target: Target
    arch: str | None = None
    notes: list[str] = Field(default_factory=list)
    started_at: float = 0.0  # epoch seconds; wall budgets survive a resume
    turn: int = 0
    tokens_used: int = 0
    cost_usd: float = 0.0
    step: Step = Step.PROPOSE
    optimize_rounds_done: int = 0
    hits: list[Hit] = Field(default_factory=list)
    current: Attempt | None = None
    attempts: Annotated[list[Attempt], operator.add] = Field(default_factory=list)
    best: Attempt | None = None
    status: RunStatus = RunStatus.RUNNING
    stop_reason: str | None = None
