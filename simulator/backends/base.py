"""The backend contract and the one retry loop every remote backend shares.

A backend turns a batch of ``GenerationRequest`` into ``GenerationResult`` in the same order.
Local backends batch the list on the device; remote backends keep up to ``concurrency``
requests in flight. Retries live here, once: a provider only classifies its errors with
``should_retry``.
"""

from __future__ import annotations

import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TypeVar

from simulator.types import GenerationRequest, GenerationResult

log = logging.getLogger(__name__)
T = TypeVar("T")


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
