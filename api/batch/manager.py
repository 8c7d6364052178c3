"""Batches inside the REST service: one background task per running batch, recovered at startup.

The service's shared parts (database, provider factory, sandbox executor, runner) come from `Services`; a
sample's LLM cost is charged to the API key that created the batch as soon as the sample ends.
A server stopped or killed leaves its batches `running` without a live runner; `recover()` at the
next start continues them exactly where they stopped (see `api.batch.engine`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sqlalchemy import select

from agent.providers import Provider
from api.batch.engine import BatchRunner, SampleEvent
from api.batch.providers import ProviderSource
from api.batch.store import BatchStatus, get_batch, request_cancel
from api.db.batch_tables import BatchRow
from api.db.engine import Database
from api.services.container import Services
from api.services.keys import get_key, record_spend
from api.services.limits import remaining_spend
from api.services.providers import ProviderSpec
from kernelwright.domain import Problem
from kernelwright.errors import KernelwrightError
from kernelwright.logs import get_logger
from kernelwright.settings import Settings

__all__ = ["BatchManager", "stop_if_over_cap"]

log = get_logger(__name__)


class _ServiceProviders:
    """A batch's provider per sample, from the service's provider factory (scripted replies included)."""

    def __init__(self, services: Services, batch: BatchRow) -> None:
        self.services = services
        self.name = batch.provider
        self.replies = tuple(
            str(r) for r in (batch.options or {}).get("provider_options", {}).get("replies", ())
        )

    async def __call__(self, model: str, problem: Problem, turns_done: int) -> Provider:
        return self.services.providers(ProviderSpec(self.name, model, self.replies), turns_done)


async def stop_if_over_cap(db: Database, settings: Settings, batch_id: str, owner: str) -> bool:
    """Stop the batch once its API key has spent its cap; True when this call stopped it.

    Creating a batch is refused (402) to a key with nothing left, but a batch runs for hours and its
    samples spend as they go: without this check it would run on past the cap. The samples that are
    running finish (their spend is already incurred); pending ones are cancelled, and the batch's
    `error` says why and how to go on.
    """
    key = await get_key(db, owner)
    if key is None or remaining_spend(key, settings) > 0:
        return False
    batch = await get_batch(db, batch_id)
    if batch.cancel_requested or batch.status != BatchStatus.RUNNING.value:
        return False
    cap = key.spend_cap_usd if key.spend_cap_usd is not None else settings.spend_cap_usd
    reason = (
        f"stopped: API key {key.name!r} has spent ${key.spent_usd:.2f} of its ${cap:.2f} cap; the "
        "finished samples are kept (export them). For the rest, an operator can issue a key with a "
        "larger cap (`kernelwright keys create NAME --spend-cap USD`) to submit a new batch"
    )
    log.warning("batch stopped at the spending cap", batch_id=batch_id, key=key.id, spent=key.spent_usd)
    await request_cancel(db, batch_id, settings.batch_stale_s, reason=reason)
    return True


class BatchManager:
    """Starts, tracks, cancels and recovers the batches of one service process."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._tasks: dict[str, asyncio.Task[Any]] = {}

    def running(self, batch_id: str) -> bool:
        task = self._tasks.get(batch_id)
        return task is not None and not task.done()

    async def start(self, batch_id: str) -> None:
        """Run the batch in the background (no-op when this process already runs it)."""
        if self.running(batch_id):
            return
        db = self.services.database
        async with db.session() as session:
            batch = await session.get(BatchRow, batch_id)
        assert batch is not None
        providers: ProviderSource = _ServiceProviders(self.services, batch)
        owner = batch.owner

        settings = self.services.settings

        async def charge(event: SampleEvent) -> None:
            if owner is not None and (event.cost_usd or event.tokens):
                await record_spend(db, owner, event.cost_usd, event.tokens)
                await stop_if_over_cap(db, settings, batch_id, owner)

        runner = BatchRunner(
            db,
            self.services.settings,
            providers=providers,
            executor=self.services.executor,
            runner=self.services.runner,
            after_sample=charge,
        )
        task = asyncio.create_task(runner.run(batch_id), name=f"batch-{batch_id}")
        task.add_done_callback(lambda t: self._finished(batch_id, t))
        self._tasks[batch_id] = task

    def _finished(self, batch_id: str, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("batch failed", batch_id=batch_id, error=str(task.exception()))

    async def cancel(self, batch_id: str) -> BatchRow:
        """Request the stop; the batch's runner sees it within one heartbeat and stops its samples."""
        return await request_cancel(self.services.database, batch_id, self.services.settings.batch_stale_s)

    async def recover(self) -> int:
        """Continue every batch a previous process left pending or running; returns how many."""
        async with self.services.database.session() as session:
            ids = (
                await session.scalars(
                    select(BatchRow.id).where(
                        BatchRow.status.in_([BatchStatus.PENDING.value, BatchStatus.RUNNING.value])
                    )
                )
            ).all()
        for batch_id in ids:
            await self.start(batch_id)
        return len(ids)

    async def shutdown(self) -> None:
        """Stop the runners without marking their samples: the next start resumes them."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, KernelwrightError):
                await task
