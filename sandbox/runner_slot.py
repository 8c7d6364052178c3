"""One slot's evaluation worker: its executor, its health, and its restarts. Shared by both runners.

A `SlotWorker` owns the executor of one slot (for the default executor, a zygote process that forks
the candidate and reference workers) and passes the slot's `CUDA_VISIBLE_DEVICES` to every worker it
starts. Candidate code only ever runs in those workers, so a crashed or hung candidate costs one
worker process, never the slot. The slot itself is health-checked by a probe worker (`runner_probe`)
when it starts, when it has been idle past `runner_health_interval_s`, and after a restart.

The slot is restarted (executor closed and recreated, then probed) when a verdict shows a broken GPU
context (a CUDA error such as an illegal memory access), when the evaluation failed in the sandbox
itself (an `infrastructure` verdict, a `SandboxError`), or when it passed the runner's hard time
limit. Every restart is logged and kept as a `RunnerEvent`, which the runners collect for metrics.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from kernelwright.domain import Candidate, Outcome, Problem, Verdict
from kernelwright.errors import SandboxError, ToolchainError
from kernelwright.logs import get_logger
from kernelwright.settings import Settings
from sandbox.evaluate import evaluate_candidate
from sandbox.executor import Executor, Limits, ProcessSpec, WorkerExited, WorkerProcess
from sandbox.leases import Slot
from sandbox.toolchains import detect_gpu_arch
from sandbox.verify import VerifyOptions, worker_env
from sandbox.zygote_executor import make_executor

__all__ = [
    "EvalJob",
    "EventKind",
    "Health",
    "RunnerEvent",
    "SlotOutcome",
    "SlotWorker",
    "broken_gpu_context",
]

log = get_logger(__name__)

EventKind = Literal[
    "health_check_failed",
    "worker_restarted",
    "slot_retired",
    "job_retried",
    "job_abandoned",
    "actor_lost",
    "actor_started",
]

_PROBE_TIMEOUT_S = 180.0
# CUDA's own wording for errors that leave a context unusable (driver and runtime API, torch, Triton)
_BROKEN_CONTEXT = re.compile(
    r"illegal memory access|illegal address|misaligned address|illegal instruction|"
    r"unspecified launch failure|device-side assert|CUDA_ERROR_[A-Z_]+|cudaError[A-Za-z]+|"
    r"CUDA error|uncorrectable ECC|context is destroyed|launch timed out",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class EvalJob:
    """One evaluation: `key` is the caller's stable name for it (unique within a batch)."""

    key: str
    problem: Problem
    candidate: Candidate
    options: VerifyOptions | None = None
    arch: str | None = None  # compile for this sm_XX; the slot's GPU (or settings.gpu_arch) when None


@dataclass(frozen=True)
class RunnerEvent:
    """Something that happened to the pool (not to a candidate): restarts, lost actors, retries."""

    kind: EventKind
    slot: str
    detail: str
    job_key: str | None = None
    at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class Health:
    healthy: bool
    detail: str  # the device name, or why the probe failed
    seconds: float
    visible: str | None = None  # CUDA_VISIBLE_DEVICES as the probe worker saw it


@dataclass(frozen=True)
class SlotOutcome:
    """A verdict plus what it did to the slot: restarted on the way, still healthy, events recorded."""

    verdict: Verdict
    restarted: bool
    healthy: bool
    events: list[RunnerEvent]


def broken_gpu_context(verdict: Verdict) -> bool:
    """Whether the verdict reports a CUDA error of the kind that leaves a GPU context unusable."""
    return verdict.outcome in (Outcome.RUNTIME_ERROR, Outcome.INFRASTRUCTURE) and bool(
        _BROKEN_CONTEXT.search(verdict.message)
    )


class _SlotExecutor(Executor):
    """Adds the slot's variables (CUDA_VISIBLE_DEVICES) to every worker the inner executor starts."""

    def __init__(self, inner: Executor, env: Mapping[str, str]) -> None:
        self.inner = inner
        self._env = dict(env)

    async def spawn(self, spec: ProcessSpec) -> WorkerProcess:
        return await self.inner.spawn(replace(spec, env={**spec.env, **self._env}))

    async def aclose(self) -> None:
        await self.inner.aclose()


class SlotWorker:
    """Evaluates jobs on one slot, one at a time; keeps the slot's executor healthy."""

    def __init__(
        self,
        slot: Slot,
        settings: Settings,
        *,
        executor_factory: Callable[[Settings], Executor] = make_executor,
    ) -> None:
        self.slot = slot
        self.settings = settings
        self._factory = executor_factory
        self._executor: _SlotExecutor | None = None
        self._last_check = 0.0
        self._events: list[RunnerEvent] = []
        self.healthy = True
        self.restarts = 0
        self.evaluations = 0  # jobs this slot has taken
        self.gpu = slot.device is not None and (
            settings.device == "cuda" or (settings.device == "auto" and detect_gpu_arch() is not None)
        )

    @property
    def hard_timeout_s(self) -> float:
        """The runner's backstop over the verifier's own per-step timeouts."""
        return self.settings.runner_job_timeout_s or 4 * self.settings.verify_timeout_s + 120

    def drain_events(self) -> list[RunnerEvent]:
        events, self._events = self._events, []
        return events

    def _event(self, kind: EventKind, detail: str, job_key: str | None = None) -> None:
        self._events.append(RunnerEvent(kind, self.slot.name, detail, job_key))
        log.warning(f"runner.{kind}", slot=self.slot.name, detail=detail, job=job_key)

    async def start(self) -> Health:
        """Create the executor and probe it (idempotent)."""
        if self._executor is None:
            self.settings.ensure_dirs()
            self._executor = _SlotExecutor(self._factory(self.settings), self.slot.env)
        return await self.check_health()

    async def check_health(self) -> Health:
        """Run the probe worker through this slot's executor; a failed probe marks the slot unhealthy."""
        if self._executor is None:
            return await self.start()
        started = time.monotonic()
        scratch = self.settings.scratch_dir / f"probe-{uuid.uuid4().hex}"
        scratch.mkdir(parents=True)
        python = self.settings.worker_python or sys.executable
        spec = ProcessSpec(
            [python, "-s", "-m", "sandbox.runner_probe"],
            scratch,
            worker_env(self.settings, scratch, None, self.gpu, trusted=True),
            Limits(cpu_seconds=int(_PROBE_TIMEOUT_S), address_space_bytes=None),
        )
        worker: WorkerProcess | None = None
        visible: str | None = None
        try:
            worker = await self._executor.spawn(spec)
            await worker.send({"device": "cuda" if self.gpu else "cpu"})
            answer = await worker.receive(_PROBE_TIMEOUT_S)
            healthy = answer.get("event") == "healthy"
            detail = str(answer.get("device") if healthy else answer.get("message"))
            visible = None if answer.get("visible") is None else str(answer["visible"])
        except (TimeoutError, WorkerExited, SandboxError, OSError) as exc:
            healthy, detail = False, f"the probe worker failed: {exc!r}"
            if worker is not None:
                detail += f"; stderr tail: {worker.stderr_tail[-500:]}"
        finally:
            if worker is not None:
                await worker.close()
            shutil.rmtree(scratch, ignore_errors=True)
        self._last_check = time.monotonic()
        self.healthy = healthy
        if not healthy:
            self._event("health_check_failed", detail)
        return Health(healthy, detail, time.monotonic() - started, visible)

    async def restart(self, reason: str, job_key: str | None = None) -> Health:
        """Replace the executor (and so every warm process of this slot), then probe the new one."""
        if self._executor is not None:
            await self._executor.aclose()
            self._executor = None
        self.restarts += 1
        health = await self.start()
        self._event("worker_restarted", f"{reason}; healthy after restart: {health.healthy}", job_key)
        return health

    async def evaluate(self, job: EvalJob) -> SlotOutcome:
        """Compile and verify `job` in sandboxed workers of this slot; restart the slot where needed."""
        self.evaluations += 1
        if self._executor is None:
            await self.start()
        elif (
            time.monotonic() - self._last_check > self.settings.runner_health_interval_s
            and not (await self.check_health()).healthy
        ):
            await self.restart("failed its periodic health check")
        if not self.healthy:
            verdict = Verdict(
                outcome=Outcome.INFRASTRUCTURE,
                message=f"slot {self.slot.name} is unhealthy and was not used",
            )
            return SlotOutcome(verdict, False, False, self.drain_events())
        assert self._executor is not None
        reason: str | None = None
        try:
            _, verdict = await asyncio.wait_for(
                evaluate_candidate(
                    job.problem,
                    job.candidate,
                    settings=self.settings,
                    executor=self._executor,
                    options=job.options,
                    arch=job.arch,
                ),
                self.hard_timeout_s,
            )
        except TimeoutError:
            reason = f"the evaluation passed the runner's hard limit of {self.hard_timeout_s:g} s"
            verdict = Verdict(outcome=Outcome.INFRASTRUCTURE, message=reason)
        except SandboxError as exc:
            reason = f"the sandbox failed: {exc}"
            verdict = Verdict(outcome=Outcome.INFRASTRUCTURE, message=reason)
        except ToolchainError as exc:  # the host's compiler, not the slot: a restart would not help
            verdict = Verdict(outcome=Outcome.INFRASTRUCTURE, message=f"the toolchain failed: {exc}")
            return SlotOutcome(verdict, False, self.healthy, self.drain_events())
        if reason is None and broken_gpu_context(verdict):
            reason = f"the verdict reports a broken GPU context: {verdict.message[:300]}"
        elif reason is None and verdict.outcome == Outcome.INFRASTRUCTURE:
            reason = f"infrastructure failure: {verdict.message[:300]}"
        if reason is not None:
            await self.restart(reason, job.key)
        return SlotOutcome(verdict, reason is not None, self.healthy, self.drain_events())

    async def aclose(self) -> None:
        if self._executor is not None:
            await self._executor.aclose()
            self._executor = None
