"""The small data contracts shared by the simulator's parts.

Backends, the runner, the parser and the scorers only exchange these objects, so each part
can be replaced or tested alone (the inspect_ai habit of one small contract per part).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class GenerationConfig:
    """Generation settings for one request.

    None means "the backend's default". Backends that cannot honour a field say so through
    ``Backend.supported_params`` instead of silently ignoring it.
    """

    max_new_tokens: int = 512
    """Upper bound on generated tokens (all backends)."""
    min_new_tokens: int | None = None
    """Lower bound on generated tokens; only local transformers honours it (benchmarks use it)."""
    do_sample: bool = True
    """Sample (True) or decode greedily / by beam search (False). transformers, openai (False -> temperature 0)."""
    temperature: float | None = 1.0
    """Softmax temperature, > 0. transformers, openai; anthropic only where the SDK/model accepts it."""
    top_p: float | None = 1.0
    """Nucleus sampling mass in (0, 1]. transformers, openai; anthropic only where accepted."""
    num_beams: int = 1
    """Beams for beam (sampling) search, >= 1. transformers only."""
    seed: int | None = None
    """Per-request seed where the backend supports one (openai ``seed``); transformers seeds per batch."""
    top_logprobs: int | None = None
    """Return the ``top_logprobs`` most likely tokens (with log-probabilities) at every generated
    position, in ``GenerationResult.logprobs``; None = none. openai only (the log-prob estimator's
    remote path; OpenAI caps it at 20)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GenerationRequest:
    """One chat completion to run: the conversation so far and its settings.

    ``key`` identifies the request uniquely inside a run (participant x question x stage), so
    caches and retries never collapse twenty participants asking the same thing into one.
    """

    messages: tuple[dict[str, str], ...]
    config: GenerationConfig = field(default_factory=GenerationConfig)
    key: str = ""


@dataclass
class GenerationResult:
    """What a backend returns for one request; ``error`` is set instead of raising."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    attempts: int = 1
    error: str | None = None
    """Why the request failed (after its retries); the text is empty then."""
    empty: str | None = None
    """Set when the server answered with nothing to read (``content: null``, ``choices: []``):
    why, in words. Not an error (the request went through) and not the model saying nothing."""
    logprobs: list[dict[str, Any]] | None = None
    """With ``GenerationConfig.top_logprobs``: one entry per generated token,
    ``{"token": str, "logprob": float, "top": [[token, logprob], ...]}``."""
