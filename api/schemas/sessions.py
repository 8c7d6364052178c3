"""Session schemas: create, post a message, fork; the session with its turns (messages, kernels, verdicts)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import BudgetsIn, ProblemIn, ProviderIn, RunSummary
from kernelwright.domain import Target

__all__ = ["MessageCreate", "SessionCreate", "SessionFork", "SessionPublic", "SessionsPublic", "TurnPublic"]


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    problem: ProblemIn
    target: Target
    provider: ProviderIn = Field(default_factory=ProviderIn)
    budgets: BudgetsIn = Field(default_factory=BudgetsIn, description="per round (per user message)")
    arch: str | None = Field(default=None, max_length=20)
    notes: list[str] = Field(default_factory=list, max_length=20)


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(min_length=1, max_length=20_000, description="e.g. 'use shared-memory tiling'")
    replies: list[str] = Field(
        default_factory=list, max_length=100, description="scripted provider only: replies for this round"
    )


class SessionFork(BaseModel):
    model_config = ConfigDict(extra="forbid")

    turn: int = Field(ge=0, description="fork after this turn (0: after the opening round)")


class TurnPublic(BaseModel):
    index: int
    message: str | None
    status: str = Field(description="running, done, failed, cancelled")
    summary: RunSummary | None = None
    created_at: datetime
    finished_at: datetime | None = None


class SessionPublic(BaseModel):
    id: str
    status: str = Field(description="running, waiting (for a message), failed, cancelled")
    problem: str
    target: str
    provider: str
    model: str
    tokens_used: int
    cost_usd: float
    forked_from: str | None = None
    forked_at_turn: int | None = None
    error: str | None = None
    turns: list[TurnPublic]
    created_at: datetime


class SessionsPublic(BaseModel):
    data: list[SessionPublic]
    count: int
