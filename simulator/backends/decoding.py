"""One decoding loop for participants with different generation configs, beam counts included.

Why not ``model.generate``: the DEF method gives every simulated participant its own config,
and the paper draws ``num_beams`` from 1..5. ``generate`` takes one ``num_beams``, one
temperature and one top_p per call, so a batch of 16 participants became five calls (one per
beam count), each prefilling every beam of every prompt separately. Here one loop decodes all
of them together:

- each prompt is prefilled once, and its KV cache is then copied to the request's beams;
- every step is one forward pass over all live rows (single-beam participants and every beam of
  every beam-search participant), so the weights are read once per step, not once per group;
- selection is per request: a single-beam row draws its token (greedy or nucleus sampling at
  its own temperature and top_p); a beam request keeps its own beams with transformers' beam
  search rules (``GenerationMixin._beam_search`` in transformers 5: ``max(2, 1 + #eos) * b``
  candidates by top-k, or drawn without replacement for beam sampling, finished hypotheses
  scored with length penalty 1, the same early-stopping heuristic);
- a request that is done leaves the batch at once, so short answers stop costing compute.

Row settings follow transformers' processors: EOS is forbidden before ``min_new_tokens``, then
temperature, then the top_p nucleus (the smallest set of most likely tokens whose mass reaches
top_p, exactly ``TopPLogitsWarper``'s rule). The nucleus is found among the 256, then 2048 most
likely tokens with ``topk`` before falling back to a full sort: sorting a 49k vocabulary is a
large part of a small model's step.

Randomness comes from torch's global RNG (the backend seeds it per chunk), so the same chunk
gives the same text.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

__all__ = ["DecodeRequest", "Decoded", "ReservedLayer", "RowSampling", "decode", "new_cache", "reorder_rows"]

LENGTH_PENALTY = 1.0
"""transformers' default beam-search length penalty (scores divided by generated length ** 1)."""


class RowSampling:
    """Per-row decoding settings for one chunk, kept aligned with the batch's rows.

    ``min_new_tokens``, ``temperature``, ``top_p`` and ``greedy`` hold one value per row (a beam
    request repeats its values over its beams). ``keep(rows)`` follows the batch when rows are
    reordered or dropped.
    """

    CANDIDATE_TIERS = (256, 2048)
    """Candidate counts tried in turn before a full sort of the vocabulary."""

    def __init__(
        self,
        *,
        eos_token_ids: Sequence[int],
        min_new_tokens: Sequence[int],
        temperature: Sequence[float],
        top_p: Sequence[float],
        greedy: Sequence[bool],
        device: torch.device | str = "cpu",
    ) -> None:
        n = len(min_new_tokens)
        if not len(temperature) == len(top_p) == len(greedy) == n:
            raise ValueError(
                f"per-row settings disagree in length: min_new_tokens {n}, temperature {len(temperature)}, "
                f"top_p {len(top_p)}, greedy {len(greedy)}; pass one value per row"
            )
        self.eos = torch.tensor(sorted(set(eos_token_ids)), dtype=torch.long, device=device)
        self.min_new = torch.tensor(list(min_new_tokens), dtype=torch.long, device=device)
        self.temperature = torch.tensor(list(temperature), dtype=torch.float32, device=device)
        self.top_p = torch.tensor(list(top_p), dtype=torch.float32, device=device)
        self.greedy = torch.tensor(list(greedy), dtype=torch.bool, device=device)

    def keep(self, rows: torch.Tensor) -> None:
        """Reorder or drop rows, as the batch did."""
        self.min_new = self.min_new[rows]
        self.temperature = self.temperature[rows]
        self.top_p = self.top_p[rows]
        self.greedy = self.greedy[rows]

    def warp(self, scores: torch.Tensor, generated: int) -> torch.Tensor:
        """Forbid EOS where fewer than ``min_new_tokens`` were generated, then divide by temperature."""
        if len(self.eos) and bool((self.min_new > generated).any()):
            block = (self.min_new > generated)[:, None]
            eos_scores = scores[:, self.eos]
            scores = scores.clone()
            scores[:, self.eos] = torch.where(block, torch.full_like(eos_scores, -math.inf), eos_scores)
        if bool((self.temperature != 1.0).any()):
            scores = scores / self.temperature[:, None].to(scores.dtype)
        return scores

    # ---- the nucleus

    @staticmethod
    def _candidates(
        scores: torch.Tensor, top_p: torch.Tensor, k: int, min_keep: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The ``k`` best tokens per row, which of them the nucleus keeps, and whether the nucleus
        lies entirely among them (``covered``)."""
        k = min(k, scores.shape[-1])
        values, indices = scores.topk(k, dim=-1)  # sorted, most likely first
        probs = (values - scores.logsumexp(dim=-1, keepdim=True)).exp()
        cumulative = probs.cumsum(dim=-1)
        # transformers removes a token when the mass of the tokens below it, itself included, is
        # <= 1 - top_p, i.e. when the mass strictly above it is >= top_p.
        keep = (cumulative - probs) < top_p[:, None].to(probs.dtype)
        keep[:, :min_keep] = True
        covered = (cumulative[:, -1] >= top_p) | (k == scores.shape[-1])
        return indices, probs, keep, covered

    def _nucleus(self, scores: torch.Tensor, top_p: torch.Tensor, rows: torch.Tensor, min_keep: int,
                 on_covered: Any) -> torch.Tensor:
        """Find the nucleus of ``rows`` among ever more candidates; ``on_covered(rows, indices,
        probs, keep)`` handles the rows found; returns the rows left for a full sort."""
        for k in self.CANDIDATE_TIERS:
            if not len(rows):
                break
            indices, probs, keep, covered = self._candidates(scores[rows], top_p[rows], k, min_keep)
            if bool(covered.any()):
                on_covered(rows[covered], indices[covered], probs[covered], keep[covered])
            rows = rows[~covered]
        return rows

    @staticmethod
    def _sort_top_p(scores: torch.Tensor, top_p: torch.Tensor, min_keep: int) -> torch.Tensor:
        # transformers' TopPLogitsWarper with one top_p per row.
        sorted_logits, sorted_indices = torch.sort(scores, descending=False)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove_sorted = cumulative <= (1 - top_p.to(cumulative.dtype))[:, None]
        remove_sorted[:, -min_keep:] = False
        remove = remove_sorted.scatter(1, sorted_indices, remove_sorted)
        return scores.masked_fill(remove, -math.inf)

    def filter_top_p(self, scores: torch.Tensor, rows: torch.Tensor, min_keep: int = 1) -> torch.Tensor:
        """``scores`` (one row per entry of ``rows``) with tokens outside each row's nucleus at -inf."""
        top_p = self.top_p[rows]
        out = scores.clone()

        def mask(found: torch.Tensor, indices: torch.Tensor, probs: torch.Tensor, keep: torch.Tensor) -> None:
            kept = torch.zeros((len(found), scores.shape[-1]), dtype=torch.bool, device=scores.device)
            out[found] = scores[found].masked_fill(~kept.scatter_(1, indices, keep), -math.inf)

        rest = self._nucleus(scores, top_p, (top_p < 1).nonzero().flatten(), min_keep, mask)
        if len(rest):
            out[rest] = self._sort_top_p(scores[rest], top_p[rest], min_keep)
        return out

    def choose(self, scores: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """One token per row: argmax for greedy rows, a draw from the nucleus for sampling rows."""
        top_p, greedy = self.top_p[rows], self.greedy[rows]
        chosen = scores.argmax(dim=-1)
        sampling = ~greedy
        if not bool(sampling.any()):
            return chosen

        def draw(found: torch.Tensor, indices: torch.Tensor, probs: torch.Tensor, keep: torch.Tensor) -> None:
            picks = torch.multinomial(probs * keep, 1)
            chosen[found] = indices.gather(1, picks).flatten()

        rest = self._nucleus(scores, top_p, (sampling & (top_p < 1)).nonzero().flatten(), 1, draw)
        if len(rest):
            chosen[rest] = self._draw_from_wide_nucleus(scores[rest], top_p[rest])
        unfiltered = (sampling & (top_p >= 1)).nonzero().flatten()
        if len(unfiltered):
            chosen[unfiltered] = _race(scores[unfiltered].softmax(dim=-1))
        return chosen

    @staticmethod
    def _draw_from_wide_nucleus(scores: torch.Tensor, top_p: torch.Tensor, max_rounds: int = 64) -> torch.Tensor:
        """A draw from each row's nucleus when it is too wide for the candidate tiers, without sorting.

        Rejection sampling: draw from the whole distribution and keep the token if it is in the
        nucleus (the mass of the tokens more likely than it is below top_p), else draw again. The
        kept draw has exactly the nucleus' renormalised distribution; a round fails with
        probability 1 - (nucleus mass), at most 1 - top_p, so a round or two suffices. Rows still
        rejected after ``max_rounds`` (a top_p far below the nucleus mass, impossible here since
        the tiers handle narrow nuclei) fall back to the sort.
        """
        probs = scores.softmax(dim=-1)
        chosen = torch.zeros(len(probs), dtype=torch.long, device=probs.device)
        pending = torch.arange(len(probs), device=probs.device)
        for _ in range(max_rounds):
            p = probs[pending]
            picks = _race(p)
            picked = p.gather(1, picks[:, None])
            above = (p * (p > picked)).sum(dim=-1)
            inside = above < top_p[pending].to(above.dtype)
            chosen[pending[inside]] = picks[inside]
            pending = pending[~inside]
            if not len(pending):
                return chosen
        fallback = RowSampling._sort_top_p(scores[pending], top_p[pending], 1).softmax(dim=-1)
        chosen[pending] = _race(fallback)
        return chosen


def _race_keys(probs: torch.Tensor) -> torch.Tensor:
    """Exponential-race keys p / E, E ~ Exp(1) drawn as -log(1 - U): the largest key is a draw in
    proportion to ``probs``, and the k largest are k draws without replacement (the Gumbel top-k
    trick, as torch.multinomial samples). Several times cheaper than torch.multinomial or
    torch's exponential_ on rows as wide as a vocabulary."""
    return probs / -torch.log1p(-torch.rand_like(probs))


def _race(probs: torch.Tensor) -> torch.Tensor:
    """One draw per row in proportion to ``probs``."""
    return _race_keys(probs).argmax(dim=-1)


# --------------------------------------------------------------------------- requests and beams


@dataclass(frozen=True)
class DecodeRequest:
    """What one participant's generation needs inside the loop."""

    prompt: Sequence[int]
    max_new_tokens: int
    min_new_tokens: int = 0
    num_beams: int = 1
    sample: bool = True
    temperature: float = 1.0
    top_p: float = 1.0


@dataclass
class Decoded:
    """The answer's token ids (the EOS that ended it included, if any)."""

    tokens: list[int] = field(default_factory=list)
    ended_by_eos: bool = False


class _Beams:
    """One beam-search request's running beams and finished hypotheses (transformers' rules)."""

    def __init__(self, request: DecodeRequest, n_eos: int, device: torch.device) -> None:
        b = request.num_beams
        self.b = b
        self.k = max(2, 1 + n_eos) * b
        self.sample = request.sample
        self.max_new = request.max_new_tokens
        self.running = torch.zeros((b, request.max_new_tokens), dtype=torch.long, device=device)
        self.running_scores = torch.full((b,), -1e9, device=device)
        self.running_scores[0] = 0.0  # all beams start as the same prompt: only one may expand
        self.pool = torch.zeros((b, request.max_new_tokens), dtype=torch.long, device=device)
        self.pool_scores = torch.full((b,), -1e9, device=device)
        self.pool_lengths = torch.zeros((b,), dtype=torch.long, device=device)
        self.pool_finished = torch.zeros((b,), dtype=torch.bool, device=device)
        self.improvable = True
        self.done = False

    def step(self, log_probs: torch.Tensor, step: int, eos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance by one token; returns, for each of the request's rows, the row its new beam
        continues and the beam's new token."""
        vocab = log_probs.shape[-1]
        flat = (log_probs + self.running_scores[:, None]).reshape(-1)
        if self.sample:
            # k draws without replacement in proportion to softmax(flat).
            picks = _race_keys(flat.softmax(dim=-1)).topk(self.k).indices
            cand_scores = flat[picks]
        else:
            cand_scores, picks = flat.topk(self.k)
        src, tokens = picks // vocab, picks % vocab
        length = step + 1
        hits = torch.isin(tokens, eos) if len(eos) else torch.zeros_like(tokens, dtype=torch.bool)
        if length >= self.max_new:
            hits = torch.ones_like(hits)
        candidates = self.running[src]  # advanced indexing copies
        candidates[:, step] = tokens

        # Finished hypotheses: only candidates among the first b may finish, and only while the
        # search can still improve.
        if self.improvable:
            finishing = hits.clone()
            finishing[self.b:] = False
            if bool(finishing.any()):
                new_scores = torch.where(finishing, cand_scores / (length ** LENGTH_PENALTY), torch.full_like(cand_scores, -1e9))
                merged_scores = torch.cat((self.pool_scores, new_scores))
                merged = torch.cat((self.pool, candidates))
                merged_lengths = torch.cat((self.pool_lengths, torch.full_like(tokens, length)))
                merged_finished = torch.cat((self.pool_finished, finishing))
                best = merged_scores.topk(self.b).indices
                self.pool, self.pool_scores = merged[best], merged_scores[best]
                self.pool_lengths, self.pool_finished = merged_lengths[best], merged_finished[best]

        # Running beams: the best candidates that did not finish. Each new beam lives in a row of
        # the batch; the first beam continuing a row stays in it, so only the extra children of a
        # row have their KV cache copied (into the rows of beams that died).
        running_scores = cand_scores + hits.to(cand_scores.dtype) * -1e9
        keep = running_scores.topk(self.b).indices
        parents = src[keep].tolist()
        row_of: list[int | None] = [None] * self.b
        taken: set[int] = set()
        for rank, parent in enumerate(parents):
            if parent not in taken:
                row_of[rank] = parent
                taken.add(parent)
        free = iter(r for r in range(self.b) if r not in taken)
        rank_in_row = [0] * self.b
        for rank in range(self.b):
            if row_of[rank] is None:
                row_of[rank] = next(free)
            rank_in_row[row_of[rank]] = rank
        order = keep[torch.tensor(rank_in_row, device=keep.device)]
        self.running = candidates[order]
        self.running_scores = running_scores[order]

        # transformers' early-stopping heuristic (early_stopping=False), with the best running beam.
        best_possible = float(self.running_scores.max()) / (length ** LENGTH_PENALTY)
        worst_finished = float(self.pool_scores.min()) if bool(self.pool_finished.all()) else -1e9
        self.improvable = self.improvable and best_possible > worst_finished
        self.done = not self.improvable or bool(hits.all())
        return src[order], tokens[order]

    def result(self, eos: set[int]) -> Decoded:
        if bool(self.pool_finished.any()):
            best = int(self.pool_scores.argmax())
            tokens = self.pool[best, : int(self.pool_lengths[best])].tolist()
        else:  # never finished (cannot happen once max_new_tokens is reached); the best running beam
            tokens = self.running[int(self.running_scores.argmax())].tolist()
        return Decoded(tokens=tokens, ended_by_eos=bool(tokens) and tokens[-1] in eos)


class ReservedLayer(DynamicLayer):
    """A KV-cache layer with room reserved up front for the whole answer.

    transformers' ``DynamicLayer`` concatenates every new token onto the cache, copying all of it
    at every step. The loop knows the longest prompt plus answer in advance, so this layer writes
    each token into reserved storage and hands attention a view of the filled part: no copy per
    step, and (unlike ``StaticLayer``) attention still covers only the tokens that exist.
    """

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity
        self.length = 0
        self._keys: torch.Tensor | None = None
        self._values: torch.Tensor | None = None

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        rows, heads = key_states.shape[:2]
        self._keys = key_states.new_empty((rows, heads, self.capacity, key_states.shape[-1]))
        self._values = value_states.new_empty((rows, value_states.shape[1], self.capacity, value_states.shape[-1]))
        self.is_initialized = True

    def _expose(self) -> None:
        self.keys = self._keys[:, :, : self.length]
        self.values = self._values[:, :, : self.length]

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
               ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        n = key_states.shape[-2]
        if self.length + n > self.capacity:
            raise RuntimeError(f"KV cache of {self.capacity} tokens is full ({self.length} + {n}); reserve more")
        self._keys[:, :, self.length : self.length + n] = key_states
        self._values[:, :, self.length : self.length + n] = value_states
        self.length += n
        self._expose()
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        if self._keys is None:
            return
        index = beam_idx.to(self._keys.device)
        keys = self._keys.new_empty((len(index), *self._keys.shape[1:]))
        values = self._values.new_empty((len(index), *self._values.shape[1:]))
        keys[:, :, : self.length] = self._keys[index, :, : self.length]
        values[:, :, : self.length] = self._values[index, :, : self.length]
        self._keys, self._values = keys, values
        self._expose()


def cache_argument(model: Any) -> str:
    """The forward argument that takes the KV cache: ``cache`` from transformers 5.2x, where
    ``past_key_values`` still works but prints a FutureWarning into the user's progress bar;
    ``past_key_values`` before that."""
    parameters = inspect.signature(type(model).forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def new_cache(model: Any, capacity: int) -> Any:
    """A cache for ``model`` with ``capacity`` tokens reserved per row, where every layer is a plain
    (full-attention) ``DynamicLayer``; otherwise (sliding windows, linear attention) the model's
    own ``DynamicCache`` unchanged."""
    cache = DynamicCache(config=model.config)
    layers = getattr(cache, "layers", None)
    if layers and all(type(layer) is DynamicLayer for layer in layers):
        cache.layers = [ReservedLayer(capacity) for _ in layers]
    return cache


def reorder_rows(cache: Any, index: torch.Tensor, rows: int, shared_prefix: int = 0) -> None:
    """Make row ``i`` of every cached layer a copy of row ``index[i]``.

    When the batch keeps its size, only the rows that change are copied, in place (beam search
    moves a few rows per step; copying the whole cache each step is what makes beam search slow
    on a CPU); otherwise the cache is rebuilt with ``index_select``. ``shared_prefix``: positions
    that are already equal in every source and destination row (the padded prompt, when rows only
    move between beams of one request); ``ReservedLayer`` skips copying them.
    """
    layers = getattr(cache, "layers", None)
    same_size = len(index) == rows
    if same_size:
        changed = (index != torch.arange(rows, device=index.device)).nonzero().flatten()
        if not len(changed):
            return
        if layers is not None and all(hasattr(layer, "keys") and hasattr(layer, "values") for layer in layers):
            src = index[changed]
            for layer in layers:
                if layer.keys is None or not getattr(layer, "is_initialized", True) or layer.keys.numel() == 0:
                    continue
                start = shared_prefix if isinstance(layer, ReservedLayer) else 0
                layer.keys[changed, :, start:] = layer.keys[src, :, start:]
                layer.values[changed, :, start:] = layer.values[src, :, start:]
            return
    cache.reorder_cache(index)


# --------------------------------------------------------------------------- the loop


def decode(
    model: Any,
    requests: Sequence[DecodeRequest],
    *,
    pad_token_id: int,
    eos_token_ids: Sequence[int],
) -> list[Decoded]:
    """Decode every request to completion with one forward pass per step over all live rows."""
    device = next(model.parameters()).device
    n = len(requests)
    eos_set = set(int(e) for e in eos_token_ids)
    prompt_length = max(len(r.prompt) for r in requests)
    input_ids = torch.full((n, prompt_length), pad_token_id, dtype=torch.long)
    mask = torch.zeros((n, prompt_length), dtype=torch.long)
    for row, request in enumerate(requests):
        if request.prompt:
            input_ids[row, prompt_length - len(request.prompt):] = torch.tensor(list(request.prompt), dtype=torch.long)
            mask[row, prompt_length - len(request.prompt):] = 1
    input_ids, mask = input_ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = new_cache(model, prompt_length + max(r.max_new_tokens for r in requests))
    cache_kw = cache_argument(model)
    logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, **{cache_kw: cache},
                   use_cache=True, logits_to_keep=1).logits[:, -1, :]

    beams = [r.num_beams for r in requests]
    expand = torch.repeat_interleave(torch.arange(n, device=device), torch.tensor(beams, device=device))
    if len(expand) != n:
        cache.reorder_cache(expand)
        mask, logits = mask[expand], logits[expand]
    per_row = [requests[i] for i in expand.tolist()]
    sampling = RowSampling(
        eos_token_ids=eos_token_ids,
        min_new_tokens=[r.min_new_tokens for r in per_row],
        temperature=[r.temperature if r.sample else 1.0 for r in per_row],
        top_p=[r.top_p if r.sample else 1.0 for r in per_row],
        greedy=[not r.sample for r in per_row],
        device=device,
    )
    min_keep_beams = len(eos_set) + 1

    # Live requests in row order: (request index, first row). Beam requests carry their state.
    starts = [0]
    for b in beams[:-1]:
        starts.append(starts[-1] + b)
    live = list(range(n))
    first_row = dict(zip(live, starts))
    state = {i: _Beams(requests[i], len(eos_set), device) for i in live if beams[i] > 1}
    results = [Decoded() for _ in range(n)]
    step = 0
    while live:
        scores = sampling.warp(torch.log_softmax(logits.float(), dim=-1), step)
        single_rows = torch.tensor([first_row[i] for i in live if beams[i] == 1], dtype=torch.long, device=device)
        picked: dict[int, int] = {}
        if len(single_rows):
            chosen = sampling.choose(scores[single_rows], single_rows).tolist()
            picked = dict(zip(single_rows.tolist(), chosen))
        beam_rows = [r for i in live if beams[i] > 1 for r in range(first_row[i], first_row[i] + beams[i])]
        filtered = None
        if beam_rows:
            index = torch.tensor(beam_rows, dtype=torch.long, device=device)
            filtered = scores[index]
            if bool((sampling.top_p[index] < 1).any()):
                filtered = sampling.filter_top_p(filtered, index, min_keep_beams)
        offset = 0
        next_live, source, next_tokens = [], [], []
        for i in live:
            start = first_row[i]
            if beams[i] == 1:
                token = picked[start]
                results[i].tokens.append(token)
                ended = token in eos_set
                if ended:
                    results[i].ended_by_eos = True
                if ended or len(results[i].tokens) >= requests[i].max_new_tokens:
                    continue
                next_live.append(i)
                source.append(start)
                next_tokens.append(token)
                continue
            beam = state[i]
            src, tokens = beam.step(filtered[offset: offset + beams[i]], step, sampling.eos)
            offset += beams[i]
            if beam.done:
                results[i] = beam.result(eos_set)
                continue
            next_live.append(i)
            source.extend((start + src).tolist())
            next_tokens.extend(tokens.tolist())
        if not next_live:
            break
        rows = logits.shape[0]
        index = torch.tensor(source, dtype=torch.long, device=device)
        # Beams move only within their request, whose rows share the padded prompt.
        reorder_rows(cache, index, rows, shared_prefix=prompt_length)
        if len(index) != rows:  # requests left; beams only move within their request (same mask, same settings)
            mask = mask[index]
            sampling.keep(index)
        live = next_live
        position = 0
        for i in live:
            first_row[i] = position
            position += beams[i]
        mask = torch.cat((mask, torch.ones((len(index), 1), dtype=mask.dtype, device=device)), dim=1)
        tokens_in = torch.tensor(next_tokens, dtype=torch.long, device=device)[:, None]
        logits = model(input_ids=tokens_in, attention_mask=mask, position_ids=mask.sum(-1, keepdim=True) - 1,
                       **{cache_kw: cache}, use_cache=True).logits[:, -1, :]
        step += 1
    return results
