"""The lm-evaluation-harness tasks: files, prefix-aware option distributions, and a real run.

The slow test runs ``lm_eval`` (a real subprocess, the HF backend on the embedded model) on
the first five US questions and checks that its printed KL/JS/match scores equal a culturesim
log-prob run (``culturesim.simulator.estimators.logprob`` with the same DEF prompt, scored by ``compute_alignment``) on
the same five questions within 1e-4. lm_eval reads the converted transformers folder
(``embedded_model_folder``, checked when made to give the GGUF model's logits exactly, and shared with
the inspect test) rather than the GGUF file, whose parsing costs about 20 s of CPU per load; the
culturesim side loads the GGUF file as ``culturesim simulate`` does.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from katan import finished

from harness_extra import REPO, harness_python
from culturesim.simulator.harness.common import LM_EVAL_TASK_DIR, def_logprob_prompt, option_labels
from culturesim.simulator.harness.lm_eval_tasks import utils
from culturesim.simulator.prompts import render_question
from culturesim.simulator.questions import load_questions


def test_harness_path_prints_the_task_folder() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "culturesim.simulator.cli", "harness-path"], capture_output=True, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, finished(done, "culturesim harness-path")
    folder = Path(done.stdout.strip())
    assert folder == LM_EVAL_TASK_DIR
    assert {p.name for p in folder.glob("culturesim_*.yaml")} == {
        "culturesim_us.yaml", "culturesim_us_2024.yaml", "culturesim_cn.yaml", "culturesim_jp.yaml", "culturesim_eg.yaml"}  # fmt: skip


def test_every_yaml_function_exists_in_utils() -> None:
    template = (LM_EVAL_TASK_DIR / "_culturesim_template_yaml").read_text(encoding="utf-8")
    names = re.findall(r"!function utils\.(\w+)", template)
    metrics = re.findall(r"- metric: (\w+)", template)
    assert sorted(metrics) == sorted(utils.METRICS)
    assert [n for n in names if not callable(getattr(utils, n, None))] == []
    for path in LM_EVAL_TASK_DIR.glob("culturesim_*.yaml"):
        assert "include: _culturesim_template_yaml" in path.read_text(encoding="utf-8")


def test_documents_are_the_def_prompt_and_option_numbers() -> None:
    docs = utils.load_docs(culture="US")["test"]
    assert all(row["question_type"] != "multiple_choice" for row in docs)
    question = load_questions("US", ids=[docs[0]["id"]])[0]
    assert utils.doc_to_text(docs[0]) == render_question(question, "US").text
    assert utils.doc_to_text(docs[0]) == def_logprob_prompt(question)[0][0]["content"]
    assert utils.doc_to_choice(docs[0]) == option_labels(question) == [str(k) for k in range(1, question.num_options + 1)]
    assert docs[0][utils.PREFIX_COLUMN] == "Answer:"
    chinese = utils.load_docs(culture="CN")["test"]
    assert {row["language"] for row in chinese} == {"zh"}  # native rows only, not the English parallels
    assert chinese[0][utils.PREFIX_COLUMN] == "答案：" and utils.doc_to_text(chinese[0]).startswith("我希望你扮演一名来自中国的公民")
    # An 11-point 0..10 scale keeps its numbers; "1" starts "10", so "11".."19" are asked as well.
    lifenow = next(row for row in docs if row["id"] == "gss2022.lifenow.en")
    choices = utils.doc_to_choice(lifenow)
    assert choices[:11] == [str(k) for k in range(11)]
    assert choices[11:] == [f"1{d}" for d in range(1, 10)]


def test_option_distribution_removes_the_longer_numbers_from_a_prefix() -> None:
    # Labels 1..11 (digit tokens): P(" 1") covers " 1" then a digit; the option is the number ending there.
    labels = [str(k) for k in range(1, 12)]
    p = {str(k): 0.015 * k for k in range(1, 10)}  # P(" k") as the model gives it
    p_after_one = {d: 0.01 * (int(d) + 1) for d in "0123456789"}  # P(digit d | " 1")
    p["10"], p["11"] = p["1"] * p_after_one["0"], p["1"] * p_after_one["1"]
    assert utils._extended_labels(labels)[11:] == [f"1{d}" for d in range(2, 10)]
    lls = [math.log(p[label]) for label in labels] + [math.log(p["1"] * p_after_one[d]) for d in "23456789"]
    distribution, mass = utils.option_distribution(labels, lls)
    one = p["1"] * (1 - sum(p_after_one.values()))
    raw = [one] + [p[str(k)] for k in range(2, 12)]
    assert distribution == pytest.approx([x / sum(raw) for x in raw], rel=1e-12)
    assert mass == pytest.approx(sum(raw), rel=1e-12)
    with pytest.raises(ValueError, match="Expected 19 log-likelihoods"):
        utils.option_distribution(labels, lls[:-1])


@pytest.mark.slow
def test_lm_eval_on_the_embedded_model_equals_a_culturesim_logprob_run(tmp_path: Path, embedded_backend) -> None:
    python = harness_python()
    from culturesim.metrics.cultural_alignment import compute_alignment
    from culturesim.simulator.embedded import embedded_model_folder
    from culturesim.simulator.estimators.logprob import logprob_distributions

    folder = embedded_model_folder()
    command = [
        python, "-m", "lm_eval", "--model", "hf",
        "--model_args", f"pretrained={folder},dtype=float32", "--device", "cpu", "--batch_size", "16",
        "--include_path", str(LM_EVAL_TASK_DIR), "--tasks", "culturesim_us", "--apply_chat_template",
        "--limit", "5", "--output_path", str(tmp_path), "--log_samples",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900)
    assert done.returncode == 0, finished(done, "lm_eval", lines=60)
    table = done.stdout
    printed = {m: float(v) for m, v in re.findall(r"\|\s*(kl|js|match_rate|wasserstein)\s*\|[^|]*\|\s*([-\d.]+)\s*\|", table)}
    assert set(printed) == {"kl", "js", "match_rate", "wasserstein"}, table

    results = json.loads(next(tmp_path.rglob("results_*.json")).read_text())["results"]["culturesim_us"]
    samples = [json.loads(line) for line in next(tmp_path.rglob("samples_culturesim_us_*.jsonl")).read_text().splitlines()]
    ids = [row["kl"]["id"] for row in sorted(samples, key=lambda r: r["doc_id"])]
    assert len(ids) == 5

    by_id = {q.id: q for q in load_questions("US", ids=ids)}
    questions = [by_id[i] for i in ids]
    ours = logprob_distributions(embedded_backend(), questions, prompt_builder=def_logprob_prompt)  # TransformersBackend()
    expected = compute_alignment(
        probabilities=[r["distribution"] for r in ours],
        references=[list(q.human_distribution) for q in questions],
        ordinal=[q.ordinal for q in questions],
        value_dimensions=[list(q.value_dimensions) for q in questions],
        question_ids=ids,
        bootstrap_samples=utils.BOOTSTRAP_SAMPLES,
        seed=0,
    )
    for name, key in [("kl", "kl_mean"), ("js", "js_mean"), ("match_rate", "match_rate"), ("wasserstein", "wasserstein_mean")]:
        assert results[f"{name},none"] == pytest.approx(expected[key], abs=1e-4), name
        assert printed[name] == pytest.approx(expected[key], abs=6e-5), name  # the table rounds to 4 decimals
    for dim, block in expected["per_dimension"].items():
        assert results[f"kl_{dim},none"] == pytest.approx(block["kl_mean"], abs=1e-4), dim
    for row, mine in zip(sorted(samples, key=lambda r: r["doc_id"]), ours):
        assert row["kl"]["distribution"] == pytest.approx(mine["distribution"], abs=1e-4)
