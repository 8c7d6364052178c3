"""The Ray runner on real GPUs: one actor per GPU, and an actor killed mid-batch loses and repeats nothing.

The CPU tests (test_ray_runner.py) declare logical GPUs; here Ray finds the GPUs the machine has, each
actor is granted its own, and the candidates run on them. Needs Ray on the GPU host.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path

import pytest

from kernelwright.domain import Outcome, Verdict
from kernelwright.settings import Settings
from sandbox.leases import discover_slots
from sandbox.verify import VerifyOptions

ray = pytest.importorskip("ray")

from sandbox.ray_runner import RayRunner  # noqa: E402 - only once ray is known to import
from tests.sandbox.test_runner import job, softmax_jobs  # noqa: E402

pytestmark = pytest.mark.gpu

TIMED = VerifyOptions(draws=2, timing_trials=10, timing_warmup=2, timeout_s=120, compile_baseline=False)


def test_actors_hold_distinct_gpus_and_a_killed_one_loses_nothing(settings: Settings, examples: Path) -> None:
    gpu_settings = settings.model_copy(update={"result_store": False, "gpus": None, "ray_address": None})
    gpus = [s.device for s in discover_slots(gpu_settings) if s.device is not None]
    assert gpus, "this test needs a GPU host"
    problem, honest = softmax_jobs(examples)
    wrong = honest.replace('other=-float("inf")', "other=0.0")
    jobs = [job(f"job-{i}", problem, honest if i % 2 == 0 else wrong, TIMED) for i in range(8)]
    expected = {j.key: Outcome.CORRECT if i % 2 == 0 else Outcome.MISMATCH for i, j in enumerate(jobs)}
    if ray.is_initialized():
        ray.shutdown()

    async def scenario() -> tuple[list[tuple[str, Verdict]], RayRunner, dict[str, str | None], str, str]:
        runner = RayRunner(gpu_settings)  # starts a local Ray that owns every visible GPU
        try:
            await runner.start()
            devices = await runner.worker_devices()
            pids = await runner.worker_pids()
            results: list[tuple[str, Verdict]] = []

            async def consume() -> None:
                results.extend([item async for item in runner.run(jobs)])

            consumer = asyncio.create_task(consume())
            while not runner.in_flight:
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.5)  # inside the verify: the worker holds a CUDA context on its GPU
            victim, victim_job = next(iter(runner.in_flight.items()))
            os.kill(pids[victim], signal.SIGKILL)
            await consumer
            return results, runner, devices, victim, victim_job
        finally:
            await runner.aclose()

    results, runner, devices, victim, victim_job = asyncio.run(scenario())
    assert not ray.is_initialized()
    assert len(devices) == len(gpus)
    assert sorted(d for d in devices.values() if d is not None) == sorted(gpus)  # one actor per GPU
    assert Counter(key for key, _ in results) == Counter({j.key: 1 for j in jobs})
    assert {k: v.outcome for k, v in results} == expected, {k: v.message for k, v in results}
    assert all(v.speedup_vs_eager is not None for _, v in results if v.outcome is Outcome.CORRECT)
    kinds = [(e.kind, e.slot, e.job_key) for e in runner.events]
    assert ("actor_lost", victim, victim_job) in kinds
    assert ("job_retried", victim, victim_job) in kinds
    assert sum(kind == "actor_started" for kind, _, _ in kinds) == len(gpus) + 1
