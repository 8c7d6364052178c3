"""Job schemas: `JobCreate` in, `JobPublic` / `JobsPublic` out."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import BudgetsIn, ProblemIn, ProviderIn, RunSummary
from kernelwright.domain import Target

__all__ = ["JobCreate", "JobPublic", "JobsPublic"]


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    problem: ProblemIn
    target: Target
    provider: ProviderIn = Field(default_factory=ProviderIn)
    budgets: BudgetsIn = Field(default_factory=BudgetsIn)
    arch: str | None = Field(default=None, max_length=20, description="e.g. sm_90")
    notes: list[str] = Field(default_factory=list, max_length=20)


class JobPublic(BaseModel):
    id: str
    status: str = Field(
        description="queued, running, succeeded, compiled_unverified, budget_exhausted, failed, cancelled"
    )
    problem: str
    target: str
    provider: str
    model: str
    turns: int
    tokens_used: int
    cost_usd: float
    error: str | None = None
    result: RunSummary | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int
