"""Many participants through one llama.cpp context: shared prompt prefix, one ``llama_decode`` per step,
and each participant's KV cache kept from one call to the next.

Why its own module: llama-cpp-python's ``Llama`` runs one sequence at a time, so a DEF run of 20
participants would pay 20 times for every weight read. Here a context holds ``n_seq_max`` KV
streams ("slots", ``seq_id`` = slot); a chunk of requests is decoded together, one slot each:

1. **Slot choice and reuse.** Every slot remembers the tokens its cache holds (the last prompt it
   evaluated plus the answer tokens fed back). A request takes the slot whose tokens share the
   longest prefix with its own (with DEF's memory: the same participant's previous prompt, whose
   conversation is the start of this one), the cells after the common prefix are dropped
   (``llama_memory_seq_rm``) and only the rest is evaluated. A request that matches no slot by at
   least ``MIN_MATCH`` tokens beyond the chunk's shared prefix takes an empty slot, else the least
   recently used one (its cache is evicted); while empty slots are left, a request that would cut
   another slot's cache copies the prefix it shares into an empty slot instead (``_assign``). Why
   prefixes and not a participant id: the runner's requests carry no identity the backend could
   trust, and the prefix is what the cache can prove it holds.
2. **Shared prefix.** The prompt prefix common to the whole chunk (the chat template's system
   turn, the start of the DEF question), where a slot lacks it, is evaluated once and copied to the
   others with ``llama_memory_seq_cp`` (a buffer copy, no recomputation).
3. Each prompt's remaining tokens are evaluated, one ``llama_decode`` per prompt (up to
   ``n_batch`` tokens), with logits only at its last token.
4. Then every step puts one token per live sequence in one ``llama_batch`` (in slot order: llama.cpp
   computes consecutive slots in one pass, a gap splits the step) and calls ``llama_decode`` once;
   each sequence picks its next token from its own logits row with its own settings and random
   generator (``pick_token``), and leaves the batch at end-of-generation or ``max_new_tokens``.

Why one stream per sequence (``kv_unified=False``) rather than one pooled cache: each token then
attends over its own sequence's cells only, laid out as when it runs alone, so batched greedy
decoding gives the same tokens as one request at a time and attention costs no more than alone (a
pooled cache was both slower and not batch-invariant). A reused prefix gives the logits of a fresh
evaluation up to float rounding (cells may sit in another order; measured in the tests).

Sampling is done here in numpy, not by llama.cpp's samplers, so that each request carries its own
``numpy.random.Generator``: a seeded request gives the same text whichever other requests share
its chunk and whatever the cache held.

``score`` serves the log-prob estimator: the exact log-softmax at the last positions of given
token sequences, with the same reuse and prefix sharing. ``stats`` counts where prompt tokens'
cache came from (evaluated, kept from the slot, copied), for the benchmark and the tests.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import llama_cpp
import numpy as np

__all__ = ["MIN_MATCH", "BatchContext", "Decoded", "ReuseStats", "SequenceSpec", "common_prefix", "pick_token",
           "shared_prefix", "top_logprobs"]

MIN_MATCH = 8
"""Tokens beyond the chunk's shared prefix a request must share with a slot's cache to take that slot
over an empty or least recently used one: a shorter match saves little and may evict a cache that
another participant of this run is about to reuse."""


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


def shared_prefix(a: Sequence[int] | np.ndarray, b: Sequence[int] | np.ndarray, limit: int | None = None) -> int:
    """Length of the longest common prefix of two token sequences (at most ``limit``), in numpy:
    the slot choice compares every request with every slot, over prompts of thousands of tokens."""
    n = min(len(a), len(b), len(a) if limit is None else max(0, limit))
    if n == 0:
        return 0
    differ = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(differ[0]) if differ.size else n


@dataclass
class ReuseStats:
    """Where the cache of the prompt tokens asked for came from (counted since the context was made)."""

    prompt_tokens: int = 0
    """Tokens of every prompt (``generate``) or sequence (``score``) asked for."""
    evaluated: int = 0
    """Prompt tokens run through the model (a chunk's shared prefix once)."""
    kept: int = 0
    """Prompt tokens whose cache a slot held from an earlier call."""
    copied: int = 0
    """Prompt tokens copied from the chunk's shared prefix in another slot."""
    evicted: int = 0
    """Slots that lost more than half of their cache to a request (the least recently used one when
    no slot continues it)."""

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def add(self, other: "ReuseStats") -> None:
        for key, value in other.as_dict().items():
            setattr(self, key, getattr(self, key) + value)


class BatchContext:
    """A llama.cpp context of ``n_seq_max`` KV slots of ``n_ctx_seq`` cells each (see the module
    docstring); a sequence fits when its prompt plus new tokens fit in ``n_ctx_seq``.

    ``reuse=False`` forgets every slot between calls (each prompt evaluated from its chunk's shared
    prefix on): the behaviour before slots were kept, for the benchmark's comparison.
    ``n_threads_batch`` (default ``n_threads``) serves prompt evaluation, ``n_threads`` the decoding
    steps; ``n_ubatch`` (default ``min(n_batch, 512)``) is llama.cpp's physical batch.
    """

    def __init__(self, model: llama_cpp.llama_model_p, *, n_ctx_seq: int, n_seq_max: int, n_batch: int,
                 n_threads: int, n_threads_batch: int | None = None, n_ubatch: int | None = None,
                 reuse: bool = True) -> None:
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx_seq * n_seq_max
        params.n_batch = n_batch
        params.n_ubatch = n_ubatch or min(n_batch, 512)
        params.n_seq_max = n_seq_max
        params.n_outputs_max_per_seq = 0  # the default (1) keeps one logits row per sequence; score wants several
        params.n_threads = n_threads
        params.n_threads_batch = n_threads_batch or n_threads
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
        self.reuse = reuse
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        vocab = llama_cpp.llama_model_get_vocab(model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
        self.eog = np.array([t for t in range(self.n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)], dtype=np.int64)
        self._eog_set = frozenset(int(t) for t in self.eog)
        self.batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self.cached: list[list[int]] = [[] for _ in range(n_seq_max)]
        """Per slot, the tokens (positions 0..) whose keys and values its stream holds."""
        self._used_at = [0] * n_seq_max
        self._clock = 0
        self.stats = ReuseStats()

    def close(self) -> None:
        if self.ctx:
            llama_cpp.llama_batch_free(self.batch)
            llama_cpp.llama_free(self.ctx)
            self.ctx = None

    def forget(self) -> None:
        """Empty every slot (after a failure mid-call the caches' contents are not known)."""
        llama_cpp.llama_memory_clear(self.memory, True)
        self.cached = [[] for _ in range(self.n_seq_max)]

    # -- moving slots to a larger context ----------------------------------------------------

    def export_slots(self) -> list[tuple[int, list[int], bytes]]:
        """``(slot, tokens, state)`` of every non-empty slot (``llama_state_seq_get_data``), so a
        larger context can take them over (``import_slots``) instead of evaluating them again."""
        out = []
        for slot, tokens in enumerate(self.cached):
            if not tokens:
                continue
            size = llama_cpp.llama_state_seq_get_size(self.ctx, slot)
            buf = (ctypes.c_uint8 * size)()
            got = llama_cpp.llama_state_seq_get_data(self.ctx, buf, size, slot)
            if got:
                out.append((slot, list(tokens), bytes(buf)[:got]))
        return out

    def import_slots(self, slots: Sequence[tuple[int, list[int], bytes]]) -> int:
        """Load what ``export_slots`` gave (same model; slots beyond this context's are dropped);
        returns how many slots were restored (one llama.cpp refuses stays empty)."""
        restored = 0
        for slot, tokens, state in slots:
            if slot >= self.n_seq_max or len(tokens) > self.n_ctx_seq:
                continue
            buf = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
            if llama_cpp.llama_state_seq_set_data(self.ctx, buf, len(state), slot):
                self.cached[slot] = list(tokens)
                restored += 1
            else:
                llama_cpp.llama_memory_seq_rm(self.memory, slot, -1, -1)
        return restored

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

    def _all_logits(self, n: int) -> np.ndarray:
        """The ``n`` logits rows of the last decode, in batch order, as one array (one copy rather
        than ``n`` pointer casts: the decoding loop reads every row at every step)."""
        pointer = llama_cpp.llama_get_logits(self.ctx)
        return np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)),
                                     shape=(n, self.n_vocab)).copy()

    def _assign(self, sequences: Sequence[Sequence[int]], limits: Sequence[int],
                shared: int) -> tuple[list[int], list[int], list[tuple[int, int]]]:
        """A distinct slot for each sequence, how many of its first tokens that slot holds (at most
        ``limits[r]``: the positions whose logits are wanted are evaluated), and per row a
        ``(source slot, tokens)`` to copy first (``(-1, 0)``: none).

        A request continues the slot sharing its longest prefix (normally the same participant's
        previous prompt) when that is at least ``MIN_MATCH`` tokens beyond the chunk's shared
        prefix; but while the empty slots can take every request that would cut a slot, those
        take empty ones and copy the prefix there. The others take empty slots, then the least
        recently used (evicted); one that shares a longer prefix with a slot it does not take
        copies it, so a new participant sharing a persona neither evaluates it again nor evicts
        its owner."""
        n = len(sequences)
        none = [(-1, 0)] * n
        if not self.reuse:
            self.forget()
            return list(range(n)), [0] * n, none
        arrays = [np.asarray(s, dtype=np.int64) for s in sequences]
        held = [np.asarray(c, dtype=np.int64) for c in self.cached]
        match = [[shared_prefix(a, h, limit) if h.size else 0 for h in held] for a, limit in zip(arrays, limits)]
        floor = (shared if n > 1 else 0) + MIN_MATCH

        def continues(r: int, s: int) -> bool:
            m = match[r][s]
            # A whole prompt held (all but its last ``keep`` tokens) counts however short.
            return m >= floor or m == limits[r] > floor - MIN_MATCH

        slot_of: list[int] = [-1] * n
        taken: set[int] = set()
        empty = [s for s in range(self.n_seq_max) if not held[s].size]
        # Longest matches first; between equal matches the least recently used slot.
        pairs = sorted(((match[r][s], self._used_at[s], s, r) for r in range(n) for s in range(self.n_seq_max)
                        if continues(r, s)), key=lambda t: (-t[0], t[1], t[2]))
        for _, _, s, r in pairs:
            if slot_of[r] < 0 and s not in taken:
                slot_of[r] = s
                taken.add(s)
        # While the empty slots can take them all, requests that would cut a slot (it may be another
        # participant's) move to empty ones and copy the prefix there (below): a buffer copy, not
        # an evaluation, and the slot stays whole.
        homeless = sum(1 for r in range(n) if slot_of[r] < 0)
        cutters = [r for r in range(n) if slot_of[r] >= 0 and match[r][slot_of[r]] < held[slot_of[r]].size]
        if cutters and len(empty) >= homeless + len(cutters):
            for r in cutters:
                taken.discard(slot_of[r])
                slot_of[r] = -1
        owned = set(taken)
        # The rest: empty slots first (lowest first), then the least recently used. When the empty
        # slots cannot take them all, the least recently used first: caches must be evicted anyway,
        # and a chunk split between old and empty slots would no longer be consecutive (llama.cpp
        # computes each run of consecutive slots of a decoding step in its own pass).
        homeless = sum(1 for r in range(n) if slot_of[r] < 0)
        fits = homeless <= sum(1 for s in empty if s not in taken)
        spare = sorted((s for s in range(self.n_seq_max) if s not in taken),
                       key=lambda s: ((held[s].size > 0) == fits, self._used_at[s], s))
        copies = list(none)
        for r in range(n):
            if slot_of[r] >= 0:
                continue
            s = spare.pop(0)
            slot_of[r] = s
            taken.add(s)
        for r in range(n):
            s = slot_of[r]
            if s in owned:
                continue
            # Sources are slots this call does not overwrite: continued (their kept prefix) or untouched.
            best = (-1, match[r][s])
            for src in range(self.n_seq_max):
                if src in taken and src not in owned:
                    continue
                usable = match[r][src]
                if src in owned:
                    owner = slot_of.index(src)
                    usable = min(usable, match[owner][src])
                if usable > best[1]:
                    best = (src, usable)
            if best[0] >= 0 and best[1] >= match[r][s] + MIN_MATCH:
                copies[r] = best
        have = [copies[r][1] if copies[r][0] >= 0 else match[r][slot_of[r]] for r in range(n)]
        return slot_of, have, copies

    def _prefill(self, sequences: Sequence[Sequence[int]], keep: Sequence[int]) -> tuple[list[int], dict[tuple[int, int], np.ndarray]]:
        """Put ``sequences`` in slots, evaluating what their caches lack; return the slots and the
        logits at the last ``keep[r]`` positions of each, keyed ``(row, position)``."""
        if len(sequences) > self.n_seq_max:
            raise ValueError(f"{len(sequences)} sequences in one chunk but the context holds {self.n_seq_max}")
        limits = [len(s) - k for s, k in zip(sequences, keep)]
        # The shared prefix stops before any position whose logits are wanted.
        shared = min(common_prefix(sequences), min(limits))
        slots, have, copies = self._assign(sequences, limits, shared)
        self._clock += 1
        stats = ReuseStats(prompt_tokens=sum(len(s) for s in sequences))
        # Copies first, while their sources still hold what was matched (llama.cpp copies the
        # buffers, in this order, at the next decode; the cells past the prefix are dropped).
        for r, (source, length) in enumerate(copies):
            if source >= 0:
                llama_cpp.llama_memory_seq_cp(self.memory, source, slots[r], -1, -1)
                stats.copied += length
        for r, slot in enumerate(slots):
            self._used_at[slot] = self._clock
            if self.cached[slot] and (copies[r][0] >= 0 or 2 * have[r] < len(self.cached[slot])):
                stats.evicted += 1
            if not llama_cpp.llama_memory_seq_rm(self.memory, slot, have[r], -1):
                llama_cpp.llama_memory_seq_rm(self.memory, slot, -1, -1)  # a model that cannot cut a sequence
                have[r] = 0
            self.cached[slot] = list(sequences[r][:have[r]])
            if copies[r][0] < 0:
                stats.kept += have[r]
        # Rows lacking part of the shared prefix get it from a row that has it (evaluated once if none does).
        lacking = [r for r in range(len(sequences)) if have[r] < shared]
        if shared and lacking and (len(lacking) > 1 or len(lacking) < len(sequences)):
            donors = [r for r in range(len(sequences)) if have[r] >= shared]
            if donors:
                source = donors[0]
            else:
                source = max(lacking, key=lambda r: have[r])
                lacking.remove(source)
                entries = [(sequences[source][p], p, slots[source], False) for p in range(have[source], shared)]
                for start in range(0, len(entries), self.n_batch):
                    self._decode(entries[start:start + self.n_batch])
                stats.evaluated += len(entries)
                have[source] = shared
                self.cached[slots[source]] = list(sequences[source][:shared])
            for r in lacking:
                # Across streams llama.cpp copies the whole stream; the cells past the prefix are dropped.
                llama_cpp.llama_memory_seq_cp(self.memory, slots[source], slots[r], -1, -1)
                llama_cpp.llama_memory_seq_rm(self.memory, slots[r], shared, -1)
                stats.copied += shared - have[r]
                have[r] = shared
                self.cached[slots[r]] = list(sequences[r][:shared])
        # One sequence per llama_decode: with a KV stream per sequence, llama.cpp splits a batch
        # mixing prompts of unequal lengths into many small steps (measured 10x slower).
        out: dict[tuple[int, int], np.ndarray] = {}
        for r, (s, k) in enumerate(zip(sequences, keep)):
            entries = [(s[p], p, slots[r], p >= len(s) - k) for p in range(have[r], len(s))]
            for start in range(0, len(entries), self.n_batch):
                part = entries[start:start + self.n_batch]
                self._decode(part)
                for i, (_, pos, _, wanted) in enumerate(part):
                    if wanted:
                        out[(r, pos)] = self._logits(i)
            stats.evaluated += len(entries)
            self.cached[slots[r]] = list(s)
        self.stats.add(stats)
        return slots, out

    # -- what the backend calls ------------------------------------------------------------

    def generate(self, specs: Sequence[SequenceSpec]) -> list[Decoded]:
        """Decode every spec to its end (end-of-generation or ``max_new_tokens``)."""
        try:
            return self._generate(specs)
        except BaseException:
            self.forget()
            raise

    def _generate(self, specs: Sequence[SequenceSpec]) -> list[Decoded]:
        prompts = [s.prompt for s in specs]
        slots, last = self._prefill(prompts, [1] * len(specs))
        results = [Decoded([], False, [] if s.top_logprobs else None) for s in specs]
        logits = {row: last[(row, len(p) - 1)] for row, p in enumerate(prompts)}
        # Steps list rows in slot order: llama.cpp computes a run of consecutive slots in one pass.
        live = sorted(range(len(specs)), key=lambda row: slots[row])
        while live:
            step: list[tuple[int, int, int, bool]] = []
            rows: list[int] = []
            for row in live:
                spec, result = specs[row], results[row]
                banned = self.eog if len(result.tokens) < spec.min_new_tokens else None
                token = pick_token(logits[row], spec, banned)
                if result.logprobs is not None:
                    logp, top = top_logprobs(logits[row], spec.top_logprobs or 1)
                    result.logprobs.append((token, float(logp[token]), top))
                result.tokens.append(token)
                if token in self._eog_set:
                    result.ended_by_eog = True
                elif len(result.tokens) < spec.max_new_tokens:
                    step.append((token, len(spec.prompt) + len(result.tokens) - 1, slots[row], True))
                    rows.append(row)
                    continue
                if not self.reuse:
                    llama_cpp.llama_memory_seq_rm(self.memory, slots[row], -1, -1)  # done: free its cells
                    self.cached[slots[row]] = []
            if not step:
                break
            self._decode(step)
            for (token, _, slot, _), row in zip(step, rows):
                self.cached[slot].append(token)
            live = rows
            table = self._all_logits(len(rows))
            logits = {row: table[i] for i, row in enumerate(rows)}
        return results

    def score(self, sequences: Sequence[Sequence[int]], keep: int) -> np.ndarray:
        """Log-softmax over the vocabulary at the last ``keep`` positions of each sequence:
        shape ``(len(sequences), keep, n_vocab)``, float32."""
        if any(len(s) < keep for s in sequences):
            raise ValueError(f"keep={keep} is longer than a sequence of {min(len(s) for s in sequences)} tokens")
        try:
            _, got = self._prefill(sequences, [keep] * len(sequences))
        except BaseException:
            self.forget()
            raise
        out = np.empty((len(sequences), keep, self.n_vocab), dtype=np.float32)
        for row, s in enumerate(sequences):
            for j in range(keep):
                out[row, j] = _log_softmax(got[(row, len(s) - keep + j)])
        if not self.reuse:
            self.forget()
        return out
