"""Many participants through one llama.cpp context: shared prompt prefix, one ``llama_decode`` per step.

Why its own module: llama-cpp-python's ``Llama`` runs one sequence at a time, so a DEF run of 20
participants would pay 20 times for every weight read. Here a chunk of requests shares a context
with one KV stream per request (``seq_id`` = the request's row in the chunk):

1. the prompt prefix common to the whole chunk (the chat template's system turn, the start of the
   DEF question) is evaluated once, in sequence 0, and copied to the other sequences with
   ``llama_memory_seq_cp`` (a buffer copy, no recomputation);
2. each prompt's remaining tokens are evaluated, one ``llama_decode`` per prompt (up to
   ``n_batch`` tokens), with logits only at its last token;
3. then every step puts one token per live sequence in one ``llama_batch`` and calls
   ``llama_decode`` once; each sequence picks its next token from its own logits row with its
   own settings and random generator (``pick_token``), and leaves the batch at end-of-generation
   or ``max_new_tokens``.

Why one stream per sequence (``kv_unified=False``) rather than one pooled cache: each token then
attends over its own sequence's cells only, laid out exactly as when it runs alone, so batched
greedy decoding gives the same tokens as one request at a time (measured: identical logits) and
attention costs no more than alone (a pooled cache was both slower and not batch-invariant).

Sampling is done here in numpy, not by llama.cpp's samplers, so that each request carries its own
``numpy.random.Generator``: a seeded request gives the same text whichever other requests share
its chunk.

``score`` serves the log-prob estimator: the exact log-softmax at the last positions of given
token sequences, with the same prefix sharing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass, field

import llama_cpp
import numpy as np

__all__ = ["BatchContext", "Decoded", "SequenceSpec", "common_prefix", "pick_token", "top_logprobs"]


@dataclass
class SequenceSpec:
    """One request as the decoding loop sees it (tokens, bounds and how to pick a token)."""

    prompt: list[int]
    max_new_tokens: int
    min_new_tokens: int = 0
    sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    top_logprobs: int | None = None


@dataclass
class Decoded:
    """What one sequence produced: its new tokens (the end-of-generation token included when it
    ended that way) and, with ``top_logprobs``, one ``(token, logprob, [(token, logprob), ...])``
    per new token."""

    tokens: list[int]
    ended_by_eog: bool
    logprobs: list[tuple[int, float, list[tuple[int, float]]]] | None = None


def common_prefix(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the longest prefix every sequence starts with."""
    if not sequences:
        return 0
    first = sequences[0]
    n = min(len(s) for s in sequences)
    for s in sequences[1:]:
        k = 0
        while k < n and s[k] == first[k]:
            k += 1
        n = k
    return n


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - float(logits.max())
    return shifted - np.log(np.exp(shifted).sum())


def top_logprobs(logits: np.ndarray, k: int) -> tuple[np.ndarray, list[tuple[int, float]]]:
    """The log-softmax of ``logits`` and its ``k`` most likely tokens, most likely first."""
    logp = _log_softmax(logits)
    k = min(k, logp.size)
    best = np.argpartition(-logp, k - 1)[:k]
    best = best[np.argsort(-logp[best], kind="stable")]
    return logp, [(int(t), float(logp[t])) for t in best]


def pick_token(logits: np.ndarray, spec: SequenceSpec, banned: np.ndarray | None = None) -> int:
    """The next token: the argmax when not sampling; else a draw from the temperature-scaled
    softmax cut to the smallest set of tokens whose mass reaches ``top_p`` (nucleus).
    ``banned`` tokens (end-of-generation before ``min_new_tokens``) are never picked."""
    if banned is not None and banned.size:
        logits = logits.copy()
        logits[banned] = -np.inf
    if not spec.sample:
        return int(np.argmax(logits))
    scaled = logits.astype(np.float64) / spec.temperature
    probs = np.exp(scaled - scaled.max())
    candidates = None
    if spec.top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        mass = np.cumsum(probs[order])
        cut = int(np.searchsorted(mass, spec.top_p * mass[-1])) + 1
        candidates = order[:cut]
        probs = probs[candidates]
    cdf = np.cumsum(probs)
    k = min(int(np.searchsorted(cdf, spec.rng.random() * cdf[-1], side="right")), cdf.size - 1)
    return int(candidates[k]) if candidates is not None else k


class BatchContext:
    """A llama.cpp context of ``n_seq_max`` KV streams of ``n_ctx_seq`` cells each (see the module
    docstring); a sequence fits when its prompt plus new tokens fit in ``n_ctx_seq``."""

    def __init__(self, model: llama_cpp.llama_model_p, *, n_ctx_seq: int, n_seq_max: int, n_batch: int,
                 n_threads: int) -> None:
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx_seq * n_seq_max
        params.n_batch = n_batch
        params.n_ubatch = min(n_batch, 512)
        params.n_seq_max = n_seq_max
        params.n_outputs_max_per_seq = 0  # the default (1) keeps one logits row per sequence; score wants several
        params.n_threads = params.n_threads_batch = n_threads
        params.kv_unified = False
        # Flash attention (llama.cpp's "auto" turns it on for CPU) makes logits depend on how a
        # prompt is cut into decode calls (measured: up to 0.8 apart); without it they are identical.
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        params.no_perf = True
        self.ctx = llama_cpp.llama_init_from_model(model, params)
        if not self.ctx:
            raise RuntimeError(f"llama.cpp could not create a context of {n_seq_max} sequences x {n_ctx_seq} cells "
                               "(out of memory?); lower batch_size or max_new_tokens")
        self.n_ctx_seq = llama_cpp.llama_n_ctx_seq(self.ctx)
        self.n_seq_max = n_seq_max
        self.n_batch = n_batch
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        vocab = llama_cpp.llama_model_get_vocab(model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        self.eog = np.array([t for t in range(self.n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)], dtype=np.int64)
        self._eog_set = frozenset(int(t) for t in self.eog)
        self.batch = llama_cpp.llama_batch_init(n_batch, 0, 1)

    def close(self) -> None:
        if self.ctx:
            llama_cpp.llama_batch_free(self.batch)
            llama_cpp.llama_free(self.ctx)
            self.ctx = None

    # -- low level -------------------------------------------------------------------------

    def _decode(self, entries: Sequence[tuple[int, int, int, bool]]) -> None:
        """One ``llama_decode`` of ``(token, position, seq_id, wants_logits)`` entries."""
        b = self.batch
        for i, (token, pos, seq, logits) in enumerate(entries):
            b.token[i] = token
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = logits
        b.n_tokens = len(entries)
        status = llama_cpp.llama_decode(self.ctx, b)
        if status != 0:
            raise RuntimeError(f"llama_decode returned {status} for {len(entries)} tokens "
                               f"(1 = no free KV cells in a stream of {self.n_ctx_seq})")

    def _logits(self, i: int) -> np.ndarray:
        """The logits of batch entry ``i`` of the last decode (a copy)."""
        pointer = llama_cpp.llama_get_logits_ith(self.ctx, i)
        return np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(self.n_vocab,)).copy()

    def _prefill(self, sequences: Sequence[Sequence[int]], keep: Sequence[int]) -> dict[tuple[int, int], np.ndarray]:
        """Evaluate ``sequences`` (seq ids 0..n-1) from an empty cache; return the logits at
        the last ``keep[s]`` positions of each, keyed ``(seq, position)``."""
        if len(sequences) > self.n_seq_max:
            raise ValueError(f"{len(sequences)} sequences in one chunk but the context holds {self.n_seq_max}")
        llama_cpp.llama_memory_clear(self.memory, True)
        # The shared prefix stops before any position whose logits are wanted.
        shared = min(common_prefix(sequences), min(len(s) - k for s, k in zip(sequences, keep)))
        pending = [(sequences[0][p], p, 0, False) for p in range(shared)]
        for start in range(0, len(pending), self.n_batch):
            self._decode(pending[start:start + self.n_batch])
        for seq in range(1, len(sequences)):
            if shared:
                llama_cpp.llama_memory_seq_cp(self.memory, 0, seq, -1, -1)
        # One sequence per llama_decode: with a KV stream per sequence, llama.cpp splits a batch
        # mixing prompts of unequal lengths into many small steps (measured 10x slower).
        out: dict[tuple[int, int], np.ndarray] = {}
        for seq, (s, k) in enumerate(zip(sequences, keep)):
            entries = [(s[p], p, seq, p >= len(s) - k) for p in range(shared, len(s))]
            for start in range(0, len(entries), self.n_batch):
                part = entries[start:start + self.n_batch]
                self._decode(part)
                for i, (_, pos, _, wanted) in enumerate(part):
                    if wanted:
                        out[(seq, pos)] = self._logits(i)
        return out

    # -- what the backend calls ------------------------------------------------------------

    def generate(self, specs: Sequence[SequenceSpec]) -> list[Decoded]:
        """Decode every spec to its end (end-of-generation or ``max_new_tokens``)."""
        prompts = [s.prompt for s in specs]
        last = self._prefill(prompts, [1] * len(specs))
        results = [Decoded([], False, [] if s.top_logprobs else None) for s in specs]
        logits = {seq: last[(seq, len(p) - 1)] for seq, p in enumerate(prompts)}
        live = list(range(len(specs)))
        while live:
            step: list[tuple[int, int, int, bool]] = []
            for seq in live:
                spec, result = specs[seq], results[seq]
                banned = self.eog if len(result.tokens) < spec.min_new_tokens else None
                token = pick_token(logits[seq], spec, banned)
                if result.logprobs is not None:
                    logp, top = top_logprobs(logits[seq], spec.top_logprobs or 1)
                    result.logprobs.append((token, float(logp[token]), top))
                result.tokens.append(token)
                if token in self._eog_set:
                    result.ended_by_eog = True
                elif len(result.tokens) < spec.max_new_tokens:
                    step.append((token, len(spec.prompt) + len(result.tokens) - 1, seq, True))
                    continue
                llama_cpp.llama_memory_seq_rm(self.memory, seq, -1, -1)  # done: free its cells
            if not step:
                break
            self._decode(step)
            live = [seq for _, _, seq, _ in step]
            logits = {seq: self._logits(i) for i, (_, _, seq, _) in enumerate(step)}
        return results

    def score(self, sequences: Sequence[Sequence[int]], keep: int) -> np.ndarray:
        """Log-softmax over the vocabulary at the last ``keep`` positions of each sequence:
        shape ``(len(sequences), keep, n_vocab)``, float32."""
        if any(len(s) < keep for s in sequences):
            raise ValueError(f"keep={keep} is longer than a sequence of {min(len(s) for s in sequences)} tokens")
        got = self._prefill(sequences, [keep] * len(sequences))
        out = np.empty((len(sequences), keep, self.n_vocab), dtype=np.float32)
        for seq, s in enumerate(sequences):
            for j in range(keep):
                out[seq, j] = _log_softmax(got[(seq, len(s) - keep + j)])
        llama_cpp.llama_memory_clear(self.memory, True)
        return out
