"""LLM providers behind one async interface: `Provider.complete(messages) -> Completion`.

Build one with `make_provider(settings.provider, settings.model, settings)`; use
`ScriptedProvider` in tests and offline demos.

The switch for real network calls is deliberately not re-exported: set
`agent.providers.base.ALLOW_MODEL_REQUESTS` itself, since a re-exported copy would not follow it.
"""

from __future__ import annotations

from .base import ChatMessage, Completion, Provider, Role, Usage
from .groq_provider import GroqProvider
from .openai_provider import OpenAIProvider
from .pricing import ModelPrice, PriceTable, base_model_name, cost_usd, default_price_table, load_price_table
from .registry import ProviderFactory, known_providers, make_provider, register_provider
from .retry import RetryPolicy, SleepFn
from .scripted import ScriptedProvider, ScriptedReply, estimate_tokens

__all__ = [
    "ChatMessage",
    "Completion",
    "GroqProvider",
    "ModelPrice",
    "OpenAIProvider",
    "PriceTable",
    "Provider",
    "ProviderFactory",
    "RetryPolicy",
    "Role",
    "ScriptedProvider",
    "ScriptedReply",
    "SleepFn",
    "Usage",
    "base_model_name",
    "cost_usd",
    "default_price_table",
    "estimate_tokens",
    "known_providers",
    "load_price_table",
    "make_provider",
    "register_provider",
]
