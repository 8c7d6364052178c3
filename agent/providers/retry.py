"""Retrying transient LLM request failures with exponential back-off and jitter.

Providers call their SDK with its own retries switched off and wrap the call in `call_with_retries`,
so that one policy (from `Settings`) applies to every backend, the number of attempts is known (it
goes into `Completion.attempts`) and tests can inject a `sleep` that does not wait.

What is transient: HTTP 408, 429 and 5xx answers, timeouts and connection errors. Everything else
(400, 401, 403, 404, 422...) is a mistake that a retry cannot fix and is raised at once.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from kernelwright.errors import ModelHTTPError, ModelRequestError
from kernelwright.settings import Settings

__all__ = [
    "Attempted",
    "ErrorClassifier",
    "FailureKind",
    "RequestFailure",
    "RetryPolicy",
    "SleepFn",
    "call_with_retries",
    "is_retryable_status",
    "parse_retry_after",
]

_log = logging.getLogger(__name__)

T = TypeVar("T")

SleepFn = Callable[[float], Awaitable[None]]
"""How to wait between attempts; `asyncio.sleep` in production, a recorder in tests."""

FailureKind = Literal["status", "timeout", "connection"]

DEFAULT_MAX_DELAY_S = 60.0
"""Cap of one wait, for back-off and for a server's Retry-After alike: a server asking for ten
minutes should fail the call rather than silently stall a run."""


def is_retryable_status(status_code: int) -> bool:
    """Rate limits (429), request timeouts (408) and server errors (5xx) may pass on a retry."""
    return status_code in (408, 429) or 500 <= status_code <= 599


@dataclass(frozen=True)
class RequestFailure:
    """An SDK exception translated into what the retry loop needs to know about it."""

    kind: FailureKind
    status_code: int | None = None
    body: str = ""
    retry_after_s: float | None = None
    detail: str = ""

    @property
    def retryable(self) -> bool:
        if self.kind != "status":
            return True
        return self.status_code is not None and is_retryable_status(self.status_code)


ErrorClassifier = Callable[[Exception], RequestFailure | None]
"""Maps an exception raised by a request to a `RequestFailure`, or None when it is not a request
failure at all (a bug, a cancelled task...), which is then re-raised untouched."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry. `max_retries` counts retries, not attempts."""

    max_retries: int = 4
    base_delay_s: float = 1.0
    max_delay_s: float = DEFAULT_MAX_DELAY_S

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("retry delays must be >= 0")

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(max_retries=settings.llm_max_retries, base_delay_s=settings.llm_backoff_base_s)

    def delay_s(self, retry_number: int, retry_after_s: float | None, rng: Callable[[], float]) -> float:
        """Wait before retry number `retry_number` (1-based).

        A server's Retry-After wins (it knows its rate window), capped. Otherwise exponential
        back-off with "equal jitter": half of the step is fixed, half random, so that concurrent
        runs hit by the same rate limit do not come back in lock-step.
        """
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), self.max_delay_s)
        step = min(self.base_delay_s * 2.0 ** (retry_number - 1), self.max_delay_s)
        return step / 2.0 + (step / 2.0) * rng()


@dataclass(frozen=True)
class Attempted(Generic[T]):
    """A successful result and the number of attempts (HTTP requests) it took."""

    value: T
    attempts: int


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    # Plain dicts are case-sensitive where HTTP headers are not.
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def parse_retry_after(headers: Mapping[str, str], *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds the server asks us to wait, or None when it says nothing usable.

    Reads OpenAI's `retry-after-ms` first (finer grained), then the standard `Retry-After` as
    seconds or as an HTTP date.
    """
    millis = _header(headers, "retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000.0, 0.0)
        except ValueError:
            pass
    raw = _header(headers, "retry-after")
    if raw is None:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now(), 0.0)


def _final_error(failure: RequestFailure, provider: str, model: str, attempts: int) -> ModelRequestError:
    if failure.kind == "status" and failure.status_code is not None:
        return ModelHTTPError(provider, model, failure.status_code, failure.body)
    return ModelRequestError(
        f"{provider} model {model!r}: request failed after {attempts} attempt(s) "
        f"({failure.kind}): {failure.detail or 'no detail'}"
    )


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    classify: ErrorClassifier,
    provider: str,
    model: str,
    policy: RetryPolicy,
    sleep: SleepFn = asyncio.sleep,
    rng: Callable[[], float] = random.random,
) -> Attempted[T]:
    """Await `call()` until it succeeds, retrying transient failures according to `policy`.

    Raises `ModelHTTPError` for a non-retryable status (at once) or for the last status once the
    retries are spent, `ModelRequestError` when timeouts or connection errors exhaust them, and
    re-raises anything `classify` does not recognise.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            value = await call()
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                raise
            if not failure.retryable or attempt > policy.max_retries:
                raise _final_error(failure, provider, model, attempt) from exc
            delay = policy.delay_s(attempt, failure.retry_after_s, rng)
            _log.warning(
                "%s model %r: attempt %d failed (%s %s), retrying in %.2fs",
                provider,
                model,
                attempt,
                failure.kind,
                failure.status_code if failure.status_code is not None else failure.detail,
                delay,
            )
            await sleep(delay)
        else:
            return Attempted(value=value, attempts=attempt)
