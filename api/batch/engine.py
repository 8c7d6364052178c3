"""Run a batch: every open sample is one `run_generation`, under the batch's LLM and GPU limits.

Restart safety: before a sample's run starts, its row says `running` and names the run id; the result
and `done` are written together when it ends. A new process (after a kill) first asks the checkpointer
where each `running` sample stands: a finished run is recorded without running anything, a run mid-way
resumes from its checkpoint, and only a run without a checkpoint starts over (nothing of it was kept).
Samples already `done` are never touched again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from agent.context import Budgets
from agent.run import GenerationRequest, run_generation
from agent.state import RunState
from api.batch.checkpoints import checkpoint_status
from api.batch.limits import LeasedExecutor, LimitedProvider, LimitedRunner
from api.batch.providers import ProviderSource, provider_source
from api.batch.store import (
    OPEN_SAMPLES,
    BatchStatus,
    SampleStatus,
    acquire_runner,
    batch_entries,
    get_batch,
    heartbeat,
    list_samples,
    mark_finished,
    mark_started,
    release_runner,
    runner_name,
)
from api.batch.suite import SuiteEntry
from api.db.batch_tables import BatchRow, BatchSampleRow
from api.db.engine import Database
from kernelwright.domain import Outcome, Target
from kernelwright.errors import KernelwrightError
from kernelwright.logs import get_logger
from kernelwright.settings import Settings
from sandbox.executor import Executor
from sandbox.runner import Runner
from sandbox.verify import VerifyOptions
from sandbox.zygote_executor import make_executor

__all__ = ["BUDGET_FIELDS", "BatchRunResult", "BatchRunner", "SampleEvent", "sample_fields"]

log = get_logger(__name__)

BUDGET_FIELDS = ("max_turns", "max_tokens", "max_cost_usd", "max_wall_s")
"""Budgets a batch may set per run; they travel as settings so a resumed run keeps them."""


@dataclass(frozen=True)
class SampleEvent:
    """A sample started (fresh or resumed) or finished; for progress displays."""

    kind: Literal["started", "finished"]
    sample: BatchSampleRow
    resumed: bool = False
    status: str | None = None
    outcome: str | None = None
    cost_usd: float = 0.0
    tokens: int = 0


@dataclass(frozen=True)
class BatchRunResult:
    batch_id: str
    status: BatchStatus
    finished: int  # samples this process brought to an end
    resumed: int  # of which were resumed from a checkpoint left by an earlier process


def sample_fields(state: RunState) -> dict[str, Any]:
    """The figures a sample row keeps of its finished run (the best attempt decides)."""
    best = state.best
    verdict = best.verdict if best is not None else None
    return {
        "run_status": state.status.value,
        "outcome": best.outcome.value if best is not None else None,
        "compiled": bool(best is not None and best.compile is not None and best.compile.ok),
        "correct": bool(best is not None and best.outcome == Outcome.CORRECT),
        "speedup_vs_eager": verdict.speedup_vs_eager if verdict else None,
        "speedup_vs_compile": verdict.speedup_vs_compile if verdict else None,
        "device": verdict.device if verdict else None,
        "turns": state.turn,
        "tokens": state.tokens_used,
        "cost_usd": state.cost_usd,
        "wall_s": max(0.0, time.time() - state.started_at) if state.started_at else None,
        "error": None,
    }


class BatchRunner:
    """Runs the open samples of a batch to the end; one runner per batch at a time (a DB lease)."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        providers: ProviderSource | None = None,
        executor: Executor | None = None,
        runner: Runner | None = None,
        listener: Callable[[SampleEvent], None] | None = None,
        after_sample: Callable[[SampleEvent], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.providers = providers
        self.executor = executor
        self.runner = runner  # verify on the runner's leased slots (shared); else on `executor` directly
        self.listener = listener
        self.after_sample = after_sample  # e.g. charge the sample's cost to an API key
        self._cancelling = False

    def _emit(self, event: SampleEvent) -> None:
        if self.listener is not None:
            self.listener(event)

    async def run(self, batch_id: str) -> BatchRunResult:
        runner = runner_name()
        batch = await acquire_runner(self.db, batch_id, runner, self.settings.batch_stale_s)
        if batch.status in (BatchStatus.DONE, BatchStatus.CANCELLED):
            return BatchRunResult(batch_id, BatchStatus(batch.status), 0, 0)
        final, error = BatchStatus.RUNNING, None
        try:
            counts = await self._run_open(batch, runner)
            # a cancel the heartbeat had not seen yet still ends the batch as cancelled
            cancelled = self._cancelling or (await get_batch(self.db, batch_id)).cancel_requested
            final = BatchStatus.CANCELLED if cancelled else BatchStatus.DONE
            return BatchRunResult(batch_id, final, *counts)
        except KernelwrightError as exc:
            final, error = BatchStatus.FAILED, str(exc)
            raise
        finally:
            # a process stopped from outside leaves the batch `running` without a runner: the next resumes
            await asyncio.shield(release_runner(self.db, batch_id, runner, final, error))

    async def _run_open(self, batch: BatchRow, runner: str) -> tuple[int, int]:
        entries = {e.problem.key: e for e in await batch_entries(self.db, batch.id)}
        queue = deque(await list_samples(self.db, batch.id, OPEN_SAMPLES, running_first=True))
        options: dict[str, Any] = batch.options or {}
        budgets = {k: v for k, v in dict(options.get("budgets") or {}).items() if k in BUDGET_FIELDS}
        settings = self.settings.model_copy(update=budgets)
        providers = self.providers or provider_source(
            batch.provider, settings, dict(options.get("provider_options") or {})
        )
        executor = self.executor or make_executor(settings)
        llm, gpu = asyncio.Semaphore(batch.limit_llm), asyncio.Semaphore(batch.limit_gpu)
        counts = [0, 0]

        async def work() -> None:
            while queue and not self._cancelling:
                sample = queue.popleft()
                resumed = await self._run_sample(
                    sample, entries[sample.problem_key], batch, settings, providers, executor, llm, gpu
                )
                if resumed is None:  # cancelled since it was listed
                    continue
                counts[0] += 1
                counts[1] += resumed

        workers = [
            asyncio.create_task(work()) for _ in range(min(len(queue), batch.limit_llm + batch.limit_gpu))
        ]
        watcher = asyncio.create_task(self._watch(batch.id, runner, workers))
        try:
            results = await asyncio.gather(*workers, return_exceptions=True)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            if self.executor is None:
                await executor.aclose()
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result
        return counts[0], counts[1]

    async def _watch(self, batch_id: str, runner: str, workers: list[asyncio.Task[None]]) -> None:
        """Keep the runner lease fresh and stop the workers when the batch is cancelled."""
        while True:
            await asyncio.sleep(self.settings.batch_heartbeat_s)
            if await heartbeat(self.db, batch_id, runner) and not self._cancelling:
                self._cancelling = True
                log.info("batch cancelled", batch_id=batch_id)
                for task in workers:
                    task.cancel()

    async def _run_sample(
        self,
        sample: BatchSampleRow,
        entry: SuiteEntry,
        batch: BatchRow,
        settings: Settings,
        providers: ProviderSource,
        executor: Executor,
        llm: asyncio.Semaphore,
        gpu: asyncio.Semaphore,
    ) -> bool | None:
        """Bring one sample to an end; returns whether it resumed an earlier process's run.

        None when the sample was cancelled before it started: it is not run.
        """
        if not await mark_started(self.db, sample.id):
            return None
        status = await checkpoint_status(settings, sample.run_id)
        resumed = status is not None
        self._emit(SampleEvent("started", sample, resumed=resumed))
        try:
            if status is not None and status.finished:
                state = status.state  # finished before the kill, only not yet recorded
            else:
                provider = LimitedProvider(
                    await providers(sample.model, entry.problem, status.state.turn if status else 0), llm
                )
                options = dataclasses.replace(
                    VerifyOptions.from_settings(settings), input_transforms=entry.transforms
                )
                request = (
                    None
                    if status is not None
                    else GenerationRequest(
                        problem=entry.problem,
                        target=Target(batch.target),
                        arch=(batch.options or {}).get("arch") or settings.gpu_arch,
                        budgets=Budgets.from_settings(settings),
                    )
                )
                try:
                    result = await run_generation(
                        request,
                        settings=settings,
                        provider=provider,
                        executor=LeasedExecutor(executor, gpu),
                        runner=None if self.runner is None else LimitedRunner(self.runner, gpu),
                        verify_options=options,
                        run_id=sample.run_id,
                    )
                finally:
                    await provider.aclose()
                state = result.state
        except KernelwrightError as exc:
            await mark_finished(self.db, sample.id, SampleStatus.ERROR, error=str(exc))
            self._emit(SampleEvent("finished", sample, resumed, SampleStatus.ERROR.value))
            return resumed
        except asyncio.CancelledError:
            if self._cancelling:
                await asyncio.shield(mark_finished(self.db, sample.id, SampleStatus.CANCELLED))
            raise
        fields = sample_fields(state)
        await mark_finished(self.db, sample.id, SampleStatus.DONE, **fields)
        event = SampleEvent(
            "finished",
            sample,
            resumed,
            SampleStatus.DONE.value,
            fields["outcome"],
            fields["cost_usd"],
            fields["tokens"],
        )
        self._emit(event)
        if self.after_sample is not None:
            await self.after_sample(event)
        return resumed
