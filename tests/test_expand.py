"""``culturesim dataset expand``: the review's checks on hand-written variants, the whole command
over real HTTP (llm-katan's OpenAI and Anthropic wire formats, and a small real HTTP server in
this test that answers with human-written rephrasings, good and bad), the cache, the loadable
``paraphrases`` config, ``simulate --paraphrases``, and (slow) the embedded model."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow.parquet as pq
import pytest
from datasets import load_dataset

from katan import start_katan
from culturesim.dataset_builder import expand as ex
from culturesim.simulator.backends import get_backend
from culturesim.simulator.cli import main as cli_main
from culturesim.simulator.questions import config_files, load_questions

IDS = ["gss2022.cappun.en", "wvs7.US.Q1.en", "gss2022.grass.en"]


@pytest.fixture(scope="module")
def questions():
    return {q.id: q for q in load_questions(culture="US", ids=IDS)}


@pytest.fixture
def no_keys(monkeypatch):
    for env in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(env, raising=False)


# --------------------------------------------------------------------------------------
# The review, check by check
# --------------------------------------------------------------------------------------

CAPPUN_CASES = [
    ("Are you in favor of or opposed to the death penalty for people convicted of murder?", []),
    ("", ["empty"]),
    ("Do you favor or oppose the death penalty for persons convicted of murder?", ["copy"]),
    ("do you favor or oppose the death penalty for persons convicted of murder", ["copy"]),
    # the embedded model's one "accepted" variant before this check: the original with a prefix
    ("Well: Do you favor or oppose the death penalty for persons convicted of murder?", ["copy"]),
    ("Should people convicted of murder get the death penalty?", ["options_changed"]),  # "favor/oppose" gone
    ("Obviously you favor or oppose the death penalty for murderers, right?", ["answer_hint"]),
    ("你赞成还是反对对谋杀犯判处死刑？ favor or oppose", ["language", "length"]),  # characters of another script
    ("Favor or oppose?", ["length"]),
    ("Rephrase the following survey question: do you favor or oppose capital punishment for murder?", ["prompt_echo"]),
    ("Do you favor or oppose capital punishment for murder? 1. Favor 2. Oppose", ["options_changed"]),
    ("Do you favor or oppose capital punishment for murderers? Answer: Favor", ["answer_hint"]),
]


@pytest.mark.parametrize("text, reasons", CAPPUN_CASES)
def test_review_checks(text, reasons, questions):
    assert ex.review_variant(text, questions["gss2022.cappun.en"]) == reasons


def test_review_hint_by_naming_one_option_and_duplicates(questions):
    family = questions["wvs7.US.Q1.en"]
    assert ex.review_variant("How much does family matter in your life?", family) == []
    # naming one option the original does not name points at it
    assert ex.review_variant("Is family very important in your life, would you say?", family) == ["answer_hint"]
    assert ex.review_variant("How much does family matter in your life?", family,
                             ["How much does family matter in your life?"]) == ["duplicate"]


def test_extract_variant():
    assert ex.extract_variant("Rephrased: How much does family matter to you?\nExplanation") == \
        "How much does family matter to you?"
    assert ex.extract_variant('**"How much does family matter to you?"**') == "How much does family matter to you?"
    assert ex.extract_variant("[echo] model=m\nUser: Rephrase ...\nRephrased:") == ""
    assert ex.extract_variant("Question: How important is family in your life?") == "How important is family in your life?"


# --------------------------------------------------------------------------------------
# Over real HTTP
# --------------------------------------------------------------------------------------

# What a human rephraser answers, in turn, per original question: a good one, a bad one, a good one.
HUMAN = {
    "Do you favor or oppose the death penalty for persons convicted of murder?": [
        "Rephrased: Are you in favor of or opposed to the death penalty for people convicted of murder?",
        "Rephrased: Should murderers get the death penalty?",                      # options_changed
        "Rephrased: Do you favor or oppose capital punishment for someone found guilty of murder?",
    ],
    "How important is family in your life?": [
        "Rephrased: How much does family matter in your life?",
        "Rephrased: 家庭在您的生活中有多重要？",                                     # language
        "Rephrased: In your life, how important would you say family is?",
    ],
    "Do you think the use of marijuana should be made legal or not?": [
        "Rephrased: Do you think the use of marijuana should be made legal or not?",  # copy
        "Rephrased: In your view, should using marijuana be legal or not?",
        "Rephrased: Obviously marijuana should be legal, or not?",                    # answer_hint
    ],
}


class _Rephraser(BaseHTTPRequestHandler):
    counters: Counter = Counter()
    lock = threading.Lock()
    seen_models: list = []
    judged: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        judged = re.search(r"^Question B: (.*)$", prompt, re.M)
        if judged:  # a judge request: the judge accepts only variants that keep the word "favor" or "family"
            with self.lock:
                self.judged.append(judged.group(1))
                self.seen_models.append(body["model"])
            text = "YES" if re.search(r"favor|family", judged.group(1)) else "NO, they differ"
        else:
            original = re.search(r"^Question: (.*)$", prompt, re.M).group(1)
            with self.lock:
                i = self.counters[original]
                self.counters[original] += 1
                self.seen_models.append(body["model"])
            text = HUMAN[original][i % len(HUMAN[original])]
        reply = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                 "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
                 "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def rephraser():
    _Rephraser.counters = Counter()
    _Rephraser.judged = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Rephraser)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_expand_over_http_writes_variants_review_log_and_a_loadable_config(tmp_path, rephraser, no_keys, capsys):
    out = tmp_path / "para"
    args = ["dataset", "expand", "--backend", "openai", "--base-url", rephraser, "--model", "human-rephraser",
            "--question-ids", ",".join(IDS), "--variants", "3", "--concurrency", "1", "--out", str(out)]
    assert cli_main(args) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "expand.json").read_text())
    assert summary["accepted"] == 5 and summary["rejected"] == 4 and summary["asked"] == 9
    # a candidate counts under every check it fails (the Chinese one is also too short in characters)
    assert summary["rejected_by_check"] == {"answer_hint": 1, "copy": 1, "language": 1, "length": 1, "options_changed": 1}
    assert "5 of 9 variants accepted" in printed
    review = [json.loads(line) for line in (out / "review.jsonl").read_text().splitlines()]
    assert len(review) == 9 and all(r["reasons"] == [] for r in review if r["accepted"])
    assert all(r["reasons"] and r["raw_text"] for r in review if not r["accepted"])
    data = load_dataset(str(out), "paraphrases", split="test", cache_dir=str(tmp_path / "hf"))
    accepted = {r["text"] for r in review if r["accepted"]}
    assert set(data["question"]) == accepted and len(data) == 5
    row = data[0]
    assert row["model"] == "human-rephraser" and row["backend"] == "openai"
    assert row["prompt_version"] == ex.EXPAND_PROMPT_VERSION and row["review_version"] == ex.REVIEW_VERSION
    q = load_questions(culture="US", ids=[row["question_id"]])[0]
    assert row["options"] == list(q.options) and row["original_question"] == q.question
    # a second run answers from the cache: no request reaches the server
    before = sum(_Rephraser.counters.values())
    assert cli_main(args) == 0
    assert sum(_Rephraser.counters.values()) == before
    assert json.loads((out / "expand.json").read_text())["from_cache"] == 9


def test_expand_with_a_judge_over_http_rejects_what_the_judge_refuses(tmp_path, rephraser, no_keys):
    """The optional judge: every variant the code review accepts goes to the judge model (here
    the same real HTTP server under another model name), and a variant it does not answer YES
    for is rejected with the reason "judge" and its verdict kept in the review log."""
    out = tmp_path / "para"
    args = ["dataset", "expand", "--backend", "openai", "--base-url", rephraser, "--model", "human-rephraser",
            "--judge-backend", "openai", "--judge-base-url", rephraser, "--judge-model", "strict-judge",
            "--question-ids", ",".join(IDS), "--variants", "3", "--concurrency", "1", "--out", str(out)]
    assert cli_main(args) == 0
    review = [json.loads(line) for line in (out / "review.jsonl").read_text().splitlines()]
    passed_code = [r for r in review if set(r["reasons"]) <= {"judge"}]
    assert len(passed_code) == 5 and len(_Rephraser.judged) == 5  # only the code-accepted ones are judged
    assert "strict-judge" in _Rephraser.seen_models
    for r in passed_code:
        keeps = bool(re.search(r"favor|family", r["text"]))
        assert r["accepted"] is keeps and r["judge"] == ("yes" if keeps else "no"), r
        assert ("judge" in r["reasons"]) is (not keeps)
    summary = json.loads((out / "expand.json").read_text())
    accepted = sum(r["accepted"] for r in review)
    assert summary["accepted"] == accepted and 0 < accepted < 5 and summary["rejected_by_check"].get("judge") == 5 - accepted
    data = load_dataset(str(out), "paraphrases", split="test", cache_dir=str(tmp_path / "hf"))
    assert len(data) == accepted and all(re.search(r"favor|family", q) for q in data["question"])


@pytest.mark.parametrize("name", ["openai", "anthropic"])
def test_expand_through_llm_katan_echo_is_reviewed_out(name, tmp_path, no_keys, questions):
    # llm-katan's echo backend sends the prompt back: nothing after "Rephrased:", so every
    # candidate is rejected (empty); the review log has each, and the config file is written
    # with no rows (pyarrow reads it; datasets 5 refuses to load a parquet file without rows).
    with start_katan() as server:
        url = server.openai_url if name == "openai" else server.anthropic_url
        backend = get_backend(name, model="katan-echo", base_url=url)
        try:
            summary = ex.expand(tmp_path, list(questions.values()), backend, variants=2)
        finally:
            backend.close()
    assert summary["accepted"] == 0 and summary["rejected_by_check"] == {"empty": 6}
    review = [json.loads(line) for line in (tmp_path / "review.jsonl").read_text().splitlines()]
    assert all(r["raw_text"].startswith("[echo] model=katan-echo") for r in review)
    assert pq.read_table(config_files(tmp_path)["paraphrases"]).num_rows == 0


def test_simulate_with_paraphrases_gives_each_participant_a_variant(tmp_path, rephraser, no_keys):
    para = tmp_path / "para"
    assert cli_main(["dataset", "expand", "--backend", "openai", "--base-url", rephraser, "--model", "m",
                     "--question-ids", ",".join(IDS), "--variants", "3", "--concurrency", "1", "--out", str(para)]) == 0
    variants = {r["id"]: r["question"] for r in load_dataset(str(para), "paraphrases", split="test", cache_dir=str(tmp_path / "hf"))}
    run = tmp_path / "run"
    with start_katan() as server:
        assert cli_main(["simulate", "--backend", "openai", "--base-url", server.openai_url, "--model", "katan-echo",
                         "--question-ids", ",".join(IDS), "--participants", "12", "--plan", "none", "--seed", "3",
                         "--max-new-tokens", "16", "--paraphrases", str(para), "--out", str(run), "--no-progress"]) == 0
    rows = [json.loads(line) for line in (run / "responses.jsonl").read_text().splitlines()]
    config = json.loads((run / "config.json").read_text())
    assert config["presentation"]["paraphrases"]["variants"] == 5
    seen = Counter()
    for r in rows:
        variant = r["presentation"]["variant"]
        prompt = r["prompt"][-1]["content"]
        q = load_questions(culture="US", ids=[r["question_id"]])[0]
        if variant is None:
            assert q.question in prompt
        else:
            assert variant.startswith(q.id + "~p") and variants[variant] in prompt and q.question not in prompt
        seen[variant is None] += 1
    assert seen[True] and seen[False]  # both the source wording and the variants were shown


@pytest.mark.slow
def test_expand_on_the_embedded_model_is_mostly_rejected(tmp_path, questions, embedded_backend):
    backend = embedded_backend(seed=0)  # get_backend("transformers", seed=0) on the session's loaded model
    try:
        summary = ex.expand(tmp_path, list(questions.values()), backend, variants=2, max_new_tokens=40)
    finally:
        backend.close()
    review = [json.loads(line) for line in (tmp_path / "review.jsonl").read_text().splitlines()]
    assert len(review) == 6 and summary["accepted"] + summary["rejected"] == 6
    assert summary["rejected"] >= 4, review  # a 135M model rarely keeps meaning, options and form
    for r in review:
        assert r["accepted"] == (r["reasons"] == []) and set(r["reasons"]) <= set(ex.CHECKS)
        assert ex.review_variant(r["text"], questions[r["question_id"]]) == [
            x for x in r["reasons"] if x != "duplicate"] or "duplicate" in r["reasons"]
    assert pq.read_table(config_files(tmp_path)["paraphrases"]).num_rows == summary["accepted"]
