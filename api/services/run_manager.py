"""What the job and the session managers share: the services a run needs, their tasks, and spend.

Both run the generation graph as asyncio tasks under the same run slots, record events through the
same hub and charge the same key; only what they store per run differs.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from api.db.engine import Database
from api.services.events import EventHook, EventHub
from api.services.keys import add_spend
from api.services.metrics import ServiceMetrics
from api.services.providers import ProviderFactory
from api.services.slots import RunSlots
from kernelwright.domain import TraceEvent, TraceKind
from kernelwright.settings import Settings
from rag.retriever import Retriever
from sandbox.executor import Executor
from sandbox.runner import Runner
from sandbox.verify import VerifyOptions

__all__ = ["RunManager", "RunServices", "now", "reply_usage"]


def now() -> datetime:
    return datetime.now(UTC)


def reply_usage(event: TraceEvent) -> tuple[int, float] | None:
    """Tokens and cost of a model reply event; None for every other event."""
    if event.kind != TraceKind.REPLY:
        return None
    tokens = int(event.data.get("input_tokens") or 0) + int(event.data.get("output_tokens") or 0)
    return tokens, float(event.data.get("cost_usd") or 0.0)


@dataclass(frozen=True)
class RunServices:
    settings: Settings
    database: Database
    providers: ProviderFactory
    executor: Executor
    runner: Runner
    retriever: Retriever
    metrics: ServiceMetrics
    hub: EventHub
    slots: RunSlots
    verify_options: VerifyOptions | None = None


class RunManager(ABC):
    """The services and the running tasks of one kind of run (jobs or session rounds)."""

    def __init__(self, services: RunServices) -> None:
        self.settings = services.settings
        self.db = services.database
        self.providers = services.providers
        self.executor = services.executor
        self.runner = services.runner
        self.retriever = services.retriever
        self.metrics = services.metrics
        self.hub = services.hub
        self.slots = services.slots
        self.verify_options = services.verify_options
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._closing = False

    async def shutdown(self) -> None:
        """Stop running tasks without marking them: the next start resumes them from their checkpoints."""
        self._closing = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @abstractmethod
    async def _add_usage(
        self, s: AsyncSession, run_id: str, tokens: int, cost: float, event: TraceEvent
    ) -> None:
        """Add a reply's tokens and cost to the run's own row (inside the event's transaction)."""

    def _spend_hook(self, run_id: str, key_id: str) -> EventHook:
        """Charges each model reply to the run's row and to its API key, with the event that reports it."""

        async def on_event(event: TraceEvent, s: AsyncSession) -> None:
            usage = reply_usage(event)
            if usage is None:
                return
            tokens, cost = usage
            await self._add_usage(s, run_id, tokens, cost, event)
            await add_spend(s, key_id, cost, tokens)

        return on_event
