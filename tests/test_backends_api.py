"""The OpenAI and Anthropic backends over real HTTP against llm-katan on loopback.

No mocks: every request goes through the real SDK to a real server process that injects
HTTP 500s, 503s when too many requests are in flight, 504s, and slow answers.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator

import pytest
from anthropic.resources.messages import AsyncMessages
from katan import KatanServer, katan, start_katan  # noqa: F401 - katan is a fixture

from culturesim.simulator.backends import get_backend
from culturesim.simulator.backends.base import BackendUnavailable, RemoteBackend, RetryPolicy
from culturesim.simulator.types import GenerationConfig, GenerationRequest, GenerationResult

BACKENDS = ["openai", "anthropic"]
KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
ECHO = re.compile(
    r"^\[echo\] model=(\S+) host=\S+ time=\S+ messages=(\d+) max_tokens=(\d+) temperature=(\S+)\nUser: (.*)$", re.S
)


def fast_retry(max_attempts: int = 6) -> RetryPolicy:
    return RetryPolicy(max_attempts=max_attempts, initial_delay_s=0.05, max_delay_s=0.2)


def url_for(server: KatanServer, name: str) -> str:
    return server.openai_url if name == "openai" else server.anthropic_url


def make_backend(name: str, server: KatanServer, **kwargs: object) -> RemoteBackend:
    kwargs.setdefault("retry", fast_retry())
    backend = get_backend(name, model="katan-echo", base_url=url_for(server, name), **kwargs)
    assert isinstance(backend, RemoteBackend)
    return backend


def requests_for(n: int, **config: object) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            messages=(
                {"role": "system", "content": "You are a survey participant."},
                {"role": "user", "content": f"question number {i} please"},
            ),
            config=GenerationConfig(**config),  # type: ignore[arg-type]
            key=f"p{i}:q",
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def echo_server() -> Iterator[KatanServer]:
    with start_katan() as server:
        yield server


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for env in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(env, raising=False)


# --- registry and configuration -------------------------------------------------------------


def test_unknown_backend_name_suggests_the_closest() -> None:
    with pytest.raises(ValueError, match=r"Did you mean 'openai'\?.*Available: anthropic, llamacpp, openai, transformers"):
        get_backend("opneai", model="x")


@pytest.mark.parametrize("name", BACKENDS)
def test_missing_key_for_a_remote_server_names_the_env_var(name: str, no_keys: None) -> None:
    with pytest.raises(ValueError, match=KEY_ENV[name]) as info:
        get_backend(name, model="m", base_url="https://models.example.com/v1")
    assert "export" in str(info.value)
    with pytest.raises(ValueError, match="CULTURESIM_OTHER_KEY"):
        get_backend(name, model="m", base_url="https://models.example.com/v1", api_key_env="CULTURESIM_OTHER_KEY")


@pytest.mark.parametrize("name", BACKENDS)
def test_bad_settings_are_rejected_with_the_value(name: str, no_keys: None) -> None:
    with pytest.raises(ValueError, match="concurrency=0"):
        get_backend(name, model="m", base_url="http://127.0.0.1:9/v1", concurrency=0)
    with pytest.raises(ValueError, match="timeout_s=-1"):
        get_backend(name, model="m", base_url="http://127.0.0.1:9/v1", timeout_s=-1)


def test_anthropic_params_follow_the_installed_sdk(no_keys: None) -> None:
    accepted = set(inspect.signature(AsyncMessages.create).parameters)
    backend = get_backend("anthropic", base_url="http://127.0.0.1:9")
    sampling = {"temperature", "top_p"} & accepted
    assert backend.supported_params == {"max_new_tokens"} | sampling | ({"do_sample"} if sampling else set())
    info = backend.describe()
    all_fields = {f.name for f in dataclasses.fields(GenerationConfig)}
    assert info["unsupported_params"] == sorted(all_fields - backend.supported_params)
    if "temperature" not in accepted:  # anthropic 2.x
        assert {"temperature", "top_p", "num_beams"} <= set(info["unsupported_params"])  # type: ignore[arg-type]
        assert str(info["config_diversity"]).startswith("unavailable")
    openai_backend = get_backend("openai", model="m", base_url="http://127.0.0.1:9/v1")
    assert openai_backend.describe()["unsupported_params"] == ["min_new_tokens", "num_beams"]


# --- the happy path -------------------------------------------------------------------------


@pytest.mark.parametrize("name", BACKENDS)
def test_echo_batch_returns_every_result_in_order(name: str, echo_server: KatanServer, no_keys: None) -> None:
    # No key in the environment: a loopback server gets the placeholder key.
    backend = make_backend(name, echo_server)
    try:
        greedy = requests_for(20, max_new_tokens=17, do_sample=False, temperature=0.2)
        sampled = requests_for(20, max_new_tokens=23, do_sample=True, temperature=0.3, top_p=0.9)
        batch = [r for pair in zip(greedy, sampled) for r in pair]
        results = backend.generate(batch)
    finally:
        backend.close()

    assert len(results) == 40
    for request, result in zip(batch, results):
        assert result.error is None and result.attempts == 1 and result.latency_s > 0
        match = ECHO.match(result.text)
        assert match, result.text
        model, n_messages, max_tokens, temperature, user = match.groups()
        assert user == request.messages[-1]["content"]  # the order is the input order
        assert model == "katan-echo" and int(n_messages) == 2  # the system prompt arrived as a message
        assert int(max_tokens) == request.config.max_new_tokens
        if name == "openai":
            assert float(temperature) == (request.config.temperature if request.config.do_sample else 0.0)
        else:  # anthropic 2.x sends no temperature: the server's default shows, nothing is faked
            assert float(temperature) == 0.7
        # llm-katan counts tokens as whitespace-separated words.
        assert result.input_tokens == sum(len(m["content"].split()) for m in request.messages)
        assert result.output_tokens == len(result.text.split())


def test_openai_maps_every_supported_param(no_keys: None) -> None:
    backend = get_backend("openai", model="m", base_url="http://127.0.0.1:9/v1")

    def params(**config: object) -> dict[str, object]:
        request = GenerationRequest(messages=(), config=GenerationConfig(**config))  # type: ignore[arg-type]
        return backend._params(request)  # type: ignore[attr-defined]

    assert params(max_new_tokens=9, temperature=0.5, top_p=0.8, seed=4) == {
        "max_tokens": 9, "temperature": 0.5, "top_p": 0.8, "seed": 4
    }
    assert params(do_sample=False, temperature=0.5, top_p=0.8) == {"max_tokens": 512, "temperature": 0.0}
    assert params(temperature=None, top_p=None, num_beams=4) == {"max_tokens": 512}
    reasoning = get_backend(
        "openai", model="m", base_url="http://127.0.0.1:9/v1", max_tokens_param="max_completion_tokens"
    )
    assert reasoning._params(GenerationRequest(messages=())) == {  # type: ignore[attr-defined]
        "max_completion_tokens": 512, "temperature": 1.0, "top_p": 1.0
    }


def test_anthropic_rejects_roles_the_api_does_not_know(echo_server: KatanServer, no_keys: None) -> None:
    backend = make_backend("anthropic", echo_server)
    try:
        [result] = backend.generate([GenerationRequest(messages=({"role": "tool", "content": "x"},))])
    finally:
        backend.close()
    assert result.text == "" and result.attempts == 1
    assert "['tool']" in (result.error or "")


# --- faults: errors, concurrency, timeouts --------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", BACKENDS)
def test_injected_500s_are_retried_to_completion(name: str, katan, no_keys: None) -> None:  # noqa: F811
    server = katan(error_rate=0.3)
    # P(a request fails 10 times in a row) = 0.3**10 = 6e-6.
    backend = make_backend(name, server, retry=fast_retry(max_attempts=10), concurrency=8)
    try:
        results = backend.generate(requests_for(40, max_new_tokens=5))
    finally:
        backend.close()
    assert len(results) == 40
    assert all(r.error is None for r in results), [r.error for r in results if r.error]
    assert all(1 <= r.attempts <= 10 for r in results)
    for i, result in enumerate(results):
        assert result.text.endswith(f"User: question number {i} please")
    retries = sum(r.attempts for r in results) - 40
    assert retries > 0  # P(no 500 in 40 requests) = 0.7**40 = 6e-7
    # Every retry answers one 500 the server really sent.
    served_500 = len(re.findall(rf"{name} \| 127\.0\.0\.1 \| 500 \| simulated", server.log_text()))
    assert served_500 == retries


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_requests_run_concurrently_up_to_the_cap(katan, no_keys: None) -> None:  # noqa: F811
    latency, cap, n = 0.2, 8, 32
    # The server answers 503 to any request beyond `cap` in flight at once.
    server = katan(latency_ms=int(latency * 1000), max_inflight=cap)
    for name in BACKENDS:
        backend = make_backend(name, server, concurrency=cap)
        try:
            start = time.perf_counter()
            results = backend.generate(requests_for(n, max_new_tokens=5))
            wall = time.perf_counter() - start
        finally:
            backend.close()
        assert all(r.error is None for r in results)
        assert all(r.attempts == 1 for r in results), "more than `concurrency` requests were in flight"
        sequential = n * latency
        assert wall >= (n / cap) * latency * 0.9  # the cap holds: n/cap waves at least
        assert wall / sequential < 0.5, f"{name}: {wall:.2f}s wall vs {sequential:.2f}s sequential"

    # Control: twice the cap in flight does trip the server's 503s, which are retried.
    backend = make_backend("openai", server, concurrency=2 * cap, retry=fast_retry(max_attempts=10))
    try:
        results = backend.generate(requests_for(n, max_new_tokens=5))
    finally:
        backend.close()
    assert all(r.error is None for r in results)
    assert sum(r.attempts for r in results) > n
    assert "| 503 | simulated: service overloaded" in server.log_text()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_client_timeouts_are_retried_then_reported(katan, no_keys: None) -> None:  # noqa: F811
    server = katan(latency_ms=5000)  # every answer takes 5 s; the client waits 0.3 s
    for name in BACKENDS:
        backend = make_backend(name, server, timeout_s=0.3, retry=fast_retry(max_attempts=3))
        try:
            start = time.perf_counter()
            results = backend.generate(requests_for(6, max_new_tokens=5))
            wall = time.perf_counter() - start
        finally:
            backend.close()
        assert wall < 4.0, f"{name}: timeouts took {wall:.1f}s"
        for result in results:
            assert result.text == "" and result.attempts == 3
            assert "APITimeoutError" in (result.error or ""), result.error


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", BACKENDS)
def test_gateway_timeouts_are_retried_then_reported(name: str, katan, no_keys: None) -> None:  # noqa: F811
    server = katan(timeout_after=5)  # after 5 requests (retries count) every answer is a 504
    backend = make_backend(name, server, concurrency=4, retry=fast_retry(max_attempts=3))
    try:
        results = backend.generate(requests_for(12, max_new_tokens=5))
    finally:
        backend.close()
    ok = [r for r in results if r.error is None]
    failed = [r for r in results if r.error is not None]
    assert len(ok) == 5 and all(r.attempts == 1 for r in ok)
    assert len(failed) == 7 and all(r.attempts == 3 and r.text == "" for r in failed)
    assert all("HTTP 504" in (r.error or "") for r in failed), failed[0].error


# --- secrets --------------------------------------------------------------------------------


def _leaks(secret: str, *texts: str) -> list[int]:
    return [i for i, text in enumerate(texts) if secret in text]


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", BACKENDS)
def test_the_key_never_reaches_logs_results_or_describe(
    name: str, katan, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capfd  # noqa: F811
) -> None:
    good, wrong = f"sk-canary-good-{uuid.uuid4().hex}", f"sk-canary-wrong-{uuid.uuid4().hex}"
    server = katan(validate_keys=True, api_keys=f"{name}={good}", error_rate=0.3)
    caplog.set_level(logging.DEBUG)  # the SDKs' and httpx's debug logs included

    def run(key: str) -> tuple[list[GenerationResult], dict[str, object]]:
        monkeypatch.setenv(KEY_ENV[name], key)
        backend = make_backend(name, server, retry=fast_retry(max_attempts=10))
        try:
            return backend.generate(requests_for(24, max_new_tokens=5)), backend.describe()
        finally:
            backend.close()

    results, info = run(good)  # accepted, with 500s retried and logged along the way
    assert all(r.error is None for r in results)
    assert sum(r.attempts for r in results) > 24  # P(no 500 in 24) = 0.7**24 = 2e-4
    assert "retrying in" in caplog.text and "HTTP 500" in caplog.text  # our retry warnings
    assert "Sending HTTP Request" in caplog.text  # the SDK's debug log was captured too
    surfaces = [caplog.text, repr(results), json.dumps(info), *capfd.readouterr()]
    assert not _leaks(good, *surfaces)

    # 401 on every request, whose message quotes the key it got: no retry, and after the first
    # three with no answer the backend gives up on the whole batch with one message.
    with pytest.raises(BackendUnavailable) as info_401:
        run(wrong)
    message = str(info_401.value)
    assert wrong in server.log_text(), "the server should have quoted the wrong key back"
    assert "HTTP 401" in message and "got '***'" in message and KEY_ENV[name] in message
    surfaces = [caplog.text, message, *capfd.readouterr()]
    assert not _leaks(wrong, *surfaces)
