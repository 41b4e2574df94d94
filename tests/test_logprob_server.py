"""The remote log-prob path against a real OpenAI-compatible server that returns
log-probabilities: llama.cpp's server (PyPI ``llama-cpp-python[server]``, built from source)
serving the embedded SmolLM2-135M GGUF on loopback, checked against the same model's
next-token probabilities at the answer position, computed locally."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from katan import free_port, stop_process, watch

from culturesim.simulator.analysis.scoring import score_run
from culturesim.simulator.backends import get_backend
from culturesim.simulator.backends.transformers_backend import render_chat
from culturesim.simulator.embedded import embedded_model_path
from culturesim.simulator.questions import load_questions
from culturesim.simulator.runfolder import read_rows

ALIAS = "smollm2-135m-gguf"
IDS = ["gss2022.cappun.en", "gss2022.natenvir.en", "gss2022.fefam.en"]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    folder, name = embedded_model_path()
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(Path(folder) / name), "--model_alias", ALIAS,
             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--verbose", "False"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    watch("llama_cpp.server", proc, log_path)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/v1/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"llama_cpp.server not ready in 120 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield f"{url}/v1"
    finally:
        stop_process(proc, grace_s=10, kill_wait_s=10)


@pytest.mark.slow
def test_simulate_logprob_against_the_server_agrees_with_the_local_reading(llama_server, tmp_path, monkeypatch,
                                                                           embedded_backend):
    from culturesim.simulator.cli import main

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = tmp_path / "remote"
    code = main(["simulate", "--estimator", "logprob", "--backend", "openai", "--base-url", llama_server, "--model", ALIAS,
                 "--plan", "none", "--participants", "2", "--question-ids", ",".join(IDS), "--seed", "0", "--out", str(out),
                 "--concurrency", "2", "--no-progress"])
    assert code == 0
    rows = read_rows(out / "responses.jsonl")
    config = json.loads((out / "config.json").read_text())
    assert config["estimator"]["name"] == "logprob" and config["backend"]["backend"] == "openai"
    assert len(rows) == 2 * len(IDS) and all(r["parse_method"] == "logprob-remote" for r in rows)
    assert {r["status"] for r in rows} <= {"ok", "no_answer"}
    ok = [r for r in rows if r["status"] == "ok"]
    assert ok, [r["logprob"]["detail"] for r in rows]

    # The same reading done locally by brute force: the model's next-token probabilities at the
    # answer position (the first reply token here: the tiny model starts its reply with the
    # numbered list), over the option labels, renormalised. The server's are llama.cpp's
    # quantised kernels on the same GGUF, so they agree to a few hundredths.
    qs = {q.id: q for q in load_questions("US", ids=IDS)}
    local = embedded_backend()  # TransformersBackend() on the session's loaded model (conftest.py)
    compared = 0
    try:
        tok, model = local.tokenizer, local.model
        for r in ok:
            assert sum(r["distribution"]) == pytest.approx(1.0)
            assert 0 < r["logprob"]["mass_on_options"] <= 1
            if r["logprob"]["answer_index"] != 0:
                continue
            q, order = qs[r["question_id"]], r["option_order"]
            text, special = render_chat(tok, r["prompt"])
            ids = tok(text, add_special_tokens=special)["input_ids"]
            with torch.inference_mode():
                probs = torch.softmax(model(torch.tensor([ids])).logits[0, -1].double(), dim=-1)
            label_ids = [tok.convert_tokens_to_ids(str(order.index(i) + 1)) for i in range(q.num_options)]
            exact = [float(probs[t]) for t in label_ids]
            assert r["distribution"] == pytest.approx([x / sum(exact) for x in exact], abs=0.03), r["key"]
            compared += 1
    finally:
        local.close()
    assert compared >= 1, [r["raw_text"][:30] for r in ok]
    assert score_run(out, bootstrap_samples=0)["responses"]["questions_scored"] >= 1
