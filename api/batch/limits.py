"""Concurrency limits of a batch, as wrappers at the two seams a run already has.

LLM calls: `LimitedProvider` wraps the run's provider, so only `complete()` waits for a slot: a run
that is compiling or verifying holds none. GPU evaluation: `LeasedExecutor` wraps the executor of one
sample and holds one lease from the first worker it spawns until its last worker is closed, so the
reference and candidate workers of one verification share a lease (a limit of 1 cannot deadlock them)
and a sample holds nothing while it waits for the model. Where the batch verifies through the process's
shared runner (the service, `kernelwright batch run`), `LimitedRunner` applies the same per-batch limit
on top of the runner's own leases (one per GPU, shared by every batch and job).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agent.providers import ChatMessage, Completion, Provider
from kernelwright.domain import Verdict
from sandbox.executor import Executor, ProcessSpec, WorkerProcess
from sandbox.runner import EvalJob, Runner

__all__ = ["LeasedExecutor", "LimitedProvider", "LimitedRunner"]


class LimitedProvider(Provider):
    """`inner`, with at most as many calls in flight as `slots` allows (shared by a batch's samples)."""

    def __init__(self, inner: Provider, slots: asyncio.Semaphore) -> None:
        self.inner = inner
        self.name = inner.name
        self.model = inner.model
        self.is_replay = inner.is_replay
        self._slots = slots

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_output_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion:
        async with self._slots:
            return await self.inner.complete(
                messages, max_output_tokens=max_output_tokens, temperature=temperature
            )

    async def aclose(self) -> None:
        await self.inner.aclose()


class _LeasedWorker(WorkerProcess):
    def __init__(self, inner: WorkerProcess, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release: Callable[[], None] | None = release
        self.network_isolated = inner.network_isolated

    async def send(self, message: Mapping[str, Any]) -> None:
        await self._inner.send(message)

    async def receive(self, timeout: float) -> dict[str, Any]:
        return await self._inner.receive(timeout)

    async def close(self) -> None:
        try:
            await self._inner.close()
        finally:
            if self._release is not None:
                release, self._release = self._release, None
                release()

    @property
    def stderr_tail(self) -> str:
        return self._inner.stderr_tail


class LeasedExecutor(Executor):
    """One sample's view of a shared executor: one GPU lease while any of its workers lives."""

    def __init__(self, inner: Executor, leases: asyncio.Semaphore) -> None:
        self._inner = inner
        self._leases = leases
        self._live = 0
        self._lock = asyncio.Lock()

    @property
    def holds_lease(self) -> bool:
        return self._live > 0

    async def spawn(self, spec: ProcessSpec) -> WorkerProcess:
        async with self._lock:
            if self._live == 0:
                await self._leases.acquire()
            self._live += 1
        try:
            worker = await self._inner.spawn(spec)
        except BaseException:
            self._release_one()
            raise
        return _LeasedWorker(worker, self._release_one)

    def _release_one(self) -> None:
        self._live -= 1
        if self._live == 0:
            self._leases.release()

    async def aclose(self) -> None:
        """The shared executor outlives the sample: the batch closes it, not this view."""


class LimitedRunner(Runner):
    """A batch's view of a shared runner: at most `slots` of its evaluations at once."""

    def __init__(self, inner: Runner, slots: asyncio.Semaphore) -> None:
        super().__init__()
        self.inner = inner
        self._slots = slots

    async def _start(self) -> None:
        await self.inner.start()

    async def evaluate(self, job: EvalJob) -> Verdict:
        async with self._slots:
            return await self.inner.evaluate(job)

    @property
    def busy(self) -> int:
        return self.inner.busy

    @property
    def healthy_slots(self) -> int:
        return self.inner.healthy_slots

    async def aclose(self) -> None:
        """The shared runner outlives the batch: its owner closes it, not this view."""
