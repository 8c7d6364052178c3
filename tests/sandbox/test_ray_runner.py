"""The Ray runner on a local Ray with two declared logical GPUs: real actors, real sandboxed workers.

Slow: each test starts Ray (about 7 s on 2 cores) and two actors with warm zygotes.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernelwright.domain import Outcome, Verdict
from kernelwright.settings import Settings
from sandbox.leases import Slot
from sandbox.runner import InProcessRunner

ray = pytest.importorskip("ray")

from sandbox.ray_runner import RayRunner  # noqa: E402 - only once ray is known to import
from tests.sandbox.test_runner import job, mixed_batch, softmax_jobs  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture
def ray_settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"result_store": False, "cpu_slots": 2, "gpus": None, "ray_address": None}
    )


@pytest.fixture
def no_ray() -> Iterator[None]:
    if ray.is_initialized():
        ray.shutdown()
    yield
    if ray.is_initialized():
        ray.shutdown()


def test_same_verdicts_on_both_runners(ray_settings: Settings, examples: Path, no_ray: None) -> None:
    jobs, expected = mixed_batch(examples)

    async def scenario() -> tuple[dict[str, Verdict], dict[str, Verdict], RayRunner, float]:
        async with InProcessRunner(ray_settings, slots=[Slot(0), Slot(1)]) as local:
            here = await local.run_all(jobs)
        runner = RayRunner(ray_settings)  # starts its own Ray: one logical GPU per CPU slot
        try:
            on_ray = await runner.run_all(jobs)
            gpus = float(ray.cluster_resources().get("GPU", 0))
        finally:
            await runner.aclose()
        return here, on_ray, runner, gpus

    here, on_ray, runner, gpus = asyncio.run(scenario())
    assert gpus == 2
    assert not ray.is_initialized()  # the runner shut down the Ray it started
    assert {k: v.outcome for k, v in here.items()} == expected
    assert {k: v.outcome for k, v in on_ray.items()} == expected, {k: v.message for k, v in on_ray.items()}
    assert {k: len(v.draws) for k, v in here.items()} == {k: len(v.draws) for k, v in on_ray.items()}
    assert [e.kind for e in runner.events] == ["actor_started", "actor_started"]


def test_an_actor_killed_mid_batch_loses_and_duplicates_nothing(
    ray_settings: Settings, examples: Path, no_ray: None
) -> None:
    problem, honest = softmax_jobs(examples)
    wrong = honest.replace('other=-float("inf")', "other=0.0")
    jobs = [job(f"job-{i}", problem, honest if i % 2 == 0 else wrong) for i in range(6)]
    expected = {j.key: Outcome.CORRECT if i % 2 == 0 else Outcome.MISMATCH for i, j in enumerate(jobs)}
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False)

    async def scenario() -> tuple[list[tuple[str, Verdict]], RayRunner, tuple[str, str]]:
        runner = RayRunner(ray_settings)
        try:
            await runner.start()
            pids = await runner.worker_pids()
            results: list[tuple[str, Verdict]] = []

            async def consume() -> None:
                results.extend([item async for item in runner.run(jobs)])

            consumer = asyncio.create_task(consume())
            while not runner.in_flight:  # wait until a job is on an actor, then kill that actor's process
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)
            victim, victim_job = next(iter(runner.in_flight.items()))
            os.kill(pids[victim], signal.SIGKILL)
            await consumer
            return results, runner, (victim, victim_job)
        finally:
            await runner.aclose()

    results, runner, (victim, victim_job) = asyncio.run(scenario())
    ray.shutdown()
    counts = Counter(key for key, _ in results)
    assert counts == Counter({j.key: 1 for j in jobs}), counts  # every key exactly once
    assert {k: v.outcome for k, v in results} == expected, {k: v.message for k, v in results}
    kinds = [(e.kind, e.slot, e.job_key) for e in runner.events]
    assert ("actor_lost", victim, victim_job) in kinds
    assert ("job_retried", victim, victim_job) in kinds
    assert sum(kind == "actor_started" for kind, _, _ in kinds) == 3  # two, then the replacement
