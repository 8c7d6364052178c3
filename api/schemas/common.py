"""Parts shared by job and session requests: the problem, the model, the budgets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["BudgetsIn", "ProblemIn", "ProviderIn", "RunSummary", "utc"]


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: None) -> None: ...
def utc(value: datetime | None) -> datetime | None:
    """Timestamps as UTC-aware values (SQLite hands them back naive)."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class ProblemIn(BaseModel):
    """Either KernelBench-style `source` (defining Model, get_inputs, get_init_inputs) or a `kernelbench_id`.

    The source is parsed here, never executed: it runs only inside sandboxed verifier workers.
    """

    model_config = ConfigDict(extra="forbid")

    source: str | None = Field(default=None, description="problem module source")
    name: str | None = Field(default=None, max_length=200, description="a name for a source problem")
    kernelbench_id: str | None = Field(
        default=None, max_length=100, description="e.g. L1/19, resolved in the server's KernelBench source"
    )

    @model_validator(mode="after")
    def _one_of(self) -> ProblemIn:
        if (self.source is None) == (self.kernelbench_id is None):
            raise ValueError("give exactly one of problem.source and problem.kernelbench_id")
        return self


class ProviderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None, description="openai, groq or scripted; the server default if unset"
    )
    model: str | None = Field(default=None, max_length=200)
    replies: list[str] = Field(
        default_factory=list, max_length=100, description="scripted provider only: the replies to replay"
    )


class BudgetsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_turns: int | None = Field(default=None, ge=1, le=50)
    max_tokens: int | None = Field(default=None, ge=1)
    max_cost_usd: float | None = Field(default=None, ge=0.0)
    max_wall_s: float | None = Field(default=None, gt=0.0)
    optimize_rounds: int = Field(default=0, ge=0, le=20)


class RunSummary(BaseModel):
    """What a run (or a session round) achieved: the best kernel and its verdict, the spend."""

    status: str
    reason: str | None = None
    turns: int = 0
    tokens_used: int = 0
    cost_usd: float = 0.0
    best_turn: int | None = None
    best_outcome: str | None = None
    best_code: str | None = None
    verdict_message: str | None = None
    speedup_vs_eager: float | None = None
    speedup_vs_compile: float | None = None
    device: str | None = None
    citations: list[str] = Field(default_factory=list)
    outcomes: list[str] = Field(default_factory=list, description="outcome of every attempt, in order")
