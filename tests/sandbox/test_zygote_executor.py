"""Workers forked from the warm zygote: same containment as local processes, and the zygote survives."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from pathlib import Path
from typing import Any

from kernelwright.domain import Candidate, Outcome, Problem, Target
from kernelwright.errors import SandboxError
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


class _SlowAnswers(ZygoteExecutor):
    """The real zygote, read back slowly: a request's answer is read 0.3 s after it was sent, which
    opens the window in which a cancelled spawn used to hand the control socket to the next one."""

    def _request(self, request: dict[str, Any], fds: list[int]) -> dict[str, Any]:
        assert self._control is not None
        socket.send_fds(self._control, [json.dumps(request).encode()], fds)
        time.sleep(0.3)
        self._control.settimeout(5)  # a stolen answer must fail the test, not hang it
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = self._control.recv(65536)
            if not chunk:
                raise SandboxError("the zygote closed its control socket")
            answer += chunk
        parsed = json.loads(answer)
        assert isinstance(parsed, dict)
        return parsed


def test_a_spawn_cancelled_mid_request_leaves_the_zygote_to_the_next_one(settings: Settings) -> None:
    """A job cancelled while its worker was being forked released the control socket before its answer
    was read; the next spawn's answer then went astray (another job failed, the zygote was restarted)."""

    async def scenario() -> tuple[str, bool]:
        settings.ensure_dirs()
        env = worker_env(settings, settings.scratch_dir, None, False)
        zygote = _SlowAnswers(env=env, cwd=settings.scratch_dir)
        spec = ProcessSpec(
            ["python", "-m", "sandbox.runtime.worker", "nonsense"], settings.scratch_dir, env, Limits()
        )
        try:
            await (await zygote.spawn(spec)).close()  # the zygote is up
            assert zygote._proc is not None
            first_pid = zygote._proc.pid
            doomed = asyncio.create_task(zygote.spawn(spec))
            await asyncio.sleep(0.1)  # its request is sent, its answer not yet read
            doomed.cancel()
            survivor = await zygote.spawn(spec)
            event = str((await survivor.receive(60))["event"])
            await survivor.close()
            with contextlib.suppress(asyncio.CancelledError):
                await doomed
            assert zygote._proc is not None
            return event, zygote._proc.pid == first_pid
        finally:
            await zygote.aclose()

    event, same_zygote = asyncio.run(scenario())
    assert event == "error"  # the usage error of its own worker
    assert same_zygote  # no broken socket, no restart
