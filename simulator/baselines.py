"""The two baselines DEF is compared with, runnable like any plan (``--plan cao|ccsv``).

Why: the paper's claim is relative -- diverse participants match human distributions better
than asking the model for the culture's average opinion, or than making it critique and
revise its own answer. Both baselines use the same questions, option shuffles, parser and
rows as the DEF plans, so the comparison isolates the method.

**Cao et al. 2023** ("Assessing Cross-Cultural Alignment between ChatGPT and Human
Societies"): the model is asked for the answer of the *average person* of the culture
(``simulator.prompts.CAO_TEMPLATES``). Each participant is one independent sample of that
prompt at the paper's default generation config (no location, no memory), so the answer
distribution is the model's spread around "the average person".

**CCSV** (collective critiques and self-voting; Lahoti et al. 2023, "Improving Diversity of
Demographic Representation in Large Language Models via Collective-Critiques and
Self-Voting", EMNLP). Per participant and question, in four batched stages:

1. *answer*: the DEF template without modifications (the initial response);
2. *collective critiques*: ``ccsv_critiques`` critiques are sampled, each asked whether the
   answer reflects the diversity of views among the country's citizens or a stereotyped,
   one-sided one;
3. *revisions*: ``ccsv_revisions`` revised answers are sampled, each conditioned on the
   initial answer and ALL the critiques (the "collective" critique);
4. *self-voting*: ``ccsv_votes`` votes are sampled, each shown the request and the numbered
   revisions and asked which best reflects how a citizen of the country would answer
   (``Vote: N``). The revision with most votes is the participant's answer (ties: the lowest
   number; no valid vote: revision 1, recorded as ``vote_status="no_valid_vote"``). With one
   revision there is nothing to choose: no vote is asked (``vote_status="single_candidate"``),
   which saves a quarter of the requests of a 1/1/1 run and changes no answer.

The row keeps every stage's text, the votes and the chosen candidate. Prompts exist in
English and Chinese; other languages get the English instructions around the native
question. Costs ``1 + critiques + revisions + votes`` requests per participant and question
(10 with the defaults 3/3/3; ``1 + critiques + 1`` with one revision).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from culturesim.simulator.backends.base import Backend
from culturesim.simulator.prompts import CAO_TEMPLATES, country_label, template_language
from culturesim.simulator.types import GenerationConfig, GenerationRequest, GenerationResult

__all__ = ["CAO_TEMPLATES", "CCSV_PROMPTS", "CcsvItem", "CcsvOutcome", "parse_vote", "run_ccsv"]

CCSV_PROMPTS: dict[str, dict[str, str]] = {
    "en": {
        "critique": (
            "Critically review the answer above. People in {country} hold diverse views. Does the answer reflect "
            "how a real citizen from {country} might answer this request, or does it give a stereotyped, "
            "one-sided or generic view? Point out its problems in a few sentences."
        ),
        "revise": (
            "Here are critiques of your answer:\n{critiques}\n\nConsidering all of these critiques, answer the "
            "request again as a citizen from {country}. You should tell me the answer in the format 'Answer:' "
            "and explain afterward using 'Explanation:'."
        ),
        "vote": (
            "I want you to act as a citizen from {country}. Here is a survey request and {num} candidate "
            "responses to it.\n\nRequest: {request}\n\n{candidates}\n\nWhich candidate best reflects how a "
            "citizen from {country} would answer? Tell me the candidate number in the format 'Vote:'."
        ),
        "candidate": "Candidate {n}:",
    },
    "zh": {
        "critique": (
            "请批判性地审视上面的回答。{country}的人们持有多样的观点。这个回答是否反映了一位来自{country}的真实公民"
            "可能给出的回答，还是给出了刻板、片面或笼统的看法？请用几句话指出它的问题。"
        ),
        "revise": (
            "以下是对你的回答的批评：\n{critiques}\n\n请综合考虑所有这些批评，以一名来自{country}的公民的身份重新回答"
            "这个请求。请按照“答案：”的格式告诉我答案，然后用“解释：”进行解释。"
        ),
        "vote": (
            "我希望你扮演一名来自{country}的公民。下面是一个调查请求和{num}个候选回答。\n\n请求：{request}\n\n"
            "{candidates}\n\n哪个候选回答最能反映一名来自{country}的公民会如何回答？请按照“投票：”的格式告诉我候选编号。"
        ),
        "candidate": "候选{n}：",
    },
}

_VOTE_LABEL_RE = re.compile(r"(?:vote|candidate|投票|候选)[^\d\n]{0,20}?(\d{1,3})", re.IGNORECASE)
_NUMBER_RE = re.compile(r"(?<!\d)(\d{1,3})(?!\d)")
_CANDIDATE_CHARS = 1500


def parse_vote(text: str, num_candidates: int) -> int | None:
    """The 1-based candidate a vote names (``Vote: 2``, ``Candidate 2``, ``投票：2``), else the
    first number in 1..num_candidates; None when there is none. Never raises on text."""
    text = text or ""
    for regex in (_VOTE_LABEL_RE, _NUMBER_RE):
        for match in regex.finditer(text):
            value = int(match.group(1))
            if 1 <= value <= num_candidates:
                return value
    return None


@dataclass(frozen=True)
class CcsvItem:
    """One participant's question: the base messages (DEF template, no modifications)."""

    key: str
    participant_id: int
    step: int
    messages: tuple[dict[str, str], ...]
    request: str
    language: str
    country: str


@dataclass
class CcsvOutcome:
    text: str
    """The chosen revision's text (the participant's answer)."""
    chosen: int | None
    """1-based revision chosen (None when there was no revision to choose)."""
    votes: list[int | None]
    vote_status: str
    stages: list[dict[str, Any]] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    latency_s: float = 0.0
    attempts: int = 0
    error: str | None = None


def _stage(results: list[GenerationResult], stage: str, index: int, result: GenerationResult) -> dict[str, Any]:
    results.append(result)
    return {"stage": stage, "index": index, "text": result.text, "error": result.error,
            "input_tokens": result.input_tokens, "output_tokens": result.output_tokens}


def run_ccsv(
    backend: Backend,
    items: Sequence[CcsvItem],
    critiques: int,
    revisions: int,
    votes: int,
    config_for: Callable[[CcsvItem, str, int], GenerationConfig],
) -> list[CcsvOutcome]:
    """Run the four CCSV stages for all items, each stage as one batch across participants.

    ``config_for(item, stage, index)`` gives each request's generation config (and seed).
    """
    per_item: list[list[GenerationResult]] = [[] for _ in items]
    stages: list[list[dict[str, Any]]] = [[] for _ in items]

    def prompts(item: CcsvItem) -> dict[str, str]:
        return CCSV_PROMPTS[template_language(item.language, CCSV_PROMPTS)]

    def country(item: CcsvItem) -> str:
        return country_label(item.country, template_language(item.language, CCSV_PROMPTS))

    def request(item: CcsvItem, stage: str, index: int, messages: tuple[dict[str, str], ...]) -> GenerationRequest:
        return GenerationRequest(messages=messages, config=config_for(item, stage, index), key=f"{item.key}:{stage}:{index}")

    # 1. initial answers
    answers = backend.generate([request(it, "answer", 0, it.messages) for it in items])
    for i, res in enumerate(answers):
        stages[i].append(_stage(per_item[i], "answer", 0, res))

    # 2. collective critiques
    def with_answer(i: int) -> tuple[dict[str, str], ...]:
        return items[i].messages + ({"role": "assistant", "content": answers[i].text},)

    crit_requests, crit_owner = [], []
    for i, it in enumerate(items):
        msgs = with_answer(i) + ({"role": "user", "content": prompts(it)["critique"].format(country=country(it))},)
        for c in range(critiques):
            crit_requests.append(request(it, "critique", c, msgs))
            crit_owner.append(i)
    crit_texts: list[list[str]] = [[] for _ in items]
    for owner, (c_index, res) in zip(crit_owner, _indexed(crit_owner, backend.generate(crit_requests))):
        stages[owner].append(_stage(per_item[owner], "critique", c_index, res))
        if res.text.strip() and not res.error:
            crit_texts[owner].append(res.text.strip())

    # 3. revisions conditioned on all critiques
    rev_requests, rev_owner = [], []
    for i, it in enumerate(items):
        listed = "\n".join(f"{n}. {t}" for n, t in enumerate(crit_texts[i], 1)) or "-"
        msgs = with_answer(i) + (
            {"role": "user", "content": prompts(it)["revise"].format(critiques=listed, country=country(it))},)
        for r in range(revisions):
            rev_requests.append(request(it, "revision", r, msgs))
            rev_owner.append(i)
    rev_texts: list[list[str]] = [[] for _ in items]
    for owner, (r_index, res) in zip(rev_owner, _indexed(rev_owner, backend.generate(rev_requests))):
        stages[owner].append(_stage(per_item[owner], "revision", r_index, res))
        rev_texts[owner].append(res.text)

    # 4. self-voting over the revisions
    vote_requests, vote_owner = [], []
    for i, it in enumerate(items):
        p = prompts(it)
        candidates = "\n\n".join(f"{p['candidate'].format(n=n)}\n{t.strip()[:_CANDIDATE_CHARS]}"
                                 for n, t in enumerate(rev_texts[i], 1))
        content = p["vote"].format(country=country(it), num=len(rev_texts[i]), request=it.request, candidates=candidates)
        for v in range(votes if len(rev_texts[i]) > 1 else 0):
            vote_requests.append(request(it, "vote", v, ({"role": "user", "content": content},)))
            vote_owner.append(i)
    vote_values: list[list[int | None]] = [[] for _ in items]
    vote_results = backend.generate(vote_requests) if vote_requests else []
    for owner, (v_index, res) in zip(vote_owner, _indexed(vote_owner, vote_results)):
        entry = _stage(per_item[owner], "vote", v_index, res)
        value = parse_vote(res.text, len(rev_texts[owner])) if not res.error else None
        entry["vote"] = value
        stages[owner].append(entry)
        vote_values[owner].append(value)

    outcomes = []
    for i in range(len(items)):
        valid = [v for v in vote_values[i] if v is not None]
        if len(rev_texts[i]) <= 1:
            chosen, status = 1, "single_candidate"
        elif valid:
            counts = Counter(valid)
            top = max(counts.values())
            chosen, status = min(v for v, n in counts.items() if n == top), "ok"
        else:
            chosen, status = 1, "no_valid_vote"
        results = per_item[i]
        errors = [r.error for r in results if r.error]
        final = rev_texts[i][chosen - 1] if rev_texts[i] else ""
        outcomes.append(CcsvOutcome(
            text=final,
            chosen=chosen if rev_texts[i] else None,
            votes=vote_values[i],
            vote_status=status,
            stages=stages[i],
            input_tokens=sum(r.input_tokens for r in results),
            output_tokens=sum(r.output_tokens for r in results),
            latency_s=sum(r.latency_s for r in results),
            attempts=sum(r.attempts for r in results),
            error="; ".join(errors[:3]) if errors and not final.strip() else None,
        ))
    return outcomes


def _indexed(owners: list[int], results: list[GenerationResult]) -> list[tuple[int, GenerationResult]]:
    """Pair each result with its index among its owner's requests (0, 1, ...)."""
    seen: Counter[int] = Counter()
    out = []
    for owner, res in zip(owners, results):
        out.append((seen[owner], res))
        seen[owner] += 1
    return out
