"""Routers: pure functions from state (and budgets) to the name of the next node."""

from __future__ import annotations

import time
from typing import Literal

from langgraph.runtime import Runtime

from agent.context import Budgets, RunContext
from agent.state import RunState, RunStatus
from kernelwright.domain import Outcome
from sandbox.static_checks import blocking

__all__ = [
    "budget_exhausted",
    "route_after_assess",
    "route_after_check",
    "route_after_compile",
    "route_after_propose",
]

_FINAL_OUTCOMES = {Outcome.TOOLCHAIN_MISSING, Outcome.NO_GPU, Outcome.INFRASTRUCTURE}


def budget_exhausted(state: RunState, budgets: Budgets, now: float | None = None) -> str | None:
    """Which budget is spent, as a sentence, or None while all have room for another turn."""
    if state.turn >= budgets.max_turns:
        return f"turn budget spent ({state.turn} of {budgets.max_turns} turns)"
    if state.tokens_used >= budgets.max_tokens:
        return f"token budget spent ({state.tokens_used} of {budgets.max_tokens} tokens)"
    if state.cost_usd >= budgets.max_cost_usd:
        return f"cost budget spent (${state.cost_usd:.4f} of ${budgets.max_cost_usd:.2f})"
    elapsed = (time.time() if now is None else now) - state.started_at
    if elapsed >= budgets.max_wall_s:
        return f"wall-time budget spent ({elapsed:.0f} s of {budgets.max_wall_s:.0f} s)"
    return None


def route_after_propose(state: RunState) -> Literal["check", "record"]:
    return "record" if state.status != RunStatus.RUNNING or state.current is None else "check"


def route_after_check(state: RunState) -> Literal["compile", "assess"]:
    current = state.current
    ok = current is not None and current.code is not None and not blocking(current.diagnostics)
    return "compile" if ok else "assess"


def route_after_compile(state: RunState) -> Literal["verify", "assess"]:
    current = state.current
    return (
        "verify" if current is not None and current.compile is not None and current.compile.ok else "assess"
    )


def route_after_assess(state: RunState, runtime: Runtime[RunContext]) -> Literal["retrieve", "record"]:
    last = state.attempts[-1]
    if last.outcome in _FINAL_OUTCOMES:
        return "record"
    if (
        last.outcome == Outcome.CORRECT
        and state.optimize_rounds_done >= runtime.context.budgets.optimize_rounds
    ):
        return "record"
    if last.outcome == Outcome.CORRECT and last.verdict is not None and last.verdict.speedup_vs_eager is None:
        return "record"  # nothing to optimise against without timings (e.g. CPU interpreter)
    if budget_exhausted(state, runtime.context.budgets) is not None:
        return "record"
    return "retrieve"
