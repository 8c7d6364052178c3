"""The generation loop on the tt-metal target, with replies from the scripted provider (no model called):
a first project with legacy includes and a circular-buffer mismatch is rejected with specific
diagnostics; the fixed one passes the static checks and, with fetched headers, the syntax check of its
data-movement kernels. The verdict states the level reached and never claims `correct`."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from agent.context import Budgets
from agent.providers import ScriptedProvider
from agent.run import GenerationRequest, run_generation
from agent.state import RunStatus
from kernelwright.domain import Outcome, Problem, Target
from kernelwright.settings import Settings
from sandbox.ttmetal_build import gxx_m32_available
from sandbox.ttmetal_fetch import installed_headers

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "ttmetal"


def _headers() -> Path | None:
    """Headers from `kernelwright toolchains fetch tt-metal`, or KERNELWRIGHT_TTMETAL_HEADERS."""
    explicit = os.environ.get("KERNELWRIGHT_TTMETAL_HEADERS")
    if explicit:
        return Path(explicit)
    found = installed_headers(Settings(_env_file=None))
    return found[0] if found else None


def _run(settings: Settings, transcript: str) -> object:
    data = json.loads((EXAMPLES / "transcripts" / transcript).read_text())
    provider = ScriptedProvider([r["text"] for r in data["replies"]])
    problem = Problem.from_file(EXAMPLES / "add_problem.py")
    request = GenerationRequest(problem=problem, target=Target.TT_METAL, budgets=Budgets(max_turns=3))
    return asyncio.run(run_generation(request, settings=settings, provider=provider))


def _check(result: object, level: str) -> None:
    state = result.state  # type: ignore[attr-defined]
    first, second = state.attempts
    codes = {d.code for d in first.diagnostics if d.is_error}
    assert {"ttm.include.moved", "ttm.api.removed", "ttm.cb.not_configured"} <= codes, codes
    assert first.outcome == Outcome.COMPILE_ERROR and first.compile is None
    assert not [d for d in second.diagnostics if d.is_error]
    assert second.compile is not None and second.compile.ok and second.compile.level == level
    assert second.verdict is not None and second.verdict.outcome == Outcome.NO_GPU
    assert second.verdict.level == level and not second.verdict.correct
    assert "not compared with the reference" in second.verdict.message
    assert state.status == RunStatus.COMPILED_UNVERIFIED and state.turn == 2


@pytest.mark.parametrize("transcript", ["eltwise_add_single.json", "eltwise_add_multi.json"])
def test_legacy_reply_rejected_then_fixed_static(settings: Settings, transcript: str) -> None:
    settings = settings.model_copy(update={"ttmetal_headers": None, "tt_metal_home": None})
    _check(_run(settings, transcript), "static_checked")


@pytest.mark.parametrize("transcript", ["eltwise_add_single.json", "eltwise_add_multi.json"])
def test_fixed_reply_passes_the_syntax_check_with_headers(settings: Settings, transcript: str) -> None:
    headers = _headers()
    if headers is None or not gxx_m32_available():
        pytest.skip("needs `kernelwright toolchains fetch tt-metal` and g++-multilib")
    settings = settings.model_copy(update={"ttmetal_headers": headers, "tt_metal_home": None})
    _check(_run(settings, transcript), "syntax_checked")
