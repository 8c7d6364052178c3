"""The provider interface: one async `complete()` that every LLM backend implements.

The agent codes against `Provider` only, so a recorded conversation (`ScriptedProvider`) and a real
model are interchangeable. Everything a run needs for its budgets (tokens, cost, attempts, wall time)
travels on the returned `Completion`, so callers never have to know which SDK answered.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from kernelwright.errors import ModelRequestsBlockedError

__all__ = [
    "ALLOW_MODEL_REQUESTS",
    "ChatMessage",
    "Completion",
    "Provider",
    "Role",
    "Usage",
    "ensure_model_requests_allowed",
]

ALLOW_MODEL_REQUESTS: bool = True
"""Process-wide switch for real (network) LLM calls. The test suite sets it to False so a forgotten
fake can never spend money; providers read it at call time as `base.ALLOW_MODEL_REQUESTS`."""

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    """One message of a chat conversation, independent of any SDK's message type."""

    role: Role
    content: str


@dataclass(frozen=True)
class Usage:
    """Token counts of one completion, as reported by the provider (or estimated by a replay)."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class Completion:
    """The answer of one `Provider.complete()` call, with everything budgets and traces need.

    `cost_usd` is None when the model has no known price: an unknown cost is never guessed.
    `finish_reason` is the provider's own word ("stop", "length" when truncated, ...).
    `duration_s` is the wall time of the whole call, retries and back-off included, because that is
    what a run's wall-clock budget pays; `attempts` counts the HTTP requests it took (1 = no retry).
    """

    text: str
    provider: str
    model: str
    usage: Usage
    cost_usd: float | None
    finish_reason: str | None
    duration_s: float
    attempts: int
    replay: bool = False

    @property
    def truncated(self) -> bool:
        """True when the model stopped because it hit the output-token limit."""
        return self.finish_reason == "length"


class Provider(ABC):
    """An LLM backend. Subclasses set `name` and `model`; replays set `is_replay = True`."""

    name: str
    model: str
    is_replay: bool = False

    @abstractmethod
    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_output_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion:
        """Send `messages` and return the model's reply; None parameters mean the model's default."""

    async def aclose(self) -> None:  # noqa: B027 - deliberately a no-op default, not abstract
        """Release network resources; providers that hold none keep this no-op."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, model={self.model!r})"


def ensure_model_requests_allowed(provider: str, model: str) -> None:
    """Raise before any network I/O when real model requests are switched off (as in tests)."""
    # A module global read at call time: monkeypatching `base.ALLOW_MODEL_REQUESTS` takes effect,
    # whereas a `from base import ALLOW_MODEL_REQUESTS` copy elsewhere would not.
    if not ALLOW_MODEL_REQUESTS:
        raise ModelRequestsBlockedError(
            f"Refusing a real request to {provider} model {model!r}: model requests are disabled "
            "(agent.providers.base.ALLOW_MODEL_REQUESTS is False). Use a ScriptedProvider in tests."
        )
