"""The cultural_alignment folder as others use it: evaluate.load offline from a checkout, its
doctests and card examples, the Space app over real HTTP, and `culturesim metric publish`."""

from __future__ import annotations

import doctest
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from katan import free_port
from culturesim.metrics.cultural_alignment import compute_alignment

ROOT = Path(__file__).resolve().parents[1]
MODULE_DIR = ROOT / "metrics" / "cultural_alignment"
EXAMPLE = {
    "predictions": [[0, 0, 0, 1], [2, 2, 1, 2], [[0, 1], 1, [1, 2], 1]],
    "references": [[0.6, 0.4], [0.1, 0.2, 0.7], [0.2, 0.5, 0.3]],
    "ordinal": [False, True, False],
    "value_dimensions": [["EVI"], ["TDI"], ["EVI", "PDI"]],
    "question_ids": ["q.a", "q.b", "q.c"],
    "bootstrap_samples": 200,
}


def offline_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(
        HF_HOME=str(tmp_path / "hf"),
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        HF_EVALUATE_OFFLINE="1",
        PYTHONPATH=str(ROOT),
    )
    return env


LOAD_SCRIPT = """
import json, sys
from culturesim.metrics.cultural_alignment import compute_alignment
assert "evaluate" not in sys.modules and "datasets" not in sys.modules, "compute_alignment imported evaluate"
import evaluate
from culturesim.metrics.cultural_alignment.cultural_alignment import CulturalAlignment  # built on first use
assert issubclass(CulturalAlignment, evaluate.Metric)
example = json.loads(sys.argv[1])
answers = evaluate.load("metrics/cultural_alignment")
by_path = evaluate.load(sys.argv[2])
probs = evaluate.load("metrics/cultural_alignment", "probabilities")
out = {
    "answers": answers.compute(**example),
    "by_path": by_path.compute(**example),
    "probabilities": probs.compute(predictions=[[0.75, 0.25]], references=[[0.6, 0.4]], bootstrap_samples=50),
    "class": type(answers).__name__,
    "name": answers.name,
    "lazy_class": CulturalAlignment().compute(predictions=[[0, 1]], references=[[0.5, 0.5]])["match_rate"],
}
# streaming: batches (multiple choice first), per-question options at compute() in the same order
order = [2, 0, 1]
streamed = {k: [v[i] for i in order] if isinstance(v, list) else v for k, v in example.items()}
answers.add_batch(predictions=streamed["predictions"][:1], references=streamed["references"][:1])
answers.add_batch(predictions=streamed["predictions"][1:], references=streamed["references"][1:])
rest = {k: v for k, v in streamed.items() if k not in ("predictions", "references")}
out["streamed"] = answers.compute(**rest)
out["streamed_direct"] = compute_alignment(**streamed)
answers.add_batch(predictions=example["predictions"][:2], references=example["references"][:2])
try:
    answers.add_batch(predictions=example["predictions"][2:], references=example["references"][2:])
except ValueError as exc:
    out["batch_error"] = str(exc)
answers.compute(**{k: v[:2] if isinstance(v, list) else v for k, v in rest.items()})
try:
    answers.compute(predictions=[[0, 5]], references=[[0.5, 0.5]], question_ids=["x.1"])
except ValueError as exc:
    out["error"] = str(exc)
try:
    answers.compute(predictions=[[0.5, 0.5]], references=[[0.5, 0.5]])
except ValueError as exc:
    out["float_error"] = str(exc)
print("RESULT" + json.dumps(out))
"""


def test_evaluate_load_offline_in_a_fresh_environment(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, json.dumps(EXAMPLE), str(MODULE_DIR)],
        cwd=ROOT, env=offline_env(tmp_path), capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT", 1)[1])
    expected = compute_alignment(**EXAMPLE)
    assert out["answers"] == json.loads(json.dumps(expected))
    assert out["by_path"] == out["answers"]
    assert out["streamed"] == json.loads(json.dumps(out["streamed_direct"]))
    assert "earlier batches had plain int answers" in out["batch_error"]
    assert out["class"] == "CulturalAlignment" and out["name"] == "cultural_alignment"
    assert out["lazy_class"] == 0.5
    direct = compute_alignment(probabilities=[[0.75, 0.25]], references=[[0.6, 0.4]], bootstrap_samples=50)
    assert out["probabilities"] == json.loads(json.dumps(direct))
    assert out["error"].startswith("question 0 (id 'x.1'): participant 1 answered option 5")
    assert "a float" in out["float_error"] and "probabilities" in out["float_error"]
    assert (tmp_path / "hf" / "modules" / "evaluate_modules" / "metrics" / "cultural_alignment").is_dir()


def run_doctests(tests) -> doctest.TestResults:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    return runner.summarize(verbose=False)


def test_module_doctests(monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples load "metrics/cultural_alignment" from the checkout
    module = importlib.import_module("culturesim.metrics.cultural_alignment.cultural_alignment")
    tests = [t for t in doctest.DocTestFinder().find(module) if t.examples]
    names = {t.name.rsplit(".", 1)[-1] for t in tests}
    assert {"evaluate_examples", "compute_alignment"} <= names
    result = run_doctests(tests)
    assert result.failed == 0 and result.attempted >= 12


def card() -> tuple[dict, str]:
    text = (MODULE_DIR / "README.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, flags=re.S)
    assert match, "the card starts with YAML front matter"
    return yaml.safe_load(match.group(1)), text[match.end():]


def test_card_front_matter_and_sections():
    meta, body = card()
    assert meta["sdk"] == "gradio" and str(meta["sdk_version"]) == "6.31.0" and meta["app_file"] == "app.py"
    assert {"evaluate", "metric"} <= set(meta["tags"])
    for key in ("title", "emoji", "colorFrom", "colorTo", "description"):
        assert meta[key]
    headings = re.findall(r"^#+ (.+)$", body, flags=re.M)
    for section in ("Metric Description", "How to Use", "Inputs", "Output Values", "Examples",
                    "Limitations and Bias", "Citation"):
        assert section in headings
    assert "0.049857" in body and "0.107531" in body and "0.078694" in body  # the worked example


def test_card_examples_run(monkeypatch):
    monkeypatch.chdir(ROOT)
    _, body = card()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", body, flags=re.S) if ">>>" in b]
    assert len(blocks) >= 3
    # the blocks build on each other, as a reader runs them: one doctest, one namespace
    source = "\n".join(blocks)
    test = doctest.DocTestParser().get_doctest(source, {}, "README.md examples", str(MODULE_DIR / "README.md"), 0)
    result = run_doctests([test])
    assert result.failed == 0 and result.attempted >= 10


@pytest.mark.slow
def test_space_app_over_http():
    spec = importlib.util.spec_from_file_location("cultural_alignment_app", MODULE_DIR / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    modules = app.load_modules()
    assert app.score_json(json.dumps(EXAMPLE), modules) == compute_alignment(**EXAMPLE)
    probs = app.score_json(json.dumps({"probabilities": [[0.75, 0.25]], "references": [[0.6, 0.4]]}), modules)
    assert probs["model_input"] == "probabilities"
    with pytest.raises(ValueError, match="unknown inputs"):
        app.score_json(json.dumps({"predictions": [[0]], "references": [[0.5, 0.5]], "colour": 1}), modules)
    widget = app.build_widget(modules)
    port = free_port()
    widget.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        from gradio_client import Client

        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        result = client.predict(json.dumps(EXAMPLE), api_name="/predict")
        assert result == json.loads(json.dumps(compute_alignment(**EXAMPLE)))
        with pytest.raises(Exception, match=r"question 1 \(id 'q.b'\)"):
            bad = {**EXAMPLE, "predictions": [[0], [7], [1]]}
            client.predict(json.dumps(bad), api_name="/predict")
    finally:
        widget.close()


def publish(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    base.update(HF_HOME=str(tmp_path / "hf"), **env)
    return subprocess.run(
        [sys.executable, "-m", "culturesim.simulator.cli", "metric", "publish", *args],
        cwd=ROOT, env=base, capture_output=True, text=True, timeout=300,
    )


def test_publish_without_token_fails_clearly(tmp_path):
    proc = publish(tmp_path, "--repo-id", "culturesim/cultural_alignment")
    assert proc.returncode == 1
    assert "No Hugging Face token found. Set HF_TOKEN" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_publish_offline_fails_clearly(tmp_path):
    with socket.socket() as s:  # a port that refuses connections
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = publish(tmp_path, "--repo-id", "culturesim/cultural_alignment", "--private",
                   HF_TOKEN="hf_not_a_real_token", HF_ENDPOINT=f"http://127.0.0.1:{port}")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "could not reach the hugging face hub" in proc.stderr.lower()
    assert "Traceback" not in proc.stderr and "hf_not_a_real_token" not in proc.stderr + proc.stdout
    proc = publish(tmp_path, "--repo-id", "culturesim/cultural_alignment", HF_TOKEN="hf_x", HF_HUB_OFFLINE="1")
    assert proc.returncode == 1 and "offline mode is enabled" in proc.stderr


def test_publish_rejects_a_bad_repo_id(tmp_path):
    proc = publish(tmp_path, "--repo-id", "no-slash", HF_TOKEN="hf_x")
    assert proc.returncode == 2 and "must look like ORG/NAME" in proc.stderr


WRAPPER_ERRORS = [
    (dict(predictions=[[0, 1], [True, 0]], references=[[0.5, 0.5], [0.5, 0.5]]),
     r"question 1: participant 0 answered True; an answer must be an int"),
    (dict(predictions=[[0, "1"]], references=[[0.5, 0.5]]), r"question 0: participant 1 answered '1'"),
    (dict(predictions=[], references=[]), r"references is empty: there are no questions to score"),
    (dict(predictions=[[0, 1]], references=[[]]), r"question 0: the human distribution \[\] has 0 option"),
    (dict(predictions=[[0, 1], [1, 0]], references=[[0.5, 0.5], [0.5, 0.5]], question_ids=["a", "a"]),
     r"question 1 \(id 'a'\): question id 'a' is also question 0; ids must be unique"),
    (dict(predictions=[[0, 2**70]], references=[[0.5, 0.5]]),
     r"question 0: participant 1 answered option 1180591620717411303424, outside 0..1"),
    (dict(predictions=[[[0, 2**64]], [1]], references=[[0.5, 0.5], [0.5, 0.5]]),
     r"question 0: participant 0 answered option 18446744073709551616, outside 0..1"),
]


def test_evaluate_wrapper_raises_the_same_errors_as_compute_alignment(monkeypatch):
    """Before evaluate stores a batch in Arrow, the wrapper runs compute_alignment's checks: the
    same ValueError, naming the question and the fix (Arrow would turn True into 1, dump its
    format for a string and overflow on a huge index)."""
    monkeypatch.chdir(ROOT)
    for key in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_EVALUATE_OFFLINE"):
        monkeypatch.setenv(key, "1")
    import evaluate

    metric = evaluate.load("metrics/cultural_alignment")
    for kwargs, pattern in WRAPPER_ERRORS:
        with pytest.raises(ValueError, match=pattern) as direct:
            compute_alignment(bootstrap_samples=0, **kwargs)
        with pytest.raises(ValueError, match=pattern) as wrapped:
            metric.compute(bootstrap_samples=0, **kwargs)
        assert str(wrapped.value) == str(direct.value)
    with pytest.raises(ValueError, match=r"question 0: participant 0 answered True"):
        metric.add(prediction=[True, 1], reference=[0.5, 0.5])
    probs = evaluate.load("metrics/cultural_alignment", "probabilities")
    with pytest.raises(ValueError, match=r"question 0: the model probabilities \[0.5, 0.6\] sums to 1.1"):
        probs.compute(predictions=[[0.5, 0.6]], references=[[0.5, 0.5]])
