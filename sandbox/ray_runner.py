"""The Ray runner: one `num_gpus=1` actor per GPU, on this host or on a cluster.

Ray tracks GPUs itself: each actor is granted one and Ray sets its `CUDA_VISIBLE_DEVICES`, which the
actor's `SlotWorker` passes on to the sandboxed workers it starts. Actors never run candidate code;
they compile and verify through the same `evaluate_candidate` path as the in-process runner.

`KERNELWRIGHT_RAY_ADDRESS` joins an existing cluster (`ray://head:10001` from outside it, `auto` on one
of its nodes); otherwise a local Ray starts with one logical GPU per slot found by `discover_slots`
(so on a machine without GPUs, `cpu_slots` logical GPUs: the distributed path runs for real in tests).

Fault tolerance: the driver hands each actor one job at a time (many callers may evaluate at once; they
wait for an idle actor) and remembers which. When an actor dies (its process killed, its node lost), the
job it held is retried on the next free actor, a replacement actor is started, and both are recorded as
events. A verdict comes only from a completed call, so no key is lost or answered twice; a job whose
actors die `max_attempts` times ends as an `infrastructure` verdict.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import RayActorError, RayError

from kernelwright.domain import Outcome, Verdict
from kernelwright.errors import ConfigError
from kernelwright.logs import get_logger
from kernelwright.settings import Settings
from sandbox.leases import discover_slots
from sandbox.runner import DEFAULT_MAX_ATTEMPTS, Runner, should_retry
from sandbox.runner_slot import EvalJob, Health, RunnerEvent, SlotOutcome, SlotWorker
from sandbox.runtime.limits import make_undumpable

__all__ = ["EvalActor", "RayRunner"]

log = get_logger(__name__)


class EvalActor:
    """Lives in a Ray worker process that holds one GPU (or one logical GPU) and evaluates jobs there."""

    def __init__(self, settings: Settings, name: str) -> None:
        make_undumpable()  # inherits the driver's environment (API keys); its workers are the same user
        # Ray has set CUDA_VISIBLE_DEVICES to this actor's GPU: the slot is the one GPU visible here
        slot = discover_slots(settings.model_copy(update={"gpus": None, "cpu_slots": 1}))[0]
        self.name = name
        self._worker = SlotWorker(slot, settings)

    async def start(self) -> Health:
        return await self._worker.start()

    async def evaluate(self, job: EvalJob) -> SlotOutcome:
        return await self._worker.evaluate(job)

    def pid(self) -> int:
        return os.getpid()

    def device(self) -> str | None:
        """The GPU Ray granted this actor (its `CUDA_VISIBLE_DEVICES`); None without a GPU."""
        return os.environ.get("CUDA_VISIBLE_DEVICES")

    async def shutdown(self) -> None:
        await self._worker.aclose()


# actors are scheduled by GPU alone (num_cpus=0): a CPU reservation would only cap how many fit a node
_RemoteEvalActor: Any = ray.remote(num_gpus=1, num_cpus=0, max_restarts=0)(EvalActor)


@dataclass
class _Actor:
    name: str
    handle: Any


class RayRunner(Runner):
    """Evaluates jobs on Ray actors, one per GPU; see the module docstring for fault tolerance."""

    def __init__(
        self,
        settings: Settings,
        *,
        workers: int | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        start_timeout_s: float = 300.0,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.max_attempts = max_attempts
        self.start_timeout_s = start_timeout_s
        self._wanted = workers
        self._actors: list[_Actor] = []  # live actors, idle or busy
        self._idle: deque[_Actor] = deque()
        self._changed = asyncio.Condition()  # an actor became idle, or one fewer is starting
        self._replacing = 0  # replacement actors being started (waiters must not give up meanwhile)
        self._background: set[asyncio.Task[None]] = set()  # replacements, releases after a cancel
        self._spawned = 0
        self._owns_ray = False
        self.in_flight: dict[str, str] = {}  # actor name -> key of the job it holds

    def _init_ray(self) -> None:
        if ray.is_initialized():
            return
        self._owns_ray = True
        if self.settings.ray_address:
            ray.init(address=self.settings.ray_address)
        else:
            ray.init(num_gpus=len(discover_slots(self.settings)), include_dashboard=False)

    async def _start(self) -> None:
        """Join or start Ray and start one actor per GPU."""
        self._init_ray()
        count = self._wanted or int(ray.cluster_resources().get("GPU", 0))  # type: ignore[no-untyped-call]
        if count < 1:
            raise ConfigError(
                "the Ray cluster offers no GPU resources: start its nodes with `ray start --num-gpus=N` "
                "(logical GPUs are fine for CPU-only checks)"
            )
        started = await asyncio.gather(*(self._spawn() for _ in range(count)))
        if not any(started):
            raise ConfigError("no Ray actor passed its health check; see runner.events for why")
        async with self._changed:
            self._idle.extend(actor for actor in started if actor is not None)
            self._changed.notify_all()

    async def _spawn(self) -> _Actor | None:
        """A new actor, started and probed; None (with an event) if it fails."""
        self._spawned += 1
        name = f"actor{self._spawned}"
        handle = _RemoteEvalActor.options(name=None).remote(self.settings, name)
        try:
            health: Health = await asyncio.wait_for(
                asyncio.wrap_future(handle.start.remote().future()), self.start_timeout_s
            )
        except (TimeoutError, RayActorError) as exc:
            health = Health(False, f"the actor did not start: {exc!r}", self.start_timeout_s)
        if not health.healthy:
            self.events.append(RunnerEvent("slot_retired", name, health.detail))
            ray.kill(handle, no_restart=True)
            return None
        actor = _Actor(name, handle)
        self._actors.append(actor)
        self.events.append(RunnerEvent("actor_started", name, health.detail))
        return actor

    async def _replace(self) -> None:
        """Start a replacement for a lost actor; it joins the idle ones once healthy."""
        try:
            actor = await self._spawn()
        finally:
            async with self._changed:
                self._replacing -= 1
                self._changed.notify_all()
        if actor is not None:
            async with self._changed:
                self._idle.append(actor)
                self._changed.notify_all()

    async def _acquire(self) -> _Actor | None:
        """An idle actor, waiting for one; None when none is left and none is starting."""
        async with self._changed:
            while not self._idle:
                if not self._actors and not self._replacing:
                    return None
                await self._changed.wait()
            return self._idle.popleft()

    async def _release(self, actor: _Actor) -> None:
        async with self._changed:
            self._idle.append(actor)
            self._changed.notify()

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` as a task the runner keeps (and `aclose` cancels)."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _release_when_done(self, actor: _Actor, ref: Any) -> None:
        """After a cancelled call: the actor takes new work only once its cancelled call has ended."""
        with contextlib.suppress(RayError, TimeoutError):  # a cancelled Ray task ends in a RayError
            await asyncio.wait_for(asyncio.wrap_future(ref.future()), 60)
        await self._release(actor)

    async def _drop(self, actor: _Actor) -> None:
        """Forget an actor for good (lost or unhealthy); waiters learn if none is left."""
        with contextlib.suppress(ValueError):
            self._actors.remove(actor)
        with contextlib.suppress(RayError, ValueError):  # it may be gone already; it must never come back
            ray.kill(actor.handle, no_restart=True)
        async with self._changed:
            self._changed.notify_all()

    @property
    def busy(self) -> int:
        return len(self.in_flight)

    @property
    def healthy_slots(self) -> int:
        return len(self._actors)

    async def worker_pids(self) -> dict[str, int]:
        """Process id of every live actor (what an operator, or a fault-injection test, needs)."""
        pids = await asyncio.gather(
            *(asyncio.wrap_future(a.handle.pid.remote().future()) for a in self._actors)
        )
        return {actor.name: int(pid) for actor, pid in zip(self._actors, pids, strict=True)}

    async def worker_devices(self) -> dict[str, str | None]:
        """The GPU each live actor holds, as Ray granted it: distinct GPUs mean one candidate per GPU."""
        devices = await asyncio.gather(
            *(asyncio.wrap_future(a.handle.device.remote().future()) for a in self._actors)
        )
        return {actor.name: device for actor, device in zip(self._actors, devices, strict=True)}

    async def evaluate(self, job: EvalJob) -> Verdict:
        await self.start()
        for attempt in range(1, self.max_attempts + 1):
            actor = await self._acquire()
            if actor is None:
                return _no_workers_left()
            self.in_flight[actor.name] = job.key
            ref = actor.handle.evaluate.remote(job)
            try:
                outcome: SlotOutcome = await asyncio.wrap_future(ref.future())
            except RayActorError as exc:
                self.events.append(
                    RunnerEvent("actor_lost", actor.name, f"{type(exc).__name__}: {exc}"[:500], job.key)
                )
                log.warning("runner.actor_lost", actor=actor.name, job=job.key, error=type(exc).__name__)
                self._replacing += 1
                self._in_background(self._replace())
                await self._drop(actor)
                if attempt >= self.max_attempts:
                    self.events.append(RunnerEvent("job_abandoned", actor.name, str(exc)[:300], job.key))
                    return _lost_too_often(attempt)
                self.events.append(RunnerEvent("job_retried", actor.name, "its actor died", job.key))
                continue
            except asyncio.CancelledError:  # the caller gave up: stop the call; the actor serves again after
                with contextlib.suppress(RayError, ValueError):
                    ray.cancel(ref)
                self._in_background(self._release_when_done(actor, ref))
                raise
            finally:
                self.in_flight.pop(actor.name, None)
            self.events.extend(outcome.events)
            if outcome.healthy:
                await self._release(actor)
            else:
                self.events.append(RunnerEvent("slot_retired", actor.name, "unhealthy after a restart"))
                await self._drop(actor)
            if should_retry(outcome) and attempt < self.max_attempts:
                self.events.append(RunnerEvent("job_retried", actor.name, "spoiled by the machine", job.key))
                continue
            return outcome.verdict
        raise AssertionError("unreachable: the last attempt returns")

    async def aclose(self) -> None:
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if not ray.is_initialized():
            return
        for actor in self._actors:
            with contextlib.suppress(RayError, TimeoutError):
                await asyncio.wait_for(asyncio.wrap_future(actor.handle.shutdown.remote().future()), 30)
            ray.kill(actor.handle, no_restart=True)
        self._actors.clear()
        self._idle.clear()
        self._starting = None
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False


def _no_workers_left() -> Verdict:
    return Verdict(
        outcome=Outcome.INFRASTRUCTURE,
        message="no healthy Ray worker is left to run this job; check the cluster's GPUs (ray status)",
    )


def _lost_too_often(attempts: int) -> Verdict:
    return Verdict(
        outcome=Outcome.INFRASTRUCTURE,
        message=f"the Ray worker evaluating this job died {attempts} times; the job was given up",
    )
