"""The in-process runner on CPU slots: real zygote workers, Triton kernels under the interpreter."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kernelwright.domain import Candidate, Outcome, Problem, Target, Verdict
from kernelwright.errors import ConfigError, UserError
from kernelwright.settings import Settings
from sandbox.leases import Slot
from sandbox.runner import EvalJob, InProcessRunner, make_runner
from sandbox.runner_slot import SlotWorker, broken_gpu_context
from sandbox.verify import VerifyOptions

OPTIONS = VerifyOptions(draws=2, timing_trials=0, timeout_s=20)
SHORT = VerifyOptions(draws=2, timing_trials=0, timeout_s=4)


def softmax_jobs(examples: Path) -> tuple[Problem, str]:
    problem = Problem.from_file(examples / "problems" / "softmax.py")
    return problem, (examples / "kernels" / "softmax_triton.py").read_text()


def job(key: str, problem: Problem, source: str, options: VerifyOptions = OPTIONS) -> EvalJob:
    return EvalJob(key, problem, Candidate(target=Target.TRITON, source=source), options)


def mixed_batch(examples: Path) -> tuple[list[EvalJob], dict[str, Outcome]]:
    """Honest, wrong, crashing and hanging candidates: the outcomes every runner must give them."""
    problem, honest = softmax_jobs(examples)
    sources = {
        "honest-1": (honest, Outcome.CORRECT),
        "padding-zero": (honest.replace('other=-float("inf")', "other=0.0"), Outcome.MISMATCH),
        "abort": ("import os\n" + honest.replace("return y", "os.abort()"), Outcome.RUNTIME_ERROR),
        "honest-2": (honest.replace("rows, cols = x.shape", "rows, cols = x.size()"), Outcome.CORRECT),
    }
    jobs = [job(key, problem, source) for key, (source, _) in sources.items()]
    hang = honest.replace("return y", "return [None for _ in iter(int, 1)]")
    jobs.append(job("hang", problem, hang, SHORT))
    return jobs, {key: outcome for key, (_, outcome) in sources.items()} | {"hang": Outcome.TIMEOUT}


@pytest.fixture
def runner_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"result_store": False, "cpu_slots": 2, "gpus": None})


@pytest.mark.slow
def test_mixed_batch_on_two_slots(runner_settings: Settings, examples: Path) -> None:
    jobs, expected = mixed_batch(examples)

    async def scenario() -> tuple[list[tuple[str, Verdict]], InProcessRunner]:
        async with InProcessRunner(runner_settings, slots=[Slot(0), Slot(1)]) as runner:
            assert isinstance(runner, InProcessRunner)
            return [item async for item in runner.run(jobs)], runner

    results, runner = asyncio.run(scenario())
    assert sorted(key for key, _ in results) == sorted(expected)
    assert {key: verdict.outcome for key, verdict in results} == expected, [v.message for _, v in results]
    # a crashing or hanging candidate costs its own worker process, never the slot
    assert all(worker.restarts == 0 for worker in runner.workers.values())
    assert runner.events == []


@pytest.mark.slow
def test_broken_gpu_context_restarts_the_slot_and_the_next_job_is_judged(
    runner_settings: Settings, examples: Path
) -> None:
    problem, honest = softmax_jobs(examples)
    # on a CPU the context cannot really break: the candidate raises CUDA's own message instead
    broken = honest.replace(
        "return y", "raise RuntimeError('CUDA error: an illegal memory access was encountered')"
    )
    jobs = [job("illegal-address", problem, broken), job("honest", problem, honest)]

    async def scenario() -> tuple[dict[str, Verdict], InProcessRunner]:
        runner = InProcessRunner(runner_settings, slots=[Slot(0)])
        try:
            verdicts = {}
            for one in jobs:  # in order, on the one slot
                verdicts.update(await runner.run_all([one]))
            return verdicts, runner
        finally:
            await runner.aclose()

    verdicts, runner = asyncio.run(scenario())
    assert verdicts["illegal-address"].outcome == Outcome.RUNTIME_ERROR
    assert broken_gpu_context(verdicts["illegal-address"])
    assert verdicts["honest"].outcome == Outcome.CORRECT, verdicts["honest"].message
    assert runner.workers[Slot(0)].restarts == 1
    restarts = [e for e in runner.events if e.kind == "worker_restarted"]
    assert len(restarts) == 1 and restarts[0].job_key == "illegal-address" and restarts[0].slot == "cpu0"
    assert "healthy after restart: True" in restarts[0].detail


def test_a_slot_that_fails_its_probe_is_retired(settings: Settings, examples: Path) -> None:
    problem, honest = softmax_jobs(examples)
    broken = settings.model_copy(update={"executor": "local", "worker_python": "/nonexistent/python"})

    async def scenario() -> tuple[dict[str, Verdict], InProcessRunner]:
        async with InProcessRunner(broken, slots=[Slot(0)]) as runner:
            assert isinstance(runner, InProcessRunner)
            return await runner.run_all([job("a", problem, honest), job("b", problem, honest)]), runner

    verdicts, runner = asyncio.run(scenario())
    assert {v.outcome for v in verdicts.values()} == {Outcome.INFRASTRUCTURE}
    assert "no healthy slot left" in verdicts["a"].message
    assert [e.kind for e in runner.events] == ["health_check_failed", "slot_retired"]
    assert "/nonexistent/python" in runner.events[0].detail


def test_duplicate_keys_are_refused(settings: Settings, examples: Path) -> None:
    problem, honest = softmax_jobs(examples)

    async def scenario() -> None:
        async with InProcessRunner(settings, slots=[Slot(0)]) as runner:
            await runner.run_all([job("same", problem, honest), job("same", problem, honest)])

    with pytest.raises(UserError, match="appears twice"):
        asyncio.run(scenario())


def test_make_runner_picks_the_backend(settings: Settings) -> None:
    assert isinstance(make_runner(settings), InProcessRunner)
    ray = pytest.importorskip("ray")
    from sandbox.ray_runner import RayRunner

    assert ray is not None and isinstance(
        make_runner(settings.model_copy(update={"runner": "ray"})), RayRunner
    )


def test_broken_gpu_context_needs_a_cuda_error(settings: Settings) -> None:
    assert broken_gpu_context(Verdict(outcome=Outcome.RUNTIME_ERROR, message="CUDA_ERROR_ILLEGAL_ADDRESS"))
    assert broken_gpu_context(Verdict(outcome=Outcome.INFRASTRUCTURE, message="unspecified launch failure"))
    assert not broken_gpu_context(Verdict(outcome=Outcome.RUNTIME_ERROR, message="ZeroDivisionError"))
    assert not broken_gpu_context(Verdict(outcome=Outcome.MISMATCH, message="CUDA error in the text"))
    with pytest.raises(ConfigError):
        InProcessRunner(settings, slots=[])


def test_the_lease_reaches_the_worker(settings: Settings) -> None:
    """The probe runs through the slot's executor and sees the slot's CUDA_VISIBLE_DEVICES."""

    async def scenario() -> tuple[bool, str | None]:
        worker = SlotWorker(Slot(0, "7"), settings)
        try:
            health = await worker.start()
            return health.healthy, health.visible
        finally:
            await worker.aclose()

    assert asyncio.run(scenario()) == (True, "7")
