"""The OpenAI provider: api.openai.com, or any OpenAI-compatible server (vLLM, Ollama, llama.cpp).

Pointing `base_url` at a self-hosted server is how kernelwright runs against a local model; such
servers need no key and have no price, so both rules depend on whether the endpoint is OpenAI's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import httpx
import openai

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
    from openai.types.chat import ChatCompletionMessageParam

__all__ = ["OPENAI_API_KEY_VARS", "OPENAI_DEFAULT_BASE_URL", "OpenAIProvider"]

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
OPENAI_API_KEY_VARS = ("OPENAI_API_KEY", "KERNELWRIGHT_OPENAI_API_KEY")
_OFFICIAL_HOST = "api.openai.com"

_OPENAI_ERRORS = SDKErrorTypes(
    status=openai.APIStatusError,
    timeout=openai.APITimeoutError,
    connection=openai.APIConnectionError,
)


class OpenAIProvider(SDKChatProvider):
    """Chat completions through the official `openai` SDK.

    Pass `openai_client` to reuse a configured client (its own key and URL are then used; only its
    SDK retries are switched off), or `http_client` to keep our client set-up but choose the HTTP
    transport (tests inject an `httpx.MockTransport` there).
    """

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        openai_client: openai.AsyncOpenAI | None = None,
        http_client: httpx.AsyncClient | None = None,
        settings: Settings,
        sleep: SleepFn | None = None,
        prices: PriceTable | None = None,
    ) -> None:
        if openai_client is not None:
            # We retry ourselves (and count attempts); SDK retries would hide and multiply them.
            self._client = openai_client.with_options(max_retries=0)
            url = str(self._client.base_url)
        else:
            # Always pass the URL explicitly: the SDK would otherwise read OPENAI_BASE_URL on its own,
            # bypassing `Settings` (which already accepts that variable).
            url = base_url or settings.openai_base_url or OPENAI_DEFAULT_BASE_URL
            key = resolve_api_key(
                explicit=api_key,
                configured=settings.openai_api_key,
                official=is_official_endpoint(url, _OFFICIAL_HOST),
                provider="openai",
                env_vars=OPENAI_API_KEY_VARS,
            )
            self._client = openai.AsyncOpenAI(
                api_key=key,
                base_url=url,
                max_retries=0,
                timeout=settings.llm_timeout_s,
                # openai>=3 types this as httpx2.AsyncClient but accepts an httpx.AsyncClient too.
                http_client=cast(Any, http_client),
            )
        self._official = is_official_endpoint(url, _OFFICIAL_HOST)
        self.base_url = url
        super().__init__(
            model,
            settings=settings,
            errors=_OPENAI_ERRORS,
            price_provider="openai" if self._official else None,
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
            # OpenAI's reasoning models accept only `max_completion_tokens`; self-hosted servers
            # reliably understand only the older `max_tokens`.
            options["max_completion_tokens" if self._official else "max_tokens"] = max_output_tokens
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
