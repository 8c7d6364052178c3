"""Run slots: how many generation runs (jobs and session rounds) execute at once; the rest queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from api.services.metrics import ServiceMetrics

__all__ = ["RunSlots"]


class RunSlots:
    def __init__(self, size: int, metrics: ServiceMetrics) -> None:
        if size < 1:
            raise ValueError("job_concurrency must be at least 1")
        self._semaphore = asyncio.Semaphore(size)
        self._metrics = metrics
        self.waiting = 0
        self.running = 0

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        self.waiting += 1
        self._metrics.queue_depth.set(self.waiting)
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
            self._metrics.queue_depth.set(self.waiting)
        self.running += 1
        self._metrics.running.set(self.running)
        try:
            yield
        finally:
            self.running -= 1
            self._metrics.running.set(self.running)
            self._semaphore.release()
