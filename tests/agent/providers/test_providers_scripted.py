"""The replay provider: queued answers, simulated truncation and failures, transcripts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from agent.providers.base import ChatMessage, Completion
from agent.providers.scripted import ScriptedProvider, ScriptedReply
from kernelwright.errors import ScriptExhaustedError, UserError

PROMPT = [ChatMessage("system", "s" * 40), ChatMessage("user", "u" * 80)]


def ask(provider: ScriptedProvider) -> Completion:
    return asyncio.run(provider.complete(PROMPT))


def test_replies_in_order_with_replay_flag_and_estimated_usage() -> None:
    provider = ScriptedProvider(["first answer"], model="gpt-4o-mini")
    provider.enqueue("x" * 400)

    first = ask(provider)
    second = ask(provider)

    assert provider.is_replay
    assert (first.text, second.text) == ("first answer", "x" * 400)
    assert first.replay and first.cost_usd == 0.0 and first.attempts == 1
    assert first.finish_reason == "stop"
    assert (first.provider, first.model) == ("scripted", "gpt-4o-mini")
    assert second.usage.input_tokens == 120 // 4
    assert second.usage.output_tokens == 100
    assert provider.requests == [PROMPT, PROMPT]
    assert provider.remaining == 0


def test_truncated_reply_and_explicit_usage() -> None:
    provider = ScriptedProvider(
        [ScriptedReply("half a kern", finish_reason="length", input_tokens=7, output_tokens=9)]
    )

    completion = ask(provider)

    assert completion.finish_reason == "length"
    assert completion.truncated
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (7, 9)


def test_queued_error_is_raised_then_script_continues() -> None:
    provider = ScriptedProvider([ScriptedReply(error=TimeoutError("simulated outage")), "recovered"])

    with pytest.raises(TimeoutError, match="simulated outage"):
        ask(provider)
    assert ask(provider).text == "recovered"
    assert len(provider.requests) == 2


def test_exhaustion_raises_a_clear_error() -> None:
    provider = ScriptedProvider(["only one"], name="demo")
    ask(provider)

    with pytest.raises(ScriptExhaustedError, match=r"'demo'.*ran out of replies.*#2"):
        ask(provider)


def test_from_transcript(tmp_path: Path) -> None:
    path = tmp_path / "demo.json"
    path.write_text(
        json.dumps(
            {
                "model": "gpt-4o-2024-08-06",
                "description": "vector add, recorded",
                "replies": [
                    {"text": "attempt 1", "finish_reason": "length"},
                    {"text": "attempt 2", "finish_reason": None},
                    {"text": "attempt 3"},
                ],
            }
        )
    )

    provider = ScriptedProvider.from_transcript(path)

    assert provider.model == "gpt-4o-2024-08-06"
    assert provider.description == "vector add, recorded"
    assert [ask(provider).finish_reason for _ in range(3)] == ["length", None, "stop"]


def test_malformed_transcripts_are_user_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(UserError, match="cannot read"):
        ScriptedProvider.from_transcript(missing)

    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        ScriptedProvider.from_transcript(broken)

    no_text = tmp_path / "no_text.json"
    no_text.write_text(json.dumps({"model": "m", "description": "", "replies": [{"finish_reason": "stop"}]}))
    with pytest.raises(UserError, match="'text'"):
        ScriptedProvider.from_transcript(no_text)
