"""logprob and verbalized runs end to end: the embedded model, real HTTP (llm-katan), the
run folder, resume and scoring."""

from __future__ import annotations

import json
import random
import shutil

import pytest
from katan import katan  # noqa: F401 - fixture
from scipy.spatial.distance import jensenshannon

from culturesim.simulator.analysis.scoring import score_run, support_warnings
from culturesim.simulator.backends import get_backend
from culturesim.simulator.estimators.logprob import logprob_distributions
from culturesim.simulator.estimators.run import check_plan, simulate_estimator
from culturesim.simulator.estimators.verbalized import parse_verbalized
from culturesim.simulator.prompts import render_question
from culturesim.simulator.questions import Question, load_questions
from culturesim.simulator.runfolder import read_rows

IDS = ["gss2022.cappun.en", "gss2022.natenvir.en"]


def questions() -> list[Question]:
    qs = load_questions("US", ids=IDS)
    assert [q.id for q in qs] == IDS
    return qs


@pytest.fixture(scope="module")
def embedded(embedded_backend):
    backend = embedded_backend(seed=0)  # TransformersBackend(seed=0) on the session's loaded model (conftest.py)
    yield backend
    backend.close()


def rows_of(run_dir) -> list[dict]:
    return read_rows(run_dir / "responses.jsonl")


@pytest.mark.slow
def test_logprob_run_rows_resume_and_scores(embedded, tmp_path):
    qs, seed, people = questions(), 3, 3
    out = tmp_path / "lp"
    summary = simulate_estimator(out, qs, embedded, "logprob", plan="none", participants=people, seed=seed, progress=False)
    assert summary.rows_total == summary.rows_written == people * len(qs)
    config = json.loads((out / "config.json").read_text())
    assert config["estimator"]["name"] == "logprob" and config["plan"] == "none"
    rows = rows_of(out)
    assert {r["status"] for r in rows} == {"ok"}
    for row in rows:
        q = next(x for x in qs if x.id == row["question_id"])
        # The participant's option order, re-derived from the documented seeding.
        order = list(range(q.num_options))
        random.Random(f"{seed}:{row['participant_id']}:{q.id}").shuffle(order)
        assert row["option_order"] == order
        rendered = render_question(q, "US", order)
        labels = [str(order.index(i) + 1) for i in range(q.num_options)]  # source option i is shown at order.index(i)
        [expected] = logprob_distributions(embedded, [q], lambda _q: ([{"role": "user", "content": rendered.text}], labels))
        assert row["distribution"] == pytest.approx(expected["distribution"], abs=1e-4)
        assert row["prompt"] == [{"role": "user", "content": rendered.text}]

    # Kill mid-write: keep two rows and half a line, then resume.
    cut = tmp_path / "cut"
    shutil.copytree(out, cut)
    lines = (out / "responses.jsonl").read_text().splitlines(keepends=True)
    (cut / "responses.jsonl").write_text("".join(lines[:2]) + lines[2][:40])
    again = simulate_estimator(cut, qs, embedded, "logprob", plan="none", participants=people, seed=seed, resume=True,
                               progress=False)
    assert again.rows_written == people * len(qs) - 2
    resumed = {r["key"]: r for r in rows_of(cut)}
    assert sorted(resumed) == sorted(r["key"] for r in rows)
    for row in rows:
        assert resumed[row["key"]]["distribution"] == pytest.approx(row["distribution"], abs=1e-5)

    scores = score_run(out, bootstrap_samples=50)
    assert scores["run"]["estimator"] == "logprob"
    assert scores["responses"]["questions_scored"] == len(qs)
    # one distribution per participant: counted as answers, not the options of the mean vector
    assert scores["responses"]["answers_per_question"] == {q.id: sum(r["question_id"] == q.id for r in rows) for q in qs}
    # whole distributions: no "fewer than 5 parsed answers" sampling warning
    assert not [w for w in support_warnings(scores["responses"], scores["metric"]) if "parsed answers" in w]
    for pq, q in zip(scores["metric"]["per_question"], qs):
        mine = [r["distribution"] for r in rows if r["question_id"] == q.id]
        mean = [sum(d[i] for d in mine) / len(mine) for i in range(q.num_options)]
        assert pq["model_distribution"] == pytest.approx(mean, abs=1e-9)
        assert pq["js"] == pytest.approx(float(jensenshannon(mean, q.human_distribution, base=2)), abs=1e-9)


@pytest.mark.slow
def test_verbalized_run_on_the_embedded_model(embedded, tmp_path):
    qs = questions()
    out = tmp_path / "vb"
    simulate_estimator(out, qs, embedded, "verbalized", plan="prompt", participants=4, seed=1, max_new_tokens=48,
                       progress=False)
    rows = rows_of(out)
    assert len(rows) == 8
    for row in rows:
        q = next(x for x in qs if x.id == row["question_id"])
        assert row["persona"]["location"] is not None  # the prompt modification
        assert row["generation_config"]["max_new_tokens"] == 48
        shown = [q.options[i] for i in row["option_order"]]
        again = parse_verbalized(row["raw_text"], shown)
        assert row["status"] == again.status
        assert row["verbalized"]["raw_sum"] == again.raw_sum
        if row["status"] == "ok":
            assert sum(row["distribution"]) == pytest.approx(1.0)
            for position, source in enumerate(row["option_order"]):
                assert row["distribution"][source] == pytest.approx(again.distribution[position])
        else:
            assert row["distribution"] is None and row["verbalized"]["detail"]
    # Nothing missing: a resume asks for nothing.
    assert simulate_estimator(out, qs, embedded, "verbalized", plan="prompt", participants=4, seed=1, max_new_tokens=48,
                              resume=True, progress=False).rows_written == 0


def stated(question: Question, shares: str) -> Question:
    """A question whose text carries shares: the echo server sends them back inside the prompt."""
    from dataclasses import replace

    return replace(question, question=f"{question.question}\n{shares}")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["openai", "anthropic"])
def test_verbalized_over_real_http_maps_shares_back_to_source_order(name, katan, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    server = katan()
    backend = get_backend(name, model="katan-echo", base_url=server.openai_url if name == "openai" else server.anthropic_url)
    try:
        base = questions()
        qs = [stated(base[0], "1: 30%\n2: 70%"), stated(base[1], "1: 10%\n2: 20%\n3: 70%")]
        out = tmp_path / name
        simulate_estimator(out, qs, backend, "verbalized", plan="none", participants=3, seed=5, max_new_tokens=32,
                           progress=False)
    finally:
        backend.close()
    rows = rows_of(out)
    assert len(rows) == 6 and {r["status"] for r in rows} == {"ok"}
    for row in rows:
        shares = [0.3, 0.7] if row["question_id"] == qs[0].id else [0.1, 0.2, 0.7]
        expected = [0.0] * len(shares)
        for position, source in enumerate(row["option_order"]):
            expected[source] = shares[position]
        assert row["distribution"] == pytest.approx(expected)
        assert row["verbalized"]["raw_sum"] == pytest.approx(100)
        assert row["tokens"]["input"] > 0
    assert score_run(out, bootstrap_samples=0)["responses"]["questions_scored"] == 2


@pytest.mark.slow
def test_logprob_over_a_server_without_logprobs_says_so(katan, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server = katan()
    backend = get_backend("openai", model="katan-echo", base_url=server.openai_url)
    try:
        simulate_estimator(tmp_path / "lp", questions()[:1], backend, "logprob", plan="none", participants=2, seed=0,
                           progress=False)
    finally:
        backend.close()
    rows = rows_of(tmp_path / "lp")
    assert [r["status"] for r in rows] == ["error", "error"]
    assert all("no log-probabilities" in r["logprob"]["detail"] for r in rows)


def test_plans_that_need_generated_answers_are_refused():
    check_plan("logprob", "prompt")
    check_plan("logprob", "cao")
    check_plan("verbalized", "prompt+config")
    for estimator, plan in [("logprob", "memory"), ("logprob", "config"), ("logprob", "all"), ("verbalized", "cao"),
                            ("verbalized", "ccsv"), ("verbalized", "memory")]:
        with pytest.raises(ValueError, match=f"--estimator {estimator} cannot run --plan {plan}"):
            check_plan(estimator, plan)
    with pytest.raises(ValueError, match="Unknown estimator 'votes'"):
        check_plan("votes", "none")


def test_anthropic_cannot_read_log_probabilities(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    backend = get_backend("anthropic", model="claude-x", base_url="http://127.0.0.1:9")
    with pytest.raises(ValueError, match="returns no log-probabilities. Use --estimator verbalized"):
        simulate_estimator(tmp_path / "a", questions()[:1], backend, "logprob", plan="none", participants=1, progress=False)
    assert not (tmp_path / "a").exists()  # refused before anything is written
