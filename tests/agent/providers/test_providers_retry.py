"""The retry loop on its own: which failures are retried, how long it waits, what it finally raises."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from agent.providers.retry import (
    Attempted,
    RequestFailure,
    RetryPolicy,
    call_with_retries,
    is_retryable_status,
    parse_retry_after,
)
from kernelwright.errors import ModelHTTPError, ModelRequestError
from kernelwright.settings import Settings


class Boom(Exception):
    def __init__(self, failure: RequestFailure | None) -> None:
        super().__init__("boom")
        self.failure = failure


def classify(exc: Exception) -> RequestFailure | None:
    return exc.failure if isinstance(exc, Boom) else None


def failing_then(failures: list[RequestFailure | None], value: str = "ok") -> Callable[[], Awaitable[str]]:
    remaining = list(failures)

    async def call() -> str:
        if remaining:
            raise Boom(remaining.pop(0))
        return value

    return call


def retry(call: Callable[[], Awaitable[str]], policy: RetryPolicy, delays: list[float]) -> Attempted[str]:
    async def sleep(delay: float) -> None:
        delays.append(delay)

    return asyncio.run(
        call_with_retries(
            call, classify=classify, provider="p", model="m", policy=policy, sleep=sleep, rng=lambda: 1.0
        )
    )


def test_retryable_statuses() -> None:
    assert all(is_retryable_status(code) for code in (408, 429, 500, 502, 503, 504))
    assert not any(is_retryable_status(code) for code in (400, 401, 403, 404, 422))


def test_policy_from_settings() -> None:
    settings = Settings(_env_file=None, llm_max_retries=7, llm_backoff_base_s=0.25)
    policy = RetryPolicy.from_settings(settings)
    assert (policy.max_retries, policy.base_delay_s) == (7, 0.25)


def test_backoff_doubles_and_is_capped() -> None:
    policy = RetryPolicy(max_retries=10, base_delay_s=1.0, max_delay_s=5.0)
    top = [policy.delay_s(n, None, lambda: 1.0) for n in range(1, 6)]
    bottom = [policy.delay_s(n, None, lambda: 0.0) for n in range(1, 6)]
    assert top == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert bottom == [0.5, 1.0, 2.0, 2.5, 2.5]
    assert policy.delay_s(1, 3.0, lambda: 1.0) == 3.0  # Retry-After wins
    assert policy.delay_s(1, 99.0, lambda: 1.0) == 5.0  # ... but capped


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    when = datetime(2030, 1, 1, 0, 0, 30, tzinfo=UTC)
    start = datetime(2030, 1, 1, 0, 0, 0, tzinfo=UTC).timestamp()
    header = {"retry-after": format_datetime(when, usegmt=True)}
    assert parse_retry_after(header, now=lambda: start) == pytest.approx(30.0)
    assert parse_retry_after(header, now=lambda: start + 60) == 0.0  # a date in the past: go now


def test_success_after_transient_failures_counts_attempts() -> None:
    delays: list[float] = []
    call = failing_then([RequestFailure("status", 503), RequestFailure("connection", detail="reset")])
    outcome = retry(call, RetryPolicy(max_retries=3, base_delay_s=1.0), delays)
    assert outcome == Attempted(value="ok", attempts=3)
    assert delays == [1.0, 2.0]


def test_non_retryable_status_raises_immediately() -> None:
    delays: list[float] = []
    call = failing_then([RequestFailure("status", 401, body="bad key")])
    with pytest.raises(ModelHTTPError) as caught:
        retry(call, RetryPolicy(max_retries=3), delays)
    assert (caught.value.status_code, caught.value.body) == (401, "bad key")
    assert delays == []


def test_zero_retries_means_one_attempt() -> None:
    delays: list[float] = []
    with pytest.raises(ModelRequestError, match="1 attempt"):
        retry(failing_then([RequestFailure("timeout", detail="read")]), RetryPolicy(max_retries=0), delays)
    assert delays == []


def test_unclassified_exceptions_pass_through() -> None:
    with pytest.raises(Boom):
        retry(failing_then([None]), RetryPolicy(max_retries=3), [])


def test_negative_policy_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)
