"""The backend contract and the one retry loop every remote backend shares.

A backend turns a batch of ``GenerationRequest`` into ``GenerationResult`` in the same order.
Local backends batch the list on the device; remote backends keep up to ``concurrency``
requests in flight. Retries live here, once: a provider only classifies its errors with
``should_retry``. ``RemoteBackend`` holds the rest of what every HTTP provider shares
(a private event loop, the in-flight cap, timing, error capture and secret redaction), so a
provider module only says how to send one request.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import ipaddress
import logging
import os
import queue
import random
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from culturesim.simulator.runfolder.redact import redact_secrets, remember_secret
from culturesim.simulator.types import GenerationConfig, GenerationRequest, GenerationResult

log = logging.getLogger(__name__)
T = TypeVar("T")

# Every GenerationConfig field; a backend's describe() lists those it cannot apply.
CONFIG_FIELDS: frozenset[str] = frozenset(f.name for f in dataclasses.fields(GenerationConfig))

# HTTP statuses worth another attempt: request timeout, conflict, rate limit, and every
# server-side failure (500, 502 bad gateway, 503 unavailable, 504 gateway timeout,
# 529 overloaded). Other 4xx are the caller's fault and fail the same way every time.
RETRYABLE_4XX: frozenset[int] = frozenset({408, 409, 429})

EARLY_FAILURES = 3
"""How many of a backend's first requests must fail the same non-retryable way (HTTP 400,
401, 403, 404..., or no connection at all) before it gives up on the whole run: one such
failure could be the request's own fault; the same one three times, before any answer,
is the server's or the configuration's."""


class BackendUnavailable(RuntimeError):
    """The backend cannot answer any request (refused connection, HTTP 401 or 400 on the first
    requests): the run stops at once with this message instead of writing failed rows."""


class EmptyCompletion(Exception):
    """The server answered, but with nothing to read (``content: null``, ``choices: []``, no
    text block): not the model saying nothing, so it gets its own row status (``empty``)."""

    def __init__(self, reason: str, input_tokens: int = 0, output_tokens: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens


# --- secrets: never in a file, a log line or an error message -------------------------------

def register_secret(secret: str) -> None:
    """Remember ``secret`` so that ``redact_secrets`` (and every log line, through
    ``SecretFilter``) masks it from now on in this process."""
    if secret and len(secret) >= 4 and secret != PLACEHOLDER_KEY:
        remember_secret(secret)


def url_secrets(url: str | None) -> list[str]:
    """The credentials a URL carries: the user-info password (or token) and every query value."""
    if not url:
        return []
    parts = urlsplit(url)
    found = []
    if parts.password:
        found += [parts.password, unquote(parts.password)]
    elif parts.username:
        found += [parts.username, unquote(parts.username)]
    found += [v for _, v in parse_qsl(parts.query, keep_blank_values=False)]
    return [f for f in found if f]


class SecretFilter(logging.Filter):
    """A logging filter for handlers: masks secrets in every record, the SDKs' and httpx's
    request logs included (httpx logs each request URL at INFO, user info and query too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken record is logging's problem, not ours
            return True
        clean = redact_secrets(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def connection_failure(error: BaseException) -> str | None:
    """``"connection refused"`` / ``"host not found"`` / ``"cannot connect"`` when ``error`` is a
    failure to reach the server at all (not a timeout of a server that accepted), else None."""
    chain = list(_causes(error))
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    if any(isinstance(e, socket.gaierror) for e in chain):
        return "host not found"
    if any(type(e).__name__ == "ConnectError" for e in chain):  # httpx's (both SDKs use httpx)
        return "cannot connect"
    return None


def in_request_order(groups: Iterable[list[tuple[int, GenerationResult]]], n: int) -> list[GenerationResult]:
    """The ``(index, result)`` groups of an ``iter_generate`` as one list in request order, for
    backends whose ``generate`` is their streaming ``iter_generate`` collected; a request that
    never came back gets an error result instead of a gap."""
    results: list[GenerationResult | None] = [None] * n
    for group in groups:
        for i, result in group:
            results[i] = result
    return [r if r is not None else GenerationResult(text="", error="not generated") for r in results]


class Backend(ABC):
    """One model behind one interface.

    ``supported_params`` names the ``GenerationConfig`` fields the backend really applies;
    the runner reports the others as unavailable instead of pretending to vary them.
    """

    name: str = "backend"
    model_id: str = ""
    supported_params: frozenset[str] = frozenset()
    concurrency: int = 1

    @abstractmethod
    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Run every request; return results in the same order. Never raise for one bad request."""

    def iter_generate(self, requests: Sequence[GenerationRequest]) -> Iterator[list[tuple[int, GenerationResult]]]:
        """Run every request; yield ``(index, result)`` groups as they finish (a local chunk, the
        remote requests done so far), so the runner writes rows while the rest still run.
        The default yields everything at once, from ``generate``."""
        requests = list(requests)
        if requests:
            yield list(enumerate(self.generate(requests)))

    def describe(self) -> dict[str, object]:
        """What goes into a run's config.json (never secrets)."""
        return {
            "backend": self.name,
            "model": self.model_id,
            "supported_params": sorted(self.supported_params),
            "concurrency": self.concurrency,
        }

    def close(self) -> None:
        """Release models, sessions or servers."""


class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and total wait."""

    def __init__(
        self,
        max_attempts: int = 6,
        initial_delay_s: float = 0.5,
        max_delay_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts={max_attempts!r} must be >= 1")
        self.max_attempts = max_attempts
        self.initial_delay_s = initial_delay_s
        self.max_delay_s = max_delay_s
        self.sleep = sleep

    def delay(self, attempt: int) -> float:
        cap = min(self.max_delay_s, self.initial_delay_s * (2 ** (attempt - 1)))
        return random.uniform(cap / 2, cap)

    def call(self, fn: Callable[[], T], should_retry: Callable[[BaseException], bool]) -> tuple[T, int]:
        """Call ``fn`` until it succeeds, an error is not retryable, or attempts run out.

        Returns (value, attempts). Re-raises the last error.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn(), attempt
            except Exception as exc:  # noqa: BLE001 - classified below
                if attempt >= self.max_attempts or not should_retry(exc):
                    raise
                wait = self.delay(attempt)
                log.warning("attempt %d failed (%s: %s); retrying in %.2fs", attempt, type(exc).__name__, exc, wait)
                self.sleep(wait)

    async def acall(
        self,
        fn: Callable[[], Awaitable[T]],
        should_retry: Callable[[BaseException], bool],
        *,
        retry_after: Callable[[BaseException], float | None] | None = None,
        describe_error: Callable[[BaseException], str] | None = None,
    ) -> tuple[T, int]:
        """The same loop for coroutines; waits with ``asyncio.sleep`` so other requests go on.

        ``retry_after`` may return the server's requested wait (a ``Retry-After`` header),
        which is honoured up to ``max_delay_s``; ``describe_error`` renders an error for the
        log line (remote backends pass one that redacts their key).
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                return await fn(), attempt
            except Exception as exc:  # noqa: BLE001 - classified below
                if attempt >= self.max_attempts or not should_retry(exc):
                    raise
                wait = self.delay(attempt)
                hinted = retry_after(exc) if retry_after is not None else None
                if hinted is not None:
                    wait = max(wait, min(hinted, self.max_delay_s))
                text = describe_error(exc) if describe_error is not None else f"{type(exc).__name__}: {exc}"
                log.warning("attempt %d failed (%s); retrying in %.2fs", attempt, text, wait)
                await asyncio.sleep(wait)


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP status is worth retrying: 408, 409, 429 and every 5xx (529 overloaded too)."""
    return status in RETRYABLE_4XX or status >= 500


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` points at this machine (localhost, 127.0.0.0/8, ::1)."""
    host = urlsplit(url if "//" in url else f"//{url}").hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def public_url(url: str) -> str:
    """``url`` without user info, query or fragment, safe to record in config.json."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# The key a local OpenAI-compatible server (vLLM, TGI, llm-katan) gets when none is set;
# such servers want some bearer token but do not check it unless configured to.
PLACEHOLDER_KEY = "EMPTY"


def api_key_from_env(env_var: str, base_url: str, backend: str) -> str:
    """The API key from ``env_var``; a placeholder for loopback servers; else a clear error."""
    key = os.environ.get(env_var, "")
    if key:
        return key
    if is_loopback_url(base_url):
        return PLACEHOLDER_KEY
    raise ValueError(
        f"The {backend} backend needs an API key for {public_url(base_url)}, but the environment "
        f"variable {env_var} is not set (or empty). Set it with `export {env_var}=...`, or pass "
        f"api_key_env='OTHER_VAR' to read another variable. Keys are read from the environment only."
    )


class RemoteBackend(Backend):
    """An HTTP model API with up to ``concurrency`` requests in flight.

    Subclasses implement ``_complete`` (send one request once, return text and token counts)
    and ``should_retry``; this class runs them on a private event loop in a daemon thread (so
    ``generate`` works from plain code, notebooks and async servers alike), retries through
    ``RetryPolicy.acall``, bounds each attempt by ``timeout_s``, and turns a request that
    still fails into ``GenerationResult(text="", error=...)``. ``latency_s`` spans the first
    attempt to the last, backoff included; ``attempts`` counts every try.
    """

    def __init__(self, *, concurrency: int, timeout_s: float, retry: RetryPolicy, secrets: Sequence[str] = ()) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency={concurrency!r} must be >= 1 (requests kept in flight)")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s={timeout_s!r} must be > 0 seconds")
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.retry = retry
        self._secrets = tuple(s for s in secrets if s and s != PLACEHOLDER_KEY)
        for secret in self._secrets:
            register_secret(secret)
        self._answered = False  # the server answered at least once: failures from now on are per row
        self._early: dict[str, int] = {}
        self._fatal: BackendUnavailable | None = None  # once set, no request is sent any more
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._slots: asyncio.Semaphore | None = None  # backend-wide, even if generate() runs in two threads
        self._lock = threading.Lock()

    # -- what a provider implements -------------------------------------------------------
    @abstractmethod
    async def _complete(self, request: GenerationRequest) -> tuple[str, int, int] | tuple[str, int, int, list | None]:
        """Send ``request`` once; return (text, input_tokens, output_tokens), plus the token
        log-probabilities as a fourth item where the request asked for them
        (``GenerationConfig.top_logprobs``). Raise on failure."""

    @abstractmethod
    def should_retry(self, error: BaseException) -> bool:
        """Whether another attempt could succeed (rate limit, overload, 5xx, timeout, network)."""

    def retry_after(self, error: BaseException) -> float | None:
        """Seconds the server asked us to wait (``Retry-After``), if it said."""
        response = getattr(error, "response", None)
        headers = getattr(response, "headers", None)
        value = headers.get("retry-after") if headers is not None else None
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    async def _aclose(self) -> None:
        """Close the provider's async client (runs on the private loop)."""

    # -- shared machinery -----------------------------------------------------------------
    def redact(self, text: str) -> str:
        """``text`` with every secret this backend holds replaced by ``***`` (and URL credentials)."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return redact_secrets(text)

    def where(self) -> str:
        """The server, as it may be shown (no credentials)."""
        url = getattr(self, "base_url", None)
        return public_url(url) if url else self.name

    def fatal_signature(self, error: BaseException) -> str | None:
        """What makes ``error`` a failure every request will meet (``"HTTP 401"``, ``"connection
        refused"``), or None for one that may be the request's own or pass (5xx, 429, timeouts)."""
        status = getattr(error, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500 and not is_retryable_status(status):
            return f"HTTP {status}"
        return connection_failure(error)

    def _fatal_message(self, signature: str, error: BaseException, count: int) -> str:
        detail = self.describe_error(error)
        if len(detail) > 240:
            detail = detail[:240] + "..."
        which = "its first request" if count == 1 else f"each of its first {count} requests"
        head = f"the {self.name} backend got {signature} on {which} to {self.where()}, and no answer"
        if signature.startswith("HTTP 401") or signature.startswith("HTTP 403"):
            fix = (f"check the API key in ${getattr(self, 'api_key_env', 'the key variable')} "
                   "(keys are read from the environment only)")
        elif signature.startswith("HTTP 404"):
            fix = f"check --base-url (OpenAI-compatible servers end in /v1) and --model {self.model_id!r}"
        elif signature.startswith("HTTP"):
            fix = f"check --model {self.model_id!r} and the generation settings (e.g. --max-new-tokens) the server accepts"
        else:
            fix = "start the server, or fix --base-url"
        return f"{head} ({detail}): {fix}"

    def describe_error(self, error: BaseException) -> str:
        status = getattr(error, "status_code", None)
        head = f"{type(error).__name__}" + (f" (HTTP {status})" if status is not None else "")
        message = str(error) or repr(error)
        return self.redact(f"{head}: {message}")

    def describe(self) -> dict[str, object]:
        info = super().describe()
        info["unsupported_params"] = sorted(CONFIG_FIELDS - self.supported_params)
        info["timeout_s"] = self.timeout_s
        info["max_attempts"] = self.retry.max_attempts
        return info

    def worst_case_request_s(self) -> float:
        """The longest one request can take: every attempt timing out plus every backoff wait."""
        waits = sum(min(self.retry.max_delay_s, self.retry.initial_delay_s * 2 ** (a - 1))
                    for a in range(1, self.retry.max_attempts))
        return self.retry.max_attempts * (self.timeout_s + 1.0) + waits

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=f"{self.name}-backend-loop", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._ensure_loop())
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        """Every result in request order. Raises ``BackendUnavailable`` when the first requests
        all fail the same non-retryable way (see ``EARLY_FAILURES``)."""
        requests = list(requests)
        return in_request_order(self.iter_generate(requests), len(requests))

    def iter_generate(self, requests: Sequence[GenerationRequest]) -> Iterator[list[tuple[int, GenerationResult]]]:
        """Results as they finish: each group holds what completed since the last one."""
        requests = list(requests)
        if not requests:
            return
        done: queue.SimpleQueue[tuple[int, GenerationResult]] = queue.SimpleQueue()
        future = asyncio.run_coroutine_threadsafe(self._generate_all(requests, done.put), self._ensure_loop())
        try:
            while True:
                try:
                    first = done.get(timeout=0.2)
                except queue.Empty:
                    if future.done():
                        break
                    continue
                group = [first]
                while True:
                    try:
                        group.append(done.get_nowait())
                    except queue.Empty:
                        break
                yield group
            while True:  # results that landed between the last get and the future's end
                try:
                    yield [done.get_nowait()]
                except queue.Empty:
                    break
            future.result()  # raises BackendUnavailable (or a bug) here
        finally:
            if not future.done():
                future.cancel()
                try:
                    future.result(timeout=10)
                except (concurrent.futures.CancelledError, Exception):  # noqa: BLE001 - cancelled on purpose
                    pass

    async def _generate_all(self, requests: list[GenerationRequest],
                            sink: Callable[[tuple[int, GenerationResult]], None]) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        slots = self._slots
        threshold = min(EARLY_FAILURES, len(requests))
        # Failures that may mean "no server at all" are held back until the server answers once
        # (then they are ordinary failed rows) or the run is stopped (then nothing was written).
        held: list[tuple[int, GenerationResult]] = []

        async def one(i: int, request: GenerationRequest) -> None:
            result = await self._generate_one(request, slots, threshold)
            if not self._answered and result.error is not None and result.attempts <= 1:
                held.append((i, result))
                return
            while held:
                sink(held.pop())
            sink((i, result))

        tasks = [asyncio.ensure_future(one(i, r)) for i, r in enumerate(requests)]
        try:
            await asyncio.gather(*tasks)
            while held:
                sink(held.pop())
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _generate_one(self, request: GenerationRequest, slots: asyncio.Semaphore,
                            threshold: int = EARLY_FAILURES) -> GenerationResult:
        async with slots:
            if self._fatal is not None:
                raise self._fatal
            attempts = 0

            async def attempt() -> tuple:
                nonlocal attempts
                attempts += 1
                # The SDK's own timeout covers each phase (connect, read...); this caps the whole attempt.
                return await asyncio.wait_for(self._complete(request), timeout=self.timeout_s + 1.0)

            start = time.perf_counter()
            try:
                completed, _ = await self.retry.acall(
                    attempt, self._should_retry, retry_after=self.retry_after, describe_error=self.describe_error
                )
            except EmptyCompletion as exc:
                self._answered = True
                return GenerationResult(text="", input_tokens=exc.input_tokens, output_tokens=exc.output_tokens,
                                        latency_s=time.perf_counter() - start, attempts=attempts, empty=exc.reason)
            except Exception as exc:  # noqa: BLE001 - one failed request must not sink the batch
                signature = None if self._answered else self.fatal_signature(exc)
                if signature is not None:
                    self._early[signature] = self._early.get(signature, 0) + 1
                    if self._early[signature] >= threshold:
                        self._fatal = BackendUnavailable(self._fatal_message(signature, exc, self._early[signature]))
                        raise self._fatal from None
                return GenerationResult(
                    text="",
                    latency_s=time.perf_counter() - start,
                    attempts=attempts,
                    error=self.describe_error(exc),
                )
            self._answered = True
            text, input_tokens, output_tokens = completed[:3]
            return GenerationResult(
                text=text,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                latency_s=time.perf_counter() - start,
                attempts=attempts,
                logprobs=completed[3] if len(completed) > 3 else None,
            )

    def _should_retry(self, error: BaseException) -> bool:
        if isinstance(error, EmptyCompletion):
            return False
        if isinstance(error, (TimeoutError, asyncio.TimeoutError)):
            return True
        if not self._answered and connection_failure(error):
            return False  # nothing answered yet and nothing listens: say so now, not after the backoff
        return self.should_retry(error)

    def close(self) -> None:
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = self._slots = None
        if loop is None or loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._aclose(), loop).result(timeout=10)
        except Exception as exc:  # noqa: BLE001 - closing must not raise
            log.debug("closing %s client failed: %s", self.name, self.redact(str(exc)))
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=10)
        loop.close()
