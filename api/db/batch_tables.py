"""Tables of KernelBench batches: the batch, its problems (sources kept, so a batch needs no suite path
to resume), and one row per sample with an idempotent key.

A sample row is the unit of work and of restart safety: its `sample_key` is a hash of (batch id,
problem key, sample index, model), unique across the table, so inserting a batch twice cannot double a
sample; its `run_id` names the LangGraph checkpoint thread a restarted process resumes; `starts`
counts how often a process started or resumed it (1 for a sample that ran undisturbed).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from api.db.base import Base

__all__ = ["BatchProblemRow", "BatchRow", "BatchSampleRow", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class BatchRow(Base):
    """One batch: a suite x samples per problem x models, with its limits, budgets and lifecycle."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), index=True)  # see api.batch.store.BatchStatus
    target: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(64))
    models: Mapped[list[str]] = mapped_column(JSON)
    samples_per_problem: Mapped[int] = mapped_column(Integer)
    suite: Mapped[dict[str, Any]] = mapped_column(JSON)  # where the problems came from, for the record
    options: Mapped[dict[str, Any]] = mapped_column(JSON)  # budgets, arch, provider options
    limit_llm: Mapped[int] = mapped_column(Integer)
    limit_gpu: Mapped[int] = mapped_column(Integer)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    owner: Mapped[str | None] = mapped_column(String(64), nullable=True)  # API key id (REST) or None (CLI)
    runner: Mapped[str | None] = mapped_column(String(200), nullable=True)  # host:pid of the live runner
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class BatchProblemRow(Base):
    """A problem of a batch, with its source (validated by parsing only, never executed here)."""

    __tablename__ = "batch_problems"
    __table_args__ = (UniqueConstraint("batch_id", "problem_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # order in the suite
    problem_key: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    problem_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    origin: Mapped[str | None] = mapped_column(Text, nullable=True)
    source: Mapped[str] = mapped_column(Text)
    transforms: Mapped[list[str]] = mapped_column(JSON)  # curated-suite input fixes, e.g. signed_inputs


class BatchSampleRow(Base):
    """One sample: one generation run of one model on one problem, and what it produced."""

    __tablename__ = "batch_samples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sample_key: Mapped[str] = mapped_column(String(64), unique=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"), index=True)
    problem_key: Mapped[str] = mapped_column(String(200))
    level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sample_index: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)  # run order inside the batch
    status: Mapped[str] = mapped_column(String(16), index=True)  # see api.batch.store.SampleStatus
    run_id: Mapped[str] = mapped_column(String(120))
    starts: Mapped[int] = mapped_column(Integer, default=0)
    run_status: Mapped[str | None] = mapped_column(String(32), nullable=True)  # agent RunStatus
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)  # best attempt's Outcome
    compiled: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    correct: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    speedup_vs_eager: Mapped[float | None] = mapped_column(Float, nullable=True)
    speedup_vs_compile: Mapped[float | None] = mapped_column(Float, nullable=True)
    turns: Mapped[int] = mapped_column(Integer, default=0)
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    wall_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    device: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
