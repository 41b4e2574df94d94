"""The Space's plain functions (culturesim.space, space.publish, the space CLI commands), without a browser.

A small dataset folder is written with the dataset's own Arrow schema so the filter counts
below can be checked by hand; uploads are real files; scores come from the real runner
scoring and metric and are checked against scipy.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import gradio
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from scipy.spatial.distance import jensenshannon

from culturesim.dataset_builder.schema import SCHEMA
from culturesim.simulator.analysis.scoring import score_run
from culturesim.simulator.participants import PlanSettings
from culturesim.simulator.questions import load_questions
from culturesim.simulator.runner import build_config
from culturesim import space
from culturesim.space import models, publish

REPO = Path(__file__).resolve().parent.parent


def _row(**kw):
    base = {
        "is_native_language": True, "source": "GSS", "source_year": 2022, "source_variable": "v",
        "question_type": "single_choice", "ordinal": True, "human_n": 1000, "value_dimension_rationale": "test",
        "topic": "Women", "demographics": [], "parallel_id": "", "repairs": [],
    }
    base.update(kw)
    base.setdefault("option_codes", list(range(1, len(base["options"]) + 1)))
    return base


def _demo(group_type, group, dist, n=100):
    return {"group_type": group_type, "group": group, "year": 2018, "n": n, "distribution": dist}


ROWS = [
    _row(id="gss2022.fefam.en", culture="US", language="en", source_variable="fefam",
         question="It is much better for everyone involved if the man is the achiever outside the home.",
         options=["Strongly agree", "Agree", "Disagree", "Strongly disagree"],
         human_distribution=[0.1, 0.2, 0.4, 0.3], value_dimensions=["EVI", "MAS"], topic="Women",
         parallel_id="gss.fefam",
         demographics=[_demo("sex", "female", [0.05, 0.15, 0.45, 0.35]), _demo("sex", "male", [0.15, 0.25, 0.35, 0.25]),
                       _demo("age", "18-29", [0.05, 0.1, 0.45, 0.4]), _demo("age", "30-49", [0.1, 0.2, 0.4, 0.3]),
                       _demo("age", "50+", [0.15, 0.25, 0.35, 0.25])]),
    _row(id="gss2022.postlife.en", culture="US", language="en", source_variable="postlife",
         question="Do you believe there is a life after death?", options=["Yes", "No"],
         human_distribution=[0.7, 0.3], value_dimensions=["TDI"], topic="Religion", ordinal=False,
         parallel_id="gss.postlife"),
    _row(id="wvs7.US.Q1.en", culture="US", language="en", source="WVS", source_year=2017, source_variable="Q1",
         question="For each of the following, indicate how important it is in your life. Family",
         options=["Very important", "Rather important", "Not very important"], human_distribution=[0.9, 0.08, 0.02],
         value_dimensions=["IDV", "TDI"], topic="Social Values, Norms, Stereotypes", parallel_id="wvs7.Q1", comparable=True),
    _row(id="wvs7.CN.Q1.zh", culture="CN", language="zh", source="WVS", source_year=2018, source_variable="Q1",
         question="请说明以下各项在您生活中的重要性：家庭", options=["非常重要", "比较重要", "不太重要"],
         human_distribution=[0.85, 0.12, 0.03], value_dimensions=["IDV", "TDI"], topic="Social Values, Norms, Stereotypes",
         parallel_id="wvs7.Q1", comparable=True),
    _row(id="wvs7.CN.Q1.en", culture="CN", language="en", is_native_language=False, source="WVS", source_year=2018,
         source_variable="Q1", question="For each of the following, indicate how important it is in your life. Family",
         options=["Very important", "Rather important", "Not very important"], human_distribution=[0.85, 0.12, 0.03],
         value_dimensions=["IDV", "TDI"], topic="Social Values, Norms, Stereotypes", parallel_id="wvs7.Q1", comparable=True),
]


@pytest.fixture()
def tiny_dataset(tmp_path: Path) -> Path:
    data = tmp_path / "dataset" / "data"
    data.mkdir(parents=True)
    for culture in ("US", "CN"):
        rows = [r for r in ROWS if r["culture"] == culture]
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), data / f"{culture}.parquet")
    return tmp_path / "dataset"


# ---- Explore ------------------------------------------------------------------------------


def test_explore_filters_count_by_hand(tiny_dataset: Path) -> None:
    frame = space.dataset_frame(tiny_dataset)
    choices = space.explore_choices(frame)
    assert choices["culture"] == [space.ALL, "CN", "US"]
    assert choices["language"] == [space.ALL, "en", "zh"]
    assert choices["source"] == [space.ALL, "GSS", "WVS"]
    assert choices["value_dimension"] == [space.ALL, "EVI", "IDV", "MAS", "TDI"]  # dataset order of VALUE_DIMENSIONS
    assert len(space.explore_table(frame)) == 5
    assert list(space.explore_table(frame, culture="US")["id"]) == ["gss2022.fefam.en", "gss2022.postlife.en", "wvs7.US.Q1.en"]
    assert list(space.explore_table(frame, language="en", source="WVS")["id"]) == ["wvs7.CN.Q1.en", "wvs7.US.Q1.en"]
    assert list(space.explore_table(frame, value_dimension="TDI", culture="CN")["id"]) == ["wvs7.CN.Q1.zh", "wvs7.CN.Q1.en"]
    assert list(space.explore_table(frame, topic="Religion")["id"]) == ["gss2022.postlife.en"]
    assert list(space.explore_table(frame, search="AFTER DEATH")["id"]) == ["gss2022.postlife.en"]
    table = space.explore_table(frame, culture="US", value_dimension="MAS")
    assert table.iloc[0]["value_dimensions"] == "EVI MAS" and table.iloc[0]["options"] == 4
    with pytest.raises(ValueError, match="Unknown culture 'FR'.*CN, US"):
        space.explore_table(frame, culture="FR")
    with pytest.raises(ValueError, match="Unknown value dimension 'XYZ'"):
        space.explore_table(frame, value_dimension="XYZ")


def test_question_view_shows_options_shares_and_groups(tiny_dataset: Path) -> None:
    frame = space.dataset_frame(tiny_dataset)
    header, table, fig = space.question_view(frame, "gss2022.fefam.en")
    assert "man is the achiever" in header and "EVI, MAS" in header and "1000" in header
    assert list(table["option"]) == ["Strongly agree", "Agree", "Disagree", "Strongly disagree"]
    assert list(table["human share"]) == [0.1, 0.2, 0.4, 0.3]
    assert list(table["sex: female"]) == [0.05, 0.15, 0.45, 0.35]
    assert list(table["age: 50+"]) == [0.15, 0.25, 0.35, 0.25]
    assert [ax.get_title() for ax in fig.axes] == ["All respondents", "By sex", "By age"]
    # bar lengths are the shares: 4 options x (1 + 2 + 3) groups
    widths = sorted(round(p.get_width(), 4) for ax in fig.axes for p in ax.patches)
    expected = sorted([0.1, 0.2, 0.4, 0.3] + [0.05, 0.15, 0.45, 0.35, 0.15, 0.25, 0.35, 0.25]
                      + [0.05, 0.1, 0.45, 0.4, 0.1, 0.2, 0.4, 0.3, 0.15, 0.25, 0.35, 0.25])
    assert widths == expected
    _, table, fig = space.question_view(frame, "wvs7.CN.Q1.zh")
    assert list(table.columns) == ["code", "option", "human share"]
    assert len(fig.axes) == 1
    with pytest.raises(ValueError, match="No question with id 'nope'"):
        space.question_view(frame, "nope")


def test_languages_and_selections(tiny_dataset: Path) -> None:
    frame = space.dataset_frame(tiny_dataset)
    assert space.language_choices(frame, "CN") == ["zh", "en"]
    assert space.language_choices(frame, "US") == ["en"]
    assert space.selection_choices(frame, "US", "en", "value dimension") == ["EVI", "IDV", "MAS", "TDI"]
    assert space.selection_choices(frame, "US", "en", "topic") == ["Religion", "Social Values, Norms, Stereotypes", "Women"]
    spec = space.JobSpec(culture="US", select_by="value dimension", selection=("TDI",), questions=5)
    assert [q.id for q in space.select_questions(spec, tiny_dataset)] == ["gss2022.postlife.en", "wvs7.US.Q1.en"]
    spec = space.JobSpec(culture="CN", language="en", questions=5)
    assert [q.id for q in space.select_questions(spec, tiny_dataset)] == ["wvs7.CN.Q1.en"]
    with pytest.raises(ValueError, match="Unknown culture 'XX'"):
        space.language_choices(frame, "XX")


# ---- Limits --------------------------------------------------------------------------------


def test_job_caps_are_refused_with_the_cap_named() -> None:
    limits = space.SpaceLimits(max_responses=20, max_questions=10, max_participants=8, max_new_tokens=64)
    space.check_job(space.DEFAULT_JOB, limits)  # the defaults fit the CPU caps
    space.check_job(space.DEFAULT_JOB, space.SpaceLimits.for_hardware(space.Hardware(None, 0, 2)))
    with pytest.raises(ValueError, match=r"6 questions x 4 participants = 24 responses is over this Space's cap of 20"):
        space.check_job(space.JobSpec(questions=6, participants=4), limits)
    with pytest.raises(ValueError, match="participants=9 is over this Space's cap of 8"):
        space.check_job(space.JobSpec(questions=1, participants=9), limits)
    with pytest.raises(ValueError, match="max_new_tokens=65 is over"):
        space.check_job(space.JobSpec(max_new_tokens=65), limits)
    with pytest.raises(ValueError, match="questions=0 must be a whole number >= 1"):
        space.check_job(space.JobSpec(questions=0), limits)
    with pytest.raises(ValueError, match="Unknown plan 'bogus'"):
        space.check_job(space.JobSpec(plan="bogus"), limits)


def test_job_spec_from_form_values() -> None:
    spec = space.job_spec(questions=3.0, participants=2.0, seed=7.0, temperature_range=(0.5, 1), selection=None)
    assert (spec.questions, spec.participants, spec.seed, spec.temperature_range, spec.selection) == (3, 2, 7, (0.5, 1.0), ())
    with pytest.raises(ValueError, match="participants must be a whole number, got 2.5"):
        space.job_spec(participants=2.5)
    with pytest.raises(ValueError, match="questions must be a whole number, got None"):
        space.job_spec(questions=None)


def test_hardware_limits() -> None:
    cpu = space.SpaceLimits.for_hardware(space.Hardware(None, 0.0, 2))
    h100 = space.SpaceLimits.for_hardware(space.Hardware("NVIDIA H100", 80.0, 16))
    t4 = space.SpaceLimits.for_hardware(space.Hardware("Tesla T4", 16.0, 4))
    assert cpu.max_model_params == 1e9 and cpu.max_responses == 200
    assert t4.max_model_params == pytest.approx(0.75 * 16e9 / 2)  # bf16 only: 6B
    assert h100.max_model_params == pytest.approx(min(0.75 * 80e9 / 0.6, 80e9))  # 4-bit above 10B
    assert h100.max_responses > cpu.max_responses
    assert space.SpaceLimits.for_hardware(space.Hardware(None, 0, 2), max_responses=7).max_responses == 7


def test_model_sizes_from_names_and_safetensors(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    assert space.model_parameter_count("Qwen/Qwen2.5-0.5B-Instruct", lookup_hub=False)[0] == 0.5e9
    assert space.model_parameter_count("HuggingFaceTB/SmolLM2-135M-Instruct", lookup_hub=False)[0] == 135e6
    assert space.model_parameter_count("mistralai/Mixtral-8x7B-v0.1", lookup_hub=False)[0] == 56e9
    assert space.model_parameter_count("meta-llama/Llama-3.1-8B-Instruct", lookup_hub=False)[0] == 8e9
    assert space.model_parameter_count("openai-community/gpt2", lookup_hub=False)[0] is None
    save_file({"a": torch.zeros(3, 4), "b": torch.zeros(5)}, str(tmp_path / "model.safetensors"))
    assert space.model_parameter_count(str(tmp_path), lookup_hub=False) == (17.0, "safetensors headers")

    cpu, limits = space.Hardware(None, 0.0, 2), space.SpaceLimits()
    assert space.check_model_size("Qwen/Qwen2.5-0.5B-Instruct", cpu, limits, lookup_hub=False) == 0.5e9
    with pytest.raises(ValueError, match=r"about 8.00B parameters.*up to 1.0B"):
        space.check_model_size("meta-llama/Llama-3.1-8B-Instruct", cpu, limits, lookup_hub=False)
    with pytest.raises(ValueError, match="Cannot tell how big 'openai-community/gpt2' is"):
        space.check_model_size("openai-community/gpt2", cpu, limits, lookup_hub=False)
    gpu = space.Hardware("NVIDIA H100", 80.0, 16)
    assert space.check_model_size("meta-llama/Llama-3.1-8B-Instruct", gpu, space.SpaceLimits.for_hardware(gpu),
                                  lookup_hub=False) == 8e9
    with pytest.raises(ValueError, match="Give a Hub model id"):
        space.check_model_size("  ", cpu, limits)


def test_redact_and_claude_key_checks() -> None:
    key = "sk-ant-test-SECRET123-abcdefgh"
    assert space.redact(f"auth failed for {key}!", key) == "auth failed for [redacted]!"
    assert space.redact("key ends ...abcdefgh", key) == "key ends ...[redacted]"
    assert space.redact(None, key) == ""
    assert space.redact("nothing", None) == "nothing"
    with pytest.raises(ValueError, match="Paste an Anthropic API key"):
        models.claude_backend("claude-sonnet-4-5", "  ")
    with pytest.raises(ValueError, match="Unknown Claude model 'gpt-4'"):
        models.claude_backend("gpt-4", "sk-ant-x")


def test_claude_backend_holds_the_pasted_key_not_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    backend = models.claude_backend("claude-haiku-4-5", "sk-ant-test-SECRET123")
    try:
        assert "ANTHROPIC_API_KEY" not in os.environ
        assert "SECRET123" not in json.dumps(backend.describe())
        assert backend.redact("x sk-ant-test-SECRET123 y") == "x *** y"
    finally:
        backend.close()


def _claude_job(questions: int = 1) -> space.JobSpec:
    return space.JobSpec(model_kind="claude", model_id="claude-haiku-4-5", culture="US", questions=questions,
                         participants=1, max_new_tokens=16)


def test_claude_job_that_cannot_connect_fails_with_the_reason_and_no_key(tiny_dataset: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from katan import free_port

    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    key = "sk-ant-test-SECRET123"
    updates = []
    # Nothing answers at all: the remote backend stops the job at once with one message
    # (simulator.backends.base.BackendUnavailable), no failed rows are written for it, and the
    # Space ends the job as a failure saying why, in words a visitor can act on.
    with pytest.raises(space.JobFailed, match="no request got an answer: .*connection refused") as failure:
        for update in space.run_job(_claude_job(), tmp_path / "runs", space.SpaceLimits(), space.Hardware(None, 0, 2),
                                    api_key=key, dataset_dir=tiny_dataset):
            updates.append(update)
    message = space.user_message(failure.value, tmp_path / "runs")
    assert message.startswith("Failed: no request got an answer") and "try again later" in message
    assert "--base-url" not in message  # a CLI fix means nothing on the page
    assert str(tmp_path) not in message and "{" not in message  # no server path, no raw dict
    assert "SECRET123" not in " ".join(u.message for u in updates) + message
    leaks = [p for p in (tmp_path / "runs").rglob("*") if p.is_file() and b"SECRET123" in p.read_bytes()]
    assert not leaks


def test_job_timeout_stops_a_running_job(tiny_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from katan import start_katan

    with start_katan(latency_ms=1500) as server:  # a real HTTP model that takes 1.5 s per answer
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_url)
        limits = space.SpaceLimits(job_timeout_s=2.0)
        seen = []
        started = time.monotonic()
        with pytest.raises(space.JobTimeout, match="ran past this Space's limit of 2 s"):
            for update in space.run_job(_claude_job(questions=3), tmp_path / "runs", limits, space.Hardware(None, 0, 2),
                                        api_key="sk-ant-any", dataset_dir=tiny_dataset):
                seen.append(update)
        elapsed = time.monotonic() - started
    assert elapsed < 2.0 + 1.5 + 2.0  # stopped at the first batch boundary after the limit
    rows = [r for u in seen for r in u.rows]
    assert 1 <= len({r["question_id"] for r in rows}) < 3  # the rows so far arrived; the job did not finish
    run_dir = seen[0].run_dir
    assert 1 <= len((run_dir / "responses.jsonl").read_text().splitlines()) < 3  # and are kept on disk


def test_user_messages() -> None:
    assert space.user_message(ValueError("bad value")) == "bad value"
    assert "Ask fewer questions" in space.user_message(space.JobTimeout("the job ran past this Space's limit of 5 s"))
    assert space.user_message(KeyError("x")) == "KeyError: 'x'"
    assert space.user_message(space.JobCancelled("stopped after 3 of 20")) == "Cancelled: stopped after 3 of 20."
    runs = Path("/tmp/some-runs")
    assert space.user_message(FileNotFoundError(f"{runs}/abc/scores.json is missing"), runs) == \
        "…/abc/scores.json is missing"


# ---- Uploads --------------------------------------------------------------------------------


def _answers(question_id: str, indices: list[int], start: int = 0) -> list[dict]:
    return [{"participant_id": start + i, "question_id": question_id, "status": "ok", "option_indices": [k],
             "raw_text": f"Answer: {k + 1}", "plan": "all"} for i, k in enumerate(indices)]


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("line2", "message"),
    [
        ("{not json", r"line 2: not valid JSON"),
        ("[1, 2]", r"line 2: a row must be a JSON object, got list"),
        ('{"participant_id": 1, "question_id": "gss2022.postlife.en", "status": "ok"}', r"line 2: missing field\(s\) option_indices"),
        ('{"participant_id": -1, "question_id": "gss2022.postlife.en", "status": "ok", "option_indices": [0]}',
         r"line 2: participant_id -1 must be a whole number >= 0"),
        ('{"participant_id": 1, "question_id": "gss2022.postlife.en", "status": "great", "option_indices": [0]}',
         r"line 2: status 'great' is not one of ok, no_answer"),
        ('{"participant_id": 1, "question_id": "gss2022.postlife.en", "status": "ok", "option_indices": [2]}',
         r"line 2: option_indices \[2\] do not fit 'gss2022.postlife.en', which has 2 options"),
        ('{"participant_id": 1, "question_id": "gss2022.postlife.en", "status": "ok", "option_indices": [0, 1]}',
         r"line 2: 2 options for single-choice question"),
        ('{"participant_id": 1, "question_id": "gss2022.nope.en", "status": "ok", "option_indices": [0]}',
         r"line 2: question_id 'gss2022.nope.en' is not in the dataset"),
        ('{"participant_id": 0, "question_id": "gss2022.postlife.en", "status": "ok", "option_indices": [1]}',
         r"line 2: participant 0 already answered 'gss2022.postlife.en' on line 1"),
        ('{"participant_id": 1, "question_id": "gss2022.postlife.en", "status": "ok", "option_indices": "0"}',
         r"line 2: option_indices '0' must be a list of whole numbers"),
    ],
)
def test_malformed_uploads_name_the_line(tiny_dataset: Path, tmp_path: Path, line2: str, message: str) -> None:
    path = _write_jsonl(tmp_path / "responses.jsonl", [_answers("gss2022.postlife.en", [0])[0], line2])
    with pytest.raises(ValueError, match=message):
        space.prepare_uploaded_run(path, tmp_path / "work", tiny_dataset)


def test_upload_that_is_not_utf8_or_empty(tiny_dataset: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(json.dumps(_answers("gss2022.postlife.en", [0])[0]).encode() + b"\n\xff\xfe\n")
    with pytest.raises(ValueError, match="line 2: not UTF-8 text"):
        space.read_responses_upload(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match="empty.jsonl has no rows"):
        space.read_responses_upload(empty)
    with pytest.raises(ValueError, match="Upload exactly one .jsonl file"):
        space.score_upload([str(tmp_path / "a.json")], tmp_path / "work", tiny_dataset)
    with pytest.raises(ValueError, match="Upload a responses.jsonl first"):
        space.score_upload([], tmp_path / "work", tiny_dataset)


def test_uploaded_run_is_scored_by_the_metric(tiny_dataset: Path, tmp_path: Path) -> None:
    # 5 participants; their answers give model distributions we can score with scipy.
    fefam = [0, 2, 2, 3, 1]
    postlife = [0, 0, 1, 0, 0]
    family = [0, 0, 0, 1, 0]
    rows = _answers("gss2022.fefam.en", fefam) + _answers("gss2022.postlife.en", postlife) + _answers("wvs7.US.Q1.en", family)
    rows.append({"participant_id": 9, "question_id": "wvs7.US.Q1.en", "status": "no_answer", "option_indices": [],
                 "raw_text": "I cannot say"})
    path = _write_jsonl(tmp_path / "responses.jsonl", rows)
    result = space.score_upload([str(path)], tmp_path / "work", tiny_dataset)
    model = {
        "gss2022.fefam.en": ([0.2, 0.2, 0.4, 0.2], [0.1, 0.2, 0.4, 0.3]),
        "gss2022.postlife.en": ([0.8, 0.2], [0.7, 0.3]),
        "wvs7.US.Q1.en": ([0.8, 0.2, 0.0], [0.9, 0.08, 0.02]),
    }
    js = [jensenshannon(p, q, base=2) for p, q in model.values()]
    table = result.table.set_index(["scope", "statistic"])
    assert table.loc[("all questions", "js"), "value"] == pytest.approx(sum(js) / 3, abs=1e-4)
    assert table.loc[("all questions", "match_rate"), "value"] == pytest.approx(1.0)  # argmax agrees on all three
    assert table.loc[("TDI", "js"), "value"] == pytest.approx((js[1] + js[2]) / 2, abs=1e-4)
    low, high = table.loc[("all questions", "js"), ["ci low", "ci high"]]
    assert low <= table.loc[("all questions", "js"), "value"] <= high
    metric = result.scores["metric"]
    assert result.scores["responses"]["status_counts"]["no_answer"] == 1
    assert [q["id"] for q in metric["per_question"]] == list(model)
    for q in metric["per_question"]:
        assert q["model_distribution"] == pytest.approx(model[q["id"]][0])
    assert "KL" in result.summary and "uploaded responses" in result.summary
    # every figure is a real chart drawn from the metric's numbers, none is a "not drawn" note
    assert set(result.figures) == {"dimensions", "questions", "culture_map", "bias", "insensitivity"}
    for name, fig in result.figures.items():
        texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts) + " ".join(ax.get_title() for ax in fig.axes)
        assert "Not drawn" not in texts, (name, texts)
    # the culture map places both human populations of the dataset (their WVS answers, as in the report)
    # and the run (curated polarities)
    labels = {t.get_text() for t in result.figures["culture_map"].axes[0].texts}
    assert labels == {"US (human, WVS)", "CN (human, WVS)", "uploaded responses [all]"}
    bars = result.figures["dimensions"].axes[0].patches
    per_dim = metric["per_dimension"]
    assert sorted(round(b.get_height(), 6) for b in bars) == sorted(round(per_dim[d]["kl_mean"], 6) for d in per_dim)
    assert {p.name for p in result.files} == {"responses.jsonl", "scores.json"}
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["participant_ids"] == [0, 1, 2, 3, 4, 9] and config["culture"] == "US"


def test_upload_of_two_cultures_is_refused(tiny_dataset: Path, tmp_path: Path) -> None:
    rows = _answers("gss2022.postlife.en", [0]) + _answers("wvs7.CN.Q1.zh", [0])
    with pytest.raises(ValueError, match="several cultures \\(CN, US\\)"):
        space.prepare_uploaded_run(_write_jsonl(tmp_path / "r.jsonl", rows), tmp_path / "w", tiny_dataset)


def test_uploaded_run_keeps_its_versions_in_its_scores(tiny_dataset: Path, tmp_path: Path) -> None:
    # the config.json a simulated run writes (flat *_version keys), uploaded with its rows
    questions = load_questions(culture="US", dataset_dir=tiny_dataset, ids=["gss2022.fefam.en"])
    config = build_config(questions, None, "all", 5, 0, PlanSettings(), 16, None)
    written = {k: v for k, v in config.items() if k.endswith("_version")}
    assert {"culturesim_version", "runner_version", "prompt_version", "parser_version", "memory_version"} <= set(written)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    responses = _write_jsonl(tmp_path / "responses.jsonl", _answers("gss2022.fefam.en", [0, 2, 2, 3, 1]))
    result = space.score_upload([str(responses), str(config_path)], tmp_path / "work", tiny_dataset)
    versions = score_run(result.run_dir, bootstrap_samples=0, write=False)["run"]["versions"]
    assert {k: versions[k] for k in written} == written
    assert result.scores["run"]["versions"] == versions


def test_responses_table_shows_answers_as_options(tiny_dataset: Path) -> None:
    frame = space.dataset_frame(tiny_dataset)
    from culturesim.simulator.questions import Question

    q = Question.from_record(frame[frame["id"] == "gss2022.fefam.en"].iloc[0].to_dict())
    raw = "Answer: 3\n" + "x" * 300
    rows = [{"participant_id": 3, "question_id": q.id, "status": "ok", "parsed": [3], "raw_text": raw,
             "persona": {"location": {"region": "Ohio", "city": "Columbus", "names": {}}, "memory_cap": 4},
             "generation_config": {"temperature": 0.8123, "top_p": 0.95, "num_beams": 2, "do_sample": True}}]
    table = space.responses_table(rows, [q])
    assert table.iloc[0]["answer"] == "3 Disagree"
    assert table.iloc[0]["location"] == "Ohio, Columbus"
    assert table.iloc[0]["generation"] == "T 0.81, top_p 0.95, beams 2"
    assert table.iloc[0]["raw text"] == raw  # the whole reply, line breaks kept (the page wraps it)
    assert table.iloc[0]["question"] == q.question and table.iloc[0]["question id"] == q.id
    assert list(space.responses_table([]).columns) == space.RESPONSE_COLUMNS


# ---- Space files, publish, CLI ----------------------------------------------------------------


def test_space_readme_front_matter() -> None:
    text = (REPO / "space" / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert meta["sdk_version"] == "6.31.0" == gradio.__version__  # pinned to what the tests ran
    assert meta["suggested_hardware"] in {"cpu-basic", "t4-small", "t4-medium", "l4x1", "a10g-small", "zero-a10g"}
    assert len(meta["short_description"]) <= 60
    for key in ("title", "emoji", "colorFrom", "colorTo", "license"):
        assert meta[key]
    requirements = [line for line in (REPO / "space" / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    assert requirements and not any(r.startswith("gradio") for r in requirements)  # the sdk_version decides gradio


def test_prepare_space_folder_is_self_contained(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for rel, text in {
        "space/README.md": "---\nsdk: gradio\n---\n", "space/requirements.txt": "torch\n", "space/app.py": "# app\n",
        "space/packages.txt": "fonts-noto-cjk\n",
        "space/__init__.py": "", "space/explore.py": "# explore\n", "simulator/__init__.py": "", "simulator/runner.py": "#\n",
        "simulator/locations/US.json": "{}", "simulator/__pycache__/runner.cpython-311.pyc": "x",
        "metrics/__init__.py": "", "metrics/cultural_alignment/cultural_alignment.py": "#\n",
        "dataset_builder/__init__.py": "", "dataset_builder/curation/polarity.yaml": "{}\n",
        "dataset_builder/dataset/README.md": "card", "tests/test_x.py": "#\n", "simulator/tests/test_y.py": "#\n",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    with pytest.raises(FileNotFoundError, match="No dataset in .*build it first"):
        publish.prepare_space_folder(tmp_path / "out", root)
    (root / "dataset_builder/dataset/data").mkdir()
    pq.write_table(pa.Table.from_pylist(ROWS[:1], schema=SCHEMA), root / "dataset_builder/dataset/data/US.parquet")
    out = publish.prepare_space_folder(tmp_path / "out", root)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == sorted([
        "README.md", "requirements.txt", "packages.txt", "app.py", *(f"culturesim/{rel}" for rel in (
            "space/README.md", "space/requirements.txt", "space/app.py", "space/packages.txt",
            "space/__init__.py", "space/explore.py", "simulator/__init__.py", "simulator/runner.py",
            "simulator/locations/US.json", "metrics/__init__.py", "metrics/cultural_alignment/cultural_alignment.py",
            "dataset_builder/__init__.py", "dataset_builder/curation/polarity.yaml", "dataset_builder/dataset/README.md",
            "dataset_builder/dataset/data/US.parquet")),
    ])


@pytest.mark.slow
def test_published_space_imports_its_own_copy_not_the_installed_package(tmp_path: Path) -> None:
    """The Space runs ``app.py`` from its root with only requirements.txt installed: the copied
    packages must import as ``culturesim.*`` from there (the installed culturesim's finder removed)."""
    out = publish.prepare_space_folder(tmp_path / "space")
    code = (
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if '__editable__' not in getattr(f, '__module__', '')]\n"
        "import culturesim.space.app as app, culturesim.simulator.runner as runner\n"
        "print(app.__file__); print(runner.__file__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=out, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert all(Path(line).is_relative_to(out) for line in done.stdout.split()), done.stdout


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_publish_offline_fails_clearly(tmp_path: Path) -> None:
    env = {**os.environ, "HF_TOKEN": "hf_fake_token_for_test", "HF_ENDPOINT": f"http://127.0.0.1:{_free_port()}",
           "HF_HUB_DISABLE_TELEMETRY": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "culturesim.simulator.cli", "space", "publish", "--repo-id", "culturesim/test-space",
         "--folder", str(tmp_path / "space")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Could not reach the Hugging Face Hub to publish space 'culturesim/test-space'" in proc.stderr
    assert "hf_fake_token_for_test" not in proc.stderr + proc.stdout
    for name in publish.ROOT_FILES:
        assert (tmp_path / "space" / name).is_file()
    assert any((tmp_path / "space" / "culturesim" / "dataset_builder" / "dataset" / "data").glob("*.parquet"))


def test_cli_arguments() -> None:
    from culturesim.simulator.cli import build_parser

    argv = ["space", "launch", "--port", "7999", "--max-responses", "50", "--no-preload"]
    args = build_parser(argv).parse_args(argv)
    assert (args.host, args.port, args.max_responses, args.no_preload) == ("127.0.0.1", 7999, 50, True)
    argv = ["space", "publish", "--repo-id", "org/name", "--private"]
    args = build_parser(argv).parse_args(argv)
    assert (args.repo_id, args.private, args._module) == ("org/name", True, "culturesim.simulator.cli.space_publish")
    from culturesim.simulator.cli import space_launch as cli

    with pytest.raises(ValueError, match="--job-timeout -1.0 must be > 0"):
        cli.main(argparse.Namespace(host="127.0.0.1", port=1, dataset_dir=None, runs_dir=None, max_responses=None,
                                    job_timeout=-1.0, queue_size=None, concurrency=None, no_preload=True))


def test_app_builds_with_limits_wired(tiny_dataset: Path, tmp_path: Path) -> None:
    from culturesim.space.app import GENERATION, SpaceSettings, build_app

    limits = space.SpaceLimits(queue_max_size=5, concurrency_limit=1)
    demo = build_app(SpaceSettings(dataset_dir=tiny_dataset, runs_dir=tmp_path, limits=limits,
                                   hardware=space.Hardware(None, 0.0, 2)))
    assert demo.max_queue_size if hasattr(demo, "max_queue_size") else demo._queue.max_size == 5
    generation = [fn for fn in demo.fns.values() if fn.concurrency_id == GENERATION]
    # Run events run side by side (up to the queue size): turns on the model are GenerationSlots',
    # so a job loading its model or asking Claude does not hold the one local generation turn
    assert len(generation) == 1 and generation[0].concurrency_limit == limits.queue_max_size
    assert generation[0].api_visibility == "private"  # the key is an input: never a public API endpoint
    password = [b for b in demo.blocks.values() if getattr(b, "type", None) == "password"]
    assert len(password) == 1 and password[0].elem_id == "api-key"
    assert math.isfinite(limits.job_timeout_s)
