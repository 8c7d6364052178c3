"""Run events in the database, numbered per stream (a job or a session), with wake-ups for live readers.

The trace listener is synchronous and runs inside graph nodes, so it only queues the event; one writer
task per stream stores events in order and wakes the SSE readers. Readers always read from the database,
which makes a stream resumable with `Last-Event-ID` and across server restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.engine import Database
from api.db.models import JobEvent
from api.services.metrics import ServiceMetrics
from kernelwright.domain import TraceEvent
from kernelwright.logs import get_logger

__all__ = ["EventHub", "EventRecorder", "read_events"]

log = get_logger(__name__)

EventHook = Callable[[TraceEvent, AsyncSession], Awaitable[None]]
"""Runs in the transaction that stores the event (spend, counters), so both land or neither."""
Statement = Callable[[AsyncSession], Awaitable[Any]]


class EventHub:
    """Wake-ups per stream: readers wait for `notify`, or time out and poll the database."""

    def __init__(self) -> None:
        self._signals: dict[str, asyncio.Event] = {}

    def notify(self, stream_id: str) -> None:
        signal = self._signals.pop(stream_id, None)
        if signal is not None:
            signal.set()

    async def wait(self, stream_id: str, timeout: float) -> None:
        signal = self._signals.setdefault(stream_id, asyncio.Event())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(signal.wait(), timeout)


class EventRecorder:
    """A trace listener that persists a stream's events in order and runs `hook` on each (spend, counters)."""

    def __init__(
        self,
        db: Database,
        hub: EventHub,
        metrics: ServiceMetrics,
        stream_id: str,
        *,
        next_seq: int,
        hook: EventHook | None = None,
    ) -> None:
        self.db = db
        self.hub = hub
        self.metrics = metrics
        self.stream_id = stream_id
        self.seq = next_seq
        self.hook = hook
        self._queue: asyncio.Queue[TraceEvent | None] = asyncio.Queue()
        self._writer = asyncio.create_task(self._drain(), name=f"events-{stream_id}")

    @classmethod
    async def open(
        cls,
        db: Database,
        hub: EventHub,
        metrics: ServiceMetrics,
        stream_id: str,
        hook: EventHook | None = None,
    ) -> EventRecorder:
        """A recorder continuing the stream's numbering (a resumed run appends to its stream)."""
        async with db.session() as s:
            last = await s.scalar(select(func.max(JobEvent.seq)).where(JobEvent.stream_id == stream_id))
        return cls(db, hub, metrics, stream_id, next_seq=(last or 0) + 1, hook=hook)

    def __call__(self, event: TraceEvent) -> None:
        self.metrics.observe_event(event)
        self._queue.put_nowait(event)

    async def add(self, kind: str, payload: dict[str, Any], *, also: Statement | None = None) -> None:
        """Append a service-side event (status changes), after the trace events queued so far.

        `also` runs in the same transaction, so a status change and its event are seen together.
        """
        await self.flush()
        await self._store(kind, payload, also)

    async def flush(self) -> None:
        await self._queue.join()

    async def close(self) -> None:
        self._queue.put_nowait(None)
        await asyncio.shield(self._writer)

    async def _drain(self) -> None:
        # Everything queued so far goes in one transaction: under load, SQLite's single writer
        # spends its time on commits, not on rows.
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            events = [e for e in batch if e is not None]
            try:
                if events:
                    async with self.db.session() as s:
                        for event in events:
                            s.add(self._row(event.kind.value, event.model_dump(mode="json")))
                            if self.hook is not None:
                                await self.hook(event, s)
                    self.hub.notify(self.stream_id)
            except (SQLAlchemyError, OSError):  # a lost event must not stop the run; the trace keeps it
                log.exception("storing run events failed", stream=self.stream_id)
            finally:
                for _ in batch:
                    self._queue.task_done()
            if len(events) < len(batch):
                return

    def _row(self, kind: str, payload: dict[str, Any]) -> JobEvent:
        seq = self.seq
        self.seq += 1
        return JobEvent(stream_id=self.stream_id, seq=seq, kind=kind, payload=payload)

    async def _store(self, kind: str, payload: dict[str, Any], also: Statement | None = None) -> None:
        async with self.db.session() as s:
            s.add(self._row(kind, payload))
            if also is not None:
                await also(s)
        self.hub.notify(self.stream_id)


async def read_events(db: Database, stream_id: str, after: int, limit: int = 200) -> list[JobEvent]:
    async with db.session() as s:
        rows = await s.scalars(
            select(JobEvent)
            .where(JobEvent.stream_id == stream_id, JobEvent.seq > after)
            .order_by(JobEvent.seq)
            .limit(limit)
        )
        return list(rows)
