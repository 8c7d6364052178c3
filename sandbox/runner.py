"""Runners evaluate a batch of jobs and yield `(key, verdict)` as each finishes, in completion order.

Two backends share this interface and the per-slot logic of `runner_slot.SlotWorker`:
- `InProcessRunner` (the embedded default): asyncio in this process, one lease per GPU (or CPU slot),
  one `SlotWorker` per slot. Candidate code still runs only in the slot's sandboxed worker processes.
- `RayRunner` (`sandbox.ray_runner`): one `num_gpus=1` Ray actor per GPU, locally or on a cluster.

Every key of a batch gets exactly one verdict. Work that failed because of the machine (a slot that had
to be restarted mid-job, a Ray actor that died) is retried, up to `max_attempts` tries in all; pool
events (restarts, retired slots, lost actors, retries) collect in `Runner.events` for metrics.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable
from types import TracebackType

from kernelwright.domain import Outcome, Verdict
from kernelwright.errors import ConfigError, SandboxError, UserError
from kernelwright.settings import Settings
from sandbox.leases import Leases, Slot, discover_slots
from sandbox.runner_slot import EvalJob, RunnerEvent, SlotOutcome, SlotWorker

__all__ = ["EvalJob", "InProcessRunner", "Runner", "RunnerEvent", "make_runner", "unique_jobs"]

DEFAULT_MAX_ATTEMPTS = 3


def unique_jobs(jobs: Iterable[EvalJob]) -> list[EvalJob]:
    """The jobs as a list; a key used twice is the caller's error (its verdicts could not be told apart)."""
    batch = list(jobs)
    seen: set[str] = set()
    for job in batch:
        if job.key in seen:
            raise UserError(f"job key {job.key!r} appears twice in one batch: give every job its own key")
        seen.add(job.key)
    return batch


def should_retry(outcome: SlotOutcome) -> bool:
    """Retry only what the machine spoiled: an infrastructure verdict from a slot that had to restart."""
    return outcome.restarted and outcome.verdict.outcome == Outcome.INFRASTRUCTURE


class Runner(ABC):
    """Evaluate jobs; `events` records what happened to the worker pool along the way.

    `evaluate` is safe to call from many tasks at once (the service's jobs, sessions and batches share
    one runner): each call waits for a free slot, so a GPU still runs one candidate at a time.
    """

    def __init__(self) -> None:
        self.events: list[RunnerEvent] = []
        self._starting: asyncio.Future[None] | None = None

    async def start(self) -> None:
        """Start the workers (idempotent: concurrent callers wait for the one start); `evaluate` calls it."""
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        await asyncio.shield(self._starting)

    @abstractmethod
    async def _start(self) -> None:
        """Start the workers, once."""

    @abstractmethod
    async def evaluate(self, job: EvalJob) -> Verdict:
        """Compile and verify one job on a free slot (retrying what the machine spoiled)."""

    async def run(self, jobs: Iterable[EvalJob]) -> AsyncIterator[tuple[str, Verdict]]:
        """Yield `(job.key, verdict)` for every job, in the order they finish."""
        batch = unique_jobs(jobs)
        await self.start()

        async def keyed(job: EvalJob) -> tuple[str, Verdict]:
            return job.key, await self.evaluate(job)

        tasks = [asyncio.create_task(keyed(job)) for job in batch]
        try:
            for next_done in asyncio.as_completed(tasks):
                yield await next_done
        finally:  # the caller stopped early or failed: do not leave evaluations running
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    @property
    @abstractmethod
    def busy(self) -> int:
        """Slots (GPUs) evaluating a job right now."""

    @property
    @abstractmethod
    def healthy_slots(self) -> int:
        """Slots (GPUs) not retired."""

    @abstractmethod
    async def aclose(self) -> None:
        """Stop the workers (and what the runner started, e.g. a local Ray instance)."""

    async def run_all(self, jobs: Iterable[EvalJob]) -> dict[str, Verdict]:
        return {key: verdict async for key, verdict in self.run(jobs)}

    async def __aenter__(self) -> Runner:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class InProcessRunner(Runner):
    """asyncio in this process: one lease per slot, so one candidate per GPU at a time."""

    def __init__(
        self,
        settings: Settings,
        *,
        slots: list[Slot] | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.slots = slots if slots is not None else discover_slots(settings)
        self.leases = Leases(self.slots)
        self.max_attempts = max_attempts
        self.workers = {slot: SlotWorker(slot, settings) for slot in self.slots}

    async def _start(self) -> None:
        """Start and probe every slot's executor; slots that fail the probe are retired."""
        healths = await asyncio.gather(*(worker.start() for worker in self.workers.values()))
        for (slot, worker), health in zip(self.workers.items(), healths, strict=True):
            self.events.extend(worker.drain_events())
            if not health.healthy:
                self._retire(slot, f"failed its first health check: {health.detail}")

    @property
    def busy(self) -> int:
        return self.leases.healthy - self.leases.free

    @property
    def healthy_slots(self) -> int:
        return self.leases.healthy

    def _retire(self, slot: Slot, detail: str) -> None:
        self.leases.retire(slot)
        self.events.append(RunnerEvent("slot_retired", slot.name, detail))

    async def evaluate(self, job: EvalJob) -> Verdict:
        await self.start()
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with self.leases.lease() as slot:
                    worker = self.workers[slot]
                    outcome = await worker.evaluate(job)
                    self.events.extend(outcome.events)
                    if not outcome.healthy:
                        self._retire(slot, "unhealthy after a restart")
            except SandboxError as exc:  # no healthy slot is left
                return Verdict(outcome=Outcome.INFRASTRUCTURE, message=str(exc))
            if not should_retry(outcome) or attempt == self.max_attempts:
                return outcome.verdict
            self.events.append(
                RunnerEvent("job_retried", slot.name, f"attempt {attempt} spoiled by the machine", job.key)
            )
        raise AssertionError("unreachable: the last attempt returns")

    async def aclose(self) -> None:
        for worker in self.workers.values():
            await worker.aclose()


def make_runner(settings: Settings) -> Runner:
    """The runner the settings ask for: `inprocess` (default) or `ray` (KERNELWRIGHT_RUNNER)."""
    if settings.runner == "inprocess":
        return InProcessRunner(settings)
    try:
        from sandbox.ray_runner import RayRunner
    except ImportError as exc:
        raise ConfigError(
            f"KERNELWRIGHT_RUNNER=ray needs Ray, which cannot be imported here ({exc}); "
            "install it with pip install 'ray[default]' or set KERNELWRIGHT_RUNNER=inprocess"
        ) from exc
    return RayRunner(settings)
