"""Events of a run: written to the JSONL trace, streamed to clients, counted in metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

__all__ = ["TraceEvent", "TraceKind"]


class TraceKind(StrEnum):
    RUN_STARTED = "run_started"
    RETRIEVED = "retrieved"
    PROMPT = "prompt"
    REPLY = "reply"
    DIAGNOSTICS = "diagnostics"
    COMPILED = "compiled"
    VERDICT = "verdict"
    BUDGET_EXHAUSTED = "budget_exhausted"
    RUN_FINISHED = "run_finished"
    ERROR = "error"


class TraceEvent(BaseModel):
    """One line of a run's trace. `replay` is true when the replies came from a scripted provider."""

    run_id: str
    kind: TraceKind
    node: str
    turn: int = 0
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    duration_s: float | None = None
    replay: bool = False
    data: dict[str, Any] = Field(default_factory=dict)
