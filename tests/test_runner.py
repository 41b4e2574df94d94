"""The runner with real generation by the embedded model: rows, batching, configs, baselines, shards."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from katan import katan  # noqa: F401 - a fixture: real llm-katan servers on loopback

from culturesim.simulator.backends.base import Backend
from culturesim.simulator.cli import main as cli_main
from culturesim.simulator.memory import Memory, memory_rng
from culturesim.simulator.parsing import parse_response
from culturesim.simulator.participants import PlanSettings, make_participant
from culturesim.simulator.prompts import option_order, render_question
from culturesim.simulator.questions import load_questions
from culturesim.simulator.runfolder import CONFIG_FILE, QUESTIONS_FILE, RESPONSES_FILE, merge_runs, read_rows, redact_argv
from culturesim.simulator.runner import (
    parse_shard,
    request_seed,
    shard_participants,
    simulate,
)
from culturesim.simulator.types import GenerationRequest, GenerationResult

STATUSES = {"ok", "no_answer", "invalid_option", "multiple_for_single", "number_text_disagree", "refusal", "error"}
ROW_KEYS = {"key", "participant_id", "question_id", "step", "persona", "generation_config", "prompt", "option_order",
            "raw_text", "parsed", "option_indices", "positions", "status", "parse_method", "tokens", "attempts",
            "error", "timing"}
SMALL = PlanSettings(max_beams=2)  # keeps beam search cheap on CPU


class Recording(Backend):
    """Forwards to a real backend and records each batch (optionally declaring fewer parameters)."""

    def __init__(self, inner: Backend, supported: frozenset[str] | None = None) -> None:
        self.inner = inner
        self.name = inner.name
        self.model_id = inner.model_id
        self.supported_params = inner.supported_params if supported is None else supported
        self.batches: list[list[GenerationRequest]] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        self.batches.append(list(requests))
        return self.inner.generate(requests)

    def describe(self) -> dict[str, object]:
        return {**self.inner.describe(), "supported_params": sorted(self.supported_params)}


@pytest.fixture(scope="module")
def model(embedded_backend):
    backend = embedded_backend(seed=0, batch_size=16)  # get_backend("transformers", batch_size=16, seed=0), shared weights
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def us3():
    return load_questions("US", limit=3)


@pytest.mark.slow
def test_real_run_writes_every_row(model, us3, tmp_path):
    backend = Recording(model)
    out = tmp_path / "run"
    summary = simulate(out, us3, backend, plan="all", participants=3, seed=5, settings=SMALL, max_new_tokens=24,
                       progress=False)
    assert (summary.rows_total, summary.rows_written) == (9, 9)

    # One batch per question, holding every participant's request.
    assert [len(b) for b in backend.batches] == [3, 3, 3]
    assert [{r.key for r in b} for b in backend.batches] == [{f"{p}:{q.id}" for p in range(3)} for q in us3]

    config = json.loads((out / CONFIG_FILE).read_text())
    assert config["seed"] == 5 and config["plan"] == "all" and config["participants"] == 3
    assert config["question_ids"] == [q.id for q in us3]
    assert config["backend"]["backend"] == "transformers" and config["model"] == model.model_id
    assert config["plan_settings"]["max_beams"] == 2
    assert all(config[k] for k in ("prompt_version", "parser_version", "memory_version", "runner_version"))
    assert config["config_diversity"]["unavailable"] == []
    text = (out / CONFIG_FILE).read_text().lower()
    assert "api_key" not in text and "token\"" not in text
    snapshot = [json.loads(line) for line in (out / QUESTIONS_FILE).read_text().splitlines()]
    assert [s["id"] for s in snapshot] == config["question_ids"]

    rows = read_rows(out / RESPONSES_FILE)
    assert [(r["step"], r["participant_id"]) for r in rows] == [(s, p) for s in range(3) for p in range(3)]
    memories = {p: Memory(make_participant(p, "US", "all", 5, SMALL).memory_cap) for p in range(3)}
    for row in rows:
        assert ROW_KEYS <= set(row)
        q = us3[row["step"]]
        p = make_participant(row["participant_id"], "US", "all", seed=5, settings=SMALL, max_new_tokens=24)
        assert row["status"] in STATUSES and row["error"] is None
        assert 0 < row["tokens"]["output"] <= 24
        # The prompt: the participant's memory as chat turns, then the rendered question.
        rendered = render_question(q, "US", option_order(q, 5, p.participant_id), p.location)
        assert row["option_order"] == list(rendered.order)
        assert row["prompt"][-1] == {"role": "user", "content": rendered.text}
        assert row["prompt"][:-1] == memories[p.participant_id].messages()
        assert len(row["prompt"]) - 1 <= 2 * p.memory_cap
        assert row["persona"]["location"]["region"] == p.location.name()
        assert row["generation_config"]["seed"] == request_seed(5, p.participant_id, row["step"])
        assert row["generation_config"]["num_beams"] == p.generation.num_beams
        # Status and codes are the parser's reading of the raw text, mapped back through the shuffle.
        parsed = parse_response(row["raw_text"], rendered.options, q.question_type, scale=rendered.scale, language="en")
        assert row["status"] == parsed.status.value
        assert row["option_indices"] == sorted(rendered.order[i] for i in parsed.positions)
        assert row["parsed"] == [q.option_codes[i] for i in row["option_indices"]]
        memories[p.participant_id].update(rendered.request, row["raw_text"], memory_rng(5, p.participant_id, row["step"]))


@pytest.mark.slow
def test_unavailable_sampling_parameters_are_recorded_not_faked(model, us3, tmp_path, caplog):
    backend = Recording(model, supported=frozenset({"max_new_tokens", "seed"}))
    with caplog.at_level(logging.WARNING, logger="culturesim.simulator.runner"):
        simulate(tmp_path / "run", us3[:1], backend, plan="config", participants=2, seed=1, max_new_tokens=8,
                 progress=False)
    config = json.loads((tmp_path / "run" / CONFIG_FILE).read_text())
    assert config["config_diversity"]["modification_on"] is True
    assert config["config_diversity"]["unavailable"] == ["do_sample", "temperature", "top_p", "num_beams"]
    assert "cannot apply" in caplog.text
    for row in read_rows(tmp_path / "run" / RESPONSES_FILE):
        g = row["generation_config"]
        assert (g["temperature"], g["top_p"], g["num_beams"], g["do_sample"]) == (None, None, 1, True)
    for request in backend.batches[0]:
        assert request.config.temperature is None and request.config.num_beams == 1


@pytest.mark.slow
def test_refuses_to_overwrite_or_resume_a_different_run(model, us3, tmp_path):
    out = tmp_path / "run"
    simulate(out, us3[:1], model, plan="none", participants=1, seed=3, max_new_tokens=4, progress=False)
    with pytest.raises(ValueError, match="not empty. Pass --resume"):
        simulate(out, us3[:1], model, plan="none", participants=1, seed=3, max_new_tokens=4, progress=False)
    with pytest.raises(ValueError, match=r"differing keys: .*plan.*\n?.*'none' -> 'prompt'"):
        simulate(out, us3[:1], model, plan="prompt", participants=1, seed=3, max_new_tokens=4, progress=False, resume=True)
    with pytest.raises(ValueError, match=r"differing keys: .*seed"):
        simulate(out, us3[:1], model, plan="none", participants=1, seed=4, max_new_tokens=4, progress=False, resume=True)
    # Resuming a complete run with the same config generates nothing.
    again = simulate(out, us3[:1], model, plan="none", participants=1, seed=3, max_new_tokens=4, progress=False, resume=True)
    assert again.rows_written == 0 and again.rows_total == 1


@pytest.mark.slow
def test_chinese_questions_get_the_chinese_prompt(model, tmp_path):
    cn = load_questions("CN", limit=1)
    simulate(tmp_path / "cn", cn, model, plan="prompt", participants=2, seed=2, max_new_tokens=8, progress=False)
    rows = read_rows(tmp_path / "cn" / RESPONSES_FILE)
    assert all(r["prompt"][-1]["content"].startswith("我希望你扮演一名来自中国（") for r in rows)


@pytest.mark.slow
def test_cao_baseline(model, us3, tmp_path):
    backend = Recording(model)
    simulate(tmp_path / "cao", us3[:2], backend, plan="cao", participants=2, seed=1, max_new_tokens=12, progress=False)
    rows = read_rows(tmp_path / "cao" / RESPONSES_FILE)
    assert len(rows) == 4 and [len(b) for b in backend.batches] == [2, 2]
    for row in rows:
        assert len(row["prompt"]) == 1  # no memory
        assert row["prompt"][0]["content"].startswith(
            "I want you to tell me the opinion of the average person from the United States. ")
        assert row["persona"] == {"location": None, "memory_cap": None}
        assert row["generation_config"]["temperature"] == 1.0 and row["generation_config"]["num_beams"] == 1


@pytest.mark.slow
def test_ccsv_baseline_stages(model, us3, tmp_path):
    backend = Recording(model)
    settings = PlanSettings(ccsv_critiques=1, ccsv_revisions=2, ccsv_votes=1)
    simulate(tmp_path / "ccsv", us3[:1], backend, plan="ccsv", participants=2, seed=1, settings=settings,
             max_new_tokens=12, progress=False)
    # answer, critiques, revisions, votes: each stage one batch across participants.
    assert [len(b) for b in backend.batches] == [2, 2, 4, 2]
    assert [b[0].key.split(":", 2)[2] for b in backend.batches] == ["answer:0", "critique:0", "revision:0", "vote:0"]
    rows = read_rows(tmp_path / "ccsv" / RESPONSES_FILE)
    for row in rows:
        c = row["ccsv"]
        assert [s["stage"] for s in c["stages"]] == ["answer", "critique", "revision", "revision", "vote"]
        assert c["chosen"] in (1, 2)
        revisions = [s["text"] for s in c["stages"] if s["stage"] == "revision"]
        assert row["raw_text"] == revisions[c["chosen"] - 1]
        assert c["vote_status"] in ("ok", "no_valid_vote")
        if c["vote_status"] == "ok":
            assert c["votes"] == [c["chosen"]]
        # Both revision requests carry the participant's initial answer and its critique.
        critique = c["stages"][1]["text"].strip()
        for request in backend.batches[2][2 * row["participant_id"]: 2 * row["participant_id"] + 2]:
            assert request.messages[1] == {"role": "assistant", "content": c["stages"][0]["text"]}
            assert critique in request.messages[2]["content"] or not critique
    assert sum(r["tokens"]["output"] for r in rows) > 0


@pytest.mark.slow
def test_ccsv_with_one_revision_asks_no_vote(model, us3, tmp_path):
    """One revision leaves nothing to vote on: the vote stage is not asked, the revision is the answer,
    and the study's estimate counts the requests that are sent."""
    from culturesim.simulator.experiments.study import Cell, estimate

    backend = Recording(model)
    settings = PlanSettings(ccsv_critiques=2, ccsv_revisions=1, ccsv_votes=3)
    simulate(tmp_path / "ccsv1", us3[:1], backend, plan="ccsv", participants=2, seed=1, settings=settings,
             max_new_tokens=12, progress=False)
    assert [len(b) for b in backend.batches] == [2, 4, 2]  # answer, two critiques each, one revision each
    assert [b[0].key.split(":", 2)[2] for b in backend.batches] == ["answer:0", "critique:0", "revision:0"]
    for row in read_rows(tmp_path / "ccsv1" / RESPONSES_FILE):
        c = row["ccsv"]
        assert [s["stage"] for s in c["stages"]] == ["answer", "critique", "critique", "revision"]
        assert (c["chosen"], c["votes"], c["vote_status"]) == (1, [], "single_candidate")
        assert row["raw_text"] == c["stages"][-1]["text"]
    cell = Cell(path=tmp_path / "ccsv1", group="main", model=None, estimator="sampling", plan="ccsv", culture="US",
                language="en", items_key="US-en", participants=2, max_new_tokens=12, settings=settings)
    assert estimate(cell, us3[:1], None, 4.0).requests == sum(len(b) for b in backend.batches)


@pytest.mark.slow
def test_shards_merge_into_one_complete_run(model, us3, tmp_path):
    qs = us3[:2]
    dirs = []
    for k in (1, 2):
        d = tmp_path / f"shard{k}"
        simulate(d, qs, model, plan="prompt+memory", participants=3, seed=9, max_new_tokens=8, shard=(k, 2), progress=False)
        dirs.append(d)
    assert {r["participant_id"] for r in read_rows(dirs[0] / RESPONSES_FILE)} == {0, 2}
    assert {r["participant_id"] for r in read_rows(dirs[1] / RESPONSES_FILE)} == {1}

    assert cli_main(["merge", str(dirs[1]), str(dirs[0]), "--out", str(tmp_path / "merged")]) == 0
    merged = read_rows(tmp_path / "merged" / RESPONSES_FILE)
    assert [(r["step"], r["participant_id"]) for r in merged] == [(s, p) for s in range(2) for p in range(3)]
    config = json.loads((tmp_path / "merged" / CONFIG_FILE).read_text())
    assert config["shard"] is None and config["participant_ids"] == [0, 1, 2]
    shard_rows = {(r["participant_id"], r["question_id"]): r for d in dirs for r in read_rows(d / RESPONSES_FILE)}
    assert all(shard_rows[(r["participant_id"], r["question_id"])] == r for r in merged)

    with pytest.raises(ValueError, match="exactly 1..2"):
        merge_runs([dirs[0]], tmp_path / "m1")
    with pytest.raises(ValueError, match="exactly 1..2"):
        merge_runs([dirs[0], dirs[0]], tmp_path / "m2")
    other = tmp_path / "other2"
    simulate(other, qs, model, plan="prompt+memory", participants=3, seed=10, max_new_tokens=8, shard=(2, 2), progress=False)
    with pytest.raises(ValueError, match="differing keys seed"):
        merge_runs([dirs[0], other], tmp_path / "m3")
    # A shard that lost its last row is incomplete.
    data = (dirs[1] / RESPONSES_FILE).read_bytes().splitlines(keepends=True)
    (dirs[1] / RESPONSES_FILE).write_bytes(b"".join(data[:-1]))
    with pytest.raises(ValueError, match="incomplete: 1 of 6 rows missing"):
        merge_runs(dirs, tmp_path / "m4")
    with pytest.raises(ValueError, match="1 <= K <= N"):
        simulate(tmp_path / "bad", qs, model, shard=(3, 2), progress=False)


def test_simulate_help_lists_the_run_options():
    proc = subprocess.run([sys.executable, "-m", "culturesim.simulator.cli", "simulate", "--help"], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0
    for flag in ("--resume", "--shard", "--plan", "--seed", "--max-beams", "--max-memory", "--temperature-range",
                 "--ccsv-critiques", "--base-url", "--batch-size", "--max-new-tokens", "--dimensions"):
        assert flag in proc.stdout


def test_remote_backend_over_real_http_with_injected_errors(katan, tmp_path, monkeypatch):  # noqa: F811
    # An OpenAI-compatible server on loopback failing 20 % of requests with HTTP 500: the run
    # completes with every row, bounded retries, and num_beams reported as unavailable.
    for env in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(env, raising=False)
    server = katan(error_rate=0.2)
    out = tmp_path / "remote"
    argv = ["simulate", "--backend", "openai", "--model", "katan-echo", "--base-url", server.openai_url,
            "--culture", "US", "--questions", "3", "--participants", "4", "--plan", "all", "--seed", "1",
            "--max-new-tokens", "16", "--out", str(out), "--no-progress"]
    assert cli_main(argv) == 0
    config = json.loads((out / CONFIG_FILE).read_text())
    assert config["backend"]["backend"] == "openai" and config["model"] == "katan-echo"
    assert config["config_diversity"]["unavailable"] == ["num_beams"]
    rows = read_rows(out / RESPONSES_FILE)
    assert len(rows) == 12 and {r["status"] for r in rows} <= STATUSES - {"error"}
    assert all(1 <= r["attempts"] <= 6 for r in rows)
    for row in rows:
        g = row["generation_config"]
        assert g["num_beams"] == 1
        # The server saw this participant's prompt and sampled temperature.
        header, _, echoed = row["raw_text"].partition("\nUser: ")
        assert echoed == row["prompt"][-1]["content"]
        if g["do_sample"]:
            assert f"temperature={g['temperature']}" in header


def test_shards_seeds_and_redaction():
    assert parse_shard("2/4") == (2, 4) and parse_shard(None) is None
    for bad in ("0/4", "5/4", "2", "a/b", "1/0"):
        with pytest.raises(ValueError, match="K/N|1 <= K <= N"):
            parse_shard(bad)
    shards = [shard_participants(10, (k, 3)) for k in (1, 2, 3)]
    assert shards == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]
    with pytest.raises(ValueError, match="gets no participant"):
        shard_participants(2, (3, 3))
    seeds = {request_seed(1, p, s, stage) for p in range(20) for s in range(20) for stage in ("answer", "vote:0")}
    assert len(seeds) == 800 and all(0 <= x < 2**31 for x in seeds)
    assert request_seed(1, 2, 3) == request_seed(1, 2, 3) != request_seed(2, 2, 3)
    assert redact_argv(["--base-url", "https://user:secret@h.example/v1", "--api-key", "sk-x", "--hf-token=abc",
                        "--max-new-tokens", "16"]) == [
        "--base-url", "https://***@h.example/v1", "--api-key", "***", "--hf-token=***", "--max-new-tokens", "16"]


@pytest.mark.slow
def test_rows_reach_disk_chunk_by_chunk_on_a_local_backend(model, us3, tmp_path):
    # Each finished chunk of a step is written before the next chunk runs (issue 12): with chunks
    # of two requests, a step of six participants reaches disk in three writes.
    out = tmp_path / "chunks"
    seen: list[int] = []

    def on_rows(rows):
        seen.append(len(rows))
        assert len(read_rows(out / RESPONSES_FILE)) == sum(seen)  # on disk when reported

    size = model.batch_size
    model.batch_size = 2
    try:
        simulate(out, us3[:1], model, plan="none", participants=6, seed=2, max_new_tokens=4, progress=False,
                 on_rows=on_rows)
    finally:
        model.batch_size = size
    assert seen == [2, 2, 2]
