"""OpenAI and Groq providers over their real SDK clients, with the HTTP layer replaced by a MockTransport.

The SDKs do their real work (request building, error mapping, response parsing); only the network
is fake, so these tests pin down how our retry, key and pricing rules meet the actual SDK behaviour.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Coroutine
from typing import Any

import httpx
import openai
import pytest

from agent.providers import base
from agent.providers.base import ChatMessage, Completion
from agent.providers.groq_provider import GroqProvider
from agent.providers.openai_provider import OpenAIProvider
from kernelwright.errors import (
    MissingAPIKeyError,
    ModelHTTPError,
    ModelRequestError,
    ModelRequestsBlockedError,
)
from kernelwright.settings import Settings

_ENV_VARS = (
    "OPENAI_API_KEY",
    "KERNELWRIGHT_OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "KERNELWRIGHT_OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "OPENAI_CUSTOM_HEADERS",
    "GROQ_API_KEY",
    "KERNELWRIGHT_GROQ_API_KEY",
    "GROQ_BASE_URL",
    "KERNELWRIGHT_GROQ_BASE_URL",
    "GROQ_CUSTOM_HEADERS",
)

MESSAGES = [ChatMessage("system", "You write CUDA kernels."), ChatMessage("user", "Add two vectors.")]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real key or URL may leak in; the providers here talk to a MockTransport, so allow requests."""
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(base, "ALLOW_MODEL_REQUESTS", True)


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "_env_file": None,
        "openai_api_key": None,
        "openai_base_url": None,
        "groq_api_key": None,
        "groq_base_url": None,
        "llm_max_retries": 4,
        "llm_backoff_base_s": 1.0,
        "llm_timeout_s": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


def chat_body(
    text: str | None = "__global__ void add() {}",
    *,
    model: str = "gpt-4o-mini-2024-07-18",
    finish_reason: str = "stop",
    prompt_tokens: int = 1000,
    completion_tokens: int = 500,
    choices: bool = True,
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": (
            [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish_reason,
                }
            ]
            if choices
            else []
        ),
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def ok(body: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.Response(200, json=body if body is not None else chat_body())


def error(status: int, message: str = "error", headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message, "type": "test"}}, headers=headers)


class FakeServer:
    """Answers requests with queued responses, or raises queued exceptions (timeouts...)."""

    def __init__(self, *outcomes: httpx.Response | type[httpx.TransportError]) -> None:
        self.outcomes = deque(outcomes)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        outcome = self.outcomes.popleft()
        if isinstance(outcome, httpx.Response):
            return outcome
        raise outcome("simulated", request=request)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))

    def json(self, index: int) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.requests[index].content)
        return body


class SleepRecorder:
    """Stands in for asyncio.sleep: records the delays, waits for none of them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def run(coro: Coroutine[Any, Any, Completion]) -> Completion:
    return asyncio.run(coro)


def openai_provider(
    server: FakeServer, sleep: SleepRecorder, settings: Settings | None = None, **kwargs: Any
) -> OpenAIProvider:
    return OpenAIProvider(
        kwargs.pop("model", "gpt-4o-mini"),
        api_key=kwargs.pop("api_key", "sk-test"),
        http_client=server.client(),
        settings=settings or make_settings(),
        sleep=sleep,
        **kwargs,
    )


async def complete_and_close(provider: OpenAIProvider | GroqProvider, **kwargs: Any) -> Completion:
    try:
        return await provider.complete(MESSAGES, **kwargs)
    finally:
        await provider.aclose()


# --- OpenAI: retries ---------------------------------------------------------------------------


def test_429_with_retry_after_then_success_counts_two_attempts_and_costs() -> None:
    server = FakeServer(error(429, "rate limited", headers={"retry-after": "3"}), ok())
    sleep = SleepRecorder()

    completion = run(complete_and_close(openai_provider(server, sleep), max_output_tokens=2048))

    assert completion.attempts == 2
    assert sleep.delays == [3.0]
    assert len(server.requests) == 2
    assert completion.text == "__global__ void add() {}"
    assert completion.finish_reason == "stop"
    assert completion.provider == "openai"
    assert completion.model == "gpt-4o-mini-2024-07-18"
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (1000, 500)
    assert completion.usage.total_tokens == 1500
    # gpt-4o-mini: 0.15 USD / Mtok in, 0.60 USD / Mtok out (dated snapshot priced as its base model)
    assert completion.cost_usd == pytest.approx(1000 * 0.15e-6 + 500 * 0.60e-6)
    assert completion.replay is False
    sent = server.json(1)
    assert sent["model"] == "gpt-4o-mini"
    assert sent["max_completion_tokens"] == 2048
    assert "temperature" not in sent
    assert sent["messages"] == [
        {"role": "system", "content": "You write CUDA kernels."},
        {"role": "user", "content": "Add two vectors."},
    ]
    assert server.requests[0].headers["authorization"] == "Bearer sk-test"


def test_429_without_retry_after_backs_off_with_jitter() -> None:
    server = FakeServer(error(429), ok())
    sleep = SleepRecorder()

    completion = run(complete_and_close(openai_provider(server, sleep)))

    assert completion.attempts == 2
    assert len(sleep.delays) == 1
    # First retry with base 1s: equal jitter keeps it within [0.5, 1.0].
    assert 0.5 <= sleep.delays[0] <= 1.0


def test_huge_retry_after_is_capped() -> None:
    server = FakeServer(error(429, headers={"retry-after": "3600"}), ok())
    sleep = SleepRecorder()

    run(complete_and_close(openai_provider(server, sleep)))

    assert sleep.delays == [60.0]


def test_500_then_503_then_success() -> None:
    server = FakeServer(error(500, "boom"), error(503, "overloaded"), ok())
    sleep = SleepRecorder()

    completion = run(complete_and_close(openai_provider(server, sleep)))

    assert completion.attempts == 3
    assert len(server.requests) == 3
    assert len(sleep.delays) == 2
    assert 1.0 <= sleep.delays[1] <= 2.0  # second step doubles


def test_400_raises_at_once_with_status_and_body() -> None:
    server = FakeServer(error(400, "max_tokens is too large"), ok())
    sleep = SleepRecorder()

    with pytest.raises(ModelHTTPError) as caught:
        run(complete_and_close(openai_provider(server, sleep)))

    assert caught.value.status_code == 400
    assert "max_tokens is too large" in caught.value.body
    assert caught.value.provider == "openai"
    assert caught.value.model == "gpt-4o-mini"
    assert len(server.requests) == 1
    assert sleep.delays == []


def test_exhausted_429_raises_http_error_for_last_status() -> None:
    settings = make_settings(llm_max_retries=2)
    server = FakeServer(error(429), error(429), error(429, "still limited"))
    sleep = SleepRecorder()

    with pytest.raises(ModelHTTPError) as caught:
        run(complete_and_close(openai_provider(server, sleep, settings)))

    assert caught.value.status_code == 429
    assert "still limited" in caught.value.body
    assert len(server.requests) == 3


def test_exhausted_timeouts_raise_model_request_error() -> None:
    settings = make_settings(llm_max_retries=2)
    server = FakeServer(httpx.ReadTimeout, httpx.ReadTimeout, httpx.ReadTimeout)
    sleep = SleepRecorder()

    with pytest.raises(ModelRequestError) as caught:
        run(complete_and_close(openai_provider(server, sleep, settings)))

    assert not isinstance(caught.value, ModelHTTPError)
    assert "timeout" in str(caught.value)
    assert "3 attempt" in str(caught.value)
    assert len(server.requests) == 3
    assert len(sleep.delays) == 2


def test_connection_error_is_retried() -> None:
    server = FakeServer(httpx.ConnectError, ok())
    sleep = SleepRecorder()

    completion = run(complete_and_close(openai_provider(server, sleep)))

    assert completion.attempts == 2


def test_injected_sdk_client_has_its_own_retries_switched_off() -> None:
    server = FakeServer(error(500), ok())
    sleep = SleepRecorder()
    # openai>=3 annotates http_client as httpx2.AsyncClient but accepts an httpx.AsyncClient.
    http_client: Any = server.client()
    client = openai.AsyncOpenAI(api_key="sk-injected", max_retries=5, http_client=http_client)
    provider = OpenAIProvider("gpt-4o-mini", openai_client=client, settings=make_settings(), sleep=sleep)

    completion = run(complete_and_close(provider))

    assert completion.attempts == 2
    assert len(server.requests) == 2
    assert len(sleep.delays) == 1  # the one wait was ours, not the SDK's
    assert server.requests[0].headers["authorization"] == "Bearer sk-injected"


# --- OpenAI: keys, endpoints, odd responses ------------------------------------------------------


def test_missing_openai_key_names_the_variables() -> None:
    with pytest.raises(MissingAPIKeyError) as caught:
        OpenAIProvider("gpt-4o-mini", settings=make_settings())

    assert "OPENAI_API_KEY" in str(caught.value)
    assert caught.value.env_vars == ("OPENAI_API_KEY", "KERNELWRIGHT_OPENAI_API_KEY")


def test_key_from_settings_is_sent() -> None:
    server = FakeServer(ok())
    provider = OpenAIProvider(
        "gpt-4o-mini",
        http_client=server.client(),
        settings=make_settings(openai_api_key="sk-from-settings"),
    )

    run(complete_and_close(provider))

    assert server.requests[0].headers["authorization"] == "Bearer sk-from-settings"
    assert server.requests[0].url == "https://api.openai.com/v1/chat/completions"


def test_local_server_needs_no_key_and_has_no_price() -> None:
    server = FakeServer(ok(chat_body(model="qwen2.5-coder:7b")))
    provider = OpenAIProvider(
        "qwen2.5-coder:7b",
        base_url="http://localhost:11434/v1",
        http_client=server.client(),
        settings=make_settings(),
    )

    completion = run(complete_and_close(provider, max_output_tokens=256, temperature=0.2))

    request = server.requests[0]
    assert request.url == "http://localhost:11434/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer not-needed"
    assert completion.cost_usd is None
    sent = server.json(0)
    assert sent["max_tokens"] == 256  # the parameter every OpenAI-compatible server knows
    assert sent["temperature"] == 0.2


def test_base_url_from_settings_is_used() -> None:
    server = FakeServer(ok())
    provider = OpenAIProvider(
        "gpt-4o-mini",
        http_client=server.client(),
        settings=make_settings(openai_base_url="http://127.0.0.1:8000/v1"),
    )

    run(complete_and_close(provider))

    assert server.requests[0].url == "http://127.0.0.1:8000/v1/chat/completions"


def test_blocked_requests_raise_before_any_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "ALLOW_MODEL_REQUESTS", False)
    server = FakeServer(ok())

    with pytest.raises(ModelRequestsBlockedError):
        run(complete_and_close(openai_provider(server, SleepRecorder())))

    assert server.requests == []


def test_null_content_and_empty_choices_give_empty_text() -> None:
    server = FakeServer(ok(chat_body(text=None)), ok(chat_body(choices=False)))
    provider = openai_provider(server, SleepRecorder())

    async def two_calls() -> tuple[Completion, Completion]:
        try:
            return await provider.complete(MESSAGES), await provider.complete(MESSAGES)
        finally:
            await provider.aclose()

    null_content, no_choices = asyncio.run(two_calls())

    assert null_content.text == ""
    assert null_content.finish_reason == "stop"
    assert no_choices.text == ""
    assert no_choices.finish_reason is None


def test_truncated_answer_reports_length() -> None:
    server = FakeServer(ok(chat_body(finish_reason="length")))

    completion = run(complete_and_close(openai_provider(server, SleepRecorder())))

    assert completion.finish_reason == "length"
    assert completion.truncated


# --- Groq ---------------------------------------------------------------------------------------


def groq_provider(server: FakeServer, sleep: SleepRecorder, **kwargs: Any) -> GroqProvider:
    return GroqProvider(
        "llama-3.3-70b-versatile",
        http_client=server.client(),
        settings=kwargs.pop("settings", None) or make_settings(groq_api_key="gsk-test"),
        sleep=sleep,
        **kwargs,
    )


def test_groq_success_through_its_sdk() -> None:
    server = FakeServer(
        ok(chat_body(model="llama-3.3-70b-versatile", prompt_tokens=2000, completion_tokens=1000))
    )

    completion = run(complete_and_close(groq_provider(server, SleepRecorder()), max_output_tokens=512))

    request = server.requests[0]
    assert request.url.host == "api.groq.com"
    assert request.url.path == "/openai/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer gsk-test"
    assert server.json(0)["max_completion_tokens"] == 512
    assert completion.provider == "groq"
    assert completion.attempts == 1
    # llama-3.3-70b-versatile: 0.59 USD / Mtok in, 0.79 USD / Mtok out
    assert completion.cost_usd == pytest.approx(2000 * 0.59e-6 + 1000 * 0.79e-6)


def test_groq_retries_like_openai() -> None:
    server = FakeServer(error(429, headers={"retry-after": "2"}), error(502), ok(chat_body()))
    sleep = SleepRecorder()

    completion = run(complete_and_close(groq_provider(server, sleep)))

    assert completion.attempts == 3
    assert sleep.delays[0] == 2.0


def test_groq_404_raises_http_error() -> None:
    server = FakeServer(error(404, "model not found"))

    with pytest.raises(ModelHTTPError) as caught:
        run(complete_and_close(groq_provider(server, SleepRecorder())))

    assert caught.value.status_code == 404
    assert caught.value.provider == "groq"
    assert "model not found" in caught.value.body


def test_missing_groq_key_names_the_variables() -> None:
    with pytest.raises(MissingAPIKeyError) as caught:
        GroqProvider("llama-3.3-70b-versatile", settings=make_settings())

    assert "GROQ_API_KEY" in str(caught.value)
    assert "KERNELWRIGHT_GROQ_API_KEY" in str(caught.value)


def test_groq_blocked_requests_raise_before_any_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "ALLOW_MODEL_REQUESTS", False)
    server = FakeServer(ok())

    with pytest.raises(ModelRequestsBlockedError):
        run(complete_and_close(groq_provider(server, SleepRecorder())))

    assert server.requests == []
