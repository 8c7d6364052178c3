"""Generation jobs: stored on submit, run as asyncio tasks under the run slots, resumed after a restart.

A job's id is also its LangGraph thread and trace name. A job interrupted by a shutdown keeps its
status in the database; at the next start `recover()` resumes it from its checkpoint (or starts it,
when it never reached one). Problem source never runs here: the verifier runs it in sandboxed workers.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agent.graph import build_graph
from agent.run import GenerationRequest, open_checkpointer, run_generation
from agent.state import RunState
from api.db.models import Job
from api.services.events import EventRecorder, Statement
from api.services.keys import KeyRecord
from api.services.providers import ProviderSpec
from api.services.requests import StoredRequest
from api.services.run_manager import RunManager, now
from api.services.summary import summarize
from kernelwright.domain import TraceEvent
from kernelwright.errors import KernelwrightError
from kernelwright.logs import get_logger

__all__ = ["ACTIVE", "TERMINAL", "JobManager"]

log = get_logger(__name__)

ACTIVE = ("queued", "running")
TERMINAL = frozenset({"succeeded", "compiled_unverified", "budget_exhausted", "failed", "cancelled"})


class JobManager(RunManager):
    async def submit(self, key: KeyRecord, request: GenerationRequest, provider: ProviderSpec) -> Job:
        row = Job(
            id=f"job-{uuid.uuid4().hex[:16]}",
            key_id=key.id,
            status="queued",
            problem_key=request.problem.key,
            target=request.target.value,
            provider=provider.name,
            model=provider.model,
            request=StoredRequest.dump(request, provider),
            turns=0,
            tokens_used=0,
            cost_usd=0.0,
            created_at=now(),
        )
        async with self.db.session() as s:
            s.add(row)
        self._start(row.id)
        return row

    async def get(self, key: KeyRecord, job_id: str) -> Job | None:
        """The job if it exists and belongs to `key` (other keys' jobs are invisible)."""
        async with self.db.session() as s:
            row = await s.get(Job, job_id)
        return row if row is not None and row.key_id == key.id else None

    async def page(
        self, key: KeyRecord, *, skip: int, limit: int, status: str | None
    ) -> tuple[list[Job], int]:
        where = [Job.key_id == key.id] + ([Job.status == status] if status else [])
        async with self.db.session() as s:
            count = await s.scalar(select(func.count()).select_from(Job).where(*where))
            rows = await s.scalars(
                select(Job).where(*where).order_by(Job.created_at.desc()).offset(skip).limit(limit)
            )
            return list(rows), int(count or 0)

    async def cancel(self, job_id: str) -> None:
        task = self._tasks.get(job_id)
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
            return
        await self._set(job_id, status="cancelled", finished_at=now(), error="cancelled by the client")

    async def recover(self) -> int:
        """Resume every job a previous server left queued or running; returns how many."""
        async with self.db.session() as s:
            ids = list(await s.scalars(select(Job.id).where(Job.status.in_(ACTIVE)).order_by(Job.created_at)))
        for job_id in ids:
            self._start(job_id)
        if ids:
            log.info("resuming jobs", count=len(ids))
        return len(ids)

    async def status_counts(self) -> dict[str, int]:
        async with self.db.session() as s:
            rows = await s.execute(select(Job.status, func.count()).group_by(Job.status))
            return {status: int(n) for status, n in rows.all()}

    def _start(self, job_id: str) -> None:
        task = asyncio.create_task(self._run(job_id), name=job_id)
        self._tasks[job_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(job_id, None))

    async def _set(self, job_id: str, **values: Any) -> None:
        async with self.db.session() as s:
            await s.execute(update(Job).where(Job.id == job_id).values(**values))

    @staticmethod
    def _update(job_id: str, **values: Any) -> Statement:
        async def run(s: AsyncSession) -> None:
            await s.execute(update(Job).where(Job.id == job_id).values(**values))

        return run

    async def _checkpoint(self, job_id: str) -> RunState | None:
        async with open_checkpointer(self.settings) as saver:
            snapshot = await build_graph(saver).aget_state({"configurable": {"thread_id": job_id}})
        return RunState.model_validate(snapshot.values) if snapshot.values else None

    async def _add_usage(
        self, s: AsyncSession, run_id: str, tokens: int, cost: float, event: TraceEvent
    ) -> None:
        await s.execute(
            update(Job)
            .where(Job.id == run_id)
            .values(tokens_used=Job.tokens_used + tokens, cost_usd=Job.cost_usd + cost, turns=event.turn)
        )

    async def _run(self, job_id: str) -> None:
        structlog.contextvars.bind_contextvars(job_id=job_id)
        async with self.db.session() as s:
            row = await s.get(Job, job_id)
        if row is None:
            return
        try:
            async with self.slots.hold():
                await self._run_in_slot(job_id, row)
        except asyncio.CancelledError:
            if not self._closing and row.status != "cancelled":
                # cancelled while still queued: no recorder was opened yet
                recorder = await EventRecorder.open(self.db, self.hub, self.metrics, job_id)
                await recorder.add("status", {"status": "cancelled"}, also=self._cancelled(job_id))
                await recorder.close()
            raise

    async def _run_in_slot(self, job_id: str, row: Job) -> None:
        request, spec = StoredRequest.load(row.request)
        recorder = await EventRecorder.open(
            self.db, self.hub, self.metrics, job_id, hook=self._spend_hook(job_id, row.key_id)
        )
        try:
            await self._set(job_id, status="running", started_at=row.started_at or now())
            await recorder.add("status", {"status": "running"})
            state = await self._checkpoint(job_id)
            result = await run_generation(
                None if state is not None else request,
                settings=self.settings,
                provider=self.providers(spec, state.turn if state is not None else 0),
                executor=self.executor,
                runner=self.runner,
                retriever=self.retriever,
                verify_options=self.verify_options,
                listeners=(recorder,),
                run_id=job_id,
                budgets=request.budgets,
            )
            summary = summarize(result.state)
            dumped = summary.model_dump(mode="json")
            await recorder.add(
                "status",
                {"status": summary.status, "result": dumped},
                also=self._update(
                    job_id,
                    status=summary.status,
                    result=dumped,
                    turns=summary.turns,
                    tokens_used=summary.tokens_used,
                    cost_usd=summary.cost_usd,
                    finished_at=now(),
                ),
            )
        except asyncio.CancelledError:
            if not self._closing:
                row.status = "cancelled"  # tells _run the cancellation is recorded
                await recorder.add("status", {"status": "cancelled"}, also=self._cancelled(job_id))
            raise
        except KernelwrightError as exc:
            log.warning("job failed", error=str(exc))
            await recorder.add(
                "status",
                {"status": "failed", "error": str(exc)},
                also=self._update(job_id, status="failed", finished_at=now(), error=str(exc)),
            )
        finally:
            await recorder.close()

    def _cancelled(self, job_id: str) -> Statement:
        return self._update(job_id, status="cancelled", finished_at=now(), error="cancelled by the client")
