"""Claude through the ``anthropic`` SDK as a culturesim backend.

The DEF method varies sampling parameters per participant. The installed SDK decides whether
that is possible: ``anthropic`` 2.x ``messages.create`` takes no ``temperature``, ``top_p`` or
``top_k``, so this backend reads the SDK's own signature and supports only what it accepts.
What it cannot send is listed in ``describe()["unsupported_params"]`` and config diversity is
reported as unavailable, never faked (e.g. by smuggling fields through ``extra_body``).

Two wire details of SDK 2.x: it sends the key as ``Authorization: Bearer``, while the Messages
API specification (and servers that implement it, such as llm-katan) read ``x-api-key``; the
key goes in both headers, to the same host. The SDK's own retries are switched off so the one
retry loop in ``RemoteBackend`` applies.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import anthropic
from anthropic.resources.messages import AsyncMessages

from culturesim.simulator.backends.base import (
    EmptyCompletion,
    RemoteBackend,
    RetryPolicy,
    api_key_from_env,
    is_retryable_status,
    public_url,
    url_secrets,
)
from culturesim.simulator.types import GenerationRequest

__all__ = ["AnthropicBackend", "SDK_SAMPLING_PARAMS"]

DEFAULT_BASE_URL = "https://api.anthropic.com"

# Sampling arguments the installed SDK's messages.create accepts (empty for anthropic 2.x).
SDK_SAMPLING_PARAMS: frozenset[str] = frozenset(
    {"temperature", "top_p"} & set(inspect.signature(AsyncMessages.create).parameters)
)


class AnthropicBackend(RemoteBackend):
    """Claude Messages API with up to ``concurrency`` requests in flight.

    ``GenerationConfig`` mapping: ``max_new_tokens`` -> ``max_tokens``; ``temperature``,
    ``top_p`` and ``do_sample`` (as ``temperature=0``) only where the installed SDK accepts
    them (not in 2.x). System messages go to the ``system`` argument. The key comes from the
    environment variable ``api_key_env``, or from ``api_key`` when a caller holds one for a
    single job (the Space: a pasted key must not go through the shared ``os.environ``); it is
    redacted from every error and never in ``describe()``. ``base_url`` defaults to
    ``$ANTHROPIC_BASE_URL`` or the Anthropic API and has no ``/v1`` suffix.
    """

    name = "anthropic"

    def __init__(
        self,
        model: str = "claude-sonnet-4-5",
        base_url: str | None = None,
        api_key_env: str = "ANTHROPIC_API_KEY",
        concurrency: int = 8,
        timeout_s: float = 120,
        max_attempts: int = 6,
        retry: RetryPolicy | None = None,
        api_key: str | None = None,
    ) -> None:
        if not model:
            raise ValueError("model must name a Claude model, e.g. model='claude-sonnet-4-5'")
        self.model_id = model
        self.base_url = base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL
        self.api_key_env = api_key_env
        key = api_key or api_key_from_env(api_key_env, self.base_url, self.name)
        self.supported_params = frozenset({"max_new_tokens"}) | SDK_SAMPLING_PARAMS | (
            frozenset({"do_sample"}) if "temperature" in SDK_SAMPLING_PARAMS else frozenset()
        )
        super().__init__(
            concurrency=concurrency,
            timeout_s=timeout_s,
            retry=retry or RetryPolicy(max_attempts=max_attempts),
            secrets=[key, *url_secrets(self.base_url)],
        )
        self._key = key
        self._client: anthropic.AsyncAnthropic | None = None  # made on the private loop, where it is used

    def _params(self, request: GenerationRequest) -> dict[str, Any]:
        config = request.config
        params: dict[str, Any] = {"max_tokens": config.max_new_tokens}
        if "temperature" in SDK_SAMPLING_PARAMS:
            if not config.do_sample:
                params["temperature"] = 0.0
            elif config.temperature is not None:
                params["temperature"] = config.temperature
        if "top_p" in SDK_SAMPLING_PARAMS and config.do_sample and config.top_p is not None:
            params["top_p"] = config.top_p
        system = [m["content"] for m in request.messages if m["role"] == "system"]
        if system:
            params["system"] = "\n\n".join(system)
        turns = [{"role": m["role"], "content": m["content"]} for m in request.messages if m["role"] != "system"]
        bad = sorted({t["role"] for t in turns} - {"user", "assistant"})
        if bad:
            raise ValueError(f"message roles {bad} are not accepted by the Messages API; use system, user or assistant")
        params["messages"] = turns
        return params

    async def _complete(self, request: GenerationRequest) -> tuple[str, int, int]:
        params = self._params(request)
        if self._client is None:
            self._client = anthropic.AsyncAnthropic(
                api_key=self._key,
                base_url=self.base_url,
                timeout=self.timeout_s,
                max_retries=0,  # RetryPolicy is the one retry loop
                default_headers={"x-api-key": self._key},
            )
        message = await self._client.messages.create(model=self.model_id, **params)
        usage = message.usage
        tokens = ((usage.input_tokens or 0), (usage.output_tokens or 0)) if usage else (0, 0)
        blocks = [block for block in (message.content or []) if getattr(block, "type", "") == "text"]
        if not blocks:
            raise EmptyCompletion(f"the server returned no text block (stop_reason {message.stop_reason!r})", *tokens)
        return "".join(block.text for block in blocks), tokens[0], tokens[1]

    def should_retry(self, error: BaseException) -> bool:
        if isinstance(error, anthropic.APIConnectionError):  # includes APITimeoutError
            return True
        if isinstance(error, anthropic.APIStatusError):
            return is_retryable_status(error.status_code)  # 429, 529 overloaded, 5xx, 408, 409
        return isinstance(error, anthropic.RetryableError)

    def describe(self) -> dict[str, object]:
        info = super().describe()
        unsupported = [p for p in ("temperature", "top_p", "do_sample") if p not in self.supported_params]
        info.update(
            base_url=public_url(self.base_url),
            api_key_env=self.api_key_env,
            sdk_version=anthropic.__version__,
            config_diversity="available"
            if not unsupported
            else f"unavailable: anthropic {anthropic.__version__} messages.create accepts no {', '.join(unsupported)}",
        )
        return info

    async def _aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()
