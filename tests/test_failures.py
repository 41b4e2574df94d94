"""Faults and bad input as users meet them: every one is a single line ``culturesim: error: ...``
naming the value and the fix, exit 2, no traceback (the traceback only with ``-v``); a run
folder survives full disks and interrupted set-ups; ``score`` and ``report`` refuse what they
cannot rest on. Real processes, real loopback servers (llm-katan and ``chatserver``), real
file systems (a small tmpfs for a full disk, a read-only tmpfs, where this user may mount).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from chatserver import chat_server
from katan import free_port, katan  # noqa: F401 - katan is a fixture

from culturesim.simulator.cli import main as cli_main
from culturesim.simulator.embedded import embedded_model_path
from culturesim.simulator.questions import load_questions
from culturesim.simulator.runfolder import CONFIG_FILE, QUESTIONS_FILE, RESPONSES_FILE, read_rows

REPO = Path(__file__).resolve().parent.parent


def run_cli(*argv: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``culturesim ARGV`` in a real process (the way users meet it)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        full_env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "culturesim.simulator.cli", *argv], cwd=REPO, capture_output=True, text=True,
                          env=full_env, timeout=timeout)


def one_error_line(stderr: str) -> str:
    """The stderr of a refused command: no traceback, and exactly one ``culturesim: error:`` line, the last."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("culturesim: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    return errors[0]


def refused(capfd: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run ``culturesim ARGV`` in this process (the same code path, without the import time of a
    new interpreter); it must exit 2 with one error line; return that line."""
    capfd.readouterr()
    try:
        code = cli_main(list(argv))
    except SystemExit as exc:  # argparse
        code = exc.code
    err = capfd.readouterr().err
    assert code == 2, err
    return one_error_line(err)


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def answers() -> Iterator:
    with chat_server("answer") as server:
        yield server


def remote(server, out: Path, *extra: str, questions: int = 2, participants: int = 3) -> list[str]:
    return ["simulate", "--backend", "openai", "--model", "test-model", "--base-url", server.openai_url,
            "--questions", str(questions), "--participants", str(participants), "--seed", "4", "--max-new-tokens", "16",
            "--plan", "prompt", "--no-progress", "--out", str(out), *extra]


def _can_mount() -> bool:
    probe = Path(f"/tmp/culturesim-mount-probe-{uuid.uuid4().hex[:8]}")
    probe.mkdir()
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)],
                            capture_output=True).returncode == 0
        if ok:
            subprocess.run(["umount", str(probe)], check=True)
        return ok
    except OSError:
        return False
    finally:
        probe.rmdir()


CAN_MOUNT = _can_mount()


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator:
    """A real file system of a chosen size: ``small_fs(kb)`` mounts a tmpfs and returns its path
    (``read_only=True``: mounted read-only). Mounting needs root (the test machine runs as root);
    elsewhere these tests fail with that reason rather than pretend with a fake disk."""
    mounts: list[Path] = []

    def make(kilobytes: int, read_only: bool = False) -> Path:
        point = tmp_path / f"fs{len(mounts)}"
        point.mkdir()
        if not CAN_MOUNT:
            raise RuntimeError("cannot mount a tmpfs here (not root?): this test needs a real small file system")
        options = f"size={kilobytes}k" + (",ro" if read_only else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], check=True)
        mounts.append(point)
        return point

    yield make
    for point in reversed(mounts):
        subprocess.run(["umount", "-l", str(point)], check=False)


# --- arguments refused before anything loads ------------------------------------------------


def test_unknown_topic_and_question_id_name_the_value_and_the_choices(capfd, tmp_path):
    line = refused(capfd, "simulate", "--topics", "nosuchtopic", "--out", str(tmp_path / "a"))
    assert "'nosuchtopic'" in line and "Topics:" in line
    some_topic = next(q.topic for q in load_questions("US") if q.topic)
    assert some_topic in line
    line = refused(capfd, "simulate", "--question-ids", "nosuchid", "--out", str(tmp_path / "a"))
    assert "'nosuchid'" in line and "Ids look like" in line
    assert not (tmp_path / "a").exists()  # nothing made for a refused command


def test_openai_without_model_and_zero_tokens(capfd, tmp_path):
    line = refused(capfd, "simulate", "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--out",
                   str(tmp_path / "a"))
    assert "needs --model" in line
    line = refused(capfd, "simulate", "--max-new-tokens", "0", "--out", str(tmp_path / "a"))
    assert "--max-new-tokens" in line and "0" in line


def test_out_below_a_file_and_on_a_read_only_file_system(capfd, tmp_path, small_fs):
    (tmp_path / "afile").write_text("x")
    line = refused(capfd, "simulate", "--out", str(tmp_path / "afile" / "run"))
    assert "afile" in line and "is a file" in line
    line = refused(capfd, "simulate", "--out", str(tmp_path / "afile"))
    assert "is a file" in line
    ro = small_fs(64, read_only=True)
    line = refused(capfd, "simulate", "--out", str(ro / "run"))
    assert str(ro) in line and "read-only" in line


def test_missing_model_path_and_truncated_config_json(capfd, tmp_path):
    line = refused(capfd, "simulate", "--model", str(tmp_path / "no-such-model"), "--out", str(tmp_path / "a"))
    assert "no-such-model" in line and "no such file or folder" in line
    folder = tmp_path / "cut-model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "llama", "hidden_si')
    line = refused(capfd, "simulate", "--model", str(folder), "--out", str(tmp_path / "a"))
    assert str(folder / "config.json") in line and "not valid JSON" in line


def test_truncated_gguf_is_refused_from_its_header(capfd, tmp_path):
    folder, name = embedded_model_path()
    whole = Path(folder) / name
    data = whole.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: len(data) // 2])
    line = refused(capfd, "simulate", "--model", str(cut), "--out", str(tmp_path / "a"))
    # The header's tensor table says how long the file must be: exactly the intact file's size.
    assert f"need {len(data):,} bytes but the file has {len(data) // 2:,}" in line and "download it again" in line
    (tmp_path / "junk.gguf").write_bytes(b"GGUF" + b"\xff" * 64)
    line = refused(capfd, "simulate", "--model", str(tmp_path / "junk.gguf"), "--out", str(tmp_path / "a"))
    assert "not a readable GGUF file" in line


def test_hub_id_offline_is_refused_in_seconds():
    # The Hub endpoint points at a closed loopback port: the probe fails at once, deterministically.
    proc = run_cli("simulate", "--model", "someorg/not-a-cached-model", "--out", "/tmp/never-made-run",
                   env={"HF_ENDPOINT": f"http://127.0.0.1:{free_port()}"})
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert "someorg/not-a-cached-model" in line and "Hub is unreachable" in line and "hf download" in line


def test_verbose_flag_works_and_keeps_the_traceback(capfd, answers, tmp_path):
    out = tmp_path / "run"
    capfd.readouterr()
    assert cli_main(["-v", *remote(answers, out)]) == 0  # `-v` before the command used to break every command
    assert len(read_rows(out / RESPONSES_FILE)) == 6
    proc = run_cli("-v", "simulate", "--topics", "nosuchtopic", "--out", str(tmp_path / "b"))
    assert proc.returncode == 2
    assert "Traceback (most recent call last)" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("culturesim: error: --topics")


def test_resume_with_another_backend_is_refused_before_loading(capfd, answers, tmp_path):
    out = tmp_path / "run"
    assert cli_main(remote(answers, out)) == 0
    # transformers would load the embedded model (seconds); the refusal comes first.
    line = refused(capfd, "simulate", "--questions", "2", "--participants", "3", "--seed", "4", "--max-new-tokens",
                   "16", "--plan", "prompt", "--out", str(out), "--resume")
    assert "--backend openai --model test-model" in line and "--backend transformers" in line


def test_truncated_run_config_names_the_file(capfd, answers, tmp_path):
    out = tmp_path / "run"
    assert cli_main(remote(answers, out)) == 0
    text = (out / CONFIG_FILE).read_text()
    (out / CONFIG_FILE).write_text(text[: len(text) // 2])
    line = refused(capfd, *remote(answers, out, "--resume"))
    assert str(out / CONFIG_FILE) in line and "not valid JSON" in line
    line = refused(capfd, "score", str(out))
    assert str(out / CONFIG_FILE) in line


# --- the run folder: full disks, interrupted set-ups ----------------------------------------


def test_disk_full_during_set_up_then_the_folder_is_reused(capfd, answers, small_fs):
    fs = small_fs(96)  # every US question's snapshot is several times larger than this
    out = fs / "run"
    line = refused(capfd, *remote(answers, out, questions=10_000))
    assert "no space left" in line.lower() and "questions.jsonl" in line
    assert not out.exists()  # the folder this command made is gone again: nothing half-made is left
    # A folder the user made first keeps only what set-up could finish, and is used next time.
    out.mkdir()
    line = refused(capfd, *remote(answers, out, questions=10_000))
    assert not (out / CONFIG_FILE).exists() and not list(out.glob("*.tmp"))
    assert cli_main(remote(answers, out, "--resume")) == 0
    assert len(read_rows(out / RESPONSES_FILE)) == 6


def test_set_up_leftovers_are_redone_with_a_message(capfd, answers, tmp_path, caplog):
    out = tmp_path / "run"
    out.mkdir()
    (out / f"{QUESTIONS_FILE}.tmp").write_text('{"id": "half')  # what a kill during set-up leaves
    (out / QUESTIONS_FILE).write_text("")
    assert cli_main(remote(answers, out)) == 0
    assert "unfinished set-up" in caplog.text
    assert len(read_rows(out / RESPONSES_FILE)) == 6 and not (out / f"{QUESTIONS_FILE}.tmp").exists()


def test_disk_full_mid_run_keeps_the_rows_and_resume_finishes(capfd, answers, small_fs):
    fs = small_fs(48)
    out = fs / "run"
    argv = remote(answers, out, questions=2, participants=40)
    line = refused(capfd, *argv)
    assert "no space left" in line.lower() and "responses.jsonl" in line and "--resume" in line
    before = read_rows(out / RESPONSES_FILE)
    assert 0 < len(before) < 80
    subprocess.run(["mount", "-o", "remount,size=2m", str(fs)], check=True)  # space freed
    capfd.readouterr()
    assert cli_main([*argv, "--resume"]) == 0
    rows = read_rows(out / RESPONSES_FILE)
    keys = [(r["participant_id"], r["question_id"]) for r in rows]
    assert len(keys) == len(set(keys)) == 80
    assert rows[: len(before)] == before


# --- remote failures: stop at once when nothing can answer; empty completions ----------------


def test_server_never_up_stops_at_once_with_one_line(tmp_path):
    out = tmp_path / "run"
    proc = run_cli("simulate", "--backend", "openai", "--model", "m", "--base-url", f"http://127.0.0.1:{free_port()}/v1",
                   "--questions", "3", "--participants", "20", "--no-progress", "--out", str(out))
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert "connection refused" in line and "--resume" in line
    assert read_rows(out / RESPONSES_FILE) == []  # no failed rows written for a server that was never there


def test_http_400_on_every_request_stops_the_run(capfd, tmp_path):
    with chat_server("400") as server:
        line = refused(capfd, *remote(server, tmp_path / "run", "--concurrency", "2", participants=8))
        assert "HTTP 400" in line and "max_tokens is too large" in line
        assert 3 <= len(server.requests) <= 4  # the first three (and one in flight), not all 16
    assert read_rows(tmp_path / "run" / RESPONSES_FILE) == []


def test_wrong_key_401_stops_the_run_without_showing_the_key(capfd, katan, tmp_path, monkeypatch):  # noqa: F811
    good, wrong = f"sk-good-{uuid.uuid4().hex}", f"sk-wrong-{uuid.uuid4().hex}"
    server = katan(validate_keys=True, api_keys=f"openai={good}")
    monkeypatch.setenv("OPENAI_API_KEY", wrong)
    out = tmp_path / "run"
    argv = ["simulate", "--backend", "openai", "--model", "katan-echo", "--base-url", server.openai_url,
            "--questions", "2", "--participants", "6", "--no-progress", "--out", str(out)]
    line = refused(capfd, *argv)
    assert "HTTP 401" in line and "OPENAI_API_KEY" in line and wrong not in line
    monkeypatch.setenv("OPENAI_API_KEY", good)
    assert cli_main([*argv, "--resume"]) == 0
    assert len(read_rows(out / RESPONSES_FILE)) == 12


@pytest.mark.parametrize("mode, reason", [("null", "content: null"), ("nochoices", "choices: []")])
def test_empty_completions_get_their_own_status(mode, reason, tmp_path):
    with chat_server(mode) as server:
        assert cli_main(remote(server, tmp_path / "run")) == 0
    rows = read_rows(tmp_path / "run" / RESPONSES_FILE)
    assert len(rows) == 6
    assert {r["status"] for r in rows} == {"empty"}
    assert all(reason in r["empty_completion"] and r["error"] is None for r in rows)


def test_credentials_in_the_base_url_reach_no_file_and_no_log(tmp_path):
    user_key, query_key = f"sk-user-{uuid.uuid4().hex}", f"sk-query-{uuid.uuid4().hex}"
    with chat_server("answer") as server:
        url = f"http://user:{user_key}@127.0.0.1:{server.port}/v1?api_key={query_key}"
        out = tmp_path / "run"
        proc = run_cli("-v", "simulate", "--backend", "openai", "--model", "test-model", "--base-url", url,
                       "--questions", "2", "--participants", "2", "--no-progress", "--out", str(out))
        assert proc.returncode == 0, proc.stderr
        # The query reached the server as a query (Azure-style keys work), on the right path.
        assert {r["path"] for r in server.requests} == {"/v1/chat/completions"}
        assert all(r["query"] == {"api_key": [query_key]} for r in server.requests)
    assert "HTTP Request" in proc.stderr  # -v: httpx's request log lines were there, and redacted
    surfaces = [proc.stdout, proc.stderr] + [p.read_text() for p in out.iterdir() if p.is_file()]
    for secret in (user_key, query_key):
        assert not [i for i, text in enumerate(surfaces) if secret in text], secret
    config = json.loads((out / CONFIG_FILE).read_text())
    assert config["backend"]["base_url"] == f"http://127.0.0.1:{server.port}/v1"
    assert f"http://***@127.0.0.1:{server.port}/v1?api_key=***" in config["command"]


# --- score and report ------------------------------------------------------------------------


def _rewrite(path: Path, rows: list) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_score_refuses_duplicates_bad_rows_and_nothing_scorable(capfd, answers, tmp_path):
    out = tmp_path / "run"
    assert cli_main(remote(answers, out)) == 0
    rows = read_rows(out / RESPONSES_FILE)
    assert {r["status"] for r in rows} == {"ok"}
    capfd.readouterr()
    assert cli_main(["score", str(out), "--bootstrap-samples", "20"]) == 0

    broken = tmp_path / "dupes"
    shutil.copytree(out, broken)
    _rewrite(broken / RESPONSES_FILE, rows + rows[:2])
    line = refused(capfd, "score", str(broken))
    assert "2 duplicate row(s)" in line and f"participant {rows[0]['participant_id']}" in line

    _rewrite(broken / RESPONSES_FILE, rows[:3] + [{k: v for k, v in rows[3].items() if k != "status"}] + rows[4:])
    line = refused(capfd, "score", str(broken))
    assert "line 4 has no 'status'" in line

    _rewrite(broken / RESPONSES_FILE, rows[:1] + [[1, 2, 3]] + rows[1:])
    line = refused(capfd, "score", str(broken))
    assert "line 2 is list JSON, not a row object" in line

    bad = dict(rows[0], option_indices="1")
    _rewrite(broken / RESPONSES_FILE, [bad] + rows[1:])
    line = refused(capfd, "score", str(broken))
    assert "option_indices '1'" in line

    _rewrite(broken / RESPONSES_FILE, rows)
    text = (broken / QUESTIONS_FILE).read_text()
    (broken / QUESTIONS_FILE).write_text(text[: len(text) // 2])
    line = refused(capfd, "score", str(broken))
    assert str(broken / QUESTIONS_FILE) in line and "damaged" in line
    (broken / QUESTIONS_FILE).write_text(text)

    _rewrite(broken / RESPONSES_FILE, [dict(r, status="no_answer", option_indices=[], parsed=[], positions=[])
                                      for r in rows])
    capfd.readouterr()
    assert cli_main(["score", str(broken), "--bootstrap-samples", "20"]) == 2
    assert "nothing to score" in one_error_line(capfd.readouterr().err)


@pytest.mark.slow
def test_report_refuses_mixed_runs_writes_nothing_into_inputs_and_nothing_half(capfd, answers, tmp_path):
    us, cn = tmp_path / "us", tmp_path / "cn"
    assert cli_main(remote(answers, us)) == 0
    assert cli_main([*remote(answers, cn), "--culture", "CN"]) == 0
    before = {d: sorted(p.name for p in d.iterdir()) for d in (us, cn)}
    line = refused(capfd, "report", str(us), str(cn), "--out", str(tmp_path / "rep"), "--bootstrap-samples", "20")
    assert str(cn) in line and "CN" in line and "--allow-mixed" in line
    assert not (tmp_path / "rep").exists() and not list(tmp_path.glob(".rep.*"))  # nothing half-written

    capfd.readouterr()
    assert cli_main(["report", str(us), str(cn), "--allow-mixed", "--out", str(tmp_path / "rep"),
                     "--bootstrap-samples", "20"]) == 0
    saved = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert saved["comparability"]["comparable"] is False
    assert saved["comparability"]["differing_runs"][0]["culture"] == "CN"
    assert "not directly comparable" in (tmp_path / "rep" / "report.html").read_text()
    assert {d: sorted(p.name for p in d.iterdir()) for d in (us, cn)} == before  # no scores.json in the inputs
    line = refused(capfd, "report", str(us), "--out", str(us / "report"))
    assert "never writes into its inputs" in line
