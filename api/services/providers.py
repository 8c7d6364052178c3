"""Which LLM a job talks to, as stored data, and the factory that turns it into a provider.

Clients name a registered provider and a model; base URLs and keys come from the server's settings only
(a client-supplied URL would let anyone make the server call arbitrary hosts). The scripted provider
takes inline replies; on resume it skips the replies that finished turns already consumed, so a run
continued after a restart hears what it would have heard.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.providers import Provider, ScriptedProvider, make_provider
from kernelwright.settings import Settings

__all__ = ["ProviderFactory", "ProviderSpec", "default_provider_factory"]


@dataclass(frozen=True)
class ProviderSpec:
    name: str
    model: str
    replies: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "model": self.model, "replies": list(self.replies)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProviderSpec:
        return cls(str(data["name"]), str(data["model"]), tuple(str(r) for r in data.get("replies", ())))


ProviderFactory = Callable[[ProviderSpec, int], Provider]
"""(spec, replies already consumed) -> a provider ready for the next request."""


def default_provider_factory(settings: Settings) -> ProviderFactory:
    def build(spec: ProviderSpec, consumed: int) -> Provider:
        if spec.name == "scripted":
            return ScriptedProvider(spec.replies[consumed:], model=spec.model)
        return make_provider(spec.name, spec.model, settings)

    return build
