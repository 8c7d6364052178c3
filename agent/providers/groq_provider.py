"""The Groq provider: Groq's hosted open models through the `groq` SDK.

The SDK is Stainless-generated like OpenAI's, so everything but client construction is shared
(`chat_sdk.SDKChatProvider`). Note that Groq's base URL has no `/v1`: the SDK appends
`/openai/v1/chat/completions` itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import groq
import httpx

from kernelwright.settings import Settings

from .chat_sdk import (
    ChatResponseLike,
    SDKChatProvider,
    SDKErrorTypes,
    is_official_endpoint,
    resolve_api_key,
)
from .pricing import PriceTable
from .retry import SleepFn

if TYPE_CHECKING:
    from groq.types.chat import ChatCompletionMessageParam

__all__ = ["GROQ_API_KEY_VARS", "GROQ_DEFAULT_BASE_URL", "GroqProvider"]

GROQ_DEFAULT_BASE_URL = "https://api.groq.com"
GROQ_API_KEY_VARS = ("GROQ_API_KEY", "KERNELWRIGHT_GROQ_API_KEY")
_OFFICIAL_HOST = "api.groq.com"

_GROQ_ERRORS = SDKErrorTypes(
    status=groq.APIStatusError,
    timeout=groq.APITimeoutError,
    connection=groq.APIConnectionError,
)


class GroqProvider(SDKChatProvider):
    """Chat completions through the official `groq` SDK (same options as `OpenAIProvider`)."""

    name = "groq"

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        groq_client: groq.AsyncGroq | None = None,
        http_client: httpx.AsyncClient | None = None,
        settings: Settings,
        sleep: SleepFn | None = None,
        prices: PriceTable | None = None,
    ) -> None:
        if groq_client is not None:
            self._client = groq_client.with_options(max_retries=0)
            url = str(self._client.base_url)
        else:
            # Explicit URL so the SDK does not read GROQ_BASE_URL behind `Settings`' back.
            url = base_url or settings.groq_base_url or GROQ_DEFAULT_BASE_URL
            key = resolve_api_key(
                explicit=api_key,
                configured=settings.groq_api_key,
                official=is_official_endpoint(url, _OFFICIAL_HOST),
                provider="groq",
                env_vars=GROQ_API_KEY_VARS,
            )
            self._client = groq.AsyncGroq(
                api_key=key,
                base_url=url,
                max_retries=0,
                timeout=settings.llm_timeout_s,
                http_client=http_client,
            )
        official = is_official_endpoint(url, _OFFICIAL_HOST)
        self.base_url = url
        super().__init__(
            model,
            settings=settings,
            errors=_GROQ_ERRORS,
            price_provider="groq" if official else None,
            sleep=sleep,
            prices=prices,
        )

    async def _create(
        self,
        messages: list[dict[str, str]],
        *,
        max_output_tokens: int | None,
        temperature: float | None,
    ) -> ChatResponseLike:
        options: dict[str, Any] = {}
        if max_output_tokens is not None:
            options["max_completion_tokens"] = max_output_tokens
        if temperature is not None:
            options["temperature"] = temperature
        response = await self._client.chat.completions.create(
            model=self.model,
            messages=cast("list[ChatCompletionMessageParam]", messages),
            **options,
        )
        return cast(ChatResponseLike, response)

    async def aclose(self) -> None:
        """Close the SDK client (and with it an injected `http_client`)."""
        await self._client.close()
