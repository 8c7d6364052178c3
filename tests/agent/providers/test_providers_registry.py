"""Provider lookup by name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.providers import registry
from agent.providers.base import Provider
from agent.providers.groq_provider import GroqProvider
from agent.providers.openai_provider import OpenAIProvider
from agent.providers.registry import known_providers, make_provider, register_provider
from agent.providers.scripted import ScriptedProvider
from kernelwright.errors import UnknownNameError
from kernelwright.settings import Settings


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("OPENAI_API_KEY", "GROQ_API_KEY", "OPENAI_BASE_URL", "GROQ_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return Settings(_env_file=None, openai_api_key="sk-test", groq_api_key="gsk-test", openai_base_url=None)


def test_unknown_name_lists_known_ones(settings: Settings) -> None:
    with pytest.raises(UnknownNameError) as caught:
        make_provider("anthropic", "claude", settings)
    message = str(caught.value)
    assert "'anthropic'" in message
    for name in ("groq", "openai", "scripted"):
        assert name in message


def test_builtin_names(settings: Settings) -> None:
    assert set(known_providers()) >= {"openai", "groq", "scripted"}
    assert isinstance(make_provider("openai", "gpt-4o-mini", settings), OpenAIProvider)
    assert isinstance(make_provider("groq", "llama-3.1-8b-instant", settings), GroqProvider)
    scripted = make_provider("scripted", "fake-model", settings)
    assert isinstance(scripted, ScriptedProvider)
    assert scripted.model == "fake-model" and scripted.remaining == 0


def test_scripted_from_transcript(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"model": "recorded", "description": "d", "replies": [{"text": "hi"}]}))
    provider = make_provider("scripted", "ignored", settings, transcript=path)
    assert isinstance(provider, ScriptedProvider)
    assert (provider.model, provider.remaining) == ("recorded", 1)


def test_register_custom_factory(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    def factory(model: str, settings: Settings, /, **kwargs: Any) -> Provider:
        return ScriptedProvider(["canned"], model=model, name="custom")

    register_provider("custom", factory)
    provider = make_provider("custom", "m", settings)
    assert provider.name == "custom"
    with pytest.raises(ValueError, match="already registered"):
        register_provider("custom", factory)
    register_provider("custom", factory, replace=True)
