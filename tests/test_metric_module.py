"""The cultural_alignment folder as others use it: evaluate.load offline from a checkout, its
doctests and card examples, the Space app over real HTTP, and `culturesim metric publish`."""

from __future__ import annotations

import doctest
import importlib.util
import json
import os
import re
import shutil
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


# The files beside the script that hold the scoring (all but the script, the package's
# __init__.py and the Space's app.py).
SIBLINGS = sorted(p.stem for p in MODULE_DIR.glob("*.py") if p.stem not in ("cultural_alignment", "__init__", "app"))


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


def test_the_script_names_every_sibling_for_evaluate():
    """evaluate.load copies only the files named by the script's own column-0 ``from .NAME import``
    lines (get_imports reads no other file): every sibling must be among them, as a local import
    (a trailing comment on such a line would make evaluate read it as a download address)."""
    from evaluate.loading import get_imports

    imports = get_imports(str(MODULE_DIR / "cultural_alignment.py"))
    internal = sorted(name for kind, name, _, _ in imports if kind == "internal")
    assert internal == SIBLINGS
    # named, so a sibling the glob missed (or a renamed one) fails here: every file evaluate must copy
    assert set(SIBLINGS) >= {"bootstrap", "channels", "compute", "demographics", "divergences", "floors", "inputs",
                             "intervals", "output", "schema", "structure", "worth"}
    assert not [imp for imp in imports if imp[0] == "external"]
    assert {"numpy", "scipy"} <= {name for kind, name, _, _ in imports if kind == "library"}
    for sibling in SIBLINGS:  # relative imports between siblings only, never the project's namespace
        text = (MODULE_DIR / f"{sibling}.py").read_text(encoding="utf-8")
        assert "culturesim" not in re.findall(r"^(?:from|import)\s+(\S+)", text, flags=re.M), sibling


def test_package_exports_the_script_public_names():
    import culturesim.metrics.cultural_alignment as package

    script = importlib.import_module("culturesim.metrics.cultural_alignment.cultural_alignment")
    assert sorted(package.__all__) == sorted(set(script.__all__) - {"CulturalAlignment"})
    for name in package.__all__:
        assert getattr(package, name) is getattr(script, name), name


ISOLATED_SCRIPT = r"""
import importlib.abc, json, sys
from pathlib import Path


class BlockCulturesim(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "culturesim" or name.startswith("culturesim."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked for this test)", name=name)
        return None


# the editable install's finder goes, and anything else that could still find culturesim is refused
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "").lower()]
sys.meta_path.insert(0, BlockCulturesim())
try:
    import culturesim  # noqa: F401
except ModuleNotFoundError as exc:
    blocked = str(exc)
else:
    blocked = None

import evaluate

folder, example = Path(sys.argv[1]), json.loads(sys.argv[2])
metric = evaluate.load(str(folder))
probs = evaluate.load(str(folder), "probabilities")
out = {
    "blocked": blocked,
    "result": metric.compute(**example),
    "probabilities": probs.compute(predictions=[[0.75, 0.25]], references=[[0.6, 0.4]], bootstrap_samples=50),
    "metric_module": type(metric).__module__,
    "script": sys.modules[type(metric).__module__].__file__,
    "culturesim_modules": sorted(m for m in sys.modules if m.split(".")[0] == "culturesim"),
}
print("RESULT" + json.dumps(out))
"""


def test_evaluate_load_of_the_folder_alone_without_culturesim(tmp_path):
    """The folder works on its own, as the Hub serves it: copied alone (its .py files and card)
    into an empty folder, loaded by path by a Python that cannot import culturesim, it gives the
    same numbers as compute_alignment here."""
    work = tmp_path / "work"
    copy = work / "cultural_alignment"
    copy.mkdir(parents=True)
    for path in [*MODULE_DIR.glob("*.py"), MODULE_DIR / "README.md"]:
        shutil.copy2(path, copy / path.name)
    env = {k: v for k, v in offline_env(tmp_path).items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-I", "-c", ISOLATED_SCRIPT, str(copy), json.dumps(EXAMPLE)],
        cwd=work, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert out["blocked"] and "culturesim" in out["blocked"]
    assert out["culturesim_modules"] == []
    assert out["result"] == json.loads(json.dumps(compute_alignment(**EXAMPLE)))
    direct = compute_alignment(probabilities=[[0.75, 0.25]], references=[[0.6, 0.4]], bootstrap_samples=50)
    assert out["probabilities"] == json.loads(json.dumps(direct))
    # evaluate ran its own copy of the script, with every sibling copied beside it
    script = Path(out["script"])
    assert out["metric_module"].startswith("evaluate_modules.") and script.is_relative_to(tmp_path / "hf")
    assert {p.stem for p in script.parent.glob("*.py")} >= set(SIBLINGS) | {"cultural_alignment"}


def run_doctests(tests) -> doctest.TestResults:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    return runner.summarize(verbose=False)


def test_module_doctests(monkeypatch):
    monkeypatch.chdir(ROOT)  # the examples load "metrics/cultural_alignment" from the checkout
    tests = []
    for name in SIBLINGS + ["cultural_alignment"]:  # the script's examples and its siblings' docstrings
        module = importlib.import_module(f"culturesim.metrics.cultural_alignment.{name}")
        tests += [t for t in doctest.DocTestFinder().find(module) if t.examples]
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


def test_publish_uploads_the_script_and_every_sibling(tmp_path, monkeypatch):
    """`culturesim metric publish` uploads the whole folder: the script, every sibling it imports,
    the card, app.py and requirements.txt (not the package's __init__.py). The Hub is replaced by
    a recorder that selects files the way HfApi.upload_folder does (filter_repo_objects)."""
    import huggingface_hub
    from huggingface_hub.utils import filter_repo_objects

    from culturesim.simulator.cli import main as cli_main

    calls: dict = {}

    class RecordingApi:
        def __init__(self, token=None, **kwargs):
            calls["token"] = token

        def create_repo(self, repo_id, **kwargs):
            calls["repo"] = (repo_id, kwargs.get("repo_type"), kwargs.get("space_sdk"))

        def upload_folder(self, *, folder_path, ignore_patterns=None, **kwargs):
            root = Path(folder_path)
            files = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
            calls["files"] = set(filter_repo_objects(files, ignore_patterns=ignore_patterns))
            return type("Info", (), {"commit_url": "https://huggingface.co/spaces/org/name/commit/0"})()

    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    assert cli_main(["metric", "publish", "--repo-id", "org/name"]) == 0
    assert calls["repo"] == ("org/name", "space", "gradio")
    expected = {f"{name}.py" for name in SIBLINGS} | {"cultural_alignment.py", "app.py", "README.md",
                                                      "requirements.txt"}
    assert expected <= calls["files"]
    assert "__init__.py" not in calls["files"] and not any(f.endswith(".pyc") for f in calls["files"])
    assert {f for f in calls["files"] if f.endswith(".py")} == expected - {"README.md", "requirements.txt"}


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
