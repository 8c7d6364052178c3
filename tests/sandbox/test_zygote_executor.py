"""Workers forked from the warm zygote: same containment as local processes, and the zygote survives."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kernelwright.domain import Candidate, Outcome, Problem, Target
from kernelwright.settings import Settings
from sandbox.executor import Limits, ProcessSpec
from sandbox.verify import VerifyOptions, verify_candidate, worker_env
from sandbox.zygote_executor import ZygoteExecutor, make_executor


def test_worker_roundtrip_and_exit_status(settings: Settings) -> None:
    async def scenario() -> tuple[dict[str, object], str]:
        settings.ensure_dirs()
        env = worker_env(settings, settings.scratch_dir, None, False)
        zygote = ZygoteExecutor(env=env, cwd=settings.scratch_dir)
        try:
            spec = ProcessSpec(
                ["python", "-m", "sandbox.runtime.worker", "nonsense"], settings.scratch_dir, env, Limits()
            )
            worker = await zygote.spawn(spec)
            message = await worker.receive(60)  # the worker answers a usage error through the protocol
            await worker.close()
            return message, worker.stderr_tail
        finally:
            await zygote.aclose()

    message, _ = asyncio.run(scenario())
    assert message["event"] == "error" and "usage" in str(message["message"])


def test_crash_and_hang_then_an_honest_candidate_on_the_same_zygote(
    settings: Settings, examples: Path
) -> None:
    problem = Problem.from_file(examples / "problems" / "softmax.py")
    honest = (examples / "kernels" / "softmax_triton.py").read_text()
    options = VerifyOptions(draws=2, timing_trials=0, timeout_s=15)

    async def scenario() -> list[Outcome]:
        settings.ensure_dirs()
        executor = make_executor(settings)
        assert isinstance(executor, ZygoteExecutor)
        outcomes = []
        try:
            for source in (
                honest.replace("return y", "return __import__('os').abort()"),
                honest.replace("return y", "return [None for _ in iter(int, 1)]"),
                honest,
            ):
                verdict = await verify_candidate(
                    problem,
                    Candidate(target=Target.TRITON, source=source),
                    settings=settings,
                    executor=executor,
                    options=options,
                )
                outcomes.append(verdict.outcome)
        finally:
            await executor.aclose()
        return outcomes

    assert asyncio.run(scenario()) == [Outcome.RUNTIME_ERROR, Outcome.TIMEOUT, Outcome.CORRECT]
