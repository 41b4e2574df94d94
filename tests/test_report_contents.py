"""What report.html tells a reader, on a hand-written run (fast): the run's settings, what
the numbers rest on (parse rate, responses by status, dropped questions with the reason,
warnings at stated thresholds), intervals from one question shown as such, and a glossary
defining every abbreviation on the page."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from culturesim.simulator.analysis.glossary import GLOSSARY, glossary, glossary_markdown
from culturesim.simulator.analysis.report import build_report
from culturesim.simulator.analysis.scoring import MIN_ANSWERS_PER_QUESTION, MIN_QUESTIONS_PER_DIMENSION, PARSE_RATE_WARNING
from culturesim.simulator.questions import Question, load_questions
from culturesim.simulator.runfolder import write_config, write_questions, write_rows


def _row(pid: int, q: Question, status: str, indices: list[int]) -> dict:
    return {"key": f"{pid}:{q.id}", "participant_id": pid, "question_id": q.id, "status": status,
            "option_indices": indices, "option_order": list(range(len(q.options))),
            "parsed": [q.option_codes[i] for i in indices], "raw_text": f"Answer: {indices[0] + 1}" if indices else "",
            "tokens": {"input": 1, "output": 1}}


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("style", "script")

    def handle_endtag(self, tag):
        self._skip -= tag in ("style", "script")

    def handle_data(self, data):
        if not self._skip:
            self.chunks.append(data)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    base = tmp_path_factory.mktemp("contents")
    us = load_questions("US")
    gss = [q for q in us if q.source == "GSS" and q.value_dimensions][:3]
    wvs = [q for q in us if q.source == "WVS" and q.value_dimensions][:2]
    questions = gss + wvs
    dropped = questions[2]
    rows = []
    for q in questions:
        for pid in range(6):
            if q is dropped:
                rows.append(_row(pid, q, "no_answer" if pid < 4 else "number_text_disagree", []))
            elif pid < 2:
                rows.append(_row(pid, q, "ok", [pid % len(q.options)]))
            else:
                rows.append(_row(pid, q, ("no_answer", "multiple_for_single", "refusal", "no_answer")[pid - 2], []))
    run = base / "run"
    run.mkdir()
    config = {"model": "hand-written-model", "backend": {"backend": "none"}, "plan": "all", "modifications": ["config"],
              "plan_settings": {"max_beams": 2, "max_memory": 15, "temperature_range": [0.7, 1.3],
                                "top_p_range": [0.9, 1.0], "shuffle_options": True},
              "culture": "US", "languages": ["en"], "participants": 6, "participant_ids": list(range(6)), "seed": 41,
              "max_new_tokens": 96, "question_ids": [q.id for q in questions], "prompt_version": "1.0",
              "parser_version": "1.1", "runner_version": "1.0", "created_at": "2026-12-01T09:00:00+00:00",
              "command": ["/some/bin/culturesim", "simulate", "--seed", "41"]}
    write_questions(run, questions)
    write_rows(run, rows)
    write_config(run, config)
    out = base / "report"
    rep = build_report([run], out, bootstrap_samples=50)
    page = (out / "report.html").read_text()
    parser = _Text()
    parser.feed(page)
    return rep, page, " ".join(parser.chunks), dropped, len(rows)


def test_report_states_the_run_settings(report):
    rep, page, text, _, _ = report
    settings = rep["runs"][0]["settings"]
    assert settings["model"] == "hand-written-model" and settings["seed"] == 41 and settings["participants"] == 6
    assert settings["max beams"] == 2 and settings["max new tokens"] == 96 and settings["plan"] == "all"
    assert settings["command"] == "culturesim simulate --seed 41"  # no local install path
    for shown in ("hand-written-model", "2026-12-01T09:00:00+00:00", "parser 1.1", "culturesim simulate --seed 41"):
        assert shown in text, shown
    assert re.search(r"<td>seed</td><td>41</td>", page)


def test_report_states_what_the_numbers_rest_on(report):
    rep, page, text, dropped, n_rows = report
    ok = 4 * 2  # two ok answers on each of the four answered questions
    assert f"Parse rate {ok / n_rows:.0%}" in text
    assert f"{ok} of {n_rows} responses parsed" in text
    support = rep["runs"][0]["support"]
    assert support["questions_dropped"] == [{"id": dropped.id,
                                             "reason": "no parsed answer (4 no_answer, 2 number_text_disagree)"}]
    assert dropped.id in text and "no parsed answer (4 no_answer, 2 number_text_disagree)" in text
    assert support["status_counts"] == {"ok": 8, "no_answer": 12, "multiple_for_single": 4, "refusal": 4,
                                        "number_text_disagree": 2}
    # Warnings, each threshold stated.
    assert f"parse rate below {PARSE_RATE_WARNING:.0%}" in text
    assert f"fewer than {MIN_ANSWERS_PER_QUESTION} parsed answers" in text
    assert f"fewer than {MIN_QUESTIONS_PER_DIMENSION} questions" in text
    warnings = rep["runs"][0]["warnings"]
    assert any(w.startswith(f"Only {ok / n_rows:.0%} of responses parsed") for w in warnings)
    assert all(w in text for w in warnings)


def test_one_question_intervals_are_shown_as_such(report):
    rep, page, text, _, _ = report
    single = [d for d, s in rep["runs"][0]["per_dimension"].items() if s["n_questions"] == 1]
    assert single, "the fixture should give some dimension a single question"
    for d in single:
        assert re.search(rf"<td>{d}</td><td class=n>1</td><td class=n>[0-9.]+</td><td>none \(1 question\)</td>", page), d


def test_every_abbreviation_on_the_page_is_in_the_glossary(report):
    rep, page, text, _, _ = report
    assert "<h2 id=glossary>Glossary</h2>" in page
    defined = {part.strip() for t in glossary() for part in t.term.split("/")}
    body = text.rsplit("Glossary", 1)[0]  # the page above the glossary itself
    # Abbreviations: two or more capitals (digits allowed), outside question ids and run labels.
    for label in [r["label"] for r in rep["runs"]] + [p["id"] for p in rep["runs"][0]["support"]["per_question"]]:
        body = body.replace(label, " ")
    used = set(re.findall(r"(?<![\w.])[A-Z][A-Z0-9]{1,5}(?![\w.])", body))
    assert used, body[:500]
    assert used - defined == set()
    for term in ("KL", "JS", "Wasserstein", "match rate", "distinct answers", "matched / mismatched", "bias count",
                 "–", "IU", "QC", "RP", "CV", "FF", "IR", "EVI", "USI", "parse rate", "number_text_disagree"):
        assert term in {t.term for t in GLOSSARY}, term
    # Every measure says which way is better.
    for t in GLOSSARY:
        if t.group == "insensitivity" and t.term in ("IU", "QC", "RP", "CV", "FF", "IR"):
            assert t.direction == "lower is better", t
    assert "| **KL** |" in glossary_markdown()


def test_metric_definitions_are_merged_into_the_glossary():
    from culturesim.metrics.cultural_alignment import describe

    from culturesim.simulator.analysis.glossary import METRIC_TERMS

    terms = {t.term: t for t in glossary(metric_terms=METRIC_TERMS)}
    for term, key in METRIC_TERMS.items():
        assert terms[term].meaning == describe(key), term
    assert terms["normalised score"].direction == "higher is better"
    assert {t.term: t for t in glossary({"x": "a thing; lower is better"})}["x"].direction == "lower is better"


def test_report_shows_what_a_score_means(report):
    rep, page, text, _, _ = report
    sm = rep["runs"][0]["score_meaning"]
    assert sm["floor_kl_mean"] is not None and sm["uniform_kl_mean"] is not None
    assert "What a score means" in text and "normalised score" in text
    kl = f"{sm['kl_mean']:.3f}"
    assert f"<td>KL</td><td class=n>{kl}</td>" in page
    for term in ("floor", "uniform baseline", "normalised score", "worth N respondents",
                 "floor at P (yardstick)", "survey noise (yardstick)"):
        assert f"<td><b>{term}</b></td>" in page, term
