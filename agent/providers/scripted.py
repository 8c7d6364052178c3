"""A provider that replays queued replies: for tests and for the shipped offline demos.

It behaves like a real model as far as the agent can tell (token usage, truncation, failures), so
the whole loop, budgets included, can be exercised without a network or a key. Every request is
recorded, so tests can assert what the agent actually sent.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from kernelwright.errors import ScriptExhaustedError, UserError

from .base import ChatMessage, Completion, Provider, Usage

__all__ = ["ScriptedProvider", "ScriptedReply", "estimate_tokens"]

CHARS_PER_TOKEN = 4
"""A rough English/code average; good enough for token budgets to behave plausibly in replays."""


def estimate_tokens(text: str) -> int:
    """Approximate token count of `text` (len // 4), used when a reply does not state its usage."""
    return len(text) // CHARS_PER_TOKEN


@dataclass(frozen=True)
class ScriptedReply:
    """One queued answer. With `error` set, that exception is raised instead of answering."""

    text: str = ""
    finish_reason: str | None = "stop"
    input_tokens: int | None = None
    output_tokens: int | None = None
    error: Exception | None = None
    cost_usd: float = 0.0  # what the recorded call cost, so budgets and spending caps replay as they ran


class ScriptedProvider(Provider):
    """Answers each `complete()` with the next queued reply; raises when the script runs out."""

    is_replay = True

    def __init__(
        self,
        replies: Iterable[str | ScriptedReply] = (),
        *,
        model: str = "scripted",
        name: str = "scripted",
        description: str = "",
    ) -> None:
        self.name = name
        self.model = model
        self.description = description
        self.requests: list[list[ChatMessage]] = []
        self._queue: deque[ScriptedReply] = deque()
        self.enqueue(*replies)

    def enqueue(self, *replies: str | ScriptedReply) -> None:
        """Append replies; plain strings become normal ("stop") answers."""
        self._queue.extend(ScriptedReply(text=r) if isinstance(r, str) else r for r in replies)

    @property
    def remaining(self) -> int:
        """Replies still queued."""
        return len(self._queue)

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_output_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Completion:
        started = time.perf_counter()
        self.requests.append(list(messages))
        if not self._queue:
            raise ScriptExhaustedError(
                f"Scripted provider {self.name!r} (model {self.model!r}) ran out of replies: request "
                f"#{len(self.requests)} arrived after {len(self.requests) - 1} answered request(s). "
                "Enqueue more replies, or the agent made more calls than the script expected."
            )
        reply = self._queue.popleft()
        if reply.error is not None:
            raise reply.error
        usage = Usage(
            input_tokens=(
                reply.input_tokens
                if reply.input_tokens is not None
                else sum(len(m.content) for m in messages) // CHARS_PER_TOKEN
            ),
            output_tokens=(
                reply.output_tokens if reply.output_tokens is not None else estimate_tokens(reply.text)
            ),
        )
        return Completion(
            text=reply.text,
            provider=self.name,
            model=self.model,
            usage=usage,
            cost_usd=reply.cost_usd,
            finish_reason=reply.finish_reason,
            duration_s=time.perf_counter() - started,
            attempts=1,
            replay=True,
        )

    @classmethod
    def from_transcript(cls, path: Path | str) -> ScriptedProvider:
        """Load a recorded conversation: `{"model", "description", "replies": [{"text", "finish_reason"}]}`.

        This is how the shipped offline demos replay a real model's answers. Replies may also carry
        `input_tokens`/`output_tokens` (absent ones are estimated) and the call's recorded `cost_usd`
        (absent: 0).
        """
        source = Path(path)
        try:
            data: object = json.loads(source.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UserError(f"cannot read transcript {source}: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise UserError(f"transcript {source} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("replies"), list):
            raise UserError(f"transcript {source}: expected an object with a 'replies' list")
        fields = cast(dict[str, Any], data)
        model = fields.get("model", "scripted")
        description = fields.get("description", "")
        if not isinstance(model, str) or not isinstance(description, str):
            raise UserError(f"transcript {source}: 'model' and 'description' must be strings")
        replies = [_reply_from_json(raw, source, index) for index, raw in enumerate(fields["replies"])]
        return cls(replies, model=model, description=description)


def _optional_int(row: dict[str, Any], key: str, where: str) -> int | None:
    value = row.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(f"{where}: {key!r} must be a non-negative integer")
    return value


def _reply_from_json(raw: object, source: Path, index: int) -> ScriptedReply:
    where = f"transcript {source}, reply #{index}"
    if not isinstance(raw, dict):
        raise UserError(f"{where}: expected an object with 'text'")
    row = cast(dict[str, Any], raw)
    text = row.get("text")
    finish_reason = row.get("finish_reason", "stop")
    if not isinstance(text, str):
        raise UserError(f"{where}: 'text' must be a string")
    if finish_reason is not None and not isinstance(finish_reason, str):
        raise UserError(f"{where}: 'finish_reason' must be a string or null")
    return ScriptedReply(
        text=text,
        finish_reason=finish_reason,
        input_tokens=_optional_int(row, "input_tokens", where),
        output_tokens=_optional_int(row, "output_tokens", where),
        cost_usd=_cost(row, where),
    )


def _cost(row: dict[str, Any], where: str) -> float:
    value = row.get("cost_usd", 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise UserError(f"{where}: 'cost_usd' must be a non-negative number of dollars")
    return float(value)
