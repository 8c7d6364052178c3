"""Batch schemas: `BatchCreate` in; `BatchPublic` (progress and metrics) and `BatchesPublic` out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas.common import BudgetsIn, ProblemIn
from kernelwright.domain import Target

__all__ = ["BatchCreate", "BatchProgress", "BatchPublic", "BatchesPublic", "SuiteIn"]


class SuiteIn(BaseModel):
    """KernelBench problems from the server's configured source (KERNELWRIGHT_KERNELBENCH_SOURCE).

    Clients pick levels and ids; they never name server paths.
    """

    model_config = ConfigDict(extra="forbid")

    levels: list[int] = Field(default_factory=list, max_length=10, description="e.g. [1, 2]; all when empty")
    ids: list[str] = Field(default_factory=list, max_length=1000, description="L1/19, 1/19, 19 or names")
    curated: bool = Field(
        default=False, description="drop and fix problems as the packaged curated suite says"
    )
    limit: int | None = Field(default=None, ge=1, description="at most this many problems")


class BatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200)
    suite: SuiteIn | None = None
    problems: list[ProblemIn] | None = Field(default=None, max_length=1000, description="explicit problems")
    target: Target
    provider: str | None = Field(
        default=None, description="openai, groq or scripted; server default if unset"
    )
    models: list[str] = Field(default_factory=list, max_length=8, description="server default model if empty")
    replies: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="scripted provider only: replies every sample replays",
    )
    samples: int = Field(default=1, ge=1, le=100, description="samples per problem and model")
    limit_llm: int | None = Field(default=None, ge=1, le=64, description="LLM calls in flight at once")
    limit_gpu: int | None = Field(default=None, ge=1, le=64, description="samples verifying at once")
    budgets: BudgetsIn = Field(default_factory=BudgetsIn)
    arch: str | None = Field(default=None, max_length=20)

    @model_validator(mode="after")
    def _one_source(self) -> BatchCreate:
        if (self.suite is None) == (self.problems is None):
            raise ValueError("give exactly one of suite (KernelBench levels/ids) and problems (a list)")
        if self.problems is not None and not self.problems:
            raise ValueError("problems is empty: give at least one problem")
        return self


class BatchProgress(BaseModel):
    total: int
    finished: int
    by_status: dict[str, int]
    per_problem: dict[str, dict[str, int]] = Field(default_factory=dict)


class BatchPublic(BaseModel):
    id: str
    name: str
    status: str = Field(description="pending, running, done, cancelled, failed")
    target: str
    provider: str
    models: list[str]
    samples_per_problem: int
    limit_llm: int
    limit_gpu: int
    cancel_requested: bool
    error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None
    progress: BatchProgress
    metrics: dict[str, Any] | None = Field(
        default=None, description="overall, per_level, per_model: compile/correct rates, fast_p, geomean"
    )


class BatchesPublic(BaseModel):
    data: list[BatchPublic]
    count: int
