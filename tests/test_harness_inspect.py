"""The inspect_ai task, run for real: ``inspect eval culturesim/us`` with 3 epochs on 3 questions.

Two providers: inspect's ``hf`` provider on the embedded model (real generation, real answers)
and its ``openai-api`` provider (the OpenAI wire format) against llm-katan (a real local server for the OpenAI wire format;
its echo backend repeats the prompt and the sampling settings it received). The task is found
through the ``inspect_ai`` entry point declared in pyproject.toml: the test writes a
distribution record holding exactly that entry point onto the subprocess's path (the installed
culturesim may predate it), so the name ``culturesim/us`` resolves the way it does after
``pip install "culturesim[harness]"``.

Each log is checked against an independent recomputation: the prompt every epoch sent is the
one ``culturesim simulate`` renders for that participant, every reply is re-parsed with
``culturesim.simulator.parsing``, and the logged metrics equal ``compute_alignment`` over those answers.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import tomllib
from pathlib import Path

import pytest

from harness_extra import REPO, harness_python
from katan import finished, start_katan
from culturesim.metrics.cultural_alignment import compute_alignment
from culturesim.simulator.parsing import parse_response
from culturesim.simulator.participants import make_participant
from culturesim.simulator.prompts import option_order, render_question
from culturesim.simulator.questions import load_questions

pytestmark = pytest.mark.slow

EPOCHS, QUESTIONS, MAX_TOKENS, SEED, PLAN = 3, 3, 48, 0, "prompt+config"


def _entry_point_path(tmp_path: Path) -> Path:
    """A folder holding a dist-info whose entry_points.txt is pyproject's ``inspect_ai`` group."""
    group = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["entry-points"]["inspect_ai"]
    assert group == {"culturesim": "culturesim.simulator.harness.inspect_registry"}
    info = tmp_path / "eps" / "culturesim_inspect_entry-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: culturesim-inspect-entry\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[inspect_ai]\n" + "".join(f"{k} = {v}\n" for k, v in group.items()))
    return info.parent


# Run with the harness interpreter: what the checks need from the log, as JSON (inspect_ai is not
# importable in the test process; see tests/harness_extra.py).
_READ_LOG = """
import json, sys
from inspect_ai.log import read_eval_log
log = read_eval_log(sys.argv[1])
print(json.dumps({
    "status": log.status,
    "task": log.eval.task,
    "metrics": {name: m.value for score in log.results.scores for name, m in score.metrics.items()},
    "samples": [{
        "id": s.id, "epoch": s.epoch, "user": [m.text for m in s.messages if m.role == "user"],
        "completion": s.output.completion, "row": next(iter(s.scores.values())).metadata["row"],
    } for s in log.samples],
}))
"""


def _inspect_eval(tmp_path: Path, model_args: list[str], env: dict[str, str]) -> dict:
    python = harness_python()
    command = [
        python, "-m", "inspect_ai", "eval", "culturesim/us", *model_args,
        "--epochs", str(EPOCHS), "--limit", str(QUESTIONS), "-T", f"max_tokens={MAX_TOKENS}", "--seed", "0",
        "--log-dir", str(tmp_path / "logs"), "--display", "plain", "--no-log-realtime",
    ]  # fmt: skip
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(_entry_point_path(tmp_path))]),
                "HF_HUB_OFFLINE": "1", "INSPECT_LOG_FORMAT": "eval", **env}  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=full_env, timeout=900)
    assert done.returncode == 0, finished(done, "inspect eval", lines=60)
    logs = sorted((tmp_path / "logs").glob("*.eval"))
    assert len(logs) == 1, logs
    read = subprocess.run([python, "-c", _READ_LOG, str(logs[0])], capture_output=True, text=True, env=full_env,
                          timeout=300)
    assert read.returncode == 0, finished(read, "reading the inspect log", lines=60)
    return json.loads(read.stdout)


def _check_log(log: dict) -> list[str]:
    """The checks both providers share; returns the nine replies."""
    assert log["status"] == "success"
    assert log["task"] == "culturesim/us"
    questions = load_questions("US")[:QUESTIONS]
    samples = log["samples"]
    assert [s["id"] for s in samples if s["epoch"] == 1] == [q.id for q in questions]
    assert len(samples) == EPOCHS * QUESTIONS
    assert sorted((s["id"], s["epoch"]) for s in samples) == sorted((q.id, e) for q in questions for e in range(1, EPOCHS + 1))
    by_id = {q.id: q for q in questions}
    answers: dict[str, list[int]] = {q.id: [] for q in questions}
    replies = []
    for sample in sorted(samples, key=lambda s: (s["epoch"], s["id"])):
        question, participant_id = by_id[sample["id"]], sample["epoch"] - 1
        participant = make_participant(participant_id, "US", plan=PLAN, seed=SEED, max_new_tokens=MAX_TOKENS)
        rendered = render_question(question, "US", option_order(question, SEED, participant_id), participant.location)
        user = sample["user"]
        assert len(user) == 1 and user[0] == rendered.text  # the prompt culturesim simulate sends
        reply = sample["completion"]
        replies.append(reply)
        parsed = parse_response(reply, rendered.options, question.question_type, scale=rendered.scale, language="en")
        row = sample["row"]
        assert row["status"] == parsed.status.value
        if parsed.status.value == "ok":
            source = sorted(rendered.order[p] for p in parsed.positions)
            assert row["option_indices"] == source
            answers[question.id].append(source[0])
    metrics = log["metrics"]
    ok = sum(len(a) for a in answers.values())
    assert metrics["parse_rate"] == pytest.approx(ok / (EPOCHS * QUESTIONS))
    answered = [q for q in questions if answers[q.id]]
    if not answered:
        assert all(math.isnan(metrics.get(name, math.nan)) for name in ("kl", "js", "match_rate"))
        return replies
    expected = compute_alignment(
        predictions=[answers[q.id] for q in answered],
        references=[list(q.human_distribution) for q in answered],
        ordinal=[q.ordinal for q in answered],
        value_dimensions=[list(q.value_dimensions) for q in answered],
        bootstrap_samples=0,
    )
    for name, key in [("kl", "kl_mean"), ("js", "js_mean"), ("match_rate", "match_rate")]:
        assert metrics[name] == pytest.approx(expected[key], abs=1e-9), name
    for dim, block in expected["per_dimension"].items():
        assert metrics[f"kl_{dim}"] == pytest.approx(block["kl_mean"], abs=1e-9), dim
    return replies


def test_inspect_eval_on_the_embedded_model_through_the_hf_provider(tmp_path: Path) -> None:
    from culturesim.simulator.embedded import embedded_model_folder

    folder = embedded_model_folder()
    log = _inspect_eval(tmp_path, ["--model", "hf/smollm2", "-M", f"model_path={folder}", "-M", "device=cpu"], {})
    replies = _check_log(log)
    assert all(reply.strip() for reply in replies)


def test_inspect_eval_against_llm_katan_through_the_openai_api_provider(tmp_path: Path) -> None:
    # ``openai-api/<service>/<model>`` (base URL from ``<SERVICE>_BASE_URL``) is inspect's provider for
    # OpenAI-compatible servers; its ``openai/`` provider treats an unknown model name as a new OpenAI
    # reasoning model and drops ``temperature`` (seen here: the server got its own default).
    with start_katan(model="katan-echo") as server:
        log = _inspect_eval(
            tmp_path, ["--model", "openai-api/katan/katan-echo"],
            {"KATAN_BASE_URL": server.openai_url, "KATAN_API_KEY": "katan-test-key"},
        )  # fmt: skip
    replies = _check_log(log)
    # The echo backend reports the sampling settings it received: each participant's own temperature.
    for sample in log["samples"]:
        participant = make_participant(sample["epoch"] - 1, "US", plan=PLAN, seed=SEED, max_new_tokens=MAX_TOKENS)
        assert f"temperature={participant.generation.temperature}" in sample["completion"]
        assert f"max_tokens={MAX_TOKENS}" in sample["completion"]
    assert len(replies) == EPOCHS * QUESTIONS
