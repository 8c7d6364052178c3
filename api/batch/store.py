"""Batch rows in the service database: create (idempotently), claim, finish, progress, cancel, runner lease.

Restart safety rests on three things here: sample keys are unique (a batch inserted twice has its
samples once); a sample is marked `running` with its run id *before* its run starts and `done` in the
same transaction that stores its result, so a killed process leaves only `running` rows, which the next
process resumes from their checkpoints; and one runner at a time holds a batch (a lease with a heartbeat,
taken over when stale or when its process is gone), so two processes never run the same sample.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, update

from api.batch.suite import SuiteEntry
from api.db.batch_tables import BatchProblemRow, BatchRow, BatchSampleRow, utcnow
from api.db.engine import Database
from kernelwright.domain import Problem, Target
from kernelwright.errors import UnknownNameError, UserError

__all__ = [
    "OPEN_SAMPLES",
    "BatchSpec",
    "BatchStatus",
    "Progress",
    "SampleStatus",
    "acquire_runner",
    "batch_entries",
    "create_batch",
    "get_batch",
    "heartbeat",
    "list_batches",
    "list_samples",
    "mark_finished",
    "mark_started",
    "progress",
    "release_runner",
    "request_cancel",
    "run_id_for",
    "runner_name",
    "sample_key",
]


class BatchStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


class SampleStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"  # the run finished (whatever its verdict)
    ERROR = "error"  # the run could not finish (e.g. a provider misconfigured); final, with `error`
    CANCELLED = "cancelled"


OPEN_SAMPLES = (SampleStatus.PENDING.value, SampleStatus.RUNNING.value)


@dataclass(frozen=True)
class BatchSpec:
    """What to run: the suite is given separately as entries; this is everything else."""

    target: Target
    provider: str
    models: tuple[str, ...]
    samples: int = 1
    limit_llm: int = 4
    limit_gpu: int = 1
    suite: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # budgets, arch, provider options
    name: str = ""
    owner: str | None = None

    def validate(self) -> None:
        if not self.models or any(not m.strip() for m in self.models):
            raise UserError("a batch needs at least one model name (--model)")
        if len(set(self.models)) != len(self.models):
            raise UserError(f"models are listed twice: {', '.join(self.models)}")
        if self.samples < 1:
            raise UserError(f"samples per problem must be at least 1, not {self.samples}")
        if self.limit_llm < 1 or self.limit_gpu < 1:
            raise UserError("concurrency limits (--limit-llm, --limit-gpu) must be at least 1")


def sample_key(batch_id: str, problem_key: str, sample_index: int, model: str) -> str:
    """The idempotent key of a sample: the same inputs always give the same key."""
    text = "\x1f".join((batch_id, problem_key, str(sample_index), model))
    return hashlib.sha256(text.encode()).hexdigest()


def run_id_for(batch_id: str, key: str) -> str:
    """The run (checkpoint thread, trace file) of a sample, fixed by its key so a restart finds it."""
    return f"batch-{batch_id[:12]}-{key[:16]}"


def runner_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def create_batch(
    db: Database, spec: BatchSpec, entries: Sequence[SuiteEntry], batch_id: str | None = None
) -> str:
    """Insert the batch, its problems and its samples (all pending); return its id.

    With `batch_id` of an existing batch this is a no-op when the batch matches, so re-running the
    same command continues the batch instead of starting another; a different spec is refused.
    """
    spec.validate()
    if not entries:
        raise UserError("a batch needs at least one problem")
    keys = [e.problem.key for e in entries]
    if len(set(keys)) != len(keys):
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        raise UserError(f"the suite names problems twice: {', '.join(dupes)}")
    batch_id = batch_id or uuid.uuid4().hex
    async with db.session() as session:
        existing = await session.get(BatchRow, batch_id)
        if existing is not None:
            stored = (
                await session.scalars(
                    select(BatchProblemRow.problem_key).where(BatchProblemRow.batch_id == batch_id)
                )
            ).all()
            mine = (spec.target.value, spec.provider, list(spec.models), spec.samples, sorted(keys))
            theirs = (
                existing.target,
                existing.provider,
                list(existing.models),
                existing.samples_per_problem,
                sorted(stored),
            )
            if mine != theirs:
                raise UserError(
                    f"batch {batch_id!r} already exists with a different target, provider, models, sample "
                    "count or problems; resume it with `kernelwright batch resume` or pick another id"
                )
            return batch_id
        session.add(
            BatchRow(
                id=batch_id,
                name=spec.name,
                status=BatchStatus.PENDING.value,
                target=spec.target.value,
                provider=spec.provider,
                models=list(spec.models),
                samples_per_problem=spec.samples,
                suite=spec.suite,
                options=spec.options,
                limit_llm=spec.limit_llm,
                limit_gpu=spec.limit_gpu,
                owner=spec.owner,
            )
        )
        await session.flush()
        for position, entry in enumerate(entries):
            p = entry.problem
            session.add(
                BatchProblemRow(
                    batch_id=batch_id,
                    position=position,
                    problem_key=p.key,
                    name=p.name,
                    level=p.level,
                    problem_id=p.problem_id,
                    origin=p.origin,
                    source=p.source,
                    transforms=list(entry.transforms),
                )
            )
        position = 0
        for index in range(spec.samples):  # a first pass over every problem before any second sample
            for entry in entries:
                for model in spec.models:
                    key = sample_key(batch_id, entry.problem.key, index, model)
                    session.add(
                        BatchSampleRow(
                            sample_key=key,
                            batch_id=batch_id,
                            problem_key=entry.problem.key,
                            level=entry.problem.level,
                            sample_index=index,
                            model=model,
                            position=position,
                            status=SampleStatus.PENDING.value,
                            run_id=run_id_for(batch_id, key),
                        )
                    )
                    position += 1
    return batch_id


async def get_batch(db: Database, batch_id: str) -> BatchRow:
    async with db.session() as session:
        row = await session.get(BatchRow, batch_id)
    if row is None:
        raise UnknownNameError(f"no batch {batch_id!r}; `kernelwright batch status` lists the batches")
    return row


async def list_batches(
    db: Database, *, offset: int = 0, limit: int = 100, owner: str | None = None
) -> tuple[list[BatchRow], int]:
    """Batches, newest first, and how many there are in all."""
    query = select(BatchRow)
    count = select(func.count()).select_from(BatchRow)
    if owner is not None:
        query, count = query.where(BatchRow.owner == owner), count.where(BatchRow.owner == owner)
    async with db.session() as session:
        rows = (
            await session.scalars(query.order_by(BatchRow.created_at.desc()).offset(offset).limit(limit))
        ).all()
        total = (await session.execute(count)).scalar_one()
    return list(rows), int(total)


async def batch_entries(db: Database, batch_id: str) -> list[SuiteEntry]:
    """The batch's problems as stored (so a restart does not need the suite's files)."""
    async with db.session() as session:
        rows = (
            await session.scalars(
                select(BatchProblemRow)
                .where(BatchProblemRow.batch_id == batch_id)
                .order_by(BatchProblemRow.position)
            )
        ).all()
    return [
        SuiteEntry(
            Problem(name=r.name, source=r.source, level=r.level, problem_id=r.problem_id, origin=r.origin),
            tuple(r.transforms),
        )
        for r in rows
    ]


async def list_samples(
    db: Database, batch_id: str, statuses: Sequence[str] | None = None, *, running_first: bool = False
) -> list[BatchSampleRow]:
    """The batch's samples in run order (`running` ones first with `running_first`: resume them first)."""
    query = select(BatchSampleRow).where(BatchSampleRow.batch_id == batch_id)
    if statuses is not None:
        query = query.where(BatchSampleRow.status.in_(list(statuses)))
    async with db.session() as session:
        rows = list((await session.scalars(query.order_by(BatchSampleRow.position))).all())
    if not running_first:
        return rows
    return [r for r in rows if r.status == SampleStatus.RUNNING] + [
        r for r in rows if r.status != SampleStatus.RUNNING
    ]


async def mark_started(db: Database, sample_id: int) -> bool:
    """Record that a process starts (or resumes) this sample, before its run begins.

    False, changing nothing, when the sample was cancelled since the runner listed it (a cancel marks
    pending samples at once; the runner learns of it only at its next heartbeat).
    """
    async with db.session() as session:
        row = await session.get(BatchSampleRow, sample_id)
        assert row is not None
        if row.status == SampleStatus.CANCELLED.value:
            return False
        row.status = SampleStatus.RUNNING.value
        row.starts += 1
        row.started_at = row.started_at or utcnow()
    return True


async def mark_finished(db: Database, sample_id: int, status: SampleStatus, **fields: Any) -> None:
    """Store a sample's result and final status in one transaction."""
    async with db.session() as session:
        row = await session.get(BatchSampleRow, sample_id)
        assert row is not None
        row.status = status.value
        row.finished_at = utcnow()
        for name, value in fields.items():
            setattr(row, name, value)


@dataclass(frozen=True)
class Progress:
    """Sample counts by status, for the batch and per problem (in suite order)."""

    total: int
    by_status: dict[str, int]
    per_problem: dict[str, dict[str, int]]

    @property
    def finished(self) -> int:
        return sum(self.by_status.get(s, 0) for s in ("done", "error", "cancelled"))


async def progress(db: Database, batch_id: str) -> Progress:
    async with db.session() as session:
        rows = (
            await session.execute(
                select(BatchSampleRow.problem_key, BatchSampleRow.status, func.count())
                .where(BatchSampleRow.batch_id == batch_id)
                .group_by(BatchSampleRow.problem_key, BatchSampleRow.status)
            )
        ).all()
        order = (
            await session.scalars(
                select(BatchProblemRow.problem_key)
                .where(BatchProblemRow.batch_id == batch_id)
                .order_by(BatchProblemRow.position)
            )
        ).all()
    per_problem: dict[str, dict[str, int]] = {key: {} for key in order}
    by_status: dict[str, int] = {}
    for key, status, count in rows:
        per_problem.setdefault(key, {})[status] = int(count)
        by_status[status] = by_status.get(status, 0) + int(count)
    return Progress(sum(by_status.values()), by_status, per_problem)


def _runner_alive(runner: str | None, heartbeat_at: datetime | None, stale_s: float) -> bool:
    if runner is None:
        return False
    host, _, pid = runner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        if int(pid) == os.getpid():
            return False  # ourselves: a previous runner of this process that ended without releasing
        try:
            os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if heartbeat_at is None:
        return False
    beat = heartbeat_at if heartbeat_at.tzinfo else heartbeat_at.replace(tzinfo=UTC)
    return datetime.now(UTC) - beat < timedelta(seconds=stale_s)


async def acquire_runner(db: Database, batch_id: str, runner: str, stale_s: float) -> BatchRow:
    """Take the batch for this process, unless another live process runs it (then a clear error)."""
    row = await get_batch(db, batch_id)
    if row.status in (BatchStatus.DONE, BatchStatus.CANCELLED):
        return row
    if row.runner != runner and _runner_alive(row.runner, row.heartbeat_at, stale_s):
        raise UserError(
            f"batch {batch_id} is being run by {row.runner} (last heartbeat {row.heartbeat_at}); "
            f"wait for it, or cancel it with `kernelwright batch cancel {batch_id}`"
        )
    async with db.session() as session:
        taken = await session.execute(
            update(BatchRow)
            .where(
                BatchRow.id == batch_id,
                BatchRow.runner.is_(None) if row.runner is None else BatchRow.runner == row.runner,
            )
            .values(runner=runner, heartbeat_at=utcnow(), status=BatchStatus.RUNNING.value)
        )
    if getattr(taken, "rowcount", 1) != 1:
        raise UserError(f"batch {batch_id} was taken by another process just now; try again")
    return await get_batch(db, batch_id)


async def heartbeat(db: Database, batch_id: str, runner: str) -> bool:
    """Refresh the lease; returns whether cancellation was requested."""
    async with db.session() as session:
        await session.execute(
            update(BatchRow)
            .where(BatchRow.id == batch_id, BatchRow.runner == runner)
            .values(heartbeat_at=utcnow())
        )
        row = await session.get(BatchRow, batch_id)
        return bool(row and row.cancel_requested)


async def release_runner(
    db: Database, batch_id: str, runner: str, status: BatchStatus, error: str | None = None
) -> None:
    async with db.session() as session:
        values: dict[str, Any] = {"runner": None, "status": status.value}
        if error is not None or status is BatchStatus.DONE:  # a stop's recorded reason outlives its runner
            values["error"] = error
        if status in (BatchStatus.DONE, BatchStatus.CANCELLED, BatchStatus.FAILED):
            values["finished_at"] = utcnow()
        await session.execute(
            update(BatchRow).where(BatchRow.id == batch_id, BatchRow.runner == runner).values(**values)
        )


async def request_cancel(
    db: Database, batch_id: str, stale_s: float = 30.0, reason: str | None = None
) -> BatchRow:
    """Ask the batch to stop: pending samples are cancelled now; a live runner stops its running ones.

    With no live runner (a killed process), running samples are cancelled here too. `reason` is kept as
    the batch's `error` (why the service stopped it; a user's cancel needs none).
    """
    row = await get_batch(db, batch_id)
    if row.status in (BatchStatus.DONE, BatchStatus.CANCELLED, BatchStatus.FAILED):
        return row
    live = _runner_alive(row.runner, row.heartbeat_at, stale_s)
    stop = [SampleStatus.PENDING.value] + ([] if live else [SampleStatus.RUNNING.value])
    async with db.session() as session:
        await session.execute(
            update(BatchSampleRow)
            .where(BatchSampleRow.batch_id == batch_id, BatchSampleRow.status.in_(stop))
            .values(status=SampleStatus.CANCELLED.value, finished_at=utcnow())
        )
        values: dict[str, Any] = {"cancel_requested": True}
        if reason is not None:
            values["error"] = reason
        if not live:
            values.update(status=BatchStatus.CANCELLED.value, runner=None, finished_at=utcnow())
        await session.execute(update(BatchRow).where(BatchRow.id == batch_id).values(**values))
    return await get_batch(db, batch_id)
