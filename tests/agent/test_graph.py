"""The whole loop with a scripted provider: real extraction, real compilers, real sandboxed verification."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import httpx
import pytest

from agent.context import Budgets
from agent.providers import OpenAIProvider, Provider, ScriptedProvider, ScriptedReply
from agent.providers import base as provider_base
from agent.run import GenerationRequest, RunResult, run_generation
from agent.state import RunStatus
from agent.trace import read_trace
from kernelwright.domain import Outcome, Problem, Target, TraceKind
from kernelwright.settings import Settings
from sandbox.toolchains import detect_gpu_arch
from sandbox.verify import VerifyOptions

OPTIONS = VerifyOptions(draws=3, timing_trials=0, timeout_s=120)


def _replies(examples: Path, name: str) -> list[str]:
    data = json.loads((examples / "transcripts" / name).read_text())
    return [r["text"] for r in data["replies"]]


def _run(
    settings: Settings, provider: Provider, problem: Problem, target: Target, **budgets: int
) -> RunResult:
    request = GenerationRequest(problem=problem, target=target, budgets=Budgets(**budgets))
    return asyncio.run(run_generation(request, settings=settings, provider=provider, verify_options=OPTIONS))


def _softmax(examples: Path) -> Problem:
    return Problem.from_file(examples / "problems" / "softmax.py")


def test_mismatch_then_fix_reaches_a_verified_triton_kernel(settings: Settings, examples: Path) -> None:
    provider = ScriptedProvider(_replies(examples, "softmax_triton.json"))
    result = _run(settings, provider, _softmax(examples), Target.TRITON)
    state = result.state
    assert state.status == RunStatus.SUCCEEDED, state.stop_reason
    assert [a.outcome for a in state.attempts] == [Outcome.MISMATCH, Outcome.CORRECT]
    assert state.best is not None and state.best.turn == 2
    # the second prompt is the mismatch fix and carries the verifier's numbers
    second_user = provider.requests[1][1].content
    assert "relative L2 error" in second_user
    events = read_trace(result.trace_path)
    assert all(e.replay for e in events)
    kinds = [e.kind for e in events]
    assert kinds[0] == TraceKind.RUN_STARTED and kinds[-1] == TraceKind.RUN_FINISHED
    assert kinds.count(TraceKind.PROMPT) == 2 and kinds.count(TraceKind.VERDICT) == 2
    reply = next(e for e in events if e.kind == TraceKind.REPLY)
    assert reply.data["output_tokens"] > 0 and "text" in reply.data


@pytest.mark.parametrize(
    ("target", "transcript", "tool", "expected"),
    [(Target.PTX, "relu_ptx.json", "ptxas", "%r5"), (Target.CUDA, "relu_cuda.json", "nvcc", "blockDim")],
)
def test_compile_error_then_fix(
    settings: Settings, examples: Path, target: Target, transcript: str, tool: str, expected: str
) -> None:
    if shutil.which(tool) is None and not Path(f"/usr/local/cuda/bin/{tool}").exists():
        pytest.skip(f"{tool} is not installed")
    provider = ScriptedProvider(_replies(examples, transcript))
    result = _run(settings, provider, Problem.from_file(examples / "problems" / "relu.py"), target)
    first, second = result.state.attempts
    assert first.outcome == Outcome.COMPILE_ERROR
    errors = [d for d in first.diagnostics if d.is_error]
    assert errors and any(d.source == tool or d.code.startswith(tool) for d in errors)
    assert all(d.line is not None and d.line > 3 for d in errors)  # lines of the candidate's Python file
    assert expected in provider.requests[1][1].content  # the compiler's message went back to the model
    assert second.compile is not None and second.compile.ok
    if detect_gpu_arch() is None:
        assert second.outcome == Outcome.NO_GPU
        assert result.state.status == RunStatus.COMPILED_UNVERIFIED
    else:  # pragma: no cover - GPU machines
        assert second.outcome == Outcome.CORRECT


def test_garbage_and_truncated_replies_are_fed_back(settings: Settings, examples: Path) -> None:
    good = _replies(examples, "softmax_triton.json")[1]
    truncated = good[: len(good) // 2]
    provider = ScriptedProvider(
        ["\x00\x01\x02 lorem ipsum", ScriptedReply(truncated, finish_reason="length"), good]
    )
    state = _run(settings, provider, _softmax(examples), Target.TRITON).state
    assert state.status == RunStatus.SUCCEEDED
    codes = [{d.code for d in a.diagnostics} for a in state.attempts[:2]]
    assert "extract.incomplete_reply" in codes[1]
    assert codes[0] and not codes[0] & {"extract.incomplete_reply"}
    assert "incomplete" in provider.requests[2][1].content.lower()


def test_turn_budget_keeps_the_best_attempt(settings: Settings, examples: Path) -> None:
    wrong = _replies(examples, "softmax_triton.json")[0]
    provider = ScriptedProvider([wrong, "no code at all, sorry"])
    state = _run(settings, provider, _softmax(examples), Target.TRITON, max_turns=2).state
    assert state.status == RunStatus.BUDGET_EXHAUSTED and "turn budget" in (state.stop_reason or "")
    assert state.best is not None and state.best.turn == 1 and state.best.outcome == Outcome.MISMATCH
    assert provider.remaining == 0


def test_token_budget_stops_after_the_turn_that_spent_it(settings: Settings, examples: Path) -> None:
    provider = ScriptedProvider(_replies(examples, "softmax_triton.json"))
    state = _run(settings, provider, _softmax(examples), Target.TRITON, max_tokens=100).state
    assert state.status == RunStatus.BUDGET_EXHAUSTED and "token budget" in (state.stop_reason or "")
    assert len(state.attempts) == 1 and provider.remaining == 1


def _openai_over(handler: httpx.MockTransport, settings: Settings) -> OpenAIProvider:
    return OpenAIProvider(
        "gpt-4o-mini",
        api_key="sk-test",
        settings=settings,
        http_client=httpx.AsyncClient(transport=handler),
        sleep=_no_sleep,
    )


async def _no_sleep(_: float) -> None:
    return None


def test_provider_429_then_success(
    settings: Settings, examples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provider_base, "ALLOW_MODEL_REQUESTS", True)  # the transport below is local
    good = _replies(examples, "softmax_triton.json")[1]
    calls: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(
                429, json={"error": {"message": "rate limited"}}, headers={"retry-after": "1"}
            )
        return httpx.Response(
            200,
            json={
                "id": "c1",
                "object": "chat.completion",
                "created": 0,
                "model": "gpt-4o-mini",
                "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": good}}
                ],
                "usage": {"prompt_tokens": 1000, "completion_tokens": 400, "total_tokens": 1400},
            },
        )

    result = _run(
        settings, _openai_over(httpx.MockTransport(handle), settings), _softmax(examples), Target.TRITON
    )
    assert result.state.status == RunStatus.SUCCEEDED and len(calls) == 2
    reply = next(e for e in read_trace(result.trace_path) if e.kind == TraceKind.REPLY)
    assert reply.data["attempts"] == 2 and reply.data["cost_usd"] > 0 and not reply.replay
    assert result.state.tokens_used == 1400


def test_model_error_ends_the_run_cleanly(
    settings: Settings, examples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provider_base, "ALLOW_MODEL_REQUESTS", True)
    transport = httpx.MockTransport(lambda r: httpx.Response(401, json={"error": {"message": "bad key"}}))
    state = _run(settings, _openai_over(transport, settings), _softmax(examples), Target.TRITON).state
    assert state.status == RunStatus.FAILED and "401" in (state.stop_reason or "")


def test_blocked_real_requests(settings: Settings, examples: Path) -> None:
    provider = OpenAIProvider("gpt-4o-mini", api_key="sk-test", settings=settings)
    state = _run(settings, provider, _softmax(examples), Target.TRITON).state
    assert state.status == RunStatus.FAILED and state.attempts == []


def test_interrupted_run_resumes_from_its_checkpoint(settings: Settings, examples: Path) -> None:
    wrong, good = _replies(examples, "softmax_triton.json")
    crashing = ScriptedProvider([wrong, ScriptedReply(error=RuntimeError("the agent process was killed"))])
    request = GenerationRequest(problem=_softmax(examples), target=Target.TRITON)
    with pytest.raises(RuntimeError, match="killed"):
        asyncio.run(
            run_generation(
                request, settings=settings, provider=crashing, verify_options=OPTIONS, run_id="run-resume"
            )
        )
    fresh = ScriptedProvider([good])
    result = asyncio.run(
        run_generation(None, settings=settings, provider=fresh, verify_options=OPTIONS, run_id="run-resume")
    )
    state = result.state
    assert state.status == RunStatus.SUCCEEDED
    assert [a.turn for a in state.attempts] == [1, 2]  # turn 1 was not redone
    assert len(fresh.requests) == 1 and "relative L2 error" in fresh.requests[0][1].content
    events = read_trace(result.trace_path)
    assert sum(e.kind == TraceKind.RUN_STARTED for e in events) == 2  # one trace file, both sessions


def test_resume_of_unknown_run_is_a_clear_error(settings: Settings) -> None:
    from kernelwright.errors import UserError

    with pytest.raises(UserError, match="no checkpoint"):
        asyncio.run(run_generation(None, settings=settings, provider=ScriptedProvider(), run_id="nope"))


def test_lessons_from_one_run_reach_the_model_in_the_next(settings: Settings, examples: Path) -> None:
    if shutil.which("ptxas") is None and not Path("/usr/local/cuda/bin/ptxas").exists():
        pytest.skip("ptxas is not installed")
    relu = Problem.from_file(examples / "problems" / "relu.py")
    first = ScriptedProvider(_replies(examples, "relu_ptx.json"))
    _run(settings, first, relu, Target.PTX)
    again = ScriptedProvider(_replies(examples, "relu_ptx.json"))
    result = _run(settings, again, relu, Target.PTX)
    fix_prompt = again.requests[1][1].content
    assert "lesson:" in fix_prompt  # the fix learned in the first run is cited in the second
    retrieved = [e for e in read_trace(result.trace_path) if e.kind == TraceKind.RETRIEVED]
    assert any(h["citation"].startswith("lesson:") for e in retrieved for h in e.data["hits"])


def test_a_run_given_a_runner_verifies_on_its_leased_slot(settings: Settings, examples: Path) -> None:
    """The service's path: the same verdicts, reached through the runner's slot instead of an executor."""
    from sandbox.leases import Slot
    from sandbox.runner import InProcessRunner

    provider = ScriptedProvider(_replies(examples, "softmax_triton.json"))
    request = GenerationRequest(problem=_softmax(examples), target=Target.TRITON, budgets=Budgets())
    quiet = settings.model_copy(update={"result_store": False})

    async def scenario() -> tuple[RunResult, InProcessRunner]:
        async with InProcessRunner(quiet, slots=[Slot(0)]) as runner:
            assert isinstance(runner, InProcessRunner)
            result = await run_generation(
                request, settings=quiet, provider=provider, verify_options=OPTIONS, runner=runner
            )
            assert runner.busy == 0 and runner.healthy_slots == 1
            return result, runner

    result, runner = asyncio.run(scenario())
    assert [a.outcome for a in result.state.attempts] == [Outcome.MISMATCH, Outcome.CORRECT]
    assert runner.workers[Slot(0)].evaluations == 2  # both candidates went through the slot
