"""culturesim as an inspect_ai task: DEF participants as epochs, scored by ``compute_alignment``.

Run (after ``pip install "culturesim[harness]"``)::

    inspect eval culturesim/us --model openai-api/vllm/MODEL --epochs 20   # VLLM_BASE_URL, VLLM_API_KEY
    inspect eval culturesim/us --model hf/PATH --epochs 3 --limit 3

One ``Sample`` per question (its dataset row is the sample's metadata). Epoch ``e`` is DEF
participant ``e - 1``: ``culturesim.simulator.participants.make_participant`` draws its location and
generation settings from ``random.Random(f"{seed}:{participant}")`` exactly as ``culturesim
simulate`` does, the solver renders the DEF prompt (``culturesim.simulator.prompts.render_question``: the
location appended to [COUNTRY], options shuffled per participant and question, numeric scales
never) and asks the model with the participant's temperature and top_p (``do_sample`` false ->
temperature 0; a per-request seed where the provider honours one). The scorer reads the reply
with our parser (``culturesim.simulator.parsing.parse_response``) and maps it back to source options; the
epoch reducer gathers a question's participants, and the metrics hand all of them to
``culturesim.simulator.analysis.scoring.collect_answers`` and ``compute_alignment``, the same path as
``culturesim score``. Inspect's log keeps every prompt and reply.

What differs from ``culturesim simulate --plan all``: the memory modification needs one
participant to answer questions in sequence, while inspect runs samples independently, so the
plan is ``prompt+config`` (``none``, ``prompt`` and ``config`` are accepted too); beam search
(``num_beams``) has no inspect setting and is not used. The metrics are point estimates
(inspect shows no interval for them); run ``culturesim score`` on a run folder for bootstrap
intervals.
"""

from __future__ import annotations

import json
import zlib
from functools import lru_cache
from typing import Any

from inspect_ai import Epochs, Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessageUser
from inspect_ai.scorer import (
    Metric,
    SampleScore,
    Score,
    ScoreReducer,
    Target,
    metric,
    score_reducer,
    scorer,
)
from inspect_ai.solver import Generate, TaskState, solver

from culturesim.metrics.cultural_alignment import VALUE_DIMENSIONS, compute_alignment
from culturesim.simulator.analysis.scoring import collect_answers
from culturesim.simulator.harness.common import load_records
from culturesim.simulator.parsing import PARSER_VERSION, parse_response
from culturesim.simulator.participants import Participant, make_participant, parse_plan
from culturesim.simulator.prompts import PROMPT_VERSION, RenderedQuestion, option_order, render_question
from culturesim.simulator.questions import Question

__all__ = ["INSPECT_TASK_VERSION", "PLANS", "culturesim", "def_answer", "def_participant", "participants"]

INSPECT_TASK_VERSION = "1.0"
"""Bump whenever a number this task reports could change; recorded in the task metadata."""
PLANS = ("none", "prompt", "config", "prompt+config")
"""The DEF plans inspect can run (no memory: its samples are independent)."""
DEFAULT_PARTICIPANTS = 20
"""The paper's participants per question; ``--epochs`` overrides it."""


def _check_plan(plan: str) -> str:
    name, mods = parse_plan(plan)
    if "memory" in mods or name in ("cao", "ccsv"):
        raise ValueError(
            f"plan={plan!r} cannot run in inspect_ai: {'memory needs' if 'memory' in mods else 'the baselines need'} "
            f"one participant to see several questions in turn. Use one of {', '.join(PLANS)}, or culturesim simulate."
        )
    return "+".join(m for m in ("prompt", "config") if m in mods) or "none"


def participant_view(
    question: Question, participant_id: int, plan: str, seed: int, max_tokens: int
) -> tuple[Participant, RenderedQuestion]:
    """Participant ``participant_id`` and the question as it sees it (same as ``culturesim simulate``)."""
    participant = make_participant(participant_id, question.culture, plan=plan, seed=seed, max_new_tokens=max_tokens)
    order = option_order(question, seed, participant_id, shuffle=True)
    return participant, render_question(question, question.culture, order=order, location=participant.location)


def _question(state_or_metadata: Any) -> Question:
    metadata = state_or_metadata if isinstance(state_or_metadata, dict) else state_or_metadata.metadata
    return Question.from_record(metadata["record"])


@solver
def def_participant(plan: str = "prompt+config", seed: int = 0, max_tokens: int = 512):
    """Ask the sample's question as DEF participant ``epoch - 1`` (location, shuffle, sampling settings)."""
    plan = _check_plan(plan)

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        question = _question(state)
        participant_id = state.epoch - 1
        participant, rendered = participant_view(question, participant_id, plan, seed, max_tokens)
        g = participant.generation
        state.messages = [ChatMessageUser(content=rendered.text)]
        request_seed = zlib.crc32(f"{seed}:{participant_id}:{question.id}".encode())
        state.store.set("culturesim_participant", {"participant_id": participant_id, **participant.persona()})
        return await generate(
            state,
            temperature=(g.temperature if g.temperature is not None else 1.0) if g.do_sample else 0.0,
            top_p=g.top_p if g.do_sample else None,
            max_tokens=max_tokens,
            seed=request_seed,
        )

    return solve


# ------------------------------------------------------------------------------ scoring


@lru_cache(maxsize=16)
def _alignment_cached(key: str) -> dict[str, Any]:
    data = json.loads(key)
    questions = [Question.from_record(r) for r in data["records"]]
    answers = collect_answers(data["rows"], questions)
    if not answers.questions:
        return {"_answers": answers, "_rows": len(data["rows"])}
    result = compute_alignment(
        predictions=answers.predictions,
        references=[list(q.human_distribution) for q in answers.questions],
        ordinal=[q.ordinal for q in answers.questions],
        value_dimensions=[list(q.value_dimensions) for q in answers.questions],
        demographics=[list(q.demographics) for q in answers.questions],
        question_ids=[q.id for q in answers.questions],
        bootstrap_samples=0,
    )
    return {**result, "_answers": answers, "_rows": len(data["rows"])}


def alignment(scores: list[SampleScore]) -> dict[str, Any]:
    """``compute_alignment`` over every participant's answer to every question (once per eval)."""
    records, rows = [], []
    for sample_score in scores:
        metadata = sample_score.score.metadata or {}
        records.append((sample_score.sample_metadata or {})["record"])
        rows.extend(metadata["rows"] if "rows" in metadata else [metadata["row"]])
    return _alignment_cached(json.dumps({"records": records, "rows": rows}, sort_keys=True, default=str))


def _value(result: dict[str, Any], key: str) -> float:
    value = result.get(key)
    return float("nan") if value is None else float(value)


def _overall_metric(key: str):
    def compute(scores: list[SampleScore]) -> float:
        return _value(alignment(scores), key)

    return compute


@metric
def kl() -> Metric:
    """Mean KL(model || human) over questions (the DEF paper's measure, smoothed; lower is better)."""
    return _overall_metric("kl_mean")


@metric
def js() -> Metric:
    """Mean Jensen-Shannon distance (base 2, in [0, 1]; lower is better)."""
    return _overall_metric("js_mean")


@metric
def wasserstein() -> Metric:
    """Mean normalised 1-Wasserstein distance over the ordinal questions (lower is better)."""
    return _overall_metric("wasserstein_mean")


@metric
def match_rate() -> Metric:
    """Share of questions whose most chosen option is the humans' most chosen (higher is better)."""
    return _overall_metric("match_rate")


@metric
def parse_rate() -> Metric:
    """Share of replies the parser read as a valid answer (the others are left out of the scores)."""

    def compute(scores: list[SampleScore]) -> float:
        result = alignment(scores)
        answers = result["_answers"]
        return answers.status_counts.get("ok", 0) / max(result["_rows"], 1)

    return compute


@metric
def per_dimension() -> Metric:
    """KL and JS per value dimension (``kl_EVI``, ``js_EVI``, ...), for dimensions with questions."""

    def compute(scores: list[SampleScore]) -> dict[str, float]:
        blocks = alignment(scores).get("per_dimension") or {}
        out: dict[str, float] = {}
        for dim in VALUE_DIMENSIONS:
            if dim in blocks:
                out[f"kl_{dim}"] = _value(blocks[dim], "kl_mean")
                out[f"js_{dim}"] = _value(blocks[dim], "js_mean")
        return out

    return compute


@score_reducer(name="culturesim_participants")
def participants() -> ScoreReducer:
    """Keep every participant's answer to a question (the metrics need them all, not a mean)."""

    def reduce(scores: list[Score]) -> Score:
        rows = [row for s in scores for row in ((s.metadata or {}).get("rows") or [(s.metadata or {})["row"]])]
        answered = sum(1 for row in rows if row["status"] == "ok")
        return Score(
            value={"answered": answered, "participants": len(rows)},
            answer=", ".join(str(row["option_codes"]) for row in rows),
            metadata={"rows": rows},
        )

    return reduce


@scorer(metrics=[kl(), js(), wasserstein(), match_rate(), parse_rate(), per_dimension()])
def def_answer(plan: str = "prompt+config", seed: int = 0, max_tokens: int = 512):
    """Parse the participant's reply (``culturesim.simulator.parsing``) and map it back to source options."""
    plan = _check_plan(plan)

    async def score(state: TaskState, target: Target) -> Score:
        question = _question(state)
        participant_id = state.epoch - 1
        _, rendered = participant_view(question, participant_id, plan, seed, max_tokens)
        reply = state.output.completion if state.output else ""
        parsed = parse_response(reply, rendered.options, question.question_type, scale=rendered.scale, language=question.language)
        indices = list(rendered.to_source(parsed.positions)) if parsed.status.value == "ok" else []
        row = {
            "question_id": question.id,
            "participant_id": participant_id,
            "status": parsed.status.value,
            "option_indices": indices,
            "option_codes": [question.option_codes[i] for i in indices],
            "method": parsed.method,
            "ai_disclosure": parsed.ai_disclosure,
            "order": list(rendered.order),
        }
        return Score(
            value=indices[0] if len(indices) == 1 else -1,
            answer=", ".join(question.options[i] for i in indices) or parsed.status.value,
            explanation=f"participant {participant_id}: {parsed.status.value} ({parsed.method})",
            metadata={"row": row},
        )

    return score


# ------------------------------------------------------------------------------ the task


def questions_dataset(culture: str, dataset: str | None = None, revision: str | None = None,
                      questions: int | None = None, language: str | None = None) -> MemoryDataset:
    """One Sample per question of config ``culture`` (dataset order), its record as metadata."""
    records = load_records(culture, dataset, revision, language)
    samples = []
    for i, record in enumerate(records):
        if questions is not None and i >= questions:
            break
        q = Question.from_record(record)
        human = list(q.human_distribution)
        samples.append(
            Sample(
                id=q.id,
                input=q.question,
                target=q.options[human.index(max(human))],
                metadata={"record": json.loads(json.dumps(dict(record), default=str))},
            )
        )
    if not samples:
        raise ValueError(f"No questions for culture {culture!r} in {dataset or 'the shipped dataset'}.")
    return MemoryDataset(samples, name=f"culturesim_{culture.lower()}")


def culturesim(
    culture: str = "US",
    participants_per_question: int = DEFAULT_PARTICIPANTS,
    plan: str = "prompt+config",
    seed: int = 0,
    max_tokens: int = 512,
    questions: int | None = None,
    dataset: str | None = None,
    revision: str | None = None,
    language: str | None = None,
) -> Task:
    """The culturesim task for one dataset config (``US``, ``US_2024``, ``CN``, ``JP``, ``EG``).

    ``participants_per_question`` sets the epochs (``--epochs`` overrides it); ``questions``
    keeps the first N (``--limit`` does the same); ``dataset`` is a local dataset folder or Hub
    id (default: the copy shipped with culturesim), ``revision`` its Hub revision; ``language``
    None asks the native-language rows, ``en`` the English parallels.
    """
    plan = _check_plan(plan)
    return Task(
        dataset=questions_dataset(culture, dataset, revision, questions, language),
        solver=def_participant(plan=plan, seed=seed, max_tokens=max_tokens),
        scorer=def_answer(plan=plan, seed=seed, max_tokens=max_tokens),
        epochs=Epochs(participants_per_question, participants()),
        metadata={
            "culturesim_task_version": INSPECT_TASK_VERSION,
            "prompt_version": PROMPT_VERSION,
            "parser_version": PARSER_VERSION,
            "plan": plan,
            "seed": seed,
        },
    )


@task
def culturesim_task(culture: str = "US", plan: str = "prompt+config", seed: int = 0, max_tokens: int = 512,
                    dataset: str | None = None, revision: str | None = None, language: str | None = None) -> Task:
    """``inspect eval simulator/harness/inspect_task.py -T culture=CN``: any config by name."""
    return culturesim(culture, plan=plan, seed=seed, max_tokens=max_tokens, dataset=dataset, revision=revision,
                      language=language)
