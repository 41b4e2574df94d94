"""Response quality ("insensitivity") on the DEF paper's six dimensions.

The paper inspects simulated answers for instruction understanding (IU), question-type
capture (QC), role play (RP), conflict in value expression (CV), false facts (FF) and
irrelevant output (IR). Rules decide whatever a rule can decide -- format, option range,
number of choices, AI self-disclosure, answer/explanation or paired-question consistency,
degenerate text -- and leave the rest undecided (``None``). An optional judge (any simulator
backend, local or remote) decides only the undecided cells, with the rubric below, and every
cell records who decided it.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from culturesim.simulator.parsing import has_ai_disclosure, parse_response, split_answer_explanation
from culturesim.simulator.runfolder import Status
from culturesim.simulator.types import GenerationConfig, GenerationRequest

DIMENSIONS = ("IU", "QC", "RP", "CV", "FF", "IR")
DIMENSION_NAMES = {
    "IU": "instruction understanding",
    "QC": "question-type capture",
    "RP": "role play",
    "CV": "conflict in value expression",
    "FF": "false facts",
    "IR": "irrelevant output",
}
RUBRIC = {
    "IU": "The response does not follow the instruction: no 'Answer:' with one of the numbered options.",
    "QC": "The response misreads the question type: several options for a single-choice question, or an option number that does not exist.",
    "RP": "The response leaves the role of a citizen of the given country (says it is an AI / language model, refuses to take the role).",
    "CV": "The chosen answer contradicts the explanation, or the same person gives contradictory answers to the same question.",
    "FF": "The explanation states something factually false about the world (wrong facts, invented statistics, impossible claims).",
    "IR": "The output is irrelevant to the question (off-topic text, repetition loops, content unrelated to the options).",
}
INSENSITIVITY_VERSION = "1.0"

_WORD = re.compile(r"[a-z]{4,}|[\u4e00-\u9fff]", re.IGNORECASE)
_SENTENCE = re.compile(r"[^.!?。！？\n]+")


@dataclass
class Cell:
    """One dimension of one response: flagged (True), clean (False) or undecided (None)."""

    flag: bool | None
    by: str | None = None  # "rule", "judge:<model>" or None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"flag": self.flag, "by": self.by, "reason": self.reason}


@dataclass
class Assessment:
    key: str
    cells: dict[str, Cell] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, **{d: self.cells[d].to_dict() for d in DIMENSIONS}}


def _repetitive(text: str) -> bool:
    sentences = [s.strip().lower() for s in _SENTENCE.findall(text) if len(s.strip()) > 15]
    if len(sentences) < 3:
        return False
    most = Counter(sentences).most_common(1)[0][1]
    return most >= 3 and most / len(sentences) >= 0.5


def _overlap(text: str, reference: str) -> int:
    words = {w.lower() for w in _WORD.findall(reference)}
    return sum(1 for w in {w.lower() for w in _WORD.findall(text)} if w in words)


def assess_response(
    raw_text: str,
    status: str,
    question: str,
    options: Sequence[str],
    question_type: str = "single_choice",
    positions: Sequence[int] = (),
    language: str = "en",
    key: str = "",
) -> Assessment:
    """Rule-based cells for one response (``positions``: the parsed displayed positions)."""
    text = raw_text or ""
    cells: dict[str, Cell] = {}
    answer, explanation = split_answer_explanation(text)
    has_answer_tag = bool(re.search(r"(answer|答案|回答)\s*[:：]", text, re.IGNORECASE))

    # IU: the requested format with a usable option.
    if status == Status.OK and has_answer_tag:
        cells["IU"] = Cell(False, "rule", "'Answer:' with a valid option")
    elif status in (Status.NO_ANSWER, Status.REFUSAL) or not has_answer_tag:
        cells["IU"] = Cell(True, "rule", f"status {status}; 'Answer:' present: {has_answer_tag}")
    else:
        cells["IU"] = Cell(None)

    # QC: the number and range of choices.
    if status in ("invalid_option", "multiple_for_single", "number_text_disagree"):
        cells["QC"] = Cell(True, "rule", f"status {status}")
    elif status == Status.OK:
        cells["QC"] = Cell(False, "rule", f"{len(positions)} valid option(s) for a {question_type} question")
    else:
        cells["QC"] = Cell(None)

    # RP: self-disclosure or refusal leaves the role.
    if has_ai_disclosure(text) or status == Status.REFUSAL:
        cells["RP"] = Cell(True, "rule", "AI self-disclosure" if has_ai_disclosure(text) else "refuses the role")
    elif status == Status.OK:
        cells["RP"] = Cell(False, "rule", "answers in role without self-disclosure")
    else:
        cells["RP"] = Cell(None)

    # CV: an explanation that itself names a different single option.
    cells["CV"] = Cell(None)
    if status == Status.OK and explanation.strip():
        in_expl = parse_response(explanation, list(options), question_type, language=language)
        if in_expl.status == Status.OK and in_expl.method != "number_anywhere" and set(in_expl.positions) != set(positions):
            cells["CV"] = Cell(True, "rule", f"explanation names option(s) {[p + 1 for p in in_expl.positions]}, "
                                             f"answer is {[p + 1 for p in positions]}")

    # FF: no rule can tell a false fact.
    cells["FF"] = Cell(None)

    # IR: repetition loops, or nothing usable and nothing about the question.
    reference = question + " " + " ".join(options)
    if _repetitive(text):
        cells["IR"] = Cell(True, "rule", "repetition loop")
    elif status != Status.OK and _overlap(text, reference) == 0:
        cells["IR"] = Cell(True, "rule", "no answer and no word of the question or options")
    elif status == Status.OK and _overlap(explanation or text, reference) > 0:
        cells["IR"] = Cell(False, "rule", "answers and refers to the question")
    else:
        cells["IR"] = Cell(None)
    return Assessment(key=key, cells=cells)


def paired_conflicts(rows: Iterable[dict[str, Any]]) -> set[str]:
    """Keys of rows where one participant answered the same parallel question differently.

    ``rows`` need ``key``, ``participant_id``, ``parallel_id`` and ``parsed`` (option codes).
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row.get("parallel_id") and row.get("parsed"):
            groups[(str(row["participant_id"]), row["parallel_id"])].append(row)
    flagged = set()
    for group in groups.values():
        if len({tuple(sorted(r["parsed"])) for r in group}) > 1:
            flagged |= {r["key"] for r in group}
    return flagged


def judge_prompt(question: str, options: Sequence[str], raw_text: str, dimensions: Sequence[str]) -> str:
    rubric = "\n".join(f"- {d} ({DIMENSION_NAMES[d]}): {RUBRIC[d]}" for d in dimensions)
    numbered = "\n".join(f"{i + 1}. {o}" for i, o in enumerate(options))
    return (
        "You are checking one answer given in a simulated survey, where a model was asked to act as a "
        "citizen and choose among numbered options.\n\n"
        f"Question: {question}\nOptions:\n{numbered}\n\nResponse:\n<<<\n{raw_text[:3000]}\n>>>\n\n"
        "For each problem below say whether the response HAS it (true) or not (false):\n"
        f"{rubric}\n\n"
        "Reply with one JSON object only: its keys are the codes above, its values true or false."
    )


def parse_judgement(text: str, dimensions: Sequence[str]) -> dict[str, bool]:
    """Read the judge's JSON (or 'IU: yes' lines); dimensions it did not answer are left out."""
    out: dict[str, bool] = {}
    match = re.search(r"\{.*?\}", text or "", re.DOTALL)
    if match:
        try:
            data = json.loads(match.group(0))
            for d in dimensions:
                value = data.get(d)
                if isinstance(value, bool):
                    out[d] = value
                elif isinstance(value, str) and value.strip().lower() in ("true", "yes", "false", "no"):
                    out[d] = value.strip().lower() in ("true", "yes")
        except (json.JSONDecodeError, AttributeError):
            pass
    for d in dimensions:
        if d in out:
            continue
        m = re.search(rf"^\W*{d}\W*\s*[:=]\s*(true|false|yes|no)\b", text or "", re.IGNORECASE | re.MULTILINE)
        if m:
            out[d] = m.group(1).lower() in ("true", "yes")
    return out


def judge(assessments: list[Assessment], items: list[dict[str, Any]], backend: Any, max_new_tokens: int = 96) -> None:
    """Fill undecided cells with the judge backend's verdicts (in place).

    ``items`` align with ``assessments``: dicts with question, options, raw_text.
    """
    pending = []
    for assessment, item in zip(assessments, items):
        dims = [d for d in DIMENSIONS if assessment.cells[d].flag is None]
        if dims:
            prompt = judge_prompt(item["question"], item["options"], item["raw_text"], dims)
            pending.append((assessment, dims, GenerationRequest(
                messages=({"role": "user", "content": prompt},),
                config=GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, temperature=None, top_p=None),
                key=f"judge:{assessment.key}",
            )))
    if not pending:
        return
    results = backend.generate([p[2] for p in pending])
    name = f"judge:{getattr(backend, 'model_id', '') or getattr(backend, 'name', 'backend')}"
    for (assessment, dims, _), result in zip(pending, results):
        verdicts = parse_judgement(result.text, dims) if not result.error else {}
        for d in dims:
            if d in verdicts:
                assessment.cells[d] = Cell(verdicts[d], name, "judge verdict")


def summarise(assessments: Sequence[Assessment]) -> dict[str, dict[str, float | int]]:
    """Per dimension: share flagged among decided responses, and how many were decided."""
    out = {}
    for d in DIMENSIONS:
        decided = [a.cells[d] for a in assessments if a.cells[d].flag is not None]
        flagged = sum(1 for c in decided if c.flag)
        out[d] = {
            "flagged": flagged,
            "decided": len(decided),
            "undecided": len(assessments) - len(decided),
            "by_rule": sum(1 for c in decided if c.by == "rule"),
            "by_judge": sum(1 for c in decided if (c.by or "").startswith("judge")),
            "rate": flagged / len(decided) if decided else None,
        }
    return out


def insensitivity_for_run(rows: Sequence[dict[str, Any]], questions: dict[str, Any], judge_backend: Any = None
                          ) -> dict[str, Any]:
    """The six insensitivity dimensions for every response of a run (rules, then the optional
    judge), summarised; ``questions`` maps question id to Question. The Space uses it too."""
    assessments, items = [], []
    conflicts = paired_conflicts(rows)
    for row in rows:
        q = questions.get(row["question_id"])
        if q is None:
            continue
        order = row.get("option_order") or list(range(q.num_options))
        # Uploaded responses may carry an option order that does not fit the question: show the
        # options in their own order then.
        shown = [q.options[i] for i in order if isinstance(i, int) and 0 <= i < q.num_options] or list(q.options)
        a = assess_response(str(row.get("raw_text") or ""), str(row.get("status") or Status.NO_ANSWER), q.question,
                            shown, q.question_type, row.get("positions") or (), q.language,
                            key=str(row.get("key", "")))
        if row.get("key") in conflicts:
            a.cells["CV"] = Cell(True, "rule", "same participant, different answers to parallel questions")
        assessments.append(a)
        items.append({"question": q.question, "options": shown, "raw_text": row.get("raw_text") or ""})
    if judge_backend is not None:
        judge(assessments, items, judge_backend)
    return {
        "version": INSENSITIVITY_VERSION,
        "judge": getattr(judge_backend, "model_id", None) if judge_backend is not None else None,
        "summary": summarise(assessments),
        "responses": len(assessments),
    }
