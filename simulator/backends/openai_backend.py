"""Any OpenAI-compatible chat server (vLLM, TGI, SGLang, OpenAI) as a culturesim backend.

This is how a run scales past one machine: a vLLM cluster serves, and the simulator keeps
many requests in flight against it. Only the mapping from ``GenerationConfig`` to the chat
completions call lives here; concurrency, the one retry loop and error capture are
``RemoteBackend``'s, and the SDK's own retries are switched off so they do not multiply.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import openai

from urllib.parse import parse_qsl, urlsplit, urlunsplit

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

__all__ = ["OpenAIBackend"]


def _token_logprobs(response: Any) -> list[dict[str, Any]] | None:
    """The chat response's ``choices[0].logprobs.content`` as plain data (None: the server sent none)."""
    choice = response.choices[0] if response.choices else None
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if content is None:
        return None
    return [
        {"token": t.token, "logprob": float(t.logprob),
         "top": [[c.token, float(c.logprob)] for c in (t.top_logprobs or [])]}
        for t in content
    ]

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIBackend(RemoteBackend):
    """Chat completions against ``base_url`` with up to ``concurrency`` requests in flight.

    ``GenerationConfig`` mapping: ``max_new_tokens`` -> ``max_tokens`` (or
    ``max_completion_tokens``, which OpenAI's reasoning models require: set
    ``max_tokens_param``), ``temperature``, ``top_p``, ``seed``, ``top_logprobs`` (sends
    ``logprobs=true``; the tokens come back in ``GenerationResult.logprobs``); ``do_sample=False`` sends
    ``temperature=0`` and no ``top_p``. ``num_beams`` and ``min_new_tokens`` have no
    equivalent in the chat API and are reported as unsupported.

    The key comes only from the environment variable ``api_key_env``; a server on loopback
    without a key gets the placeholder ``EMPTY``. ``base_url`` defaults to
    ``$OPENAI_BASE_URL`` or the OpenAI API, and includes the ``/v1`` suffix.
    """

    name = "openai"
    supported_params = frozenset({"max_new_tokens", "do_sample", "temperature", "top_p", "seed", "top_logprobs"})

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 16,
        timeout_s: float = 60,
        max_attempts: int = 6,
        retry: RetryPolicy | None = None,
        max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens",
    ) -> None:
        if not model:
            raise ValueError("model must name the served model, e.g. model='meta-llama/Llama-3.1-8B-Instruct'")
        if max_tokens_param not in ("max_tokens", "max_completion_tokens"):
            raise ValueError(
                f"max_tokens_param={max_tokens_param!r}; choose 'max_tokens' (vLLM, TGI, SGLang, most models) "
                "or 'max_completion_tokens' (OpenAI reasoning models)"
            )
        self.model_id = model
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        self.api_key_env = api_key_env
        self.max_tokens_param = max_tokens_param
        key = api_key_from_env(api_key_env, self.base_url, self.name)
        super().__init__(
            concurrency=concurrency,
            timeout_s=timeout_s,
            retry=retry or RetryPolicy(max_attempts=max_attempts),
            secrets=[key, *url_secrets(self.base_url)],
        )
        # A query in the URL (Azure-style ``?api-version=...&api_key=...``) goes with every request
        # as the client's default query: the SDK appends paths to base_url's raw path, query and all.
        parts = urlsplit(self.base_url)
        self._default_query = dict(parse_qsl(parts.query)) or None
        self._client_url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        self._key = key
        self._client: openai.AsyncOpenAI | None = None  # made on the private loop, where it is used

    def _params(self, request: GenerationRequest) -> dict[str, Any]:
        config = request.config
        params: dict[str, Any] = {self.max_tokens_param: config.max_new_tokens}
        if not config.do_sample:
            params["temperature"] = 0.0
        else:
            if config.temperature is not None:
                params["temperature"] = config.temperature
            if config.top_p is not None:
                params["top_p"] = config.top_p
        if config.seed is not None:
            params["seed"] = config.seed
        if config.top_logprobs is not None:
            params["logprobs"] = True
            params["top_logprobs"] = config.top_logprobs
        return params

    async def _complete(self, request: GenerationRequest) -> tuple[str, int, int] | tuple[str, int, int, list | None]:
        if self._client is None:
            # max_retries=0: RetryPolicy is the one retry loop; the SDK's would multiply attempts.
            self._client = openai.AsyncOpenAI(
                api_key=self._key, base_url=self._client_url, timeout=self.timeout_s, max_retries=0,
                default_query=self._default_query,
            )
        response = await self._client.chat.completions.create(
            model=self.model_id,
            messages=[dict(m) for m in request.messages],  # type: ignore[misc]
            **self._params(request),
        )
        usage = response.usage
        tokens = (usage.prompt_tokens or 0, usage.completion_tokens or 0) if usage else (0, 0)
        if not response.choices:
            raise EmptyCompletion("the server returned no choices (choices: [])", *tokens)
        content = response.choices[0].message.content if response.choices[0].message is not None else None
        if content is None:
            reason = response.choices[0].finish_reason
            raise EmptyCompletion(f"the server returned content: null (finish_reason {reason!r})", *tokens)
        if request.config.top_logprobs is None:
            return content, tokens[0], tokens[1]
        return content, tokens[0], tokens[1], _token_logprobs(response)

    def should_retry(self, error: BaseException) -> bool:
        if isinstance(error, openai.APIConnectionError):  # includes APITimeoutError
            return True
        if isinstance(error, openai.APIStatusError):
            return is_retryable_status(error.status_code)
        return False

    def describe(self) -> dict[str, object]:
        info = super().describe()
        info.update(
            base_url=public_url(self.base_url), api_key_env=self.api_key_env, max_tokens_param=self.max_tokens_param
        )
        return info

    async def _aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()
