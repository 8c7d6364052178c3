"""Provider lookup by name, so configuration (`KERNELWRIGHT_PROVIDER=groq`) picks the backend.

A dict of factories rather than a chain of string comparisons: adding a backend (or a test fake)
is one `register_provider` call and never an edit here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from kernelwright.errors import UnknownNameError
from kernelwright.settings import Settings

from .base import Provider
from .groq_provider import GroqProvider
from .openai_provider import OpenAIProvider
from .scripted import ScriptedProvider

__all__ = ["ProviderFactory", "known_providers", "make_provider", "register_provider"]


class ProviderFactory(Protocol):
    """Builds a provider for `model`; extra keyword arguments are backend-specific."""

    def __call__(self, model: str, settings: Settings, /, **kwargs: Any) -> Provider: ...


def _make_openai(model: str, settings: Settings, /, **kwargs: Any) -> Provider:
    return OpenAIProvider(model, settings=settings, **kwargs)


def _make_groq(model: str, settings: Settings, /, **kwargs: Any) -> Provider:
    return GroqProvider(model, settings=settings, **kwargs)


def _make_scripted(model: str, settings: Settings, /, **kwargs: Any) -> Provider:
    """`transcript=Path` replays a recorded conversation (its own model name wins); else empty."""
    transcript: Path | str | None = kwargs.pop("transcript", None)
    if transcript is not None:
        return ScriptedProvider.from_transcript(transcript)
    return ScriptedProvider(model=model, **kwargs)


_REGISTRY: dict[str, ProviderFactory] = {
    "openai": _make_openai,
    "groq": _make_groq,
    "scripted": _make_scripted,
}


def known_providers() -> tuple[str, ...]:
    """Registered provider names, sorted."""
    return tuple(sorted(_REGISTRY))


def register_provider(name: str, factory: ProviderFactory, *, replace: bool = False) -> None:
    """Make `make_provider(name, ...)` use `factory`; `replace=True` to override an existing name."""
    if name in _REGISTRY and not replace:
        raise ValueError(f"provider {name!r} is already registered (pass replace=True to override it)")
    _REGISTRY[name] = factory


def make_provider(name: str, model: str, settings: Settings, **kwargs: Any) -> Provider:
    """Build the provider registered as `name` for `model`, e.g. `make_provider("groq", ...)`."""
    factory = _REGISTRY.get(name)
    if factory is None:
        raise UnknownNameError(f"Unknown provider {name!r}; known providers: {', '.join(known_providers())}.")
    return factory(model, settings, **kwargs)
