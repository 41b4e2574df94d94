"""``culturesim dataset expand``: the DEF paper's rephrasing step, with a review in code.

Why: the paper expands its dataset by asking an LLM to rephrase each question while keeping
its meaning and options, which gives the simulation one more source of prompt diversity and
lets the invariance battery (``culturesim invariance --perturbations paraphrase``) measure
how far a model's answers move with the wording alone. A rephrasing can silently change
the question (drop a clause, add a hint, switch language, list other options), so every
variant is reviewed before it is used, and the rejected ones are kept with the reason.

Flow, for each question and each variant index ``i`` in ``0..K-1``:

1. **Ask** any backend (``transformers`` incl. the embedded model, ``openai``-compatible,
   ``anthropic``) with the versioned prompt below (``EXPAND_PROMPT_VERSION``), sampling
   with a per-request seed derived from (question id, i).
2. **Cache**: the raw answer is appended to ``cache.jsonl`` under a key made of the
   question (id, wording, options), the model, the backend, the prompt version, the
   sampling temperature and ``i``; a second run (or a resumed one) asks only for what is
   not cached.
3. **Extract** the text after the last ``Rephrased:`` label (else the whole answer), first
   non-empty line, without a leading ``Question:`` label, quotes or markdown.
4. **Review** (``REVIEW_VERSION``), each check named in the review log:
   ``empty`` (nothing extracted); ``prompt_echo`` (the instructions or the DEF template came
   back); ``options_changed`` (an option list, or an option the original names in its
   wording is gone); ``answer_hint`` (an answer label, an option the original does not name
   that is named alone, or a leading word like "obviously"); ``language`` (written in another
   script than the question, ``culturesim.dataset_builder.wvs.detect_script_language``); ``length``
   (under half or over twice the original's length in characters, or under 8); ``copy``
   (the original again, inside a longer text or over 0.9 similar by ``difflib``); ``duplicate`` (an earlier
   accepted variant again); and with ``--judge-backend``, ``judge`` (the judge model did not
   answer YES to "same question, same options?").
5. **Write**: ``review.jsonl`` (every candidate: raw answer, extracted text, accepted or not,
   every failed check), ``data/paraphrases-<hash>.parquet`` (accepted variants with provenance:
   model, backend, prompt and review versions, checks passed, judge verdict),
   ``README.md`` (a dataset card whose YAML ``configs`` declares the ``paraphrases`` config),
   and ``expand.json`` (counts). ``datasets.load_dataset(DIR, "paraphrases", split="test")``
   loads it; ``culturesim simulate --paraphrases DIR`` gives each participant a variant.

The prompt (English; ``{language}`` is the question's language, e.g. ``English``)::

    Rephrase the following survey question so that it asks exactly the same thing in different words.
    Keep its meaning and keep it answerable with exactly the same answer options (listed below; do not change,
    add or remove options). Do not suggest or hint at an answer. Write it in {language}.
    Reply with the rephrased question only, on one line.
    Question: {question}
    Answer options: {options}
    Rephrased:
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import logging
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from culturesim.dataset_builder.wvs import detect_script_language
from culturesim.simulator.types import GenerationConfig, GenerationRequest
from culturesim.simulator.runfolder import write_atomic
from culturesim.dataset_builder.schema import data_file_name

__all__ = [
    "EXPAND_PROMPT_VERSION",
    "REVIEW_VERSION",
    "Candidate",
    "expand",
    "extract_variant",
    "expand_prompt",
    "review_variant",
]

log = logging.getLogger(__name__)

EXPAND_PROMPT_VERSION = "1.0"
"""Bump whenever the rephrasing prompt changes (it is part of every cache key)."""
REVIEW_VERSION = "1.0"
"""Bump whenever a review check changes."""
JUDGE_PROMPT_VERSION = "1.0"

CACHE_FILE = "cache.jsonl"
REVIEW_FILE = "review.jsonl"
SUMMARY_FILE = "expand.json"
CONFIG_NAME = "paraphrases"
LANGUAGE_NAMES = {"en": "English", "zh": "Chinese", "ja": "Japanese", "ar": "Arabic"}

PROMPT = (
    "Rephrase the following survey question so that it asks exactly the same thing in different words.\n"
    "Keep its meaning and keep it answerable with exactly the same answer options (listed below; do not change,\n"
    "add or remove options). Do not suggest or hint at an answer. Write it in {language}.\n"
    "Reply with the rephrased question only, on one line.\n"
    "Question: {question}\n"
    "Answer options: {options}\n"
    "Rephrased:"
)
JUDGE_PROMPT = (
    "Do these two survey questions ask exactly the same thing, so that the same answer options fit both "
    "and neither suggests an answer?\nQuestion A: {a}\nQuestion B: {b}\nAnswer options: {options}\n"
    "Reply with YES or NO only."
)

CHECKS = ("empty", "prompt_echo", "options_changed", "answer_hint", "language", "length", "copy", "duplicate")
MIN_LENGTH_RATIO, MAX_LENGTH_RATIO, MIN_CHARS = 0.5, 2.0, 8
COPY_SIMILARITY = 0.9
_LABEL_RE = re.compile(r"(?i)rephrased(?: question)?\s*[:：]")
_LEAD_LABEL_RE = re.compile(r"(?i)^(?:rephrased\s+)?question\s*[:：]")
_ECHO_RE = re.compile(r"(?i)rephrase the following|survey question so that|answer options\s*:|i want you to act as|"
                      r"\[echo\]|^user\s*:")
_ANSWER_RE = re.compile(r"(?i)\banswer\s*[:：]|答案[:：]|回答[:：]|the (?:right|correct|best) answer")
_HINT_WORDS = ("obviously", "of course", "clearly", "surely", "undoubtedly", "don't you agree", "everyone knows",
               "most people", "naturally", "当然", "显然", "もちろん")
_ENUM_RE = re.compile(r"(?:^|\s|\()(?:[1-9]|[A-Ha-h])[.)]\s+\S")
_SPACE_RE = re.compile(r"\s+")


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return _SPACE_RE.sub(" ", re.sub(r"[^\w\s]", " ", text)).strip()


def _mentions(text: str, option: str) -> bool:
    o = _norm(option)
    # a short inflection counts ("oppose" is named by "opposed", "favor" by "favoring")
    return bool(o) and re.search(rf"(?<!\w){re.escape(o)}\w{{0,3}}(?!\w)", _norm(text)) is not None


def expand_prompt(question: Any) -> str:
    """The rephrasing request for one question (see the module docstring)."""
    return PROMPT.format(language=LANGUAGE_NAMES.get(question.language, question.language),
                         question=question.question.strip(), options=" / ".join(o.strip() for o in question.options))


def extract_variant(raw: str) -> str:
    """The rephrased question in a model's answer: after the last ``Rephrased:`` label, first line."""
    text = raw or ""
    labels = list(_LABEL_RE.finditer(text))
    if labels:
        text = text[labels[-1].end():]
    for line in text.splitlines():
        line = line.strip().strip("*").strip()
        line = _LEAD_LABEL_RE.sub("", line).strip().strip("*").strip()
        line = line.strip("\"'“”「」").strip()
        if line:
            return line
    return ""


def review_variant(text: str, question: Any, accepted: Sequence[str] = ()) -> list[str]:
    """The names of the checks ``text`` fails as a rephrasing of ``question`` (empty: it passes)."""
    if not text.strip():
        return ["empty"]
    failed = []
    original = question.question
    if _ECHO_RE.search(text):
        failed.append("prompt_echo")
    named_before = [o for o in question.options if _mentions(original, o)]
    if _ENUM_RE.search(text) and len(_ENUM_RE.findall(text)) >= 2 and len(_ENUM_RE.findall(original)) < 2:
        failed.append("options_changed")
    elif any(not _mentions(text, o) for o in named_before):
        failed.append("options_changed")
    new_named = [o for o in question.options if o not in named_before and _mentions(text, o)]
    unnamed = [o for o in question.options if o not in named_before]
    hint_word = any(w in text.lower() and w not in original.lower() for w in _HINT_WORDS)
    if _ANSWER_RE.search(text) or hint_word or (new_named and len(new_named) < len(unnamed)):
        failed.append("answer_hint")

    if detect_script_language(text) != question.language:
        failed.append("language")
    n, n0 = len(text.strip()), len(original.strip())
    if n < MIN_CHARS or n < MIN_LENGTH_RATIO * n0 or n > MAX_LENGTH_RATIO * n0:
        failed.append("length")
    if (_norm(original) in _norm(text)
            or difflib.SequenceMatcher(None, _norm(text), _norm(original)).ratio() > COPY_SIMILARITY):
        failed.append("copy")
    if any(_norm(text) == _norm(a) for a in accepted):
        failed.append("duplicate")
    return failed


@dataclasses.dataclass
class Candidate:
    """One rephrasing asked for, its answer and its review."""

    question_id: str
    index: int
    cache_key: str
    raw_text: str = ""
    error: str | None = None
    text: str = ""
    reasons: list[str] = dataclasses.field(default_factory=list)
    judge: str | None = None

    @property
    def accepted(self) -> bool:
        return not self.reasons


def cache_key(question: Any, model: str, backend: str, index: int, temperature: float) -> str:
    """The cache key of variant ``index`` of ``question`` from ``model`` (module docstring)."""
    ident = json.dumps([question.id, question.question, list(question.options), model, backend, EXPAND_PROMPT_VERSION,
                        temperature, index], ensure_ascii=False)
    return hashlib.sha256(ident.encode()).hexdigest()


def _read_cache(path: Path) -> dict[str, dict[str, Any]]:
    """The cached answers by key; a truncated last line (an interrupted write) is cut off."""
    if not path.exists():
        return {}
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        log.warning("%s: dropping a truncated last line left by an interrupted run", path)
        with open(path, "r+b") as fh:
            fh.truncate(end)
    out = {}
    for number, line in enumerate(data[:end].splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: line {number} is not valid JSON ({exc}); delete the file to ask again") from exc
            out[row["key"]] = row
    return out


def _request_seed(question_id: str, index: int, seed: int) -> int:
    digest = hashlib.sha256(f"{seed}:{question_id}:{index}:expand".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def _judge(judge_backend: Any, candidates: list[Candidate], questions: dict[str, Any], max_new_tokens: int) -> None:

    todo = [c for c in candidates if c.accepted]
    if not todo:
        return
    requests = [GenerationRequest(
        messages=({"role": "user", "content": JUDGE_PROMPT.format(
            a=questions[c.question_id].question, b=c.text, options=" / ".join(questions[c.question_id].options))},),
        config=GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, temperature=None, top_p=None),
        key=f"judge:{c.question_id}:{c.index}") for c in todo]
    for c, r in zip(todo, judge_backend.generate(requests)):
        verdict = (r.text or "").strip().upper()
        c.judge = "yes" if verdict.startswith("YES") else ("no" if verdict.startswith("NO") else "unclear")
        if c.judge != "yes":
            c.reasons.append("judge")


def expand(
    out: str | Path,
    questions: Sequence[Any],
    backend: Any,
    variants: int = 3,
    seed: int = 0,
    temperature: float = 1.0,
    max_new_tokens: int = 128,
    judge_backend: Any = None,
) -> dict[str, Any]:
    """Ask ``backend`` for ``variants`` rephrasings of each question, review them, write ``out``."""

    if variants < 1:
        raise ValueError(f"--variants {variants} must be >= 1")
    if not questions:
        raise ValueError("No questions to rephrase: check --culture/--language/--questions/--question-ids")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = getattr(backend, "model_id", "") or ""
    backend_name = getattr(backend, "name", "backend")
    cache = _read_cache(out / CACHE_FILE)
    by_id = {q.id: q for q in questions}
    candidates = [Candidate(q.id, i, cache_key(q, model, backend_name, i, temperature))
                  for q in questions for i in range(variants)]
    todo = [c for c in candidates if c.cache_key not in cache or cache[c.cache_key].get("error")]
    asked = len(todo)
    if todo:
        requests = [GenerationRequest(
            messages=({"role": "user", "content": expand_prompt(by_id[c.question_id])},),
            config=GenerationConfig(max_new_tokens=max_new_tokens, do_sample=True, temperature=temperature, top_p=1.0,
                                    seed=_request_seed(c.question_id, c.index, seed)),
            key=f"expand:{c.question_id}:{c.index}") for c in todo]
        results = backend.generate(requests)
        with open(out / CACHE_FILE, "ab") as fh:
            for c, r in zip(todo, results):
                row = {"key": c.cache_key, "question_id": c.question_id, "index": c.index, "model": model,
                       "backend": backend_name, "prompt_version": EXPAND_PROMPT_VERSION, "temperature": temperature,
                       "raw_text": r.text or "", "error": r.error,
                       "tokens": {"input": r.input_tokens, "output": r.output_tokens}}
                cache[c.cache_key] = row
                fh.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
    accepted_text: dict[str, list[str]] = {}
    for c in candidates:
        hit = cache[c.cache_key]
        c.raw_text, c.error = hit.get("raw_text") or "", hit.get("error")
        c.text = extract_variant(c.raw_text)
        c.reasons = review_variant(c.text, by_id[c.question_id], accepted_text.get(c.question_id, ()))
        if c.error and not c.raw_text:
            c.reasons = ["error"]
        if c.accepted:
            accepted_text.setdefault(c.question_id, []).append(c.text)
    if judge_backend is not None:
        _judge(judge_backend, candidates, by_id, 8)
    provenance = {"model": model, "backend": backend_name, "prompt_version": EXPAND_PROMPT_VERSION,
                  "review_version": REVIEW_VERSION, "temperature": temperature,
                  "judge_model": getattr(judge_backend, "model_id", None) if judge_backend is not None else None}
    review_rows = [{"question_id": c.question_id, "variant_index": c.index, **provenance, "raw_text": c.raw_text,
                    "error": c.error, "text": c.text, "accepted": c.accepted, "reasons": c.reasons, "judge": c.judge}
                   for c in candidates]
    write_atomic(out / REVIEW_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in review_rows))
    rows = [_paraphrase_row(by_id[c.question_id], c, provenance, judge_backend is not None)
            for c in candidates if c.accepted]
    data_file = _write_config(out, rows)
    reasons = Counter(r for c in candidates for r in c.reasons)
    summary = {
        "format": "culturesim-paraphrases",
        **provenance,
        "questions": len(questions),
        "variants_per_question": variants,
        "candidates": len(candidates),
        "asked": asked,
        "from_cache": len(candidates) - asked,
        "accepted": sum(c.accepted for c in candidates),
        "rejected": sum(not c.accepted for c in candidates),
        "rejected_by_check": dict(sorted(reasons.items())),
        "questions_with_variants": len({c.question_id for c in candidates if c.accepted}),
        "data_file": data_file,
    }
    write_atomic(out / SUMMARY_FILE, json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
    write_atomic(out / "README.md", _card(summary))
    return summary


def _paraphrase_row(q: Any, c: Candidate, provenance: dict[str, Any], judged: bool) -> dict[str, Any]:
    return {
        "id": f"{q.id}~p{c.index}", "question_id": q.id, "parallel_id": q.parallel_id, "culture": q.culture,
        "language": q.language, "question": c.text, "original_question": q.question, "options": list(q.options),
        "option_codes": list(q.option_codes), "question_type": q.question_type, "variant_index": c.index,
        "model": provenance["model"], "backend": provenance["backend"], "prompt_version": provenance["prompt_version"],
        "review_version": provenance["review_version"],
        "review_checks": list(CHECKS) + (["judge"] if judged else []), "judge": c.judge,
        "judge_model": provenance["judge_model"],
    }


def _schema():
    import pyarrow as pa

    return pa.schema([
        ("id", pa.string()), ("question_id", pa.string()), ("parallel_id", pa.string()), ("culture", pa.string()),
        ("language", pa.string()), ("question", pa.string()), ("original_question", pa.string()),
        ("options", pa.list_(pa.string())), ("option_codes", pa.list_(pa.int32())), ("question_type", pa.string()),
        ("variant_index", pa.int32()), ("model", pa.string()), ("backend", pa.string()),
        ("prompt_version", pa.string()), ("review_version", pa.string()), ("review_checks", pa.list_(pa.string())),
        ("judge", pa.string()), ("judge_model", pa.string()),
    ])


def _write_config(out: Path, rows: list[dict[str, Any]]) -> str:
    """Write the accepted variants as ``data/paraphrases-<hash>.parquet`` (named by content, as the
    dataset's files are: ``schema.data_file_name``); return its path relative to ``out``."""
    import pyarrow as pa
    import pyarrow.parquet as pq


    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows, schema=_schema()), sink, compression="zstd", write_statistics=False)
    payload = sink.getvalue().to_pybytes()
    path = data / data_file_name(CONFIG_NAME, payload)
    tmp = path.with_suffix(".parquet.tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)
    for old in data.glob(f"{CONFIG_NAME}*.parquet"):
        if old != path:
            old.unlink()
    if not rows:
        log.warning("%s: no variant was accepted; the paraphrases config has no rows (datasets.load_dataset cannot "
                    "load an empty parquet file; see review.jsonl for the reasons)", path)
    return str(path.relative_to(out))


def _card(summary: dict[str, Any]) -> str:
    import yaml

    meta = {"pretty_name": "culturesim question paraphrases", "tags": ["survey", "paraphrase", "culturesim"],
            "configs": [{"config_name": CONFIG_NAME, "data_files": [{"split": "test", "path": summary["data_file"]}]}]}
    reasons = "\n".join(f"| {k} | {v} |" for k, v in summary["rejected_by_check"].items()) or "| (none) | 0 |"
    return (
        "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n\n"
        "# Paraphrases of culturesim questions\n\n"
        f"Rephrasings written by `{summary['model']}` ({summary['backend']} backend) with prompt version "
        f"{summary['prompt_version']}, reviewed in code (review version {summary['review_version']}"
        + (f", judge `{summary['judge_model']}`" if summary.get("judge_model") else "")
        + f"). {summary['accepted']} of {summary['candidates']} candidates accepted for "
        f"{summary['questions_with_variants']} of {summary['questions']} questions; every candidate and the checks it "
        "failed are in `review.jsonl`.\n\n"
        "```python\nfrom datasets import load_dataset\nparaphrases = load_dataset(\"PATH\", \"paraphrases\", split=\"test\")\n```\n\n"
        "Columns: `id` (question id + `~p` + variant index), `question_id`, `question` (the rephrasing), "
        "`original_question`, `options` and `option_codes` (unchanged), provenance (`model`, `backend`, "
        "`prompt_version`, `review_version`, `review_checks`, `judge`).\n\n"
        "| rejected by check | candidates |\n| --- | --- |\n" + reasons + "\n\n"
        "A passed review is a screen, not a guarantee of the same meaning: read a sample before relying on it.\n\n"
        "datasets 5 caches a local folder by its name and config: it has served another folder of the same name "
        "from its cache; pass `download_mode=\"force_redownload\"` after writing a new one.\n"
    )
